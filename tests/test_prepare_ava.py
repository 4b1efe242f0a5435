# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""prepare_ava against independent oracles: tiny PyAV-written videos whose frames carry their own index.

Every source frame k shows k as an 8-bit pattern of black/white blocks; we wrote frame k at a known time, so the
oracle for output frame i is "the last source frame whose (true) time is <= start + i/fps", computed here from
the times we chose, not from anything the tool reports.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media import LATIN1_TITLE, PLACEHOLDER, RecordingServer, crafted_references, decode, on_screen, real_clips

from memvit.data import prepare_ava as pa
from memvit.data.ava_files import read_frame_list
from memvit.data.extract_frames import ExtractionParams, select_frames
from memvit.data.prepare_ava import prepare_ava

W, H = 64, 48
COLS, ROWS = 4, 2  # 8 blocks of 16x24 pixels: one bit of the frame index each
LO, HI = 30, 225
HEADER = "original_vido_id video_id frame_id path labels"


def pattern(k: int) -> np.ndarray:
    img = np.empty((H, W, 3), np.uint8)
    bw, bh = W // COLS, H // ROWS
    for bit in range(COLS * ROWS):
        r, c = divmod(bit, COLS)
        img[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw] = HI if (k >> bit) & 1 else LO
    return img


def read_index(path: Path) -> int:
    """The source frame index shown by a JPEG: block means (inner part, away from edge ringing) vs mid-gray."""
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert gray.shape == (H, W)
    bw, bh = W // COLS, H // ROWS
    k = 0
    for bit in range(COLS * ROWS):
        r, c = divmod(bit, COLS)
        block = gray[r * bh + 4:(r + 1) * bh - 4, c * bw + 4:(c + 1) * bw - 4]
        mean = float(block.mean())
        assert min(abs(mean - LO), abs(mean - HI)) < 25, f"{path.name}: block {bit} mean {mean} is neither level"
        k |= (mean > (LO + HI) / 2) << bit
    return k


def write_video(path: Path, times: list[Fraction], time_base: Fraction, options: dict[str, str] | None = None,
                title: str | None = None) -> None:
    """H.264 video whose frame k has presentation time times[k] (rounded by the container's own time base)."""
    with av.open(str(path), "w") as out:
        if title is not None:
            out.metadata["title"] = title
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.options = {"preset": "ultrafast", "crf": "12", **(options or {})}
        for k, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(pattern(k), format="rgb24")
            frame.pts, frame.time_base = round(t / time_base), time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def cfr(rate: int, seconds: int) -> list[Fraction]:
    return [Fraction(k, rate) for k in range(rate * seconds)]


def expected_indices(times: list[Fraction], start: Fraction, fps: Fraction, count: int) -> list[int]:
    """The oracle: for each output time, the last source frame at or before it."""
    return [max(k for k, t in enumerate(times) if t <= start + Fraction(i) / fps) for i in range(count)]


def shown(folder: Path, video_id: str) -> list[int]:
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"{video_id}_{i:06d}.jpg" for i in range(1, len(files) + 1)]
    return [read_index(f) for f in files]


def run(videos: Path, out: Path, **kw) -> pa.Summary:
    kw.setdefault("params", ExtractionParams(start=1, duration=2, fps=30))
    return prepare_ava(videos, out, progress=False, **kw)


@pytest.fixture
def rng(gen) -> random.Random:
    return random.Random(gen.initial_seed())


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Three 3-second sources: 25 fps MP4, 30 fps Matroska (millisecond timestamps, B-frames, a keyframe every
    10 frames so the seek lands mid-video) and a variable-rate MP4."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "vid25.mp4", cfr(25, 3), Fraction(1, 25))
    write_video(root / "-vid30.mkv", cfr(30, 3), Fraction(1, 30), {"preset": "veryfast", "g": "10", "bf": "2"})
    write_video(root / "vfr.mp4", VFR_TIMES, Fraction(1, 1000))
    return root


def _vfr_times() -> list[Fraction]:
    # Gaps of 10..70 ms on a millisecond grid: output frames at 1/30 s multiples both repeat and skip frames. A
    # millisecond time is never within the MP4 tick (1/16000 s) above an output time (they differ by >= 1/3000 s),
    # so the tool's one-tick tolerance does not change the oracle's answer.
    r = random.Random(1234)
    times, t = [], Fraction(0)
    while t < 3:
        times.append(t)
        t += Fraction(r.randint(10, 70), 1000)
    return times


