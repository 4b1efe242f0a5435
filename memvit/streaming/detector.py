# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Streaming detection: a MeMViT run clip after clip over one or many video streams.

MeMViT's point is the memory carried from one clip of a video to the next. A
:class:`StreamingDetector` holds that memory per stream, as one
:class:`~memvit.models.MemorySnapshot` each, so streams may start, pause and end
independently. A step over several streams stacks the ones whose caches line up (same
clip size, same number of cached clips) into one batch (``MemorySnapshot.concat_rows``), runs
the model once per such group with a :class:`~memvit.models.MemoryState` of the group, and
splits the new memory back per stream (``select_rows``). Every row only ever sees its own
stream's memory, so each stream's output is what the model gives when its video runs alone
(``tests/test_streaming.py`` checks this against solo runs).

The detector also owns the test-time pre-processing of the AVA models (:class:`ClipSpec`):
frames are RGB ``uint8``, the short side is resized to ``DATA.TEST_CROP_SIZE`` with the full
frame kept, ``/255``, mean/std; boxes are normalised ``(x1, y1, x2, y2)`` in ``[0, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.ava_files import FPS
from ..models.memory import MemorySnapshot, MemoryState

if TYPE_CHECKING:
    from ..data.clips import AvaTransform

FULL_FRAME = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class ClipSpec:
    """How a clip is cut from a video and normalised (PySlowFast's AVA test-time recipe).

    A clip for a keyframe at timeline frame ``c`` (frames on a ``fps`` timeline) is frames
    ``c - L/2, c - L/2 + rate, ..., c + L/2 - rate`` with ``L = num_frames * sampling_rate``,
    clamped to the video (as AVA's loaders do at its ends).
    """

    num_frames: int = 16
    sampling_rate: int = 4
    fps: int = FPS
    short_side: int = 224
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    resize_backend: str = "opencv"  # "opencv" (AVA.IMG_PROC_BACKEND cv2) or "pytorch"
    bgr: bool = False

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.sampling_rate < 1 or self.fps < 1 or self.short_side < 1:
            raise ValueError(f"ClipSpec needs positive sizes; got {self}")
        if self.resize_backend not in ("opencv", "pytorch"):
            raise ValueError(f"resize_backend must be 'opencv' or 'pytorch'; got {self.resize_backend!r}")

    @classmethod
    def from_config(cls, cfg: Any) -> ClipSpec:
        """The clip of a PySlowFast config, as evaluation reads it (:func:`memvit.data.clips.clip_recipe`):
        ``DATA.NUM_FRAMES`` x ``DATA.SAMPLING_RATE`` at 30 fps, short side ``DATA.TEST_CROP_SIZE``,
        ``DATA.MEAN``/``STD`` (in ``AVA.MEAN_STD_ORDER``), ``AVA.IMG_PROC_BACKEND``, ``AVA.BGR``."""
        from ..data.clips import clip_recipe

        r = clip_recipe(cfg)
        return cls(num_frames=r.num_frames, sampling_rate=r.sampling_rate, fps=r.fps, short_side=r.short_side,
                   mean=r.mean, std=r.std, resize_backend="opencv" if r.backend == "cv2" else "pytorch", bgr=r.bgr)

    @property
    def span_frames(self) -> int:
        """Timeline frames a clip covers (``L``)."""
        return self.num_frames * self.sampling_rate

    @property
    def span_seconds(self) -> float:
        return self.span_frames / self.fps

    def frame_indices(self, center: int, num_timeline_frames: int | None = None) -> list[int]:
        """Timeline indices of the clip centred on frame ``center``, clamped to ``[0, n - 1]``."""
        from ..data.clips import clip_window

        last = math.inf if num_timeline_frames is None else num_timeline_frames - 1
        return [int(min(max(i, 0), last)) for i in clip_window(center, self.num_frames, self.sampling_rate)]

    @property
    def transform(self) -> AvaTransform:
        """The data pipeline's test transform (full frame), so inference sees what evaluation sees."""
        from ..data.clips import AvaTransform

        return AvaTransform(mode="test", crop_size=self.short_side, color_augmentation=False, mean=self.mean,
                            std=self.std, bgr=self.bgr, backend="cv2" if self.resize_backend == "opencv" else "pytorch")

    def prepare(self, frames: np.ndarray | Tensor | Sequence[np.ndarray]) -> Tensor:
        """RGB ``uint8`` frames ``(T, H, W, 3)`` -> the normalised clip ``(3, T, H', W')``."""
        return self.prepare_with_boxes(frames, np.zeros((0, 4), np.float32))[0]

    def prepare_with_boxes(self, frames: np.ndarray | Tensor | Sequence[np.ndarray],
                           boxes: np.ndarray) -> tuple[Tensor, Tensor]:
        """The clip and its boxes (normalised ``(K, 4)`` -> pixels of the clip) through
        :meth:`transform`: PySlowFast's AVA test transform (the short side to ``short_side``,
        OpenCV bilinear on the ``uint8`` frames or PyTorch bilinear, full frame, /255, mean/std)."""
        if isinstance(frames, (list, tuple)):
            frames = np.stack(frames)
        array = frames.numpy() if isinstance(frames, Tensor) else np.asarray(frames)
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise ValueError(f"frames must be (T, H, W, 3) RGB uint8; got {array.dtype} {array.shape}")
        return self.transform(array, boxes)


@dataclass(frozen=True)
class Detections:
    """What one step gives for one stream: ``boxes`` ``(K, 4)`` normalised as given, ``scores``
    ``(K, classes)`` (sigmoid for AVA; a classifier's one row covers the whole frame)."""

    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def top_k(self, k: int = 5, classes: Sequence[int] | None = None) -> list[list[tuple[int, float]]]:
        """Per box, the ``k`` best ``(class index, score)`` among ``classes`` (0-based class indices,
        AVA id - 1; default: all), best first, ties in class order."""
        columns = np.arange(self.scores.shape[1]) if classes is None else np.asarray(classes, dtype=np.int64)
        out = []
        for row in self.scores:
            ranked = row[columns]
            order = np.argsort(-ranked, kind="stable")[:k]
            out.append([(int(columns[i]), float(ranked[i])) for i in order])
        return out


@dataclass
class _Prepared:
    clip: Tensor
    boxes: np.ndarray  # normalised (K, 4)
    pixels: Tensor  # (K, 4) in network input pixels


@dataclass
class _Stream:
    memory: MemorySnapshot | None = None
    steps: int = 0


class StreamingDetector:
    """MeMViT over live video streams: ``step(frames, boxes)`` per clip, memory carried per stream.

    Args:
        model: a :class:`~memvit.models.MeMViT` (AVA head, or a Kinetics classifier); put in eval mode.
        clip_spec: the pre-processing (:class:`ClipSpec`, e.g. ``ClipSpec.from_config(cfg)``).
        device: where the model runs (default: the model's device).
        bf16: run the model under bfloat16 autocast (scores within ~5e-3 of fp32, up to 1.5x
            faster on a CPU with AVX512-BF16; ``memvit.infer --dtype bf16``).

    ``step(frames, boxes, stream=...)`` runs one clip of one stream; :meth:`step_many` runs one
    clip of each of several streams as batches; :meth:`end` forgets a stream, :meth:`reset` all.
    Clips of a stream must come in time order. The model's own ``model.memory`` is not used.
    """

    def __init__(self, model: nn.Module, clip_spec: ClipSpec | None = None, *,
                 device: torch.device | str | None = None, bf16: bool = False) -> None:
        self.model = model.eval()
        self.bf16 = bf16
        self.clip_spec = clip_spec or ClipSpec()
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.template: MemoryState | None = getattr(model, "memory", None)
        self.is_detection = bool(getattr(model, "is_detection", True))
        self.max_boxes = int(getattr(model, "max_boxes", 100))
        self._streams: dict[Hashable, _Stream] = {}

    # ------------------------------------------------------------------ streams
    @property
    def streams(self) -> list[Hashable]:
        """Streams with memory (started and not ended)."""
        return list(self._streams)

    def steps_of(self, stream: Hashable) -> int:
        """Clips run so far on ``stream``."""
        return self._streams[stream].steps if stream in self._streams else 0

    def memory_of(self, stream: Hashable) -> MemorySnapshot | None:
        """The stream's memory (None before its first clip or without memory)."""
        return self._streams[stream].memory if stream in self._streams else None

    def end(self, stream: Hashable) -> None:
        """Forget a stream's memory (its video ended); a later clip under that name starts afresh."""
        self._streams.pop(stream, None)

    def reset(self) -> None:
        """Forget every stream."""
        self._streams.clear()

    # ------------------------------------------------------------------ steps
    def step(self, frames: np.ndarray | Tensor, boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
             stream: Hashable = 0) -> Detections:
        """One clip of one stream: RGB ``uint8`` frames ``(T, H, W, 3)`` and normalised person boxes
        ``(K, 4)`` (None: one full-frame box) -> :class:`Detections`."""
        return self.step_many({stream: (frames, boxes)})[stream]

    def step_many(self, inputs: Mapping[Hashable, tuple[Any, Any]]) -> dict[Hashable, Detections]:
        """One clip of each of several streams (``{stream: (frames, boxes)}``) in as few batches as
        their caches allow; returns ``{stream: Detections}``."""
        prepared = {name: self._prepare(frames, boxes) for name, (frames, boxes) in inputs.items()}
        return self._step_prepared(prepared)

    def _step_prepared(self, prepared: Mapping[Hashable, _Prepared]) -> dict[Hashable, Detections]:
        groups: dict[tuple, list[Hashable]] = {}
        for name, item in prepared.items():
            snapshot = self.memory_of(name)
            cached = 0 if snapshot is None else len(snapshot.video_ids)
            groups.setdefault((tuple(item.clip.shape), cached), []).append(name)
        results: dict[Hashable, Detections] = {}
        for names in groups.values():
            results.update(self._run_group(names, [prepared[n] for n in names]))
        return {name: results[name] for name in prepared}

    def _prepare(self, frames: Any, boxes: Any) -> _Prepared:
        normalised = np.asarray(FULL_FRAME if boxes is None else boxes, dtype=np.float32).reshape(-1, 4)
        if len(normalised) > self.max_boxes:
            raise ValueError(f"{len(normalised)} boxes in one clip but the model holds {self.max_boxes} "
                             "(max_boxes): keep the best-scoring ones")
        if len(normalised) and (normalised.min() < 0 or normalised.max() > 1 or
                                np.any(normalised[:, 2:] <= normalised[:, :2])):
            raise ValueError("boxes must be normalised (x1, y1, x2, y2) with 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1")
        clip, pixels = self.clip_spec.prepare_with_boxes(frames, normalised)
        return _Prepared(clip, normalised, pixels)

    def _run_group(self, names: list[Hashable], items: list[_Prepared]) -> dict[Hashable, Detections]:
        clips = torch.stack([item.clip for item in items]).to(self.device)
        rois = torch.cat([torch.cat([torch.full((len(item.pixels), 1), float(i)), item.pixels], dim=1)
                          for i, item in enumerate(items)]).to(self.device)
        state = None
        if self.template is not None:
            state = self.template.empty_copy()
            snapshots = [self.memory_of(name) for name in names]
            if snapshots[0] is not None:
                state.set_state(MemorySnapshot.concat_rows(snapshots))
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            kwargs = {"boxes": rois} if self.is_detection else {}
            scores = self.model(clips, video_ids=list(names), memory=state, **kwargs).float().cpu().numpy()
        out = {}
        start = 0
        for i, (name, item) in enumerate(zip(names, items)):
            stream = self._streams.setdefault(name, _Stream())
            if state is not None:
                stream.memory = state.get_state(rows=[i]) if len(names) > 1 else state.get_state()
            stream.steps += 1
            if self.is_detection:
                count = len(item.boxes)
                out[name] = Detections(item.boxes, scores[start:start + count])
                start += count
            else:
                out[name] = Detections(np.asarray([FULL_FRAME], dtype=np.float32), scores[i:i + 1])
        return out
