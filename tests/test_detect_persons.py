# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""python -m memvit.data.detect_persons on videos the tests write: the rows are the boxes a scripted
detector finds on the frame on screen at each whole second (decoded independently here), normalised
by that frame's size, and the AVA loader hands them to the model in input pixels; a killed run
resumes without redoing finished videos; foreign outputs and bad detector files are refused;
memvit.infer runs the same TorchScript detectors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Dict, List, Tuple  # noqa: UP035 (TorchScript reads these annotations)

import numpy as np
import pytest
import torch
from media import decode, on_screen, timeline_length, write_config, write_video

from memvit.data.ava_files import read_boxes_csv
from memvit.data.detect_persons import main
from memvit.streaming import person_boxes

pytestmark = pytest.mark.usefixtures("one_thread")
MIN_SCORE = 0.5
SIZE = (96, 160)  # height, width


class ContentDetector(torch.nn.Module):
    """Boxes that are a function of the image (its mean brightness and size), so the test knows which
    frame the detector got: a person that moves with the brightness, a non-person, a person below
    --min-score, a person partly outside the image, and a person thinner than the CSV's 3 decimals."""

    def one(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:  # noqa: UP006
        h, w = float(image.shape[1]), float(image.shape[2])
        m = float(image.mean())
        x = m * w / 2
        boxes = torch.tensor([[x, 0.25 * h, x + w / 2, 0.75 * h], [0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h],
                              [0.2 * w, 0.2 * h, 0.4 * w, 0.4 * h], [-0.1 * w, -0.2 * h, 0.3 * w, 0.4 * h],
                              [0.5 * w, 0.5 * h, 0.50001 * w, 0.6 * h]])
        return {"boxes": boxes, "labels": torch.tensor([1, 2, 1, 1, 1]),
                "scores": torch.tensor([0.6 + 0.3 * m, 0.99, 0.3, 0.55, 0.9])}


class TupleDetector(ContentDetector):
    """Returns ``(losses, detections)``, as TorchScript'ed torchvision detectors do."""

    def forward(self, images: List[torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[Dict[str, torch.Tensor]]]:  # noqa: UP006
        losses: Dict[str, torch.Tensor] = {}  # noqa: UP006
        return losses, [self.one(image) for image in images]


class ListDetector(ContentDetector):
    def forward(self, images: List[torch.Tensor]) -> List[Dict[str, torch.Tensor]]:  # noqa: UP006
        return [self.one(image) for image in images]


class TensorDetector(torch.nn.Module):
    """Not the detection interface: one tensor out."""

    def forward(self, images: List[torch.Tensor]) -> torch.Tensor:  # noqa: UP006
        return torch.stack([image.mean() for image in images])


def scripted(module: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, but how detectors ship
        torch.jit.script(module).save(str(path))
    return path


def loaded(path: Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path))


def grey_video(path: Path, times: list[float], rng: np.random.Generator) -> None:
    """Flat grey frames, each of 38 in a row its own level (so each gives its own boxes)."""
    levels = np.resize(rng.permutation(np.arange(16, 240, 6)), len(times))
    write_video(path, [np.full((*SIZE, 3), level, np.uint8) for level in levels], times)


def expected_rows(video: str, sec: int, image: np.ndarray, detector, csv: bool = True) -> list[tuple[list, list]]:
    """The spec, from the detector's own output on ``image``: persons scoring >= MIN_SCORE, clipped to the
    image, normalised by its size, best first; in a CSV (3 decimals) boxes empty there are left out."""
    h, w = image.shape[:2]
    out = detector([torch.from_numpy(image).permute(2, 0, 1).float() / 255])
    found = out[1][0] if isinstance(out, tuple) else out[0]
    rows = []
    for box, label, score in zip(found["boxes"].tolist(), found["labels"].tolist(), found["scores"].tolist()):
        if label != 1 or score < MIN_SCORE:
            continue
        norm = [min(max(v / s, 0.0), 1.0) for v, s in zip(box, (w, h, w, h))]
        if not csv or (round(norm[2], 3) > round(norm[0], 3) and round(norm[3], 3) > round(norm[1], 3)):
            rows.append((score, norm))
    return [([video, sec], norm + [score]) for score, norm in sorted(rows, key=lambda r: -r[0])]


def keyframes_of(path: Path, first: int = 0, last: int = 10**6) -> dict[int, np.ndarray]:
    """Whole seconds the video shows and the frame on screen at each (an independent decode)."""
    times, frames = decode(path)
    n = timeline_length(times)
    return {s: frames[on_screen(times, s)] for s in range(first, last + 1) if s * 30 < n}


def check_csv(path: Path, videos: dict[str, Path], detector, **span) -> None:
    got = [(row.video, row.sec, [*row.box, row.extra]) for row in read_boxes_csv(path)]
    want = []
    for video, source in videos.items():
        for sec, image in keyframes_of(source, **span).items():
            want += [(video, sec, values) for (_, _), values in expected_rows(video, sec, image, detector)]
    assert [g[:2] for g in got] == [w[:2] for w in want]
    np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], atol=5e-4 + 1e-6)
    assert all(line.count(",") == 7 and ",," in line for line in path.read_text().splitlines())


