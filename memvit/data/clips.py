# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The clip of a keyframe and how its frames are prepared: PySlowFast's AVA recipe, in one place for
the training dataset (:mod:`memvit.data.ava`), evaluation and streaming inference
(:class:`memvit.streaming.ClipSpec`), so inference sees what evaluation sees without importing the
training dataset.

* :func:`clip_window`: which frames around a keyframe;
* :class:`AvaTransform`: the box-aware train / val / test pre-processing;
* :func:`clip_recipe`: the test-time clip a config describes (frames, rate, short side, mean/std in
  RGB order, resize backend, BGR, flip), which both :func:`transform_from_config` and
  ``ClipSpec.from_config`` read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from pytorchvideo.transforms import functional as PTVF
from torch import Tensor

from .ava_files import FPS


def clip_window(center: int, num_frames: int, sampling_rate: int) -> np.ndarray:
    """PySlowFast's clip of a keyframe at frame ``center``: ``num_frames`` frames every
    ``sampling_rate``, from ``center - L/2`` to ``center + L/2 - rate`` (``L = num_frames * rate``);
    the caller clamps them to the video."""
    length = num_frames * sampling_rate
    return np.arange(center - length // 2, center - length // 2 + length, sampling_rate)


def short_side_scaled(height: int, width: int, size: int) -> tuple[int, int]:
    """``(H, W)`` with the short side at ``size`` and the long side scaled and floored, as PySlowFast's cv2
    scale and PyTorchVideo's ``short_side_scale``."""
    if width < height:
        return int(math.floor(height / width * size)), size
    return size, int(math.floor(width / height * size))


@dataclass(frozen=True)
class AvaTransform:
    """PySlowFast's AVA pre-processing on PyTorchVideo's box-aware functions.

    ``train``: short side to a size drawn inverse-uniformly in ``jitter_scales``, random
    ``crop_size`` crop, horizontal flip (p 0.5), colour jitter and PCA lighting;
    ``val``: short side to ``crop_size``, centre crop; ``test``: short side to ``crop_size``, no
    crop (the full frame, as the reference tests); ``force_flip`` (``AVA.TEST_FORCE_FLIP``):
    val and test clips and their boxes flipped horizontally. Then ``/255``, mean/std (``mean``
    and ``std`` per RGB channel: :func:`rgb_mean_std` reads them from a config), optional BGR.
    The random draws come from the generator passed in (one per video and epoch).
    """

    mode: str = "train"
    crop_size: int = 224
    jitter_scales: tuple[int, int] = (256, 320)
    random_flip: bool = True
    color_augmentation: bool = True
    pca_jitter_only: bool = False
    pca_eigval: tuple[float, ...] = (0.225, 0.224, 0.229)
    pca_eigvec: tuple[tuple[float, ...], ...] = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140),
                                                 (-0.5836, -0.6948, 0.4203))
    mean: tuple[float, ...] = (0.45, 0.45, 0.45)
    std: tuple[float, ...] = (0.225, 0.225, 0.225)
    bgr: bool = False
    backend: str = "cv2"  # AVA.IMG_PROC_BACKEND: "cv2" or "pytorch" resizing
    force_flip: bool = False  # AVA.TEST_FORCE_FLIP: val/test clips flipped

    def __post_init__(self) -> None:
        if self.mode not in ("train", "val", "test"):
            raise ValueError(f"mode must be 'train', 'val' or 'test'; got {self.mode!r}")
        if self.backend not in ("cv2", "pytorch"):
            raise ValueError(f"AVA.IMG_PROC_BACKEND must be 'cv2' or 'pytorch'; got {self.backend!r}")

    def __call__(self, frames: np.ndarray, boxes: np.ndarray,
                 rng: np.random.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``frames (T, H, W, 3)`` uint8 RGB, ``boxes (K, 4)`` normalised -> ``(3, T, H', W')`` float
        and ``(K, 4)`` pixel boxes in the output clip. ``rng`` draws the training augmentation."""
        if self.mode == "train" and rng is None:
            raise ValueError("the training transform draws its augmentation from an rng")
        height, width = frames.shape[1:3]
        pixel = boxes.astype(np.float32) * np.array([width, height, width, height], dtype=np.float32)
        pixel = PTVF.clip_boxes_to_image(pixel, height, width)
        size = self.crop_size
        if self.mode == "train":
            low, high = self.jitter_scales
            size = int(round(1.0 / rng.uniform(1.0 / high, 1.0 / low)))  # inverse-uniform, as PySlowFast
        clip, pixel = self._scale(frames, pixel, size)
        if self.mode == "train":
            clip, pixel = self._crop(clip, pixel, rng)
            if self.random_flip and rng.uniform() < 0.5:
                clip, pixel = PTVF.horizontal_flip_with_boxes(1.0, clip, pixel)
        elif self.mode == "val":
            clip, pixel = PTVF.uniform_crop_with_boxes(clip, self.crop_size, 1, pixel)
        if self.mode != "train" and self.force_flip:  # the reference's x -> W - 1 - x on the boxes
            clip, pixel = PTVF.horizontal_flip_with_boxes(1.0, clip, pixel)
        pixel = PTVF.clip_boxes_to_image(pixel, clip.shape[2], clip.shape[3])
        clip = clip / 255.0
        if self.mode == "train" and self.color_augmentation:
            clip = self._color(clip, rng)
        mean = torch.tensor(self.mean).view(3, 1, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1, 1)
        clip = (clip - mean) / std
        if self.bgr:
            clip = clip.flip(0)
        return clip.contiguous(), torch.as_tensor(np.ascontiguousarray(pixel), dtype=torch.float32)

    def _scale(self, frames: np.ndarray, boxes: np.ndarray, size: int) -> tuple[Tensor, np.ndarray]:
        """Short side to ``size`` -> a float ``(C, T, H, W)`` clip and its boxes: cv2 bilinear
        (``INTER_LINEAR``) on the uint8 frames, as PySlowFast's cv2 backend (PyTorchVideo's OpenCV
        path needs floats and maps "bilinear" to INTER_AREA), or PyTorchVideo's PyTorch bilinear
        on floats. Boxes get a copy: PyTorchVideo scales its input boxes in place."""
        if self.backend == "pytorch":
            clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float()
            return PTVF.short_side_scale_with_boxes(clip, boxes.copy(), size, interpolation="bilinear",
                                                    backend="pytorch")
        height, width = frames.shape[1:3]
        new_h, new_w = short_side_scaled(height, width, size)
        ratio = new_h / height if width < height else new_w / width
        if (new_h, new_w) != (height, width):
            frames = np.stack([cv2.resize(f, (new_w, new_h), interpolation=cv2.INTER_LINEAR) for f in frames])
        clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float()
        return clip, boxes * ratio

    def full_frame_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')`` of a test clip of ``height x width`` frames: the whole frame, its short side at the
        crop size (test clips of different sizes cannot share a batch)."""
        return short_side_scaled(height, width, self.crop_size)

    def _crop(self, clip: Tensor, boxes: np.ndarray, rng: np.random.Generator) -> tuple[Tensor, np.ndarray]:
        """Random crop with the offsets drawn from ``rng`` (PyTorchVideo's draws from torch's global
        generator, which would tie the crop to the worker instead of the video)."""
        size = self.crop_size
        height, width = clip.shape[2:]
        y = int(rng.integers(0, height - size + 1)) if height > size else 0
        x = int(rng.integers(0, width - size + 1)) if width > size else 0
        cropped = clip[:, :, y:y + size, x:x + size]
        return cropped, PTVF.crop_boxes(boxes, x, y)

    def _color(self, clip: Tensor, rng: np.random.Generator) -> Tensor:
        """PySlowFast's colour jitter (brightness, contrast, saturation 0.4, random order) and
        AlexNet PCA lighting (alpha std 0.1), one draw for the whole clip."""
        if not self.pca_jitter_only:
            for op in rng.permutation(3):
                alpha = 1.0 + rng.uniform(-0.4, 0.4)
                if op == 0:  # brightness
                    clip = clip * alpha
                else:
                    gray = _grayscale(clip)
                    if op == 1:  # contrast: blend with the clip's mean gray level
                        gray = gray.mean(dim=(1, 2, 3), keepdim=True)
                    clip = clip * alpha + gray * (1.0 - alpha)
        alpha = rng.normal(0.0, 0.1, size=3)
        shift = np.asarray(self.pca_eigvec, dtype=np.float64) @ (alpha * np.asarray(self.pca_eigval))
        return clip + torch.tensor(shift, dtype=clip.dtype).view(3, 1, 1, 1)


