# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The streaming wing: a trained model over long videos, cameras and network streams, clip
after clip with memory.

* :mod:`.detector`: :class:`StreamingDetector` (memory per stream, aligned streams batched) and
  :class:`ClipSpec` (the test-time clip recipe);
* :mod:`.video_io`: reading files, cameras and URLs onto the dataset's timeline (the rule of
  :mod:`memvit.data.timeline`, shared with the frames the model is trained on); the annotated video;
* :mod:`.person_boxes`: where the boxes come from (a CSV, a detector, the full frame);
* :mod:`.tracking`: boxes linked keyframe to keyframe into person tracks (positions only);
* :mod:`.drawing`: boxes and labels on frames (placed off other people), the score and person timelines;
* :mod:`.runner`: the loop behind ``python -m memvit.infer`` and its outputs;
* :mod:`.onnx_step`: one streaming step as an ONNX graph with the memory as slot tensors
  (behind ``python -m memvit.export``).

The commands :mod:`memvit.infer` and :mod:`memvit.export` only wire (arguments, config, model
through :func:`memvit.cli.load_model`); the work is here. A *stream* is one video walked clip
after clip in time order with its own memory: a file, a camera or a URL, a name given to
:meth:`StreamingDetector.step`, a batch row of the ONNX step.
"""

from __future__ import annotations

from .detector import ClipSpec, Detections, StreamingDetector

__all__ = ["ClipSpec", "Detections", "StreamingDetector"]
