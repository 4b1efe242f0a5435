# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA data in PySlowFast's layout: the official files (:mod:`.ava_files`), the dataset and its
transforms (:mod:`.ava`), stream order for memory (:mod:`.streams`), raw videos to frames
(:mod:`.prepare_ava`) and a synthetic data set in the same layout (:mod:`.synthetic`)."""
