# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""python -m memvit.infer on videos the tests write with PyAV (moving shapes): outputs that parse and
decode, streamed scores equal to the model on independently cut clips, bad inputs, live sources."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from media import (
    LABEL_MAP,
    TICK,
    RecordingServer,
    clip_frames,
    crafted_references,
    decode,
    latin1_metadata_video,
    moving_shapes,
    normalise,
    probe_frames,
    real_clips,
    solo_run,
    tiny_model,
    write_config,
    write_video,
)
from PIL import Image

from memvit.data.ava_files import read_boxes_csv
from memvit.infer import main
from memvit.streaming.detector import ClipSpec, StreamingDetector
from memvit.streaming.person_boxes import FullFrameBoxes
from memvit.streaming.runner import RunOptions, StreamRunner, label_names
from memvit.streaming.video_io import AnnotatedVideoWriter, LiveReader

pytestmark = pytest.mark.usefixtures("one_thread")
MEDIA = Path(__file__).with_name("media.py")
SIZE = (64, 96)  # height, width


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    (root / "labels.pbtxt").write_text(LABEL_MAP)
    return root, write_config(root / "tiny.yaml")


def seed_of(gen) -> int:
    return int(torch.randint(2**31, (1,), generator=gen))


def run_cli(cfg, video, out, *extra, seed=0):
    """The CLI with random weights from ``seed`` (``tiny_model(cfg, seed)`` rebuilds them)."""
    return main(["--cfg", str(cfg), "--video", str(video), "--out", str(out), "--no-progress", "--seed", str(seed),
                 *map(str, extra)])


