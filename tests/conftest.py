# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Shared fixtures: fresh random inputs in every run, with the seed reported on failure."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture
def gen(request) -> torch.Generator:
    """A generator with a fresh seed; rerun a failure with MEMVIT_TEST_SEED=<seed shown>."""
    seed = int(os.environ.get("MEMVIT_TEST_SEED", int.from_bytes(os.urandom(4), "little")))
    request.node.user_properties.append(("seed", seed))
    print(f"random seed: {seed} (rerun with MEMVIT_TEST_SEED={seed})")
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def one_thread():
    """Run a test on one CPU thread (tiny models), restoring the thread count after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def server():
    """A local HTTP server standing in for the authors' download server (tests/weights_fixtures.py)."""
    from weights_fixtures import FileServer

    srv = FileServer()
    yield srv
    srv.close()


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty torch hub cache (TORCH_HOME), no mirror, no waiting between download retries; the
    checkpoints folder memvit.weights downloads into."""
    from memvit import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(weights, "RETRY_DELAY", 0.0)
    monkeypatch.setattr(weights, "TIMEOUT", 10.0)
    monkeypatch.delenv(weights.MIRROR_ENV, raising=False)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def pytest_report_header(config):
    import memvit_ext

    info = memvit_ext.build_info()
    return [f"memvit_ext: extension {info['extension']}; cpu: {info['implementation']['cpu']}"]
