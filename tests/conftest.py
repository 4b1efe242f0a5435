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


def pytest_report_header(config):
    import memvit_ext

    info = memvit_ext.build_info()
    return [f"memvit_ext: extension {info['extension']}; cpu: {info['implementation']['cpu']}"]
