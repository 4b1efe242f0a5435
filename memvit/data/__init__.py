# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA data in PySlowFast's on-disk layout: preparation, loading and a synthetic stand-in."""
