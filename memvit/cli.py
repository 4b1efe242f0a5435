# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""What every ``python -m memvit.*`` command shares (PySlowFast's ``utils/parser.py`` and
MMAction2's ``init_recognizer`` in one small kit): the parser of ``--cfg`` and ``KEY VALUE``
overrides, :func:`load_model` (config -> model, checkpoint, seed, device, implementation, with
one error policy), the logging set-up, example inputs, and one policy for the user's mistakes.

An expected user error (no data, a missing checkpoint, a bad key or value, a GPU asked for where
none is, a file that cannot be read) is a :class:`UserError`: the command prints one message
naming what is wrong and what provides it, and exits with code 2. Anything else is a bug and
keeps its traceback. The error classes of the package's rooms (``ConfigError``,
``CheckpointError``, ``AvaFormatError``, ``VideoError``, ...) derive from :class:`UserError`, so
the rule is written once, here.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An input the user can fix. ``hint`` names the command, option or doc that fixes it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = str(self.args[0]) if self.args else ""
        return f"{message}\n  {self.hint}" if self.hint else message


def user_errors_exit(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command's ``main(argv)``: a :class:`UserError` becomes ``error: <message>`` on
    stderr and exit code 2; ``KeyboardInterrupt`` exits 130 quietly."""

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None, *args: Any, **kwargs: Any) -> int:
        try:
            code = main(argv, *args, **kwargs)
        except UserError as error:
            sys.stdout.flush()
            print(f"error: {error}", file=sys.stderr, flush=True)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            return 130
        return 0 if code is None else int(code)

    return wrapper


def resolve_device(name: str | None) -> Any:
    """``torch.device`` for a ``--device`` value; a CUDA device asked for where none is usable
    is a :class:`UserError`, not a traceback deep inside the first ``.to()``."""
    import torch

    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserError(f"--device {name!r} is not a device name ({error})",
                        "use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA GPU is usable on this machine",
                            "run on the CPU with --device cpu (or NUM_GPUS 0 for training)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return device


# ---------------------------------------------------------------------------------- the parser
DTYPES = ("fp32", "bf16")


def command_parser(prog: str, description: str | None, *, checkpoint: bool = False, device: bool = False,
                   implementation: bool = False, dtype: bool = False, cfg_help: str = "YAML config (configs/*.yaml)",
                   cfg: bool = True) -> argparse.ArgumentParser:
    """The parser every config-driven command starts from: ``--cfg`` (unless ``cfg=False``: a command
    with its own configs) and the trailing ``KEY VALUE`` overrides (add the command's own options, then
    :meth:`parse_args`); optionally ``--checkpoint``, ``--device``, ``--implementation`` and ``--dtype``,
    named and explained alike in every command."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if cfg:
        parser.add_argument("--cfg", required=True, help=cfg_help)
    if checkpoint:
        parser.add_argument("--checkpoint", default=None,
                            help="weights (.pyth, PySlowFast's layout), or a published name such as "
                                 "MeMViT_16L_16x4_K400pt (downloaded once); without them the weights are random")
    if device:
        parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when there is a GPU)")
    if implementation:
        from memvit_ext.ops import IMPLEMENTATIONS  # here, not at the top: the kit imports no torch

        parser.add_argument("--implementation", default="auto", choices=IMPLEMENTATIONS,
                            help="how the attention op runs (memvit_ext; default auto)")
    if dtype:
        parser.add_argument("--dtype", default=None, choices=DTYPES,
                            help="bf16: bfloat16 autocast (matrix products, convolutions and the attention op in "
                                 "bf16; norms, softmax statistics and, when training on CPU, the pooling convs in "
                                 "fp32), the same as TRAIN.MIXED_PRECISION True; fp32: the same as False "
                                 "(default: the config's)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser


def load_cfg(args: argparse.Namespace) -> Any:
    """The config of a parsed command line: ``--cfg`` with its overrides, ``--dtype`` last."""
    from .config import load_config

    opts = list(args.opts)
    if getattr(args, "dtype", None):
        opts += ["TRAIN.MIXED_PRECISION", str(args.dtype == "bf16")]
    return load_config(args.cfg, opts)


def setup_logging(level: int = logging.INFO, *, rank: int | None = None) -> None:
    """One log format for every command (a rank tag under torchrun); the first call wins."""
    tag = f" [rank {rank}]" if rank is not None else ""
    logging.basicConfig(level=level, format=f"%(asctime)s{tag} %(levelname)s %(name)s: %(message)s")


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: often on a terminal, rarely into a log file."""
    return 0.1 if sys.stderr.isatty() else 10.0


# ---------------------------------------------------------------------------------- the model
def load_model(cfg: Any, checkpoint: str | None = None, *, device: Any = "cpu", seed: int | None = None,
               implementation: str = "auto", train: bool = False, warn_random: bool = True) -> Any:
    """The model a config describes, ready to run: one policy for every command.

    * ``seed`` (default ``cfg.RNG_SEED``) seeds torch *before* building, so random weights are
      reproducible; a missing ``checkpoint`` is said in the log (``warn_random``), not silent.
    * ``checkpoint``: strict, weights-only (:func:`memvit.checkpoint.load_model_state`); a missing,
      damaged or unfit file is a :class:`memvit.checkpoint.CheckpointError` (a UserError). A published
      name (``MeMViT_16L_16x4_K400pt``) is the authors' file, downloaded on first use (:mod:`memvit.weights`).
    * ``implementation``: how the attention op runs (:func:`memvit.models.set_attention_implementation`).
    * ``device``: a name or ``torch.device``; a GPU where none is usable is a UserError.
    """
    import torch

    from .checkpoint import load_model_state
    from .config import build_model
    from .models import set_attention_implementation
    from .weights import resolve_checkpoint

    device = resolve_device(device) if isinstance(device, str) or device is None else device
    torch.manual_seed(cfg.RNG_SEED if seed is None else seed)
    model = build_model(cfg)
    log = logging.getLogger(__name__)
    if checkpoint:
        checkpoint = resolve_checkpoint(checkpoint)
        report = load_model_state(model, checkpoint)
        log.info("loaded %s (%d tensors)", checkpoint, len(report.loaded))
    elif warn_random:
        log.warning("no checkpoint: the model has random weights (seed %d), so its scores mean nothing",
                    cfg.RNG_SEED if seed is None else seed)
    set_attention_implementation(model, implementation)
    return model.to(device).train(train)


def example_inputs(model: Any, cfg: Any, *, batch: int = 1, train: bool = True, device: Any = "cpu",
                   dtype: Any = None, generator: Any = None) -> tuple[Any, Any]:
    """``(clip, boxes)`` a model of this config takes: random clips of the train (or test) crop and,
    for the AVA head, four boxes per clip inside the frame (RoIAlign rows ``[b, x1, y1, x2, y2]``)."""
    import torch

    from .config import input_shape

    c, t, h, w = input_shape(cfg, train=train)
    dtype = dtype or torch.float32
    clip = torch.rand(batch, c, t, h, w, generator=generator).to(device=device, dtype=dtype)
    boxes = None
    if model.is_detection:
        rows = [[b, (0.05 + 0.2 * i) * w, (0.1 + 0.15 * i) * h, (0.35 + 0.2 * i) * w, (0.6 + 0.1 * i) * h]
                for b in range(batch) for i in range(4)]
        boxes = torch.tensor(rows, dtype=dtype, device=device)
    return clip, boxes


__all__ = ["EXIT_USER_ERROR", "UserError", "command_parser", "example_inputs", "load_cfg", "load_model",
           "progress_interval", "resolve_device", "setup_logging", "user_errors_exit"]
