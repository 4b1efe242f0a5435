# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Checkpoints in the PySlowFast/MeMViT layout (``.pyth``: a dict with ``model_state``).

* :func:`read_checkpoint` unpickles with ``torch.load(weights_only=True)``: tensors, dicts,
  lists, strings and numbers only. Types a file needs beyond those must be named explicitly
  (``safe_globals=``); there is no fallback to unrestricted unpickling.
* :func:`load_model_state` loads the weights of the same architecture strictly and lists every
  missing, unexpected and wrong-shaped key on a mismatch.
* :func:`load_pretrained` initialises a model from another task's checkpoint (Kinetics -> AVA),
  keeping what fits and reporting what it skipped.
* :func:`save_checkpoint` writes the same layout.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cli import UserError
from .files import atomic_path

logger = logging.getLogger(__name__)

# Types a released MeMViT/PySlowFast checkpoint holds besides weights_only's built-ins. PySlowFast
# saves {"epoch": int, "model_state": tensors, "optimizer_state": SGD state (tensors, floats,
# bools), "cfg": YAML text}, all of which weights_only=True reads without help, so this is empty;
# if a released file turns out to hold another type, add exactly that type here.
CHECKPOINT_SAFE_GLOBALS: tuple[Any, ...] = ()


# Where the checkpoints come from, for messages about a missing one.
CHECKPOINT_HINT = ("the official MeMViT checkpoints (the reference's model zoo) load by their published name, e.g. "
                   "MeMViT_16L_16x4_K400pt (python -m memvit.weights lists them; downloaded once); your own are "
                   "under OUTPUT_DIR/checkpoints; give another path or name (--checkpoint, "
                   "TRAIN.CHECKPOINT_FILE_PATH, TEST.CHECKPOINT_FILE_PATH) or '' for random weights")


class CheckpointError(UserError, RuntimeError):
    """A checkpoint cannot be read or does not fit the model."""


class DamagedCheckpointError(CheckpointError):
    """The file is empty, truncated or not a PyTorch checkpoint at all."""


class UnsafeCheckpointError(CheckpointError):
    """The file is whole but holds code or objects weights-only loading refuses (``global_name``)."""


_BLOCKED = re.compile(r"unsupported GLOBAL (\S+) whose module (\S+) is blocked")
_NOT_ALLOWED = re.compile(r"Unsupported global: GLOBAL (\S+) was not an allowed global")
_OTHER_REFUSALS = (re.compile(r"call reduce for unrecognized function (.+?)(?: which belongs|$)", re.M),
                   re.compile(r"Can only create new object for .* but got (\S+)"),
                   re.compile(r"Can only build Tensor, Parameter.* but got (\S+)"))


def _refused_global(message: str) -> tuple[str, bool] | None:
    """(the global, whether its module is blocked outright) from torch's weights-only refusal, or
    None when the unpickler failed for another reason (a damaged file)."""
    match = _BLOCKED.search(message)
    if match:
        return match.group(1), True
    match = _NOT_ALLOWED.search(message)
    if match:
        return match.group(1), False
    for pattern in _OTHER_REFUSALS:
        match = pattern.search(message)
        if match:
            return match.group(1).strip(), False
    return None


def _last_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no message"


