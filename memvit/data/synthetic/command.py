# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""A small synthetic AVA: stick-figure persons with learnable actions, in the official v2.2 layout.

``python -m memvit.data.synthetic --out data/synthetic`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ...cli import user_errors_exit
from .classes import DEFAULT_CLASSES, LONG_RANGE_CLASSES
from .write import SPLITS, generate


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memvit.data.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/synthetic", help="output directory (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a set this generator made with other "
                        "parameters (only the files its manifest.json lists)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-videos", type=int, default=16)
    parser.add_argument("--val-videos", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=24, help="length of each video (keyframes 902 ... 900+s-2)")
    parser.add_argument("--size", type=int, nargs=2, default=(128, 170), metavar=("H", "W"))
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    parser.add_argument("--long-range", action="store_true",
                        help="add the signal classes: 'see' (local) and 'answer' (seconds later; needs memory)")
    parser.add_argument("--videos", action="store_true",
                        help="also write videos/<id>.mp4 (H.264, 30 fps) and cvat/<id>.xml (the ground truth as a "
                             "CVAT for video 1.1 export): input for python -m memvit.data.convert cvat")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    # A bad parameter is a SyntheticParameterError (a UserError: one message, exit 2); anything else is a bug.
    info = generate(args.out, videos_train=args.train_videos, videos_val=args.val_videos, seconds=args.seconds,
                    size=tuple(args.size), seed=args.seed, jpeg_quality=args.quality, overwrite=args.overwrite,
                    classes=LONG_RANGE_CLASSES if args.long_range else DEFAULT_CLASSES, progress=not args.quiet,
                    videos=args.videos)
    state = f"generated in {info.elapsed_s:.1f} s" if info.generated else "already complete, left as it is"
    print(f"{info.root}: {state}")
    for s in SPLITS:
        print(f"  {s}: {len(info.videos[s])} videos, {info.keyframes[s]} keyframes, {info.boxes[s]} boxes")
    print(f"  {info.num_classes} classes: " + ", ".join(f"{i + 1}={c.name}" for i, c in enumerate(info.classes)))
    print("config:")
    for key, value in info.ava_config().items():
        print(f"  {key}: {json.dumps(value)}")
    return 0
