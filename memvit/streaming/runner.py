# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The inference loop: one video source walked keyframe by keyframe, with memory carried clip to clip.

:class:`StreamRunner` is the work behind ``python -m memvit.infer`` (:mod:`memvit.infer` wires it:
arguments, config, model, box source, reader). The video is walked one keyframe per ``--interval``
seconds (or at the seconds a ``--boxes`` CSV lists, AVA's protocol); each keyframe's clip
(``DATA.NUM_FRAMES`` x ``DATA.SAMPLING_RATE`` frames of a 30 fps timeline, centred on it) goes
through a :class:`~memvit.StreamingDetector`, so each clip attends the memory of the earlier
ones. Written to ``DIR`` as it goes:

* ``predictions.csv``: AVA format (``video,sec,x1,y1,x2,y2,action_id,score``, written by the csv
  module, so a video id with commas, quotes or newlines is quoted), appended and flushed per keyframe;
* ``predictions.jsonl``: one JSON object per keyframe (time, boxes with their track ids, top-k labels
  with names), appended and flushed per keyframe;
* ``tracks.csv``: the track id of every box (``video,time,track,x1,y1,x2,y2,box_score``, the time and
  box written as in ``predictions.csv``), appended and flushed per keyframe;
* ``annotated.mp4``: the input with boxes coloured by track and their labels, at its own size and frame
  rate (fragmented, flushed as it goes);
* ``timeline.png``: per-class scores over the video; ``person_timeline.png``: the actions of each
  track over time; ``summary.json``: figures and warnings (written at the end, atomically:
  :mod:`memvit.files`).

Boxes are linked into person tracks keyframe to keyframe by their positions alone
(:class:`~memvit.streaming.tracking.BoxTracker`), whatever their source.

A camera (``--video 0``) or stream URL (``rtsp://``, ``tcp://``, ... or ``--live`` for a FIFO) is
read in a thread; when the model is slower than real time, whole clips are dropped (counted)
instead of falling behind. A local file is read as itself only: a playlist or concat list that
names other files or URLs is refused. Problems with the input end the run with a message naming
the file (:attr:`RunSummary.error`); what was written so far stays readable.
"""

from __future__ import annotations

import bisect
import csv
import json
import logging
import math
import os
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from ..cli import UserError
from ..data.ava_files import box_csv_row
from ..files import atomic_path, write_json
from .detector import ClipSpec, Detections, StreamingDetector
from .tracking import BoxTracker
from .video_io import AnnotatedVideoWriter, FileReader, Frame, LiveReader, Timeline, VideoError

if TYPE_CHECKING:
    from .drawing import FrameLabels

logger = logging.getLogger(__name__)

CSV_NAME, JSON_NAME, VIDEO_NAME = "predictions.csv", "predictions.jsonl", "annotated.mp4"
TIMELINE_NAME, SUMMARY_NAME = "timeline.png", "summary.json"
TRACKS_NAME, PERSON_TIMELINE_NAME = "tracks.csv", "person_timeline.png"
TRACKS_HEADER = ("video", "time", "track", "x1", "y1", "x2", "y2", "box_score")
PERSON_LANES, PERSON_THRESHOLD = 3, 0.5  # person timeline: best labels per keyframe, and the score they need


class InferenceError(UserError, RuntimeError):
    """Inference could not start (bad arguments, config, checkpoint, video or boxes)."""


@dataclass(frozen=True)
class RunOptions:
    """How a video is walked and what is written."""

    video_id: str
    interval: float = 1.0  # seconds between keyframes (without a boxes CSV)
    start: float = 0.0  # first keyframe (seconds)
    time_offset: float = 0.0  # added to times in the CSV/JSON (and subtracted from a boxes CSV's seconds)
    top_k: int = 5  # labels per box in the JSON
    draw_top_k: int = 3  # labels per box drawn on the video
    annotate: bool = True
    timeline: bool = True
    track: bool = True  # link boxes into person tracks (track ids, person timeline)
    progress: bool = True
    max_seconds: float | None = None  # stop after this much video (live sources)

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise InferenceError(f"--interval must be > 0 seconds; got {self.interval}")


@dataclass
class RunSummary:
    """What a run did: written to ``summary.json`` and printed at the end."""

    video_id: str
    source: str
    live: bool
    boxes: str
    clips: int = 0
    clips_dropped: int = 0
    frames_read: int = 0
    frames_dropped: int = 0
    frames_written: int = 0
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    model_seconds: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    realtime_factor: float | None = None  # seconds of video per second of wall time
    model_realtime_factor: float | None = None  # ... per second of model steps alone
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    stopped: str | None = None  # where the run stopped as asked (--max-seconds), before the video's end
    tracks: int | None = None  # person tracks started (None: tracking off)
    outputs: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        tracks = "" if self.tracks is None else f", {self.tracks} person tracks"
        out = [f"{self.video_id}: {self.clips} clips over {self.video_seconds:.1f} s of video in "
               f"{self.wall_seconds:.1f} s ({self.boxes} boxes{tracks})"]
        if self.latency_ms:
            lat = self.latency_ms
            out.append(f"latency per clip: mean {lat['mean']:.0f} ms, median {lat['p50']:.0f} ms, "
                       f"p90 {lat['p90']:.0f} ms, max {lat['max']:.0f} ms")
        if self.realtime_factor is not None:
            out.append(f"real-time factor: {self.realtime_factor:.2f} s of video per s of compute "
                       f"(model steps alone: {self.model_realtime_factor:.2f})")
        if self.live:
            out.append(f"live: {self.clips_dropped} clips dropped to keep up, {self.frames_dropped} frames "
                       "dropped by the reader")
        if self.stopped:
            out.append(self.stopped)
        out += [f"warning: {w}" for w in self.warnings]
        if self.error:
            out.append(f"stopped early: {self.error}")
        out += [f"wrote {path}" for path in self.outputs.values()]
        return out


# ---------------------------------------------------------------------------------------------- outputs
class PredictionWriter:
    """CSV and JSON Lines appended and flushed per keyframe, so an interrupted run leaves readable files.

    These two grow as the run goes (not atomic: a reader sees every keyframe done so far). Rows go
    through the csv module and records through json, so any video id (commas, quotes, newlines) round-trips.
    """

    def __init__(self, out_dir: str, video_id: str, names: dict[int, str], class_ids: Sequence[int],
                 top_k: int, tracks: bool = False) -> None:
        self.video_id, self.names, self.top_k = video_id, names, top_k
        self.class_ids = list(class_ids)  # 1-based AVA ids written / ranked
        self.csv_path = os.path.join(out_dir, CSV_NAME)
        self.json_path = os.path.join(out_dir, JSON_NAME)
        # streamed: one row per keyframe, flushed as it comes, so a long run's predictions are on disk as it goes
        self._csv: TextIO = open(self.csv_path, "w", encoding="utf-8", newline="")  # streamed: closed in close()
        self._rows = csv.writer(self._csv, lineterminator="\n")
        self._json: TextIO = open(self.json_path, "w", encoding="utf-8")  # streamed: as the CSV
        self.tracks_path: str | None = None
        self._tracks: TextIO | None = None
        if tracks:
            self.tracks_path = os.path.join(out_dir, TRACKS_NAME)
            self._tracks = open(self.tracks_path, "w", encoding="utf-8", newline="")  # streamed: as the CSV
            self._track_rows = csv.writer(self._tracks, lineterminator="\n")
            self._track_rows.writerow(TRACKS_HEADER)
        self.times: list[float] = []
        self.peaks: list[np.ndarray] = []  # per keyframe: the best score of each class over its boxes
        # per track: (keyframe index, its best labels scoring >= PERSON_THRESHOLD) at each keyframe it is seen
        self.people: dict[int, list[tuple[int, list[tuple[str, float]]]]] = {}

    def labels(self, detections: Detections, k: int) -> list[list[tuple[int, float]]]:
        """Per box, the ``k`` best ``(AVA id, score)`` among the ranked classes."""
        ranked = detections.top_k(k, [c - 1 for c in self.class_ids])
        return [[(index + 1, score) for index, score in box] for box in ranked]

    def name(self, cid: int) -> str:
        return self.names.get(cid, f"class {cid}")

    def add(self, time_s: float, detections: Detections, box_scores: np.ndarray, extra: dict[str, Any],
            tracks: Sequence[int] | None = None) -> None:
        """One keyframe's rows and record; ``tracks``: the track id of each box (None: tracking off)."""
        columns = np.asarray(self.class_ids) - 1
        for box, row in zip(detections.boxes, detections.scores):  # AVA rows; the time as format_timestamp writes it
            self._rows.writerows(box_csv_row(self.video_id, time_s, box, cid, float(row[c]))
                                 for cid, c in zip(self.class_ids, columns))
        ranked = self.labels(detections, max(self.top_k, PERSON_LANES))
        boxes = [{"box": [round(float(v), 4) for v in box], "box_score": round(float(bs), 4),
                  "labels": [{"id": cid, "name": self.name(cid), "score": round(score, 6)}
                             for cid, score in labels[:self.top_k]]}
                 for box, bs, labels in zip(detections.boxes, box_scores, ranked)]
        if tracks is not None:
            for entry, track in zip(boxes, tracks):
                entry["track"] = int(track)
            for box, bs, track, labels in zip(detections.boxes, box_scores, tracks, ranked):
                video, sec, *coords = box_csv_row(self.video_id, time_s, box, None, None)[:6]  # as predictions.csv
                self._track_rows.writerow([video, sec, int(track), *coords, f"{float(bs):.4f}"])
                self.people.setdefault(int(track), []).append(
                    (len(self.times), [(self.name(cid), s) for cid, s in labels[:PERSON_LANES]
                                       if s >= PERSON_THRESHOLD]))
            self._tracks.flush()
        record = {"video": self.video_id, "time": round(time_s, 6), "detections": boxes, **extra}
        self._json.write(json.dumps(record) + "\n")
        self._csv.flush()
        self._json.flush()
        self.times.append(time_s)
        peak = detections.scores.max(axis=0) if len(detections) else np.zeros(detections.scores.shape[1])
        self.peaks.append(peak[columns])

    def close(self) -> None:
        self._csv.close()
        self._json.close()
        if self._tracks is not None:
            self._tracks.close()


# ---------------------------------------------------------------------------------------------- the walk
class _Schedule:
    """Keyframe times: a fixed list (a boxes CSV) or ``start + k * interval`` without end."""

    def __init__(self, fixed: Sequence[float] | None, start: float, interval: float) -> None:
        self.fixed = sorted(fixed) if fixed is not None else None
        self.start, self.interval = start, interval

    def time(self, k: int) -> float | None:
        if self.fixed is not None:
            return self.fixed[k] if k < len(self.fixed) else None
        return self.start + k * self.interval

    def nearest(self, t: float) -> int:
        """Index of the keyframe nearest to time ``t``."""
        if self.fixed is None:
            return max(0, round((t - self.start) / self.interval))
        i = bisect.bisect_left(self.fixed, t)
        if i == len(self.fixed) or (i > 0 and t - self.fixed[i - 1] <= self.fixed[i] - t):
            i -= 1
        return max(i, 0)

    def __len__(self) -> int:
        return len(self.fixed) if self.fixed is not None else 0


@dataclass
class _Shown:
    boxes: np.ndarray
    labels: list[list[tuple[str, float]]]
    tracks: list[int] | None
    header: str
    plan: FrameLabels | None = None  # where its labels go, decided at the first frame drawn


class StreamRunner:
    """Walks one source keyframe by keyframe through a detector and writes the outputs.

    ``detector`` needs ``step(frames, boxes) -> Detections`` and a ``clip_spec``; ``boxes`` is a
    box source (``boxes(time, image)`` and ``keyframes``). Use :meth:`run`.
    """

    def __init__(self, detector: StreamingDetector, reader: FileReader | LiveReader, box_source: Any, out_dir: str,
                 options: RunOptions, names: dict[int, str], class_ids: Sequence[int]) -> None:
        self.detector, self.reader, self.box_source = detector, reader, box_source
        self.spec: ClipSpec = detector.clip_spec
        self.options, self.names, self.out_dir = options, names, out_dir
        self.live = reader.live
        info = reader.info
        self.summary = RunSummary(options.video_id, info.source, self.live, box_source.name)
        self.timeline = Timeline(self.spec.fps, info.tick)
        self.nominal = 1 / info.rate if info.rate else None  # exact, as the frame times
        fixed = None
        if box_source.keyframes is not None:
            fixed = [t for t in box_source.keyframes if t >= options.start]
        self.schedule = _Schedule(fixed, options.start, options.interval)
        self.next_k = 0  # the next keyframe to decide (run or drop)
        self.shown: dict[int, _Shown] = {}
        self.pending: deque[Frame] = deque()  # frames waiting for their keyframe's detections
        self.latencies: list[float] = []
        try:
            os.makedirs(out_dir, exist_ok=True)
            self.predictions = PredictionWriter(out_dir, options.video_id, names, class_ids, options.top_k,
                                                tracks=options.track)
        except OSError as error:
            raise InferenceError(f"--out {out_dir}: cannot write there ({error.strerror or error})") from None
        self.tracker = BoxTracker() if options.track else None
        self.video: AnnotatedVideoWriter | None = None
        if options.annotate:
            try:
                self.video = AnnotatedVideoWriter(os.path.join(out_dir, VIDEO_NAME), info.width, info.height,
                                                  info.rate)
            except VideoError as error:
                self.predictions.close()
                raise InferenceError(f"cannot write the annotated video in {out_dir}: {error} "
                                     "(--no-video runs without it)") from None
        self.bar = None
        self._stopped = False  # by --max-seconds

    # -------------------------------------------------------------- keyframes
    def _center(self, t: float) -> int:
        return int(round(t * self.spec.fps))

    def _clip_ready(self, t: float) -> bool:
        if self.timeline.ended:
            return True
        last = self.spec.frame_indices(self._center(t))[-1]
        return self.timeline.known() > last

    def _past_end(self, t: float) -> bool:
        return self.timeline.ended and (self.timeline.latest is None or t > self.timeline.latest + 1e-6)

    def _run_keyframe(self, k: int, t: float) -> None:
        n = self.timeline.length() if self.timeline.ended else None
        indices = self.spec.frame_indices(self._center(t), n)
        frames = np.stack([self.timeline.frame(i) for i in indices])
        keyframe = self.timeline.frame(min(self._center(t), n - 1) if n else self._center(t))
        boxes, box_scores = self.box_source.boxes(t, keyframe)
        lag = (self.timeline.latest or t) - t  # seconds of the source already received past the keyframe
        started = time.perf_counter()
        detections = self.detector.step(frames, boxes)
        latency = time.perf_counter() - started
        self.latencies.append(latency)
        t_out = t + self.options.time_offset
        tracks = None if self.tracker is None else [int(i) for i in self.tracker.update(detections.boxes, t)]
        self.predictions.add(t_out, detections, box_scores,
                             {"latency_ms": round(latency * 1000, 2), "lag_s": round(lag, 3)}, tracks)
        if self.video is not None:
            draw = self.predictions.labels(detections, self.options.draw_top_k)
            self.shown[k] = _Shown(detections.boxes, [[(self.predictions.name(cid), s) for cid, s in row]
                                                      for row in draw], tracks, f"{t_out:.1f}s")
        self.summary.clips += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"t={t_out:.1f}s {latency * 1000:.0f} ms/clip", refresh=False)
            self.bar.update(1)

    def _runnable(self, t: float | None) -> bool:
        """Whether keyframe time ``t`` can run now: scheduled, within the video and its clip complete."""
        limit = self.options.max_seconds
        return (t is not None and not self._past_end(t) and self._clip_ready(t)
                and (limit is None or t <= self.options.start + limit))

    def _decide(self, final: bool) -> None:
        """Run every keyframe whose clip is complete (live: only the newest, the others dropped)."""
        while True:
            t = self.schedule.time(self.next_k)
            if t is not None:  # frames before the next clip are no longer needed (long gaps between keyframes)
                self.timeline.trim(self.spec.frame_indices(self._center(t))[0])
            if not self._runnable(t):
                return
            if self.live and not final:
                newest = self.next_k
                while self._runnable(self.schedule.time(newest + 1)):
                    newest += 1
                self.summary.clips_dropped += newest - self.next_k
                self.next_k = newest
                t = self.schedule.time(newest)
            self._run_keyframe(self.next_k, t)
            self.next_k += 1

    # -------------------------------------------------------------- annotated frames
    def _flush_video(self, final: bool) -> None:
        """Write the frames whose keyframe is decided, each with the detections of the keyframe
        nearest to it (within half an interval)."""
        if self.video is None:
            return
        hold = self.options.interval / 2 + 1e-6
        while self.pending:
            frame = self.pending[0]
            k = self.schedule.nearest(frame.time)
            t_k = self.schedule.time(k)
            near = t_k is not None and abs(frame.time - t_k) <= hold
            if not final and k >= self.next_k and near:
                return  # its keyframe's detections are not known yet
            self.pending.popleft()
            shown = self.shown.get(k)
            image = frame.image
            if shown is not None and near:
                from .drawing import draw_labels, plan_labels

                if shown.plan is None or shown.plan.size != image.shape[:2]:  # labels laid out once per keyframe
                    shown.plan = plan_labels(*image.shape[:2], shown.boxes, shown.labels, tracks=shown.tracks,
                                             header=shown.header)
                image = draw_labels(image, shown.plan)
            self.video.write(image, frame.time)
            self.summary.frames_written += 1
            for old in [i for i in self.shown if i < k - 1]:
                del self.shown[old]

    # -------------------------------------------------------------- the run
    def run(self) -> RunSummary:
        """Process the whole source; outputs are closed and the summary written even on errors."""
        from tqdm import tqdm

        started = time.perf_counter()
        total = len(self.schedule) or None
        if total is None and not self.live and self.reader.info.duration:
            total = max(1, math.floor((self.reader.info.duration - self.options.start) / self.options.interval) + 1)
        self.bar = tqdm(total=total, unit="clip", desc=self.options.video_id, disable=not self.options.progress,
                        leave=False, dynamic_ncols=True)
        failure = None
        try:
            for chunk in self.reader.chunks():
                for frame in chunk:
                    self.timeline.push(frame)
                    if self.video is not None:
                        self.pending.append(frame)
                self._decide(final=False)
                self._flush_video(final=False)
                if self._stop_early():
                    break
            self.timeline.finish(self.nominal)
            self._decide(final=True)
            self._flush_video(final=True)
        except KeyboardInterrupt:
            failure = "interrupted (Ctrl-C)"
        except Exception as error:
            failure = f"{type(error).__name__}: {error}"
            raise
        finally:
            self.bar.close()
            self._finish(started, failure)
        return self.summary

    def _stop_early(self) -> bool:
        limit = self.options.max_seconds
        latest = self.timeline.latest
        self._stopped = limit is not None and latest is not None and \
            latest > self.options.start + limit + self.spec.span_seconds
        return self._stopped

    def _finish(self, started: float, failure: str | None) -> None:
        s = self.summary
        self.predictions.close()
        if self.video is not None:
            self.video.close()
            s.outputs["video"] = self.video.path
        s.outputs["csv"], s.outputs["json"] = self.predictions.csv_path, self.predictions.json_path
        if self.tracker is not None:
            s.tracks = self.tracker.started
            s.outputs["tracks"] = self.predictions.tracks_path
        if self.options.timeline:
            from .drawing import plot_person_timeline, plot_timeline

            path = os.path.join(self.out_dir, TIMELINE_NAME)
            names = [self.names.get(cid, f"class {cid}") for cid in self.predictions.class_ids]
            peaks = np.stack(self.predictions.peaks) if self.predictions.peaks else np.zeros((0, len(names)))
            with atomic_path(path) as tmp:
                plot_timeline(tmp, self.predictions.times, peaks, names,
                              title=f"{self.options.video_id}: best score per class over time")
            s.outputs["timeline"] = path
            if self.tracker is not None:
                path = os.path.join(self.out_dir, PERSON_TIMELINE_NAME)
                plot_person_timeline(path, self.predictions.times, self.predictions.people,
                                     threshold=PERSON_THRESHOLD, lanes=PERSON_LANES,
                                     title=f"{self.options.video_id}: actions per person track")
                s.outputs["person_timeline"] = path
        reader = self.reader
        s.frames_read, s.frames_dropped = reader.frames_read, reader.dropped_frames
        s.error = reader.error or failure
        n = self.timeline.length() if self.timeline.ended else self.timeline.known()
        s.video_seconds = n / self.spec.fps
        s.wall_seconds = time.perf_counter() - started
        s.model_seconds = sum(self.latencies)
        if self.latencies:
            ms = sorted(x * 1000 for x in self.latencies)
            s.latency_ms = {"mean": statistics.fmean(ms), "p50": ms[len(ms) // 2],
                            "p90": ms[min(len(ms) - 1, math.ceil(0.9 * len(ms)) - 1)], "max": ms[-1]}
            s.realtime_factor = s.video_seconds / s.wall_seconds if s.wall_seconds > 0 else None
            s.model_realtime_factor = s.video_seconds / s.model_seconds if s.model_seconds > 0 else None
        variable = reader.clock.variable_rate()
        if variable:
            s.warnings.append(f"{variable}: clips are sampled by time stamps on a {self.spec.fps} fps timeline; "
                              "the annotated video keeps the source's frame times")
        if self.timeline.ended and 0 < s.video_seconds < self.spec.span_seconds:
            s.warnings.append(f"the video ({s.video_seconds:.2f} s) is shorter than one clip "
                              f"({self.spec.span_seconds:.2f} s): its first and last frames are repeated to fill "
                              "the clip, as AVA's loaders do at a video's ends")
        if self._stopped:  # the reader was left before the end on purpose: not a short file
            limit = self.options.max_seconds
            s.stopped = (f"stopped at {self.options.start + limit:g} s of video as asked (--max-seconds {limit:g}); "
                         "later keyframes were not run")
        shortfall = None if self._stopped else getattr(reader, "shortfall", lambda: None)()
        if shortfall and s.error is None:
            s.error = shortfall
        if self.live and reader.error is None and failure is None and not self._stopped:
            s.warnings.append(f"the live source ended after {s.video_seconds:.1f} s")
        if s.frames_read == 0:
            s.warnings.append("no frame could be decoded")
        skipped = len(self.schedule) - self.next_k if self.schedule.fixed is not None else 0
        if skipped > 0 and reader.error is None and failure is None and not self._stopped:
            s.warnings.append(f"{skipped} keyframe(s) of the boxes CSV lie after the video's end")
        s.outputs["summary"] = os.path.join(self.out_dir, SUMMARY_NAME)
        write_json(s.outputs["summary"], asdict(s))


# ---------------------------------------------------------------------------------------------- labels
def label_names(path: str | None, num_classes: int) -> tuple[dict[int, str], list[int]]:
    """AVA id -> name from a label map, and the ids to rank and write (the map's, or all)."""
    from ..data.ava_files import AvaFormatError, read_label_map

    if path is None:
        return {}, list(range(1, num_classes + 1))
    try:
        label_map = read_label_map(path)
    except (AvaFormatError, OSError) as error:
        raise InferenceError(f"label map: {error}") from None
    ids = [i for i in label_map.ids if i <= num_classes]
    if not ids:
        raise InferenceError(f"label map {path}: no class id within the model's {num_classes} classes")
    return dict(label_map.names), ids
