"""Data preparation and loading for AVA (frames on disk in PySlowFast's layout)."""
