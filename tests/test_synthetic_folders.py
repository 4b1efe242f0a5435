# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Nothing lost to the synthetic generator: a folder it did not write (the real AVA, a user's
files) survives every invocation; a set it wrote is replaced only where its manifest says; a failure
midway leaves the old data; the memory ablation's ``--data`` follows the same rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from memvit.cli import UserError
from memvit.data import synthetic
from memvit.data.synthetic import write as synthetic_write  # where generate() finds its helpers
from memvit.experiments import memory_ablation

STAND = (synthetic.DEFAULT_CLASSES[0],)  # one class: a tiny set is always valid
ARGS = dict(videos_train=1, videos_val=1, seconds=5, size=(32, 48), seed=11, progress=False, classes=STAND)
CLI = ["--train-videos", "1", "--val-videos", "1", "--seconds", "5", "--size", "32", "48", "--seed", "11", "--quiet"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) with a hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def fake_ava(root: Path, unrelated: bool = True) -> Path:
    """A real-AVA-like layout (frames/, frame_lists/, annotations/), with or without an unrelated file."""
    (root / "frames" / "-5KQ66BBWC4").mkdir(parents=True)
    (root / "frames" / "-5KQ66BBWC4" / "-5KQ66BBWC4_000001.jpg").write_bytes(b"\xff\xd8 a real frame")
    (root / "frame_lists").mkdir()
    (root / "frame_lists" / "train.csv").write_text("original_vido_id video_id frame_id path labels\n")
    (root / "annotations").mkdir()
    (root / "annotations" / "ava_train_v2.2.csv").write_text("-5KQ66BBWC4,0902,0.1,0.2,0.3,0.4,12,0\n")
    if unrelated:
        (root / "my_notes.txt").write_text("mine")
    return root


