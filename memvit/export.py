# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""ONNX export of one streaming step, with the memory as explicit inputs and outputs.

::

    python -m memvit.export --cfg configs/ava_16.yaml [--checkpoint CKPT] --out memvit.onnx
        [--input-size 224 224] [--batch 1] [--verify 6] [KEY VALUE ...]

The command wires: arguments, the config and its model (:func:`memvit.cli.load_model`: seeded
with ``RNG_SEED`` before building, strict checkpoint), the pre-processing stored as metadata. The
graph, its interface, the onnxruntime helper and the check are :mod:`memvit.streaming.onnx_step`.
Exit status: 0 written (and verified), 1 the graph differs from PyTorch, 2 not written.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict

from .cli import command_parser, load_cfg, load_model, setup_logging, user_errors_exit

# OnnxStream, export_onnx, verify_onnx: also importable from here, as before the streaming wing.
from .streaming.onnx_step import OPSET, OnnxStream, export_onnx, verify_onnx


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m memvit.export", __doc__.split("\n\n")[0], checkpoint=True,
                            cfg_help="model config (YAML)")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                        help="network input size (default: DATA.TEST_CROP_SIZE square); a video's frames "
                             "resized to short side TEST_CROP_SIZE give e.g. 224 398 for 16:9")
    parser.add_argument("--batch", type=int, default=1, help="video streams per step, one per batch row (default 1)")
    parser.add_argument("--opset", type=int, default=OPSET)
    parser.add_argument("--verify", type=int, default=None,
                        help="steps to compare with onnxruntime (default: enough to fill the memory, + 1; 0: none)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max abs error --verify accepts")
    return parser


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .streaming.detector import ClipSpec

    setup_logging(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        cfg = load_cfg(args)
        model = load_model(cfg, args.checkpoint)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if model.memory is None:
        print("error: the config's model has no memory (MEMVIT.ENABLE False): nothing to stream", file=sys.stderr)
        return 2
    height, width = args.input_size or (cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE)
    spec = ClipSpec.from_config(cfg)
    metadata = {"preprocessing": {**asdict(spec), "input_size": [height, width]},
                "config": os.path.basename(args.cfg), "checkpoint": os.path.basename(args.checkpoint or "") or None,
                "classes": int(cfg.MODEL.NUM_CLASSES)}
    report = export_onnx(model, args.out, (cfg.DATA.NUM_FRAMES, height, width), batch=args.batch, opset=args.opset,
                         metadata=metadata)
    print(f"wrote {report.path}: opset {report.opset}, {report.size_bytes / 2**20:.1f} MiB, "
          f"{len(report.interface['inputs'])} inputs, {len(report.interface['outputs'])} outputs "
          f"({report.seconds:.1f} s)")
    for item in report.interface["inputs"]:
        print(f"  input  {item['name']:<32} {item['dtype']:<8} {item['shape']}")
    for item in report.interface["outputs"]:
        print(f"  output {item['name']:<32} {item['dtype']:<8} {item['shape']}")
    steps = model.memory.keep_max_len + 1 if args.verify is None else args.verify
    if steps > 0:
        errors = verify_onnx(model, args.out, steps)
        worst = max(errors)
        print(f"onnxruntime vs PyTorch over {steps} steps (memory fed back, from an empty memory): max abs error "
              f"{worst:.2e} (per step: {', '.join(f'{e:.1e}' for e in errors)})")
        if not worst <= args.tolerance:
            print(f"error: the exported graph differs from PyTorch by more than {args.tolerance}", file=sys.stderr)
            return 1
    return 0


__all__ = ["OnnxStream", "build_parser", "export_onnx", "main", "verify_onnx"]

if __name__ == "__main__":
    sys.exit(main())