@dataclass
class LoadReport:
    """What a load did: keys loaded, adapted (resized tables) and left out, with reasons."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, not in the model
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # (key, ckpt, model)
    adapted: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        if self.adapted:
            lines.append(f"adapted {len(self.adapted)}: " + ", ".join(f"{k} {a}->{b}" for k, a, b in self.adapted))
        if self.mismatched:
            lines.append(f"wrong shape, skipped {len(self.mismatched)}: "
                         + ", ".join(f"{k} (checkpoint {a}, model {b})" for k, a, b in self.mismatched))
        if self.unexpected:
            lines.append(f"not in the model, skipped {len(self.unexpected)}: " + ", ".join(self.unexpected))
        if self.missing:
            lines.append(f"not in the checkpoint, kept as initialised {len(self.missing)}: " + ", ".join(self.missing))
        return "\n".join(lines)


def read_checkpoint(path: str | os.PathLike, safe_globals: Sequence[Any] = (), *, mmap: bool = False) -> dict[str, Any]:
    """Read a ``.pyth``/``.pt`` file with ``weights_only=True`` (plus the allow-listed types).

    Raises :class:`CheckpointError` naming the file when it is missing; :class:`DamagedCheckpointError`
    when it is empty, truncated or not a PyTorch checkpoint; :class:`UnsafeCheckpointError`, naming
    the global, when it holds code or objects that weights-only loading refuses (never reported as
    damage: the file is whole, it is not trusted). ``mmap`` maps the tensors instead of reading them
    (cheap when only the small entries are needed).
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file", CHECKPOINT_HINT)
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise DamagedCheckpointError(f"{path} is empty (an interrupted download or save?)")
    zipped = zipfile.is_zipfile(path)
    if not zipped and head.startswith(b"PK"):
        raise DamagedCheckpointError(f"{path} is truncated: a zip archive (torch.save's format) without its end; "
                                     "download or save it again")
    if not zipped and head[:1] != b"\x80":  # neither torch.save's zip nor a (legacy) pickle
        raise DamagedCheckpointError(f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    allowed = list(CHECKPOINT_SAFE_GLOBALS) + list(safe_globals)
    try:
        with torch.serialization.safe_globals(allowed):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipped)
    except pickle.UnpicklingError as error:
        refused = _refused_global(str(error))
        if refused is None:
            raise DamagedCheckpointError(f"{path} is truncated or not a PyTorch checkpoint (unpickling failed: "
                                         f"{_last_line(str(error))})") from error
        name, blocked = refused
        if blocked:
            raise UnsafeCheckpointError(
                f"{path} holds code, not only weights: its pickle calls {name}, whose module weights-only loading "
                "blocks; refused, nothing was run",
                "use a checkpoint from a source you trust (a file saved by torch.save of tensors and plain data "
                "loads without help)") from error
        raise UnsafeCheckpointError(
            f"{path} references {name}, a class or function that weights-only loading does not allow (code the "
            "file would run, not only weights); refused, nothing was run",
            f"if the file is trusted, allow exactly that type: read_checkpoint(path, safe_globals=[{name}]) "
            "(or CHECKPOINT_SAFE_GLOBALS in memvit/checkpoint.py); nothing else is unpickled") from error
    except (RuntimeError, OSError, EOFError, KeyError, ValueError) as error:
        raise DamagedCheckpointError(f"{path} is truncated or not a PyTorch checkpoint "
                                     f"({type(error).__name__}: {error})") from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, expected a dict")
    return checkpoint


