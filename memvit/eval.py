# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA evaluation: the model clip after clip over the test split, with memory, then frame-mAP.

``python -m memvit.eval --cfg CFG [--checkpoint PATH] [--scorer pyslowfast|activitynet] [KEY VALUE ...]``
(also ``python -m memvit.train --cfg CFG TRAIN.ENABLE False TEST.CHECKPOINT_FILE_PATH PATH``,
the reference's form). The test split is walked in stream order (every batch row one video
stream, one keyframe per iteration, memory carried across iterations; ``TEST.BATCH_SIZE``
streams per process), boxes from ``AVA.TEST_PREDICT_BOX_LISTS``, full frames (``--split val``:
the training loop's centre crops). Scored against ``AVA.GROUNDTRUTH_FILE`` without the
keyframes of ``AVA.EXCLUSION_FILE``, over the classes of ``AVA.LABEL_MAP_FILE``. Writes the
predictions (AVA CSV), the per-class AP (CSV and PNG) and a summary into
``OUTPUT_DIR/eval_<split>``; prints the mAP and the throughput.

This module is the command's wiring; the work is in :mod:`memvit.evaluation.engine`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import torch

from .cli import command_parser, load_cfg, load_model, resolve_device, setup_logging, user_errors_exit
from .evaluation.ava_map import MODES
from .evaluation.engine import evaluate


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("python -m memvit.eval", __doc__.split("\n\n")[0], checkpoint=True, device=True,
                            dtype=True)
    parser.epilog = "--checkpoint defaults to the config's TEST.CHECKPOINT_FILE_PATH."
    parser.add_argument("--split", choices=["test", "val"], default="test",
                        help="test: full frames, as the reference tests; val: centre crops")
    parser.add_argument("--scorer", choices=MODES, default="pyslowfast",
                        help="pyslowfast (the paper's numbers) or activitynet (the challenge scorer)")
    parser.add_argument("--out", default=None, help="output folder (default OUTPUT_DIR/eval_<split>)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_cfg(args)
    return run(cfg, checkpoint=args.checkpoint, split=args.split, mode=args.scorer, device=resolve_device(args.device),
               out_dir=args.out, progress=not args.no_progress)


def run(cfg: Any, *, checkpoint: str | None = None, split: str = "test", mode: str = "pyslowfast",
        device: torch.device | str = "cpu", out_dir: str | None = None, progress: bool = True) -> int:
    """Evaluate a config's model on its test split and print the result (the command's body;
    also ``python -m memvit.train`` with ``TRAIN.ENABLE False``)."""
    checkpoint = checkpoint if checkpoint is not None else cfg.TEST.CHECKPOINT_FILE_PATH
    model = load_model(cfg, checkpoint, device=device)
    out_dir = out_dir or os.path.join(cfg.OUTPUT_DIR, f"eval_{split}")
    report = evaluate(model, cfg, split=split, mode=mode, out_dir=out_dir, device=device, progress=progress)
    print(report["summary"])
    print(f"{report['clips']} clips in {report['seconds']:.1f} s: {report['clips_per_second']:.2f} clips/s"
          + (f"; {report['problems']} data problem(s), see the log" if report["problems"] else ""))
    print(f"predictions, per-class AP (CSV, PNG) and summary.json in {out_dir}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