def run(videos, out, detector, *extra) -> int:
    return main(["--videos", str(videos), "--out", str(out), "--detector", str(detector), "--device", "cpu",
                 "--min-score", str(MIN_SCORE), "--no-progress", *map(str, extra)])


@pytest.fixture
def rng(gen):
    return np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))


def two_videos(folder: Path, rng: np.random.Generator) -> dict[str, Path]:
    """A 10 fps video of 3 s (keyframes 0, 1, 2) and a variable-rate one of random length."""
    folder.mkdir()
    videos = {"steady": folder / "steady.mp4", "wobbly": folder / "wobbly.mp4"}
    grey_video(videos["steady"], [k / 10 for k in range(30)], rng)
    gaps = rng.uniform(0.05, 0.2, 30)
    grey_video(videos["wobbly"], np.round(np.cumsum(gaps) - gaps[0], 4).tolist(), rng)
    return videos


@pytest.mark.parametrize("kind, batch", [(TupleDetector, 1), (ListDetector, 4)])
def test_rows_are_the_boxes_of_the_frame_on_screen(tmp_path, rng, monkeypatch, kind, batch):
    videos = two_videos(tmp_path / "videos", rng)
    detector = scripted(kind(), tmp_path / "det.pt")
    calls = []
    real = person_boxes.PersonDetector.detect
    monkeypatch.setattr(person_boxes.PersonDetector, "detect", lambda self, images: calls.append(len(images))
                        or real(self, images))
    assert run(tmp_path / "videos", tmp_path / "boxes.csv", detector, "--batch-size", batch) == 0
    check_csv(tmp_path / "boxes.csv", videos, loaded(detector))
    assert max(calls) == batch and sum(calls) == sum(len(keyframes_of(v)) for v in videos.values())


def test_ava_loader_gets_the_boxes_in_input_pixels(tmp_path, rng):
    """An AVA-like movie (a frame at 0, then 4 s from 900 s): --start 902 --end 1798 gives AVA's keyframes;
    prepare_ava's frames and the CSV through build_ava_dataset: the model's boxes are the detector's pixel
    boxes scaled to the input clip (clipped to the image as PySlowFast does)."""
    from memvit.config import load_config
    from memvit.data.ava import build_ava_dataset
    from memvit.data.prepare_ava import ExtractionParams, prepare_ava

    movie = tmp_path / "movies" / "movie1.mp4"
    movie.parent.mkdir()
    grey_video(movie, [0.0] + [900 + k / 25 for k in range(100)], rng)
    detector = scripted(TupleDetector(), tmp_path / "det.pt")
    annotations = tmp_path / "ava" / "annotations"
    assert run(movie.parent, annotations / "boxes.csv", detector, "--start", 902, "--end", 1798) == 0
    fake = loaded(detector)
    check_csv(annotations / "boxes.csv", {"movie1": movie}, fake, first=902, last=1798)
    prepare_ava(movie.parent, tmp_path / "ava", params=ExtractionParams(start=900, duration=4), progress=False)
    ava = {"FRAME_DIR": str(tmp_path / "ava" / "frames"), "FRAME_LIST_DIR": str(tmp_path / "ava" / "frame_lists"),
           "ANNOTATION_DIR": str(annotations), "TEST_LISTS": ["train.csv"], "TEST_PREDICT_BOX_LISTS": ["boxes.csv"],
           "DETECTION_SCORE_THRESH": MIN_SCORE}
    dataset = build_ava_dataset(load_config(str(write_config(tmp_path / "cfg.yaml", AVA=ava))), "test")
    keyframes = keyframes_of(movie, 902, 1798)
    assert [(k.video, k.sec) for k in dataset.keyframes] == [("movie1", s) for s in keyframes] == [
        ("movie1", 902), ("movie1", 903)]
    for index, sec in enumerate(keyframes):
        sample = dataset[index]
        height, width = keyframes[sec].shape[:2]
        ratio = sample["video"].shape[-1] / width
        found = fake([torch.from_numpy(keyframes[sec]).permute(2, 0, 1).float() / 255])[1][0]
        persons = found["boxes"][(found["labels"] == 1) & (found["scores"] >= MIN_SCORE)].numpy()
        persons = persons[np.argsort(-found["scores"][(found["labels"] == 1) & (found["scores"] >= MIN_SCORE)]
                                     .numpy(), kind="stable")]
        persons = persons[(persons[:, 2] - persons[:, 0]) / width > 1e-3]
        limit = np.array([width - 1, height - 1, width - 1, height - 1])
        want = np.clip(persons, 0, limit) * ratio
        np.testing.assert_allclose(sample["boxes"].numpy(), want, atol=5e-4 * width * ratio + 1e-3)


