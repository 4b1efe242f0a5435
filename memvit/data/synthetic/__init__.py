# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""A small synthetic AVA: stick-figure persons with learnable actions, in the official v2.2 layout.

The real AVA is hundreds of GB of frames. Training, evaluation and data-loading code needs a set that is
read by exactly the same code path (PySlowFast's frame folders, frame lists, annotation CSVs, label map,
excluded timestamps and person-detector boxes) and that a small video model can learn on a CPU in minutes.

Generation is three separate stages, so that a variant (e.g. a label that depends on an event seconds
earlier) replaces one stage and keeps the others; each lives in its own module:

1. **plan** (:mod:`.plan`, :func:`plan_video`): persons (appearance, place) and, per person, a timeline of
   :class:`Segment` s: what it visibly does (movement, arms, object, interaction) and, separately, which
   labels an annotator gives it;
2. **simulate** (:mod:`.body`, :func:`simulate`): the per-frame :class:`Pose` of each person, integrated
   from its timeline;
3. **render** (:mod:`.render`, :func:`render_frame`): background plus persons drawn from their poses. Ground-truth boxes
   come from the same geometry (:func:`body_parts`), so they are the true person extents.

The **long-range** variant (:data:`LONG_RANGE_CLASSES`, ``--long-range``) adds two classes that no single
clip can decide. A scene-wide signal, the room lit orange or lime for 2.5 s (centred on a keyframe, like a
bell or a traffic light everyone in view reacts to), gives every person in view the local class "see an
<colour> signal" at the three keyframes it lights, and the long-range class "answer an <colour> signal" at
the four keyframes 2 to 5 s after its centre, whose clips start after the light went out and show nothing
that tells an answering person from any other. Only a model that remembers earlier clips can get the
"answer" classes right; the other ten classes are decidable from the current clip.

The classes are data (:mod:`.classes`); :mod:`.annotate` derives the boxes, labels, excluded
timestamps and detector boxes of a split; :mod:`.write` puts the set on disk through
:mod:`memvit.data.ava_files` (:func:`generate`); with ``--videos`` :mod:`.export` also writes each video as an
MP4 and its ground truth as a CVAT file, the input of ``python -m memvit.data.convert``. Command line (:mod:`.command`):
``python -m memvit.data.synthetic --out data/synthetic`` (``--help`` for the options).
"""


from .annotate import DETECTION_SCORE_THRESH, KeyframeBox, SplitData, annotate_video, build_split, detect
from .body import Parts, Pose, body_parts, person_box, simulate
from .classes import (
    BEHAVIOURS,
    DEFAULT_CLASSES,
    LONG_RANGE_CLASSES,
    SHOWN_PREFIX,
    SIGNALS,
    ActionClass,
    check_classes,
    label_map_text,
)
from .command import main
from .plan import PersonPlan, Segment, Signal, VideoPlan, plan_split, plan_video, video_name
from .render import SIGNAL_RGB, draw_person, lit_room, render_background, render_frame, render_video
from .write import GENERATOR, GENERATOR_VERSION, DataFolderError, SyntheticInfo, ava_config, generate

__all__ = [
    "BEHAVIOURS", "DEFAULT_CLASSES", "DETECTION_SCORE_THRESH", "GENERATOR", "GENERATOR_VERSION", "LONG_RANGE_CLASSES",
    "SHOWN_PREFIX", "SIGNALS", "SIGNAL_RGB", "ActionClass", "DataFolderError", "KeyframeBox", "Parts", "PersonPlan",
    "Pose", "Segment", "Signal", "SplitData", "SyntheticInfo", "VideoPlan", "annotate_video", "ava_config",
    "body_parts", "build_split", "check_classes", "detect", "draw_person", "generate", "label_map_text", "lit_room",
    "main", "person_box", "plan_split", "plan_video", "render_background", "render_frame", "render_video",
    "simulate", "video_name",
]