def boxes_csv(path: Path, video: str, seconds: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Two detector rows per second for ``video`` (score 0.95, one more below the 0.9 threshold) and
    a row of another video; returns the boxes kept per second."""
    kept, lines = {}, []
    for sec in range(seconds):
        corner = rng.uniform(0, 0.5, (3, 2))
        boxes = np.round(np.concatenate([corner, corner + rng.uniform(0.2, 0.45, (3, 2))], axis=1), 3)
        kept[sec] = boxes[:2]
        for box, score in zip(boxes, (0.95, 0.93, 0.5)):
            lines.append(f"{video},{sec:04d},{','.join(f'{v:.3f}' for v in box)},,{score}")
    lines.append("other,0001,0.1,0.1,0.5,0.5,,0.99")
    path.write_text("\n".join(lines) + "\n")
    return kept


def shapes_video(path: Path, frames: int, seed: int) -> None:
    """A 30 fps file of ``frames`` frames of moving shapes at ``path``."""
    times = [i / 30 for i in range(frames)]
    write_video(path, moving_shapes(times, SIZE, seed=seed), times)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected_scores(cfg, video, keyframes, boxes_at, seed=0, tolerance=TICK):
    """The oracle: clips cut from the decoded frames by AVA's rule, run through the model alone."""
    times, frames = decode(video)
    clips = [normalise(clip_frames(times, frames, t, 8, 4, tolerance), 64) for t in keyframes]
    return solo_run(tiny_model(cfg, seed), clips, [boxes_at(t) for t in keyframes])


def test_video_file_end_to_end(setup, tmp_path, gen):
    """CSV boxes, label map: every output readable, and the scores equal the oracle clip by clip."""
    root, cfg = setup
    rng = np.random.default_rng(seed_of(gen))
    video = tmp_path / "clip.mp4"
    shapes_video(video, 120, seed=seed_of(gen))
    kept = boxes_csv(tmp_path / "boxes.csv", "clip", 4, rng)
    out = tmp_path / "out"
    assert run_cli(cfg, video, out, "--boxes", tmp_path / "boxes.csv", "--label-map", root / "labels.pbtxt") == 0

    frames, width, height, rate = probe_frames(str(out / "annotated.mp4"))
    assert (frames, width, height, rate) == (120, 96, 64, 30)
    rows = read_boxes_csv(out / "predictions.csv")
    assert len(rows) == 4 * 2 * 5 and {r.action for r in rows} == {1, 2, 4, 5, 7}
    records = read_jsonl(out / "predictions.jsonl")
    assert [r["time"] for r in records] == [0, 1, 2, 3]
    assert records[0]["detections"][0]["labels"][0]["name"].startswith("action ")
    scores = [r["detections"][0]["labels"] for r in records]
    assert all(len(s) == 5 and [x["score"] for x in s] == sorted([x["score"] for x in s], reverse=True)
               for s in scores)
    assert Image.open(out / "timeline.png").size[0] > 100
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clips"] == 4 and summary["video_seconds"] == pytest.approx(4.0)
    assert summary["realtime_factor"] > 0 and summary["latency_ms"]["max"] > 0 and summary["error"] is None

    want = expected_scores(cfg, video, [0, 1, 2, 3], lambda t: kept[t])
    got = {}
    for r in rows:
        got.setdefault((r.sec, r.box), {})[r.action] = r.extra
    for sec, expected in enumerate(want):
        np.testing.assert_allclose(kept[sec], np.array([b for (s, b) in got if s == sec]), atol=1e-6)
        for box, row in zip(kept[sec], expected):
            found = got[(sec, tuple(float(v) for v in box))]
            np.testing.assert_allclose([found[c] for c in (1, 2, 4, 5, 7)], row[[0, 1, 3, 4, 6]], atol=3e-6)


def test_dtype_bf16_scores_within_1e2_of_fp32(setup, tmp_path, gen):
    """--dtype bf16 (bfloat16 autocast) gives the fp32 run's boxes and its scores within 1e-2."""
    root, cfg = setup
    rng = np.random.default_rng(seed_of(gen))
    video = tmp_path / "clip.mp4"
    shapes_video(video, 90, seed=seed_of(gen))
    boxes_csv(tmp_path / "boxes.csv", "clip", 3, rng)
    scores = {}
    for dtype in ("fp32", "bf16"):
        out = tmp_path / dtype
        assert run_cli(cfg, video, out, "--boxes", tmp_path / "boxes.csv", "--no-video", "--dtype", dtype) == 0
        scores[dtype] = {(r.sec, r.box, r.action): r.extra for r in read_boxes_csv(out / "predictions.csv")}
    assert scores["bf16"].keys() == scores["fp32"].keys() and len(scores["fp32"]) == 3 * 2 * 7  # all classes
    fp32 = np.array([scores["fp32"][k] for k in scores["fp32"]])
    bf16 = np.array([scores["bf16"][k] for k in scores["fp32"]])
    assert np.abs(bf16 - fp32).max() <= 1e-2
    assert np.abs(bf16 - fp32).max() > 0  # bf16 did run


def test_variable_frame_rate(setup, tmp_path, gen):
    """30 fps, then 15 fps: clips sample the frame on screen at each 30 fps instant; the annotated
    video keeps every source frame at its time."""
    root, cfg = setup
    times = [i / 30 for i in range(45)] + [1.5 + i / 15 for i in range(23)]
    video = tmp_path / "vfr.mp4"
    write_video(video, moving_shapes(times, SIZE, seed=seed_of(gen)), times)
    out = tmp_path / "out"
    assert run_cli(cfg, video, out, "--interval", "0.5", "--no-timeline") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert any("variable frame rate" in w for w in summary["warnings"])
    assert probe_frames(str(out / "annotated.mp4"))[0] == 68
    out_times, _ = decode(out / "annotated.mp4")
    np.testing.assert_allclose(out_times, times, atol=1e-3)
    records = read_jsonl(out / "predictions.jsonl")
    keyframes = [r["time"] for r in records]
    assert keyframes == [0, 0.5, 1, 1.5, 2, 2.5]  # keyframes up to the last frame (at 2.967 s)
    want = expected_scores(cfg, video, keyframes, lambda t: [[0, 0, 1, 1]])
    for record, expected in zip(records, want):
        scores = {x["id"]: x["score"] for x in record["detections"][0]["labels"]}
        np.testing.assert_allclose([scores[i] for i in sorted(scores)], expected[0][[i - 1 for i in sorted(scores)]],
                                   atol=3e-6)


def test_video_shorter_than_one_clip(setup, tmp_path, gen, capsys):
    root, cfg = setup
    video = tmp_path / "short.mp4"
    shapes_video(video, 15, seed=seed_of(gen))
    out = tmp_path / "out"
    assert run_cli(cfg, video, out, "--top-k", 7) == 0
    assert "shorter than one clip" in capsys.readouterr().err
    record, = read_jsonl(out / "predictions.jsonl")
    expected, = expected_scores(cfg, video, [0], lambda t: [[0, 0, 1, 1]])
    got = {x["id"]: x["score"] for x in record["detections"][0]["labels"]}
    np.testing.assert_allclose([got[i] for i in range(1, 8)], expected[0], atol=3e-6)
    assert probe_frames(str(out / "annotated.mp4"))[0] == 15


def test_truncated_video_keeps_what_was_decoded(setup, tmp_path, gen, capsys):
    root, cfg = setup
    times = [i / 30 for i in range(150)]
    full = tmp_path / "full.mp4"
    write_video(full, moving_shapes(times, SIZE, seed=seed_of(gen)), times, options={"movflags": "faststart"})
    video = tmp_path / "cut.mp4"
    data = full.read_bytes()
    video.write_bytes(data[:len(data) * 6 // 10])
    out = tmp_path / "out"
    assert run_cli(cfg, video, out) == 1
    err = capsys.readouterr().err
    assert "stopped early: " in err and "truncated" in err
    summary = json.loads((out / "summary.json").read_text())
    decoded = summary["frames_read"]
    assert 0 < decoded < 150 and summary["clips"] >= 1 and summary["error"].startswith(f"{video}: ")
    assert probe_frames(str(out / "annotated.mp4"))[0] == decoded  # every decoded frame, annotated
    assert len(read_boxes_csv(out / "predictions.csv")) == summary["clips"] * 7


@pytest.mark.parametrize("case", ["missing", "garbage", "moov-less", "boxes of another video", "bad label map"])
def test_bad_input_is_a_clear_error(setup, tmp_path, case, capsys):
    root, cfg = setup
    video = tmp_path / "clip.mp4"
    shapes_video(video, 60, seed=1)
    extra = []
    if case == "missing":
        video, message = tmp_path / "nope.mp4", "no such file"
    elif case == "garbage":
        video = tmp_path / "garbage.mp4"
        video.write_bytes(os.urandom(5000))
        message = "cannot open"
    elif case == "moov-less":  # cut before the index at the end of a plain MP4
        data = (tmp_path / "clip.mp4").read_bytes()
        video = tmp_path / "cut.mp4"
        video.write_bytes(data[:len(data) // 2])
        message = "cannot open"
    elif case == "boxes of another video":
        (tmp_path / "b.csv").write_text("someone_else,0001,0.1,0.1,0.5,0.5,,0.99\n")
        extra = ["--boxes", tmp_path / "b.csv"]
        message = "no boxes for video 'clip' (it names 1 other video(s): someone_else)"
    else:
        (tmp_path / "l.pbtxt").write_text("label { name: 'x' }\n")
        extra, message = ["--label-map", tmp_path / "l.pbtxt"], "label map"
    assert run_cli(cfg, video, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_person_detector_from_local_weights(setup, tmp_path, monkeypatch):
    """--detector-weights loads a torchvision detector from a file (nothing downloaded) and runs it
    on every keyframe; weights of another architecture are refused clearly."""
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    root, cfg = setup
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    torch.manual_seed(0)
    detector = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91,
                                                    box_score_thresh=0.0)
    torch.save(detector.state_dict(), tmp_path / "det.pth")
    video = tmp_path / "clip.mp4"
    shapes_video(video, 60, seed=2)
    arch = ["--detector-arch", "fasterrcnn_mobilenet_v3_large_320_fpn", "--detector-threshold", "0"]
    assert run_cli(cfg, video, tmp_path / "out", "--detector-weights", tmp_path / "det.pth", *arch, "--no-video") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["clips"] == 2 and summary["boxes"].startswith("fasterrcnn_mobilenet_v3_large_320_fpn")
    assert not (tmp_path / "torch_home").exists()
    torch.save({"model": {"backbone.body.nope": torch.zeros(1)}}, tmp_path / "bad.pth")
    assert run_cli(cfg, video, tmp_path / "out2", "--detector-weights", tmp_path / "bad.pth", *arch) == 2


def test_the_command_wires_and_the_wing_works(setup, tmp_path, monkeypatch):
    """``python -m memvit.infer`` gets its model from the command kit (``memvit.cli.load_model``:
    seeded before building, strict checkpoint) and the streaming wing parses no arguments."""
    import memvit.infer
    import memvit.streaming.runner as runner

    assert not any(hasattr(runner, name) for name in ("main", "build_parser", "run_cli", "load_detector", "argparse"))
    root, cfg = setup
    calls = []
    real = memvit.infer.load_model
    monkeypatch.setattr(memvit.infer, "load_model", lambda *a, **k: calls.append(k) or real(*a, **k))
    shapes_video(tmp_path / "v.mp4", 30, seed=0)
    assert run_cli(cfg, tmp_path / "v.mp4", tmp_path / "out", "--no-video", "--no-timeline", seed=3) == 0
    assert [(k["seed"], k["implementation"]) for k in calls] == [(3, "auto")]


def test_annotated_writer_keeps_odd_sizes(tmp_path, gen):
    path = str(tmp_path / "odd.mp4")
    writer = AnnotatedVideoWriter(path, 75, 41, None)
    rng = np.random.default_rng(seed_of(gen))
    for i in range(10):
        writer.write(rng.integers(0, 255, (41, 75, 3), dtype=np.uint8), i / 30)
    writer.close()
    assert probe_frames(path)[:3] == (10, 75, 41)


def test_label_names_default_to_every_class():
    names, ids = label_names(None, 7)
    assert names == {} and ids == list(range(1, 8))


# ------------------------------------------------------------------------------ real-world files
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_metadata_that_is_not_utf8(setup, tmp_path, suffix, gen):
    """A title in Latin-1 (old tools, cameras): PyAV's strict UTF-8 once killed the run with a traceback."""
    root, cfg = setup
    times = [i / 30 for i in range(45)]
    video = tmp_path / f"latin1{suffix}"
    latin1_metadata_video(video, moving_shapes(times, SIZE, seed=seed_of(gen)), times)
    with pytest.raises(UnicodeDecodeError):  # the file really carries metadata that is not UTF-8
        av.open(str(video)).close()
    out = tmp_path / "out"
    assert run_cli(cfg, video, out, "--interval", "0.5", "--no-timeline") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["frames_read"], summary["clips"], summary["error"]) == (45, 3, None)
    assert probe_frames(str(out / "annotated.mp4"))[0] == 45


def test_max_seconds_stops_where_asked(setup, tmp_path, gen, capsys):
    """--max-seconds on a longer, intact file is success (exit 0), not a 'truncated' file."""
    root, cfg = setup
    video = tmp_path / "long.mp4"
    shapes_video(video, 150, seed=seed_of(gen))
    out = tmp_path / "out"
    assert run_cli(cfg, video, out, "--max-seconds", 1.5, "--interval", 0.5, "--no-timeline") == 0
    captured = capsys.readouterr()
    assert "stopped at 1.5 s of video as asked (--max-seconds 1.5)" in captured.out + captured.err
    assert "truncated" not in captured.out + captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["error"] is None and summary["stopped"].startswith("stopped at 1.5 s")
    assert [r["time"] for r in read_jsonl(out / "predictions.jsonl")] == [0, 0.5, 1, 1.5]
    assert summary["frames_read"] < 150  # it stopped reading, too


@pytest.mark.parametrize("case", ["hls-local.m3u8", "hls-url.m3u8", "hls-local-named.mp4", "concat-local-named.mp4",
                                  "concat-url-named.mkv", "concat-absolute.webm"])
def test_a_local_file_is_read_as_itself_only(setup, tmp_path, case, capsys):
    """Playlists and concat lists (whatever their names) may not make FFmpeg read the files they name
    or contact the URLs they name: refused, naming the file; the test server sees no request."""
    root, cfg = setup
    with RecordingServer() as server:
        files = crafted_references(tmp_path, server.url)
        if case in ("hls-local.m3u8", "concat-local-named.mp4"):  # the threat is real: FFmpeg alone reads them
            with av.open(str(files[case])) as container:
                assert sum(1 for _ in container.decode(video=0)) == 45
        code = run_cli(cfg, files[case], tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {files[case]} is ") and "names other files or URLs to read" in err
    assert "read only as itself" in err
    assert server.requests == []
    assert not (tmp_path / "out" / "predictions.csv").exists()


def test_a_url_the_user_names_is_read(setup, tmp_path):
    """The other side of the rule: a URL given as --video is opened with FFmpeg's protocols."""
    root, cfg = setup
    times = [i / 30 for i in range(45)]
    write_video(tmp_path / "v.ts", moving_shapes(times, SIZE, seed=3), times, fmt="mpegts")
    with RecordingServer((tmp_path / "v.ts").read_bytes()) as server:
        code = run_cli(cfg, f"{server.url}/v.ts", tmp_path / "out", "--no-video", "--no-timeline")
    assert code == 0 and server.requests
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames_read"] == 45


def test_odd_file_names_round_trip(setup, tmp_path):
    """A video id from a file name with commas, quotes and a newline survives the CSV (read back by the
    csv module and by --boxes-style readers) and the JSON outputs."""
    root, cfg = setup
    name = 'take 1, "best" \'cut\'\nfinal;x'
    video = tmp_path / f"{name}.mp4"
    shapes_video(video, 60, seed=4)
    with open(tmp_path / "boxes.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([[name, f"{sec:04d}", 0.1, 0.2, 0.6, 0.9, "", 0.95] for sec in (0, 1)])
    out = tmp_path / "out"
    assert run_cli(cfg, video, out, "--boxes", tmp_path / "boxes.csv", "--no-video", "--no-timeline") == 0
    rows = read_boxes_csv(out / "predictions.csv")
    assert len(rows) == 2 * 7 and {r.video for r in rows} == {name}
    with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
        assert {tuple(row[:2]) for row in csv.reader(f)} == {(name, "0000"), (name, "0001")}
    assert [r["video"] for r in read_jsonl(out / "predictions.jsonl")] == [name, name]
    assert json.loads((out / "summary.json").read_text())["video_id"] == name


@pytest.mark.parametrize("clip", real_clips())
def test_real_clips(setup, tmp_path, clip):
    """Third-party clips (tests/data/README.md): another encoder, an audio track, 25 or 29.97 fps; the
    scores equal the oracle's clips cut from independently decoded frames."""
    root, cfg = setup
    times, frames = decode(clip)
    out = tmp_path / "out"
    assert run_cli(cfg, clip, out, "--interval", "0.5", "--no-timeline") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["frames_read"], summary["error"]) == (len(times), None)
    records = read_jsonl(out / "predictions.jsonl")
    keyframes = [r["time"] for r in records]
    assert keyframes == [k / 2 for k in range(int(times[-1] * 2) + 1)]
    with av.open(str(clip)) as container:  # the rule's tolerance: one tick of the stream's time base
        tick = float(container.streams.video[0].time_base)
    want = expected_scores(cfg, clip, keyframes, lambda t: [[0, 0, 1, 1]], tolerance=tick)
    for record, expected in zip(records, want):
        scores = {x["id"]: x["score"] for x in record["detections"][0]["labels"]}
        ids = sorted(scores)
        np.testing.assert_allclose([scores[i] for i in ids], expected[0][[i - 1 for i in ids]], atol=3e-6)
    height, width = frames[0].shape[:2]
    assert probe_frames(str(out / "annotated.mp4"))[:3] == (len(times), width, height)


# ------------------------------------------------------------------------------ live sources
def _writer(target: str, seconds: float, hang: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(MEDIA), target, str(seconds), str(hang)], stdout=subprocess.PIPE,
                            text=True)


def test_live_stream_at_real_time_pace(setup, tmp_path):
    """Another process writes MPEG-TS into a FIFO at 30 fps; clips are processed as the frames arrive."""
    root, cfg = setup
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)
    writer = _writer(str(fifo), 3.0)
    try:
        assert run_cli(cfg, fifo, tmp_path / "out", "--live", "--no-timeline") == 0
    finally:
        writer.wait(timeout=30)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["live"] and summary["frames_read"] == 90 and summary["clips_dropped"] == 0
    assert summary["clips"] == 3  # keyframes 0, 1, 2 s: the last frame is shown at 2.967 s
    # Each clip ran as soon as its frames were in: the stream was then past the keyframe by the
    # clip's second half (0.4 s) plus at most one reading delay, never by a backlog.
    lags = [r["lag_s"] for r in read_jsonl(tmp_path / "out" / "predictions.jsonl")]
    assert max(lags[:-1]) < 1.0, lags  # (the last clip ran at the end of the stream)
    assert any("live source ended" in w for w in summary["warnings"])
    assert probe_frames(str(tmp_path / "out" / "annotated.mp4"))[0] == 90
    assert len(read_boxes_csv(tmp_path / "out" / "predictions.csv")) == 3 * 7


class SlowDetector(StreamingDetector):
    """A detector slower than real time (each clip takes ``delay`` seconds more)."""

    delay = 0.8

    def step(self, frames, boxes=None, stream=0):
        time.sleep(self.delay)
        return super().step(frames, boxes, stream)


def test_live_drops_whole_clips_when_the_model_is_slow(setup, tmp_path):
    root, cfg = setup
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)
    writer = _writer(str(fifo), 4.0)
    reader = LiveReader(str(fifo))
    detector = SlowDetector(tiny_model(cfg), ClipSpec(num_frames=8, sampling_rate=4, short_side=64))
    options = RunOptions(video_id="cam", interval=0.5, progress=False, timeline=False)
    started = time.monotonic()
    try:
        runner = StreamRunner(detector, reader, FullFrameBoxes(), str(tmp_path / "out"), options, {},
                              list(range(1, 8)))
        summary = runner.run()
    finally:
        reader.close()
        writer.wait(timeout=30)
    elapsed = time.monotonic() - started
    records = read_jsonl(tmp_path / "out" / "predictions.jsonl")
    times = [r["time"] for r in records]
    assert summary.clips_dropped >= 1 and summary.clips == len(times) >= 3
    assert times == sorted(times) and len(times) + summary.clips_dropped == 8  # keyframes 0, 0.5, ..., 3.5
    # Never behind: when a clip runs, the stream is at most the clip's second half (0.4 s), one
    # step and one keyframe interval ahead of its keyframe. Without dropping, the lag would grow
    # by 0.3 s per keyframe (0.8 s steps for 0.5 s of video), past this bound by the sixth.
    assert max(r["lag_s"] for r in records) < 0.4 + SlowDetector.delay + 0.5, records
    assert elapsed < 4.0 + 3 * SlowDetector.delay + 4.0


def test_live_source_that_disappears(setup, tmp_path, capsys):
    """A loopback TCP stream that stops sending mid-way: a clear message, the outputs kept."""
    root, cfg = setup
    writer = _writer("tcp", 2.0, hang=30.0)
    try:
        port = int(writer.stdout.readline())
        assert run_cli(cfg, f"tcp://127.0.0.1:{port}", tmp_path / "out", "--read-timeout", "1") == 1
    finally:
        writer.kill()
        writer.wait()
    assert "stopped early: the source stopped delivering frames after 60" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["clips"] == 2 and len(read_boxes_csv(tmp_path / "out" / "predictions.csv")) == 2 * 7
    assert probe_frames(str(tmp_path / "out" / "annotated.mp4"))[0] == 60
    with av.open(str(tmp_path / "out" / "annotated.mp4")) as container:
        assert container.streams.video[0].average_rate == 30


@pytest.mark.parametrize("key", ["AVA.TEST_FORCE_FLIP", "TEST.FLIP_AVERAGE"])
def test_test_time_flip_options_are_said_to_be_ignored(setup, tmp_path, gen, key):
    """Evaluation's flip options do not act on streaming; a config that sets them is told so."""
    root, cfg = setup
    video = tmp_path / "clip.mp4"
    shapes_video(video, 30, seed=seed_of(gen))
    out = tmp_path / "out"
    assert run_cli(cfg, video, out, "--no-timeline", "--no-video", key, "True") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert any(w.startswith(f"{key} True is ignored here") for w in summary["warnings"]), summary["warnings"]