def model_state_of(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The state dict in a checkpoint: its ``model_state`` (PySlowFast) or the dict itself;
    a DDP ``module.`` prefix is removed."""
    state = checkpoint.get("model_state", checkpoint)
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError("no state dict found: expected a 'model_state' entry of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def compare_state(model: nn.Module, state: Mapping[str, Tensor]) -> LoadReport:
    """Match a state dict against a model's keys and shapes (nothing is loaded)."""
    own = model.state_dict()
    report = LoadReport()
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            report.loaded.append(key)
    report.missing = [k for k in own if k not in state]
    return report


def load_model_state(model: nn.Module, source: str | os.PathLike | Mapping[str, Any],
                     safe_globals: Sequence[Any] = ()) -> LoadReport:
    """Load a checkpoint of the same architecture, strictly.

    ``source``: a file path, a checkpoint dict or a state dict. Raises :class:`CheckpointError`
    listing every missing, unexpected and wrong-shaped key when they do not match.
    """
    checkpoint = read_checkpoint(source, safe_globals) if isinstance(source, (str, os.PathLike)) else source
    state = model_state_of(checkpoint)
    report = compare_state(model, state)
    if not report.ok:
        raise CheckpointError("the checkpoint does not match the model:\n" + str(report)
                              + "\n(use load_pretrained to initialise from another task's checkpoint)")
    model.load_state_dict(state, strict=True)
    return report


def _adapt_rel_pos(key: str, value: Tensor, target: Tensor) -> Tensor | None:
    """The reference's fine-tuning rule for relative-position tables of another length."""
    if value.dim() != 2 or value.shape[1] != target.shape[1] or value.shape == target.shape:
        return None
    name = key.rsplit(".", 1)[-1]
    if name in ("rel_pos_t", "rel_pos_mem_t"):
        # Old rows first, then the last row repeated (never shortened: rows beyond are dropped).
        rows = min(value.shape[0], target.shape[0])
        out = value[-1:].expand(target.shape[0], -1).clone()
        out[:rows] = value[:rows]
        return out
    if name.startswith("rel_pos") and name.endswith(("_h", "_w")):
        return F.interpolate(value.t().unsqueeze(0), size=target.shape[0], mode="linear").squeeze(0).t()
    return None


def load_pretrained(model: nn.Module, source: str | os.PathLike | Mapping[str, Any], adapt_rel_pos: bool = True,
                    safe_globals: Sequence[Any] = ()) -> LoadReport:
    """Initialise ``model`` from a checkpoint of another task or input size (non-strict).

    Loads every key that exists in the model with the same shape; with ``adapt_rel_pos``
    relative-position tables of another length are first resized as the reference does
    (temporal tables extended by repeating their last row, spatial ones interpolated). Logs
    and returns what was skipped, e.g. the Kinetics head and the missing box block when a
    Kinetics checkpoint initialises the AVA model.
    """
    checkpoint = read_checkpoint(source, safe_globals) if isinstance(source, (str, os.PathLike)) else source
    state = model_state_of(checkpoint)
    own = model.state_dict()
    adapted = []
    if adapt_rel_pos:
        for key, value in list(state.items()):
            if key in own:
                new = _adapt_rel_pos(key, value, own[key])
                if new is not None:
                    adapted.append((key, tuple(value.shape), tuple(new.shape)))
                    state[key] = new
    report = compare_state(model, state)
    report.adapted = adapted
    model.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    logger.info("load_pretrained: %s", report)
    return report


def save_checkpoint(path: str | os.PathLike, model: nn.Module, epoch: int = 0,
                    optimizer: torch.optim.Optimizer | None = None, cfg: Any | None = None, **extra: Any) -> None:
    """Write ``{"epoch", "model_state", "optimizer_state", "cfg", **extra}`` as PySlowFast does (DDP
    wrappers are unwrapped; ``cfg`` is stored as YAML text), atomically (:func:`atomic_save`)."""
    module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    checkpoint: dict[str, Any] = {"epoch": int(epoch), "model_state": module.state_dict()}
    if optimizer is not None:
        checkpoint["optimizer_state"] = optimizer.state_dict()
    if cfg is not None:
        checkpoint["cfg"] = cfg if isinstance(cfg, str) else cfg.dump()
    checkpoint.update(extra)
    atomic_save(checkpoint, path)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that never leaves a partial file under ``path`` (:func:`memvit.files.atomic_path`:
    a temporary file in the same folder, fsynced, renamed over ``path``, the folder fsynced). A kill
    at any moment leaves either the old file or the new one; a failed save (a full disk) leaves no
    temporary file behind.
    """
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


__all__ = ["CHECKPOINT_SAFE_GLOBALS", "CheckpointError", "DamagedCheckpointError", "LoadReport",
           "UnsafeCheckpointError", "atomic_save", "compare_state",
           "load_model_state", "load_pretrained", "model_state_of", "read_checkpoint", "save_checkpoint"]
