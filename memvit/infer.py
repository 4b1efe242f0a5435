# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Streaming action detection on a video, a camera or a stream, with memory carried clip to clip.

::

    python -m memvit.infer --cfg configs/ava_16.yaml [--checkpoint CKPT] --video IN.mp4 --out DIR
        [--boxes CSV | --detector PATH] [--label-map PBTXT] [--interval 1.0] [KEY VALUE ...]

The command wires: arguments, the config and its model (:func:`memvit.cli.load_model`), the
person boxes, the reader of the video source. The work (the walk keyframe by keyframe through a
:class:`~memvit.StreamingDetector`, the person tracks, and the outputs ``predictions.csv``,
``predictions.jsonl``, ``tracks.csv``, ``annotated.mp4``, ``timeline.png``, ``person_timeline.png``,
``summary.json``) is :mod:`memvit.streaming.runner`.
Exit status: 0 done (also when ``--max-seconds`` stopped it, as asked), 1 stopped early by the
input, 2 not started.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from .cli import command_parser, load_cfg, load_model, resolve_device, setup_logging, user_errors_exit
from .streaming.detector import ClipSpec, StreamingDetector
from .streaming.person_boxes import COCO_PERSON, BoxSourceError, CsvBoxes, FullFrameBoxes, load_person_detector
from .streaming.runner import InferenceError, RunOptions, RunSummary, StreamRunner, label_names
from .streaming.video_io import FileReader, LiveReader, VideoError, is_live_spec


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m memvit.infer", __doc__.split("\n\n")[0], checkpoint=True, device=True,
                            implementation=True, dtype=True, cfg_help="model config (YAML), e.g. configs/ava_16.yaml")
    # Inference runs on the CPU unless asked (a demo on a shared GPU machine stays off the GPU).
    parser.set_defaults(device="cpu")
    for action in parser._actions:
        if action.dest == "device":
            action.help = "cpu, cuda or cuda:N (default: cpu)"
    parser.add_argument("--video", required=True, help="a video file, a camera index (0) or a stream URL")
    parser.add_argument("--out", required=True, help="output folder")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--boxes", help="person boxes: an AVA-format CSV (detector output or ground truth)")
    who.add_argument("--detector", "--detector-weights", dest="detector", metavar="PATH",
                     help="person boxes from a local detector: a TorchScript file (torchvision's detection "
                          "interface) or torchvision builder weights (--detector-arch)")
    parser.add_argument("--detector-arch", default="fasterrcnn_resnet50_fpn",
                        help="torchvision.models.detection builder of a --detector state dict")
    parser.add_argument("--detector-threshold", type=float, default=0.9, help="person score threshold")
    parser.add_argument("--person-label", type=int, default=COCO_PERSON,
                        help=f"the detector's label of a person (default {COCO_PERSON}, COCO)")
    parser.add_argument("--box-threshold", type=float, default=None,
                        help="score threshold of --boxes detector rows (default AVA.DETECTION_SCORE_THRESH)")
    parser.add_argument("--video-id", help="the video's id in the outputs and in --boxes (default: file name)")
    parser.add_argument("--label-map", help="AVA .pbtxt with class names (default: the config's, if present)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between keyframes (default 1)")
    parser.add_argument("--start", type=float, default=0.0, help="time of the first keyframe (s)")
    parser.add_argument("--time-offset", type=float, default=0.0,
                        help="added to output times; --boxes seconds minus this are video times")
    parser.add_argument("--top-k", type=int, default=5, help="labels per box in the JSON")
    parser.add_argument("--draw-top-k", type=int, default=3, help="labels per box drawn on the video")
    parser.add_argument("--live", action="store_true", help="read --video as a live source (e.g. a FIFO)")
    parser.add_argument("--max-seconds", type=float, help="stop after this many seconds of video")
    parser.add_argument("--read-timeout", type=float, default=10.0, help="live: seconds without data = gone")
    parser.add_argument("--no-video", action="store_true", help="do not write annotated.mp4")
    parser.add_argument("--no-timeline", action="store_true",
                        help="do not write timeline.png (nor person_timeline.png)")
    parser.add_argument("--no-tracks", action="store_true",
                        help="do not link boxes into person tracks (no track ids, tracks.csv, person_timeline.png)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights when no checkpoint is given")
    return parser