VFR_TIMES = _vfr_times()


# ------------------------------------------------------------------------------------------------ the rule


def test_select_frames_is_last_frame_at_or_before_each_time(rng):
    for _ in range(100):
        n = rng.randint(1, 30)
        times = sorted({Fraction(rng.randint(0, 400), 100) for _ in range(n)})
        durations = [Fraction(rng.randint(1, 9), 100) for _ in times]
        start, fps = Fraction(rng.randint(0, 300), 100), Fraction(rng.choice([10, 25, 30, 60]))
        count, tol = rng.randint(0, 80), Fraction(rng.choice([0, 1]), 1000)
        end = times[-1] + durations[-1]
        want = []
        for i in range(count):
            t = start + Fraction(i) / fps
            if t >= end:
                break
            before = [k for k, tk in enumerate(times) if tk <= t + tol]
            want.append((i, before[-1] if before else 0))
        got = list(select_frames(((t, d, k) for k, (t, d) in enumerate(zip(times, durations))), start, fps,
                                 count, tol))
        assert got == want


def test_select_frames_stops_reading_once_the_last_frame_is_known():
    consumed = []

    def frames():
        for k in range(1000):
            consumed.append(k)
            yield Fraction(k, 30), Fraction(1, 30), k

    assert [k for _, k in select_frames(frames(), Fraction(1), Fraction(30), 10)] == list(range(30, 40))
    assert len(consumed) <= 42


# ----------------------------------------------------------------------------------- extraction vs the oracle


@pytest.mark.parametrize(("video_id", "times"), [("vid25", cfr(25, 3)), ("-vid30", cfr(30, 3)), ("vfr", VFR_TIMES)])
def test_output_frame_i_shows_the_source_frame_at_start_plus_i_over_fps(videos, tmp_path, video_id, times):
    summary = run(videos, tmp_path, video_ids=[video_id])
    assert [(r.video_id, r.status, r.frames) for r in summary.results] == [(video_id, "done", 60)]
    got = shown(tmp_path / "frames" / video_id, video_id)
    assert got == expected_indices(times, Fraction(1), Fraction(30), 60)
    if video_id == "-vid30":
        assert got == list(range(30, 90))  # same rate: one-to-one, despite Matroska's rounded 67 ms timestamps