@pytest.mark.parametrize("unrelated", [False, True])
def test_a_folder_it_did_not_write_survives_every_invocation(tmp_path, capsys, unrelated):
    """The real AVA's own three folders alone were wiped before; with an unrelated file beside them too."""
    ava = fake_ava(tmp_path / "ava", unrelated)
    before = snapshot(ava)
    for overwrite in (False, True):
        with pytest.raises(synthetic.DataFolderError) as info:
            synthetic.generate(ava, **ARGS, overwrite=overwrite)
        assert isinstance(info.value, UserError)
        message = str(info.value)
        assert str(ava) in message and "frames/" in message and ("my_notes.txt" in message) == unrelated
        assert "--out" in message and "--overwrite" in message
        assert snapshot(ava) == before
    for extra in ([], ["--overwrite"], ["--long-range"]):
        assert synthetic.main(["--out", str(ava), *CLI, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "not written by memvit.data.synthetic" in err and "Traceback" not in err
        assert snapshot(ava) == before
    assert not list(tmp_path.glob(".ava.*"))
    # The memory ablation's --data: refused the same way, naming its own options.
    for extra in ([], ["--overwrite-data"]):
        code = memory_ablation.main(["--data", str(ava), "--train-videos", "1", "--val-videos", "1", "--seconds",
                                     "5", "--out", str(tmp_path / "runs"), "--arms", "no_memory", *extra])
        assert code == 2
        err = capsys.readouterr().err
        assert "--data" in err and "--overwrite-data" in err and "not written by" in err
        assert snapshot(ava) == before
    assert not (tmp_path / "runs").exists()


def test_regeneration_replaces_only_what_its_manifest_lists(tmp_path):
    root = tmp_path / "syn"
    synthetic.generate(root, **ARGS)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["generator"] == "memvit.data.synthetic" and "meta.json" in manifest["files"]
    listed = {*manifest["files"]} | {f"frames/{v}/{v}_{k + 1:06d}.jpg" for v, n in manifest["frames"].items()
                                     for k in range(n)}
    assert listed == set(snapshot(root))  # the manifest lists exactly what was written
    # The user's files beside and inside the set.
    (root / "my_results.csv").write_text("keep me")
    (root / "annotations" / "my_extra_boxes.csv").write_text("keep me too")
    video = next(iter(manifest["frames"]))
    (root / "frames" / video / "notes.txt").write_text("and me")
    mine = {k: v for k, v in snapshot(root).items() if k not in listed}
    old = snapshot(root)

    with pytest.raises(synthetic.DataFolderError, match="other parameters"):  # no --overwrite: nothing changes
        synthetic.generate(root, **{**ARGS, "seed": 12})
    assert snapshot(root) == old
    info = synthetic.generate(root, **{**ARGS, "seed": 12, "videos_train": 2}, overwrite=True)
    assert info.generated
    after = snapshot(root)
    assert {k: after[k] for k in mine} == mine  # the user's files untouched
    new_manifest = json.loads((root / "manifest.json").read_text())
    new_listed = {*new_manifest["files"]} | {f"frames/{v}/{v}_{k + 1:06d}.jpg"
                                             for v, n in new_manifest["frames"].items() for k in range(n)}
    assert set(after) == new_listed | set(mine)  # nothing of the old set is left over
    assert after["annotations/ava_train_v2.2.csv"] != old["annotations/ava_train_v2.2.csv"]
    assert json.loads((root / "meta.json").read_text())["params"]["seed"] == 12
    assert not list(tmp_path.glob(".syn.*"))


def test_a_set_written_before_manifests_is_recognised_by_its_meta(tmp_path):
    root = tmp_path / "syn"
    synthetic.generate(root, **ARGS)
    (root / "manifest.json").unlink()  # as an older version of the generator left it
    (root / "keep.txt").write_text("x")
    assert not synthetic.generate(root, **ARGS).generated
    assert synthetic.generate(root, **{**ARGS, "seed": 12}, overwrite=True).generated
    assert (root / "keep.txt").read_text() == "x" and (root / "manifest.json").is_file()


@pytest.mark.parametrize("where", ["render", "install"])
def test_a_failure_midway_leaves_the_old_data(tmp_path, monkeypatch, where):
    root = tmp_path / "syn"
    synthetic.generate(root, **ARGS)
    (root / "mine.txt").write_text("mine")
    old = snapshot(root)

    if where == "render":  # fails in the second video, after the first one is written
        real, calls = synthetic_write.render_video, []

        def failing(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise OSError("disk full (injected)")
            return real(*args, **kwargs)

        monkeypatch.setattr(synthetic_write, "render_video", failing)
    else:  # fails while moving the new files into place, after the old ones are moved aside and some new ones in
        real_install, real_replace, calls = synthetic_write._install, synthetic_write.os.replace, []
        fail_at = len(old) - 1 + 5  # every old listed file moved aside, then 4 new ones moved in

        def failing_replace(src, dst):
            calls.append(str(dst))
            if len(calls) == fail_at:
                raise OSError("I/O error (injected)")
            return real_replace(src, dst)

        def install(*args):
            monkeypatch.setattr(synthetic_write.os, "replace", failing_replace)
            try:
                return real_install(*args)
            finally:
                monkeypatch.setattr(synthetic_write.os, "replace", real_replace)

        monkeypatch.setattr(synthetic_write, "_install", install)
    with pytest.raises(OSError, match="injected"):
        synthetic.generate(root, **{**ARGS, "seed": 12}, overwrite=True)
    monkeypatch.undo()
    if where == "install":  # the failure came after some new files were in place
        assert sum(".syn.old-" not in c for c in calls[:fail_at - 1]) == 4  # then the rollback's moves
    assert snapshot(root) == old
    assert not list(tmp_path.glob(".syn.*"))  # no temporary or backup folder left
    # A fresh target: a failure leaves nothing at all.
    monkeypatch.setattr(synthetic_write, "render_video", lambda *a, **k: (_ for _ in ()).throw(OSError("injected")))
    with pytest.raises(OSError):
        synthetic.generate(tmp_path / "fresh", **ARGS)
    assert not (tmp_path / "fresh").exists() and not list(tmp_path.glob(".fresh.*"))