def _default_label_map(cfg: Any) -> str | None:
    path = os.path.join(cfg.AVA.ANNOTATION_DIR, cfg.AVA.LABEL_MAP_FILE)
    return path if os.path.isfile(path) else None


def _detector(args: argparse.Namespace, device: Any) -> tuple[StreamingDetector, Any, list[str]]:
    """The config's model (and checkpoint) in a :class:`StreamingDetector`; also the config and notes.
    Config and checkpoint problems name which of the two is wrong."""
    from .checkpoint import CheckpointError
    from .config import ConfigError

    notes = []
    try:
        cfg = load_cfg(args)
    except ConfigError as error:
        raise InferenceError(f"config: {error}") from None
    try:
        model = load_model(cfg, args.checkpoint, device=device, seed=args.seed, implementation=args.implementation,
                           warn_random=False)
    except CheckpointError as error:
        raise InferenceError(f"checkpoint: {error}") from None
    except ConfigError as error:
        raise InferenceError(f"config: {error}") from None
    if not args.checkpoint:
        notes.append("no --checkpoint: the model has random weights, so its scores mean nothing")
    for key, value in (("AVA.TEST_FORCE_FLIP", cfg.AVA.TEST_FORCE_FLIP), ("TEST.FLIP_AVERAGE", cfg.TEST.FLIP_AVERAGE)):
        if value:
            notes.append(f"{key} True is ignored here: it is a test-time option of memvit.eval; streaming runs each "
                         "clip once, as it comes")
    return StreamingDetector(model, ClipSpec.from_config(cfg), device=device,
                             bf16=bool(cfg.TRAIN.MIXED_PRECISION)), cfg, notes


def _box_source(args: argparse.Namespace, cfg: Any, video_id: str, max_boxes: int, device: str) -> Any:
    """Where the person boxes come from: ``--boxes``, ``--detector`` or the full frame."""
    try:
        if args.boxes:
            threshold = cfg.AVA.DETECTION_SCORE_THRESH if args.box_threshold is None else args.box_threshold
            return CsvBoxes(args.boxes, video_id, threshold, args.time_offset, max_boxes)
        if args.detector:
            return load_person_detector(args.detector, args.detector_arch, threshold=args.detector_threshold,
                                        max_boxes=max_boxes, device=device, person_label=args.person_label)
        return FullFrameBoxes()
    except BoxSourceError as error:
        raise InferenceError(str(error)) from None


def run_cli(args: argparse.Namespace) -> RunSummary:
    """Set everything up from parsed arguments and run; raises :class:`InferenceError` before starting."""
    args.device = str(resolve_device(args.device))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    detector, cfg, notes = _detector(args, args.device)
    names, class_ids = label_names(args.label_map or _default_label_map(cfg), int(cfg.MODEL.NUM_CLASSES))
    video_id = args.video_id or (os.path.splitext(os.path.basename(args.video))[0] if not args.video.isdigit()
                                 else f"camera{args.video}")
    box_source = _box_source(args, cfg, video_id, detector.model.max_boxes, args.device)
    options = RunOptions(video_id=video_id, interval=args.interval, start=args.start, time_offset=args.time_offset,
                         top_k=args.top_k, draw_top_k=args.draw_top_k, annotate=not args.no_video,
                         timeline=not args.no_timeline, progress=not args.no_progress, max_seconds=args.max_seconds,
                         track=not args.no_tracks)
    try:
        if args.live or is_live_spec(args.video):
            reader: FileReader | LiveReader = LiveReader(args.video, timeout=args.read_timeout)
        else:
            reader = FileReader(args.video)
    except VideoError as error:
        raise InferenceError(str(error)) from None
    try:
        runner = StreamRunner(detector, reader, box_source, args.out, options, names, class_ids)
        runner.summary.warnings.extend(notes)
        return runner.run()
    finally:
        reader.close()


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    setup_logging(logging.WARNING)
    summary = run_cli(build_parser().parse_args(argv))  # an InferenceError (a UserError): one message, exit 2
    for line in summary.lines():
        print(line, file=sys.stderr if line.startswith(("warning", "stopped")) else sys.stdout)
    return 1 if summary.error else 0


__all__ = ["build_parser", "main", "run_cli"]

if __name__ == "__main__":
    sys.exit(main())