def test_a_seek_past_start_falls_back_to_decoding_from_the_beginning(videos, tmp_path, monkeypatch, caplog):
    """Some files seek badly (the first frame after the seek is later than ``start``): decode from 0 instead."""
    real_open = av.open

    class Overshooting:
        def __init__(self, *args, **kwargs):
            self._container = real_open(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._container, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._container.close()

        def seek(self, offset, **kwargs):  # land half a second later than asked
            self._container.seek(offset + round(Fraction(1, 2) / self._container.streams.video[0].time_base), **kwargs)

    monkeypatch.setattr(av, "open", Overshooting)
    with caplog.at_level(logging.DEBUG, logger="memvit.data.extract_frames"):  # where extraction logs
        run(videos, tmp_path, video_ids=["-vid30"])
    assert "seek overshot start" in caplog.text
    assert shown(tmp_path / "frames" / "-vid30", "-vid30") == list(range(30, 90))


def test_other_output_rate_and_fractional_start(videos, tmp_path):
    params = ExtractionParams(start=Fraction(3, 4), duration=Fraction(1, 2), fps=Fraction(50))
    summary = run(videos, tmp_path, video_ids=["vid25"], params=params)
    assert summary.results[0].frames == 25
    assert shown(tmp_path / "frames" / "vid25", "vid25") == expected_indices(cfr(25, 3), params.start, params.fps, 25)


def test_video_ending_early_writes_what_exists_and_warns(videos, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        summary = prepare_ava(videos, tmp_path, video_ids=["vid25"], params=ExtractionParams(1, 4, 30), progress=True)
    result = summary.results[0]
    assert (result.status, result.frames, result.expected) == ("done", 60, 120)  # times 1.0 .. 2.967 < 3.0 s
    assert shown(tmp_path / "frames" / "vid25", "vid25") == expected_indices(cfr(25, 3), Fraction(1), Fraction(30), 60)
    assert "wrote 60 of 120 frames" in caplog.text
    assert "short: vid25 has 60 of 120 frames" in summary.format()
    # Short but complete: a rerun skips it.
    assert run(videos, tmp_path, video_ids=["vid25"], params=ExtractionParams(1, 4, 30)).results[0].status == "skipped"


def test_video_shorter_than_start_and_corrupt_file_fail_without_stopping_others(videos, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "vid25.mp4").symlink_to(videos / "vid25.mp4")
    (src / "junk.mp4").write_bytes(random.Random(0).randbytes(5000))
    summary = run(src, tmp_path / "out", params=ExtractionParams(start=1, duration=2, fps=30))
    assert {r.video_id: r.status for r in summary.results} == {"vid25": "done", "junk": "failed"}
    assert summary.failed["junk"].startswith(f"cannot open {src / 'junk.mp4'}: ") and "Invalid data" in \
        summary.failed["junk"]
    assert not (tmp_path / "out" / "frames" / "junk").exists()
    assert not (tmp_path / "out" / "frames" / ".partial").exists()

    late = run(src, tmp_path / "late", video_ids=["vid25"], params=ExtractionParams(start=5, duration=1, fps=30))
    assert late.failed == {"vid25": "video too short: last frame at 2.960 s, before --start 5 s"}
    assert not (tmp_path / "late" / "frames" / "vid25").exists()


# ----------------------------------------------------------------------------------------------- frame lists


def read_list(path: Path) -> list[str]:
    return path.read_text().splitlines()


def rows(video_id: str, index: int, frames: int) -> list[str]:
    return [f'{video_id} {index} {j} {video_id}/{video_id}_{j + 1:06d}.jpg ""' for j in range(frames)]


def test_frame_lists_follow_the_annotation_files(videos, tmp_path, caplog):
    ann = tmp_path / "out" / "annotations"
    ann.mkdir(parents=True)
    (ann / "ava_train_v2.2.csv").write_text("vid25,0902,0.1,0.2,0.3,0.4,12,0\nvid25,0903,0.1,0.2,0.3,0.4,80,1\n")
    (ann / "ava_val_v2.2.csv").write_text("vfr,0902,0.1,0.2,0.3,0.4,12,0\n")
    params = ExtractionParams(start=1, duration=Fraction(1, 3), fps=30)  # 10 frames each
    with caplog.at_level(logging.WARNING):
        summary = run(videos, tmp_path / "out", params=params)
    assert summary.lists == {"train": 1, "val": 1, "test": 1}
    lists = tmp_path / "out" / "frame_lists"
    assert read_list(lists / "train.csv") == [HEADER, *rows("vid25", 0, 10)]
    assert read_list(lists / "val.csv") == [HEADER, *rows("vfr", 0, 10)]
    assert read_list(lists / "test.csv") == [HEADER, *rows("-vid30", 0, 10)]
    assert "in neither annotation file" in caplog.text and "-vid30" in caplog.text
    for line in read_list(lists / "train.csv")[1:]:
        assert len(line.split(" ")) == 5 and (tmp_path / "out" / "frames" / line.split(" ")[3]).is_file()


def test_without_annotations_everything_goes_to_train_with_a_warning(videos, tmp_path, caplog):
    params = ExtractionParams(start=1, duration=Fraction(1, 10), fps=30)  # 3 frames each
    with caplog.at_level(logging.WARNING):
        summary = run(videos, tmp_path, params=params)
    assert summary.lists == {"train": 3, "val": 0}
    ids = sorted(["vid25", "-vid30", "vfr"])
    want = [HEADER] + [row for index, vid in enumerate(ids) for row in rows(vid, index, 3)]
    assert read_list(tmp_path / "frame_lists" / "train.csv") == want
    assert read_list(tmp_path / "frame_lists" / "val.csv") == [HEADER]
    assert not (tmp_path / "frame_lists" / "test.csv").exists()
    assert "all 3 videos are listed in train.csv" in caplog.text and "--annotations" in caplog.text


# -------------------------------------------------------------------------------------------------- resuming


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_rerun_skips_complete_videos_and_finishes_killed_ones(videos, tmp_path):
    params = ExtractionParams(start=1, duration=Fraction(1, 2), fps=30)
    frames = tmp_path / "frames"
    first = run(videos, tmp_path, params=params)
    assert sorted(r.status for r in first.results) == ["done"] * 3
    marker = json.loads((frames / ".complete" / "vid25.json").read_text())
    assert (marker["frames"], marker["params"]["fps"], marker["source"]) == (15, "30", "vid25.mp4")
    assert not list((frames / "vid25").glob(".*"))  # nothing but frames in a frame folder
    kept = mtimes(frames / "vid25")

    # A kill mid-way: vfr's marker never written and a half-written work folder; a work folder of a video whose
    # source is gone; vid30's frame folder deleted by hand (marker left behind).
    (frames / ".complete" / "vfr.json").unlink()
    (frames / ".partial" / "vfr").mkdir(parents=True)
    (frames / ".partial" / "vfr" / "vfr_000001.jpg").write_bytes(b"half")
    (frames / ".partial" / "gone").mkdir()
    for f in (frames / "-vid30").iterdir():
        f.unlink()
    (frames / "-vid30").rmdir()

    second = run(videos, tmp_path, params=params)
    assert {r.video_id: r.status for r in second.results} == {"vid25": "skipped", "-vid30": "done", "vfr": "done"}
    assert mtimes(frames / "vid25") == kept
    assert not (frames / ".partial").exists()  # stale work folders removed, the killed video redone
    assert shown(frames / "vfr", "vfr") == expected_indices(VFR_TIMES, Fraction(1), Fraction(30), 15)
    assert len(read_list(tmp_path / "frame_lists" / "train.csv")) == 1 + 3 * 15

    # Different parameters or a touched source: redone; an unrelated rerun: all skipped.
    third = run(videos, tmp_path, params=ExtractionParams(start=1, duration=Fraction(1, 2), fps=30, quality=80),
                video_ids=["vid25"])
    assert third.results[0].status == "done" and mtimes(frames / "vid25") != kept
    os.utime(videos / "vfr.mp4")
    fourth = run(videos, tmp_path, params=params)
    assert {r.video_id: r.status for r in fourth.results} == {"vid25": "done", "-vid30": "skipped", "vfr": "done"}


def test_lists_leave_out_folders_extracted_with_other_timing(videos, tmp_path, caplog):
    run(videos, tmp_path, params=ExtractionParams(1, Fraction(1, 10), 30), video_ids=["vid25"])
    with caplog.at_level(logging.WARNING):
        summary = run(videos, tmp_path, params=ExtractionParams(1, Fraction(1, 10), 25), video_ids=["vfr"])
    assert summary.lists["train"] == 1
    assert read_list(tmp_path / "frame_lists" / "train.csv") == [HEADER, *rows("vfr", 0, 3)]
    assert "1 complete videos were extracted with another start/duration/fps" in caplog.text


# ------------------------------------------------------------------------------------------------------ CLI


def test_worker_processes(videos, tmp_path, monkeypatch):
    """The pool path: results, warnings and progress come back from the workers. Forked workers here, as the fork
    server's import of torch takes seconds (the slow CLI test below runs the real start method)."""
    import multiprocessing as mp

    monkeypatch.setattr(pa, "_pool_context", lambda: mp.get_context("fork"))
    events = []
    update, finish = pa._Bars.update, pa._Bars.finish
    monkeypatch.setattr(pa._Bars, "update", lambda self, vid, done, total: (
        events.append((vid, done, total)), update(self, vid, done, total)))
    monkeypatch.setattr(pa._Bars, "finish", lambda self, result: (
        events.append((result.video_id, "finished")), finish(self, result)))
    summary = run(videos, tmp_path, workers=2, params=ExtractionParams(1, Fraction(1, 3), 30))
    assert sorted((r.video_id, r.status, r.frames) for r in summary.results) == [
        ("-vid30", "done", 10), ("vfr", "done", 10), ("vid25", "done", 10)]
    assert shown(tmp_path / "frames" / "-vid30", "-vid30") == list(range(30, 40))
    for vid in ("-vid30", "vfr", "vid25"):  # each video's last report reaches its bar before the video finishes
        mine = [event[1:] for event in events if event[0] == vid]
        assert mine[-2:] == [(10, 10), ("finished",)], (vid, mine)


def test_a_late_report_does_not_reopen_a_finished_bar():
    bars = pa._Bars(2, enabled=False)
    bars.update("a", 3, 10)
    bars.finish(pa.VideoResult("a", "done", expected=10))
    bars.update("a", 10, 10)
    assert bars._frames == {}
    bars.close()


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_cli_exit_code_and_summary(videos, tmp_path, workers):
    """The real entry point (``python -m``; with 2 workers, the fork server) with a corrupt file and a missing id."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("vid25.mp4", "-vid30.mkv", "vfr.mp4"):
        (src / name).symlink_to(videos / name)
    (src / "junk.webm").write_bytes(b"\x1a\x45\xdf\xa3 not really a webm")
    (src / "notes.txt").write_text("ignored")
    (tmp_path / "ids.txt").write_text("vid25.mp4\nnothere\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "memvit.data.prepare_ava", "--videos", str(src), "--out", str(out), "--start", "1",
           "--duration", "1/3", "--fps", "30", "--workers", str(workers), "--video-ids=-vid30,junk", "--video-ids-file",
           str(tmp_path / "ids.txt")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "done: 2 videos (20 frames" in proc.stdout
    assert "skipped (already complete): 0" in proc.stdout
    assert "failed: 2\n" in proc.stdout and f"  junk: cannot open {src / 'junk.webm'}: " in proc.stdout
    assert "  nothere: no video file in" in proc.stdout
    assert "junk: failed" in proc.stderr
    assert sorted(p.name for p in (out / "frames").iterdir() if not p.name.startswith(".")) == ["-vid30", "vid25"]
    assert shown(out / "frames" / "-vid30", "-vid30") == list(range(30, 40))
    assert shown(out / "frames" / "vid25", "vid25") == expected_indices(cfr(25, 3), Fraction(1), Fraction(30), 10)


def test_cli_rerun_in_process_returns_zero_and_reports_skips(videos, tmp_path, capsys):
    argv = ["--videos", str(videos), "--out", str(tmp_path), "--start", "1", "--duration", "0.1", "--no-progress",
            "--video-ids", "vid25,vfr"]
    assert pa.main(argv) == 0
    assert pa.main(argv) == 0
    out = capsys.readouterr().out
    assert "done: 0 videos" in out and "skipped (already complete): 2" in out and "failed: 0" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--videos", "{missing}"], "no such folder"),
    (["--videos", "{empty}"], "no videos in"),
    (["--fps", "0"], "must be > 0"),
    (["--fps", "fast"], "not a number"),
    (["--start", "-1"], "must be >= 0"),
    (["--quality", "101"], "--quality must be in 1..100"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--video-ids-file", "{empty}/a.txt"], "the video id selection is empty"),
    (["--annotations", "{missing}"], "--annotations: no such folder"),
])
def test_cli_rejects_bad_arguments(videos, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("")
    args = [a.format(missing=tmp_path / "missing", empty=tmp_path / "empty") for a in args]
    try:  # argparse's own checks exit through SystemExit; the rest are UserErrors (returned 2)
        code = pa.main(["--videos", str(videos), "--out", str(tmp_path / "out"), *args])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------- real-world files


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_metadata_that_is_not_utf8(tmp_path, suffix):
    """A Latin-1 title (old tools) once failed the video with PyAV's UnicodeDecodeError."""
    src = tmp_path / "src"
    src.mkdir()
    video = src / f"latin1{suffix}"
    write_video(video, cfr(25, 3), Fraction(1, 25), title=PLACEHOLDER.decode())
    video.write_bytes(video.read_bytes().replace(PLACEHOLDER, LATIN1_TITLE))  # same length: sizes stay right
    with pytest.raises(UnicodeDecodeError):  # the file really carries metadata that is not UTF-8
        av.open(str(video)).close()
    summary = run(src, tmp_path / "out")
    assert [(r.video_id, r.status, r.frames) for r in summary.results] == [("latin1", "done", 60)]
    assert shown(tmp_path / "out" / "frames" / "latin1", "latin1") == expected_indices(cfr(25, 3), Fraction(1),
                                                                                        Fraction(30), 60)


def test_a_local_file_is_read_as_itself_only(tmp_path):
    """Playlists and concat lists named like videos may not make FFmpeg read the files they name or
    contact the URLs they name: each fails naming the file, the others go on; no request reaches the server."""
    with RecordingServer() as server:
        files = crafted_references(tmp_path, server.url)
        crafted = {name: path for name, path in files.items() if path.suffix in pa.VIDEO_EXTENSIONS}
        assert len(crafted) == 4
        with av.open(str(files["concat-local-named.mp4"])) as container:  # FFmpeg alone reads what it names
            assert sum(1 for _ in container.decode(video=0)) == 45
        summary = run(tmp_path, tmp_path / "out", params=ExtractionParams(start=0, duration=1, fps=30))
    assert server.requests == []
    status = {r.video_id: r.status for r in summary.results}
    assert status == {"target": "done", **{Path(name).stem: "failed" for name in crafted}}
    for name, path in crafted.items():
        reason = summary.failed[Path(name).stem]
        assert reason.startswith(f"{path} is ") and "names other files or URLs to read" in reason, reason
        assert not (tmp_path / "out" / "frames" / Path(name).stem).exists()


def test_video_ids_with_commas_and_quotes_round_trip(videos, tmp_path):
    """Ids from file names with commas and quotes reach the frame lists (read back as PySlowFast reads them)
    and the markers intact, and a quoted id in an annotation CSV is one id; an id with a newline fails on
    one summary line."""
    src = tmp_path / "src"
    src.mkdir()
    odd = ['a,b"c"', "it's,fine"]
    for name in odd:
        (src / f"{name}.mp4").symlink_to(videos / "vid25.mp4")
    (src / "new\nline.mp4").symlink_to(videos / "vid25.mp4")
    ann = tmp_path / "ann"
    ann.mkdir()
    with open(ann / "ava_val_v2.2.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow([odd[0], "0902", 0.1, 0.2, 0.3, 0.4, 12, 0])
    (ann / "ava_train_v2.2.csv").write_text("")
    summary = run(src, tmp_path / "out", annotations_dir=ann, params=ExtractionParams(start=1, duration=1, fps=30))
    assert {r.video_id: r.status for r in summary.results} == {**dict.fromkeys(odd, "done"), "new\nline": "failed"}
    assert "  'new\\nline': video id contains whitespace" in summary.format()
    lists = tmp_path / "out" / "frame_lists"
    assert list(read_frame_list(lists / "val.csv")) == [odd[0]]
    assert list(read_frame_list(lists / "test.csv")) == [odd[1]]
    for name in odd:
        assert read_frame_list(lists / ("val.csv" if name == odd[0] else "test.csv"))[name][0] == \
            f"{name}/{name}_000001.jpg"
        marker = json.loads((tmp_path / "out" / "frames" / ".complete" / f"{name}.json").read_text())
        assert (marker["video_id"], marker["source"], marker["frames"]) == (name, f"{name}.mp4", 30)


@pytest.mark.parametrize("clip", real_clips())
def test_real_clips(tmp_path, clip):
    """Third-party clips (tests/data/README.md): each output frame is the frame an independent decode
    shows at that instant (one tick of the stream's time base of tolerance, the documented rule)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / clip.name).symlink_to(clip)
    times, frames = decode(clip)
    with av.open(str(clip)) as container:
        tick = float(container.streams.video[0].time_base)
    duration = Fraction(3, 2) if len(times) < 60 else Fraction(3)
    summary = run(src, tmp_path / "out", params=ExtractionParams(start=0, duration=duration, fps=30))
    count = int(duration * 30)
    assert [(r.status, r.frames) for r in summary.results] == [("done", count)]
    folder = tmp_path / "out" / "frames" / clip.stem
    for i in range(count):
        got = cv2.cvtColor(cv2.imread(str(folder / pa.frame_name(clip.stem, i))), cv2.COLOR_BGR2RGB)
        want = frames[on_screen(times, i / 30, tick)]
        assert got.shape == want.shape
        assert np.abs(got.astype(np.float32) - want).mean() < 3.0, i
