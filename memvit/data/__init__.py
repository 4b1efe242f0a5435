# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA data in PySlowFast's layout: the on-disk format, read and written (:mod:`.ava_files`), the
clip of a keyframe and its transforms, shared with streaming inference (:mod:`.clips`), the
dataset (:mod:`.ava`), stream order for memory (:mod:`.streams`), the loaders (:mod:`.loader`),
raw videos to frames (:mod:`.prepare_ava`, one video in :mod:`.extract_frames`, by the rule of
:mod:`.timeline`), your own annotations (CVAT's :mod:`.cvat`, a plain CSV) to AVA's files
(:mod:`.convert`) and a synthetic data set in the same layout (:mod:`.synthetic`)."""