def test_a_killed_run_resumes_without_redoing_finished_videos(tmp_path, rng, monkeypatch):
    videos = two_videos(tmp_path / "videos", rng)
    grey_video(tmp_path / "videos" / "third.mkv", [k / 30 for k in range(45)], rng)
    detector = scripted(TupleDetector(), tmp_path / "det.pt")
    assert run(tmp_path / "videos", tmp_path / "fresh.csv", detector) == 0
    calls = []
    real = person_boxes.PersonDetector.detect

    def dies_in_the_second_video(self, images):
        calls.append(len(images))
        if len(calls) > len(keyframes_of(videos["steady"])) + 1:
            raise KeyboardInterrupt
        return real(self, images)

    monkeypatch.setattr(person_boxes.PersonDetector, "detect", dies_in_the_second_video)
    out = tmp_path / "boxes.csv"
    assert run(tmp_path / "videos", out, detector, "--batch-size", 1) == 130
    assert not out.exists()
    parts = sorted(p.name for p in (tmp_path / "boxes.csv.parts" / "videos").iterdir())
    assert parts == ["steady.csv", "steady.json"]
    calls.clear()
    monkeypatch.setattr(person_boxes.PersonDetector, "detect", lambda self, images: calls.append(len(images))
                        or real(self, images))
    assert run(tmp_path / "videos", out, detector, "--batch-size", 1) == 0
    assert sum(calls) == len(keyframes_of(videos["wobbly"])) + len(keyframes_of(tmp_path / "videos" / "third.mkv"))
    assert out.read_bytes() == (tmp_path / "fresh.csv").read_bytes()
    calls.clear()
    assert run(tmp_path / "videos", out, detector) == 0 and not calls  # ours: rewritten, nothing redone
    assert out.read_bytes() == (tmp_path / "fresh.csv").read_bytes()
    assert {row.video for row in read_boxes_csv(out)} == {"steady", "wobbly", "third"}


def test_a_video_that_does_not_open_fails_alone(tmp_path, rng, capsys):
    """The others are done and kept, --out is not written (it would look complete); without the bad file the
    rerun only merges."""
    videos = two_videos(tmp_path / "videos", rng)
    bad = tmp_path / "videos" / "broken.mp4"
    bad.write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    detector = scripted(ListDetector(), tmp_path / "det.pt")
    out = tmp_path / "boxes.csv"
    assert run(tmp_path / "videos", out, detector) == 1
    output = capsys.readouterr()
    assert "failed: broken: cannot open" in output.err and "boxes.csv not written" in output.out
    assert not out.exists()
    bad.unlink()
    assert run(tmp_path / "videos", out, detector) == 0
    assert "already done: 2 video(s)" in capsys.readouterr().out
    check_csv(out, videos, loaded(detector))


