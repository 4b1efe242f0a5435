# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The memory back-ends keep one named contract (``memvit.models.MemoryBackend`` and
``MemoryBackendStep``): the same ``begin_step``/``update``/``finish``/``abort`` signatures, so a
model takes any of them as ``memory=`` (the growing cache, the ONNX slot cache, the slot probe)."""

from __future__ import annotations

import inspect

import pytest

from memvit.models import (
    MemoryBackend,
    MemoryBackendStep,
    MemoryState,
    MemoryStep,
    SlotMemory,
    SlotSpecRecorder,
    SlotStep,
)


def _signature(fn) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("backend", [MemoryState, SlotMemory, SlotSpecRecorder])
def test_backends_begin_steps_alike(backend):
    assert _signature(backend.begin_step) == _signature(MemoryBackend.begin_step)


@pytest.mark.parametrize("step", [MemoryStep, SlotStep, SlotSpecRecorder])
def test_steps_update_alike(step):
    for name in ("update", "finish", "abort"):
        assert _signature(getattr(step, name)) == _signature(getattr(MemoryBackendStep, name)), name


def test_the_slot_cache_lives_beside_the_memory_not_in_it():
    import memvit.models.memory as memory

    assert SlotMemory.__module__ == "memvit.models.slot_memory"
    assert not hasattr(memory, "SlotMemory")