def _grayscale(clip: Tensor) -> Tensor:
    gray = 0.299 * clip[0] + 0.587 * clip[1] + 0.114 * clip[2]
    return gray.unsqueeze(0).expand_as(clip)


def rgb_mean_std(cfg: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``DATA.MEAN`` and ``DATA.STD`` per RGB channel. The reference's AVA loader decodes with
    OpenCV (BGR) and normalises before its BGR->RGB swap, so its ``DATA.MEAN[0]`` is the blue
    channel's, though documented as red's: ``AVA.MEAN_STD_ORDER "bgr"`` (default) does as it
    does, ``"rgb"`` (ours) as documented. Equal values per channel (every released config) are
    the same either way."""
    mean, std = tuple(float(m) for m in cfg.DATA.MEAN), tuple(float(s) for s in cfg.DATA.STD)
    order = cfg.AVA.MEAN_STD_ORDER
    if order not in ("bgr", "rgb"):
        raise ValueError(f"AVA.MEAN_STD_ORDER must be 'bgr' or 'rgb'; got {order!r}")
    return (mean[::-1], std[::-1]) if order == "bgr" else (mean, std)


@dataclass(frozen=True)
class ClipRecipe:
    """The test-time clip a config describes, read in one place (:func:`clip_recipe`) for evaluation's
    test transform (:func:`transform_from_config`) and streaming inference
    (:meth:`memvit.streaming.ClipSpec.from_config`), so the two cannot drift apart."""

    num_frames: int  # DATA.NUM_FRAMES
    sampling_rate: int  # DATA.SAMPLING_RATE, in frames of the FPS timeline
    fps: int  # AVA's frame rate (ava_files.FPS)
    short_side: int  # DATA.TEST_CROP_SIZE: the short side after resizing, the full frame kept
    mean: tuple[float, ...]  # per RGB channel (rgb_mean_std: DATA.MEAN in AVA.MEAN_STD_ORDER)
    std: tuple[float, ...]
    backend: str  # AVA.IMG_PROC_BACKEND: "cv2" or "pytorch" resizing
    bgr: bool  # AVA.BGR: channels reversed after normalising
    force_flip: bool  # AVA.TEST_FORCE_FLIP: evaluation's clips flipped horizontally


def clip_recipe(cfg: Any) -> ClipRecipe:
    """The :class:`ClipRecipe` of a PySlowFast-style config."""
    mean, std = rgb_mean_std(cfg)
    backend = cfg.AVA.IMG_PROC_BACKEND
    if backend not in ("cv2", "pytorch"):
        raise ValueError(f"AVA.IMG_PROC_BACKEND must be 'cv2' or 'pytorch'; got {backend!r}")
    return ClipRecipe(num_frames=int(cfg.DATA.NUM_FRAMES), sampling_rate=int(cfg.DATA.SAMPLING_RATE), fps=FPS,
                      short_side=int(cfg.DATA.TEST_CROP_SIZE), mean=mean, std=std, backend=backend,
                      bgr=bool(cfg.AVA.BGR), force_flip=bool(cfg.AVA.TEST_FORCE_FLIP))


def transform_from_config(cfg: Any, split: str) -> AvaTransform:
    """The pre-processing of ``split`` (``"train"``, ``"val"``, ``"test"``) a config describes; val and
    test take size, normalisation, backend and flip from :func:`clip_recipe`, training its own crop."""
    ava, data = cfg.AVA, cfg.DATA
    recipe = clip_recipe(cfg)
    return AvaTransform(
        mode=split, crop_size=data.TRAIN_CROP_SIZE if split == "train" else recipe.short_side,
        jitter_scales=tuple(data.TRAIN_JITTER_SCALES), random_flip=data.RANDOM_FLIP,
        color_augmentation=ava.TRAIN_USE_COLOR_AUGMENTATION, pca_jitter_only=ava.TRAIN_PCA_JITTER_ONLY,
        pca_eigval=tuple(data.TRAIN_PCA_EIGVAL), pca_eigvec=tuple(tuple(v) for v in data.TRAIN_PCA_EIGVEC),
        mean=recipe.mean, std=recipe.std, bgr=recipe.bgr, backend=recipe.backend, force_flip=recipe.force_flip)


__all__ = ["AvaTransform", "ClipRecipe", "clip_recipe", "clip_window", "rgb_mean_std", "short_side_scaled",
           "transform_from_config"]