def test_foreign_outputs_and_other_settings_are_refused(tmp_path, rng, capsys):
    two_videos(tmp_path / "videos", rng)
    detector = scripted(ListDetector(), tmp_path / "det.pt")
    out = tmp_path / "boxes.csv"
    out.write_text("mine\n")
    assert run(tmp_path / "videos", out, detector) == 2
    assert "boxes.csv exists and was not written by this command" in capsys.readouterr().err
    assert out.read_text() == "mine\n"
    assert run(tmp_path / "videos", out, detector, "--overwrite") == 0
    first = out.read_bytes()
    assert main(["--videos", str(tmp_path / "videos"), "--out", str(out), "--detector", str(detector),
                 "--device", "cpu", "--min-score", "0.7", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "other settings (min_score: 0.5 -> 0.7)" in err and "--overwrite" in err
    assert out.read_bytes() == first
    other = scripted(TupleDetector(), tmp_path / "other.pt")
    assert run(tmp_path / "videos", out, other) == 2
    assert "detector_sha256" in capsys.readouterr().err
    out.write_text(out.read_text() + "edited,0001,0.1,0.1,0.2,0.2,,0.9\n")
    assert run(tmp_path / "videos", out, detector) == 2  # ours, but changed since: the user's now
    assert "was not written by this command (or was changed since)" in capsys.readouterr().err
    assert main(["--videos", str(tmp_path / "videos"), "--out", str(out), "--detector", str(detector),
                 "--device", "cpu", "--min-score", "0.7", "--no-progress", "--overwrite"]) == 0
    assert all(row.extra >= 0.7 for row in read_boxes_csv(out)) and out.read_bytes() != first


@pytest.mark.parametrize("case", ["missing", "garbage", "text", "not the interface", "wrong architecture"])
def test_bad_detector_files_are_named(tmp_path, rng, capsys, case):
    two_videos(tmp_path / "videos", rng)
    path = tmp_path / "det.bin"
    message = "det.bin"
    if case == "garbage":
        path.write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif case == "text":
        path.write_text("a detector\n")
    elif case == "not the interface":
        scripted(TensorDetector(), path)
        message = "det.bin: the detector returned a Tensor for 3 image(s), expected a list of dicts"
    elif case == "wrong architecture":
        torch.save({"model": {"backbone.nope": torch.zeros(1)}}, path)
        message = "det.bin does not fit torchvision's fasterrcnn_resnet50_fpn"
    assert run(tmp_path / "videos", tmp_path / "boxes.csv", path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "boxes.csv").exists()
    if case == "not the interface":  # its work folder holds nothing finished: a fixed detector just runs
        assert run(tmp_path / "videos", tmp_path / "boxes.csv", scripted(ListDetector(), path)) == 0


def test_torchvision_detector_scripted_and_as_weights(tmp_path, rng):
    """A torchvision Faster R-CNN with random weights (its person logit raised, so it finds persons):
    TorchScript'ed and as a state dict with --detector-arch, both give its eager boxes / (W, H)."""
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    torch.manual_seed(int(rng.integers(2**31)))
    model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91).eval()
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[1] += 8.0
    torch.save(model.state_dict(), tmp_path / "weights.pth")
    scripted(model, tmp_path / "script.pt")
    video = tmp_path / "videos" / "clip.mp4"
    video.parent.mkdir()
    frames = [np.clip(rng.normal(128, 60, (*SIZE, 3)), 0, 255).astype(np.uint8) for _ in range(2)]
    write_video(video, frames, [0.0, 0.7])  # keyframes 0 and 1
    assert run(video.parent, tmp_path / "a.csv", tmp_path / "script.pt", "--batch-size", 2) == 0
    assert run(video.parent, tmp_path / "b.csv", tmp_path / "weights.pth", "--detector-arch",
               "fasterrcnn_mobilenet_v3_large_320_fpn") == 0
    check_csv(tmp_path / "a.csv", {"clip": video}, model)
    check_csv(tmp_path / "b.csv", {"clip": video}, model)
    assert len(read_boxes_csv(tmp_path / "a.csv")) > 0


def test_infer_runs_a_torchscript_detector(tmp_path, rng):
    """memvit.infer --detector FILE.pt: the boxes of each keyframe are the scripted detector's on the frame
    shown at that time; --detector-weights still names the same option."""
    from memvit.infer import build_parser
    from memvit.infer import main as infer

    video = tmp_path / "clip.mp4"
    grey_video(video, [k / 15 for k in range(30)], rng)
    detector = scripted(TupleDetector(), tmp_path / "det.pt")
    cfg = write_config(tmp_path / "tiny.yaml")
    assert infer(["--cfg", str(cfg), "--video", str(video), "--out", str(tmp_path / "out"), "--no-progress",
                  "--no-video", "--no-timeline", "--detector", str(detector),
                  "--detector-threshold", str(MIN_SCORE)]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["boxes"] == f"det.pt (TorchScript, persons >= {MIN_SCORE})"
    fake = loaded(detector)
    records = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    keyframes = keyframes_of(video)
    assert [r["time"] for r in records] == list(keyframes)
    for record in records:
        want = expected_rows("clip", record["time"], keyframes[record["time"]], fake, csv=False)
        got = [[*d["box"], d["box_score"]] for d in record["detections"]]
        np.testing.assert_allclose(got, [values for _, values in want], atol=1e-4)
    args = build_parser().parse_args(["--cfg", "c", "--video", "v", "--out", "o", "--detector-weights", "w.pth"])
    assert args.detector == "w.pth"
