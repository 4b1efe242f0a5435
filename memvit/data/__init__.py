# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA data: readers and writers of the official AVA v2.2 files (:mod:`memvit.data.ava_files`)."""
