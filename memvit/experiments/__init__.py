# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Experiments that test the paper's claims on data built for them (``memory_ablation``)."""
