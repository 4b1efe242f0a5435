# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Every expected user mistake ends every command with one message, exit code 2, no traceback.

The commands run in-process through their ``main(argv)`` (torch imported once), and the user's
literal first command once more as a real subprocess in an empty folder.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYNTHETIC = os.path.join(ROOT, "configs", "synthetic.yaml")
AVA_16 = os.path.join(ROOT, "configs", "ava_16.yaml")


def run_main(module: str, argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = importlib.import_module(module).main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_user_error(code: int, output: str, *names: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output, output
    assert "error:" in output, output
    for name in names:
        assert name in output, f"{name!r} not named in:\n{output}"


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


NO_DATA = ["AVA.FRAME_LIST_DIR", "prepare_ava", "scripts/demo.sh"]


@pytest.mark.parametrize("module, argv, names", [
    # no data: which key names it, and the two commands that provide data
    ("memvit.train", ["--cfg", SYNTHETIC, "OUTPUT_DIR", "out"], ["data/synthetic/frame_lists", *NO_DATA]),
    ("memvit.eval", ["--cfg", SYNTHETIC, "--device", "cpu", "OUTPUT_DIR", "out"], NO_DATA),
    # a bad key, a bad value, an odd override list, a config that is not there
    ("memvit.train", ["--cfg", SYNTHETIC, "SOLVER.BASE_LRR", "0.1"], ["SOLVER.BASE_LRR", "SOLVER.BASE_LR"]),
    ("memvit.eval", ["--cfg", SYNTHETIC, "SOLVER.BASE_LR", "fast"], ["SOLVER.BASE_LR", "fast"]),
    ("memvit.train", ["--cfg", SYNTHETIC, "SOLVER.BASE_LR"], ["KEY VALUE"]),
    ("memvit.flops", ["--cfg", "configs/nope.yaml"], ["configs/nope.yaml", "shipped configs"]),
    ("memvit.benchmark", ["--cfg", SYNTHETIC, "MVIT.POOL_FIRST", "False"], ["MVIT.POOL_FIRST"]),
    # a missing checkpoint, named with where checkpoints come from
    ("memvit.eval", ["--cfg", SYNTHETIC, "--device", "cpu", "--checkpoint", "missing.pyth"],
     ["missing.pyth", "model zoo"]),
    ("memvit.export", ["--cfg", SYNTHETIC, "--checkpoint", "missing.pyth", "--out", "m.onnx"], ["missing.pyth"]),
    ("memvit.infer", ["--cfg", SYNTHETIC, "--checkpoint", "missing.pyth", "--video", "v.mp4", "--out", "o"],
     ["missing.pyth"]),
    # a video that is not there
    ("memvit.infer", ["--cfg", SYNTHETIC, "--video", "nothing_here.mp4", "--out", "o"], ["nothing_here.mp4"]),
])
def test_user_mistakes_end_with_one_message_and_exit_2(module, argv, names, empty_cwd, capsys):
    code, output = run_main(module, argv, capsys)
    assert_user_error(code, output, *names)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("module, argv", [
    ("memvit.train", ["--cfg", SYNTHETIC, "NUM_GPUS", "1", "OUTPUT_DIR", "out"]),
    ("memvit.eval", ["--cfg", SYNTHETIC, "--device", "cuda"]),
    ("memvit.benchmark", ["--cfg", SYNTHETIC, "--device", "cuda"]),
    ("memvit.infer", ["--cfg", SYNTHETIC, "--device", "cuda:0", "--video", "v.mp4", "--out", "o"]),
])
def test_a_gpu_asked_for_where_none_is(module, argv, empty_cwd, capsys):
    code, output = run_main(module, argv, capsys)
    assert_user_error(code, output, "no CUDA GPU")


def test_a_bug_keeps_its_traceback(monkeypatch, capsys):
    """Only user errors are turned into messages; anything else is a bug and must surface."""
    import memvit.flops

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("memvit.config.load_config", broken)
    with pytest.raises(ZeroDivisionError):
        memvit.flops.main(["--cfg", SYNTHETIC])


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the data message comes first; tested above")
def test_the_users_first_command_on_a_fresh_machine(tmp_path):
    """``python -m memvit.train --cfg configs/ava_24.yaml`` with no AVA data and no GPU: one message
    naming what is missing and what provides it, exit 2 (it was a FileNotFoundError traceback)."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "memvit.train", "--cfg", os.path.join(ROOT, "configs", "ava_24.yaml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert_user_error(proc.returncode, output, "NUM_GPUS 8", "NUM_GPUS 0")
    proc = subprocess.run([sys.executable, "-m", "memvit.train", "--cfg", os.path.join(ROOT, "configs", "ava_24.yaml"),
                           "NUM_GPUS", "0"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert_user_error(proc.returncode, output, "data/ava/frame_lists", *NO_DATA)
    assert not os.path.exists(tmp_path / "output"), "a run that could not start left an output folder"


def test_infer_output_folder_that_cannot_be_written(empty_cwd, capsys):
    """--out naming an existing file: one message naming it, exit 2 (it was an OSError traceback)."""
    (empty_cwd / "taken").write_text("a file, not a folder")
    video = os.path.join(ROOT, "tests", "data", "bbb_720p25_1.5s.mp4")
    code, output = run_main("memvit.infer", ["--cfg", SYNTHETIC, "--video", video, "--out", "taken", "--no-progress"],
                            capsys)
    assert_user_error(code, output, "--out taken")


def test_a_file_url_is_read_as_a_local_file(empty_cwd, capsys):
    """file:// names a local file: it gets the local-file rules (a missing one is said as such)."""
    from memvit.streaming.video_io import is_live_spec, local_path

    assert not is_live_spec("file:///data/my%20video.mp4") and local_path("file:///data/my%20video.mp4") == \
        "/data/my video.mp4"
    code, output = run_main("memvit.infer", ["--cfg", SYNTHETIC, "--video", "file:///nowhere/v.mp4", "--out", "o"],
                            capsys)
    assert_user_error(code, output, "/nowhere/v.mp4: no such file")
