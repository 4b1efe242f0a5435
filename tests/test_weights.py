# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Published weights by name (memvit.weights) without the internet: a local HTTP server stands in
for the authors' server, serving checkpoints the tests write in the official layout; downloads that
are cut, corrupt, truncated or impossible end with a message and leave no broken file in the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from test_model import TINY, reference_layout
from test_model_checkpoint import reference_checkpoint
from weights_fixtures import cache_listing, official_bytes, refused_base, register, serve, with_digest

from memvit import memvit_16_16x4, memvit_24_32x3, weights
from memvit.checkpoint import CheckpointError
from memvit.models import create_memvit

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
TINY_FIELDS = dict(preset="memvit_16_16x4", keys=("tiny",), head="ava", num_classes=7, config="synthetic.yaml",
                   model_kwargs=TINY)


def tiny_model(seed: int, **kwargs):
    torch.manual_seed(seed)
    return create_memvit(**{**TINY, "head": "ava", "num_classes": 7, **kwargs})


@pytest.fixture
def tiny(monkeypatch, tmp_path, gen):
    """A tiny published entry and its checkpoint (fresh random weights) in the official layout."""
    entry = register(monkeypatch, "Tiny_16_test", **TINY_FIELDS)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    return entry, official_bytes(tiny_model(seed), tmp_path / "written.pyth")


def equal_states(model, data: bytes, tmp_path: Path) -> bool:
    path = tmp_path / "expected.pyth"
    path.write_bytes(data)
    expected = torch.load(path, weights_only=True)["model_state"]
    state = model.state_dict()
    return set(expected) == set(state) and all(torch.equal(expected[k], v) for k, v in state.items())


def test_the_ava_model_by_name_then_offline_from_the_cache(server, hub_cache, monkeypatch, tmp_path, capfd):
    """memvit_16_16x4(weights="ava"): the full-size file in the reference's key layout is downloaded,
    announced (the authors', their licence, where from), verified, loaded strictly; then the hub's
    pretrained=True and the config name work with no server at all."""
    entry = weights.PUBLISHED["MeMViT_16L_16x4_K400pt"]
    data = official_bytes_of_layout(tmp_path)
    serve(server, entry, data, monkeypatch)
    model = memvit_16_16x4(weights="ava", progress=False)
    assert equal_states(model, data, tmp_path)
    err = capfd.readouterr().err
    assert "CC-BY-NC 4.0" in err and "not redistributed" in err and server.base + "AVA/" in err
    assert hashlib.sha256(data).hexdigest() in err and "add size=" in err  # the digest to record in the table
    assert cache_listing(hub_cache) == ["MeMViT_16L_16x4_K400pt.pyth"]
    assert server.requests == [("AVA/MeMViT_16L_16x4_K400pt.pyth", None)]

    monkeypatch.setenv(weights.MIRROR_ENV, refused_base())  # no network from here on
    hub = torch.hub.load(str(ROOT), "memvit_16_16x4", source="local", pretrained=True)
    assert equal_states(hub, data, tmp_path) and not hub.training
    assert weights.resolve_checkpoint("MeMViT_16L_16x4_K400pt.pyth") == str(hub_cache / entry.file)
    assert "Downloading" not in capfd.readouterr().err
    assert len(server.requests) == 1


def official_bytes_of_layout(tmp_path: Path) -> bytes:
    """MeMViT-16 AVA in the reference's keys and shapes (an independent key table), each tensor its index."""
    path = tmp_path / "official.pyth"
    torch.save(reference_checkpoint(reference_layout(16, 16, (1, 3, 14))), path)
    return path.read_bytes()


def test_a_dropped_connection_is_resumed_with_range(server, hub_cache, tiny, monkeypatch, tmp_path):
    entry, data = tiny
    serve(server, entry, data, monkeypatch)
    third = len(data) // 3
    server.cuts[entry.path] = [third, third]  # two answers cut short, the third whole
    model = memvit_16_16x4(weights="tiny", progress=False)
    assert equal_states(model, data, tmp_path)
    assert [r for _, r in server.requests] == [None, f"bytes={third}-", f"bytes={2 * third}-"]
    assert (hub_cache / entry.file).read_bytes() == data
    assert cache_listing(hub_cache) == [entry.file]


def test_a_stalled_download_keeps_its_part_and_the_next_call_resumes(server, hub_cache, tiny, monkeypatch, capfd):
    """The server announces more than it sends (Content-Length larger than the body), every time:
    the call gives up with a message, the part stays; the next call resumes it."""
    entry, data = tiny
    serve(server, entry, data, monkeypatch)
    part = len(data) // 2
    server.cuts[entry.path] = [part] + [0] * (weights.RETRIES + 1)
    with pytest.raises(weights.WeightsError, match=f"broke off at {part:,} of {len(data):,} bytes") as error:
        weights.fetch(entry.name, progress=False)
    assert "run again to resume" in str(error.value)
    assert cache_listing(hub_cache) == [entry.file + ".partial"]
    assert (hub_cache / (entry.file + ".partial")).read_bytes() == data[:part]
    assert len(server.requests) == weights.RETRIES + 2
    server.requests.clear()
    path = weights.fetch(entry.name, progress=False)
    assert Path(path).read_bytes() == data and server.requests == [(entry.path, f"bytes={part}-")]
    assert cache_listing(hub_cache) == [entry.file]


def test_a_corrupt_download_is_removed(server, hub_cache, tiny, monkeypatch, tmp_path):
    entry, data = tiny
    other = official_bytes(tiny_model(1234), tmp_path / "other.pyth")  # a whole checkpoint, but not this one
    with_digest(monkeypatch, entry, data)
    serve(server, entry, other[:len(data)] if len(other) >= len(data) else other + bytes(len(data) - len(other)),
          monkeypatch)
    with pytest.raises(weights.WeightsError, match="SHA-256 is [0-9a-f]{64}, the published file's") as error:
        weights.fetch(entry.name, progress=False)
    assert "removed" in str(error.value)
    assert cache_listing(hub_cache) == []


@pytest.mark.parametrize("damage", ["garbage", "another model", "truncated"])
def test_a_download_that_does_not_load_is_removed(damage, server, hub_cache, tiny, monkeypatch, tmp_path):
    """No size or digest recorded yet: the strict weights-only load is the check."""
    entry, data = tiny
    served = {"garbage": bytes(torch.randint(0, 256, (len(data),), dtype=torch.uint8).tolist()),
              "another model": official_bytes(tiny_model(0, depth=3), tmp_path / "other.pyth"),
              "truncated": data[:len(data) // 2]}[damage]
    serve(server, entry, served, monkeypatch)
    reason = {"garbage": "not a PyTorch checkpoint", "another model": "does not match the model",
              "truncated": "truncated"}[damage]
    with pytest.raises(weights.WeightsError, match="not the published Tiny_16_test.pyth, so it was removed") as error:
        memvit_16_16x4(weights="tiny", progress=False)
    assert reason in str(error.value)
    assert cache_listing(hub_cache) == []


def test_a_short_file_is_refused_before_downloading_when_the_size_is_known(server, hub_cache, tiny, monkeypatch):
    entry, data = tiny
    with_digest(monkeypatch, entry, data)
    serve(server, entry, data[: len(data) - 1000], monkeypatch)
    with pytest.raises(weights.WeightsError, match=f"offers {len(data) - 1000:,} bytes, the published file has "
                                                   f"{len(data):,}"):
        weights.fetch(entry.name, progress=False)
    assert cache_listing(hub_cache) == []


def test_no_network_names_the_url_and_the_cache_path(hub_cache, tiny, monkeypatch, capsys):
    entry, _ = tiny
    monkeypatch.setenv(weights.MIRROR_ENV, refused_base())
    with pytest.raises(weights.WeightsError) as error:
        weights.fetch(entry.name, progress=False)
    message = str(error.value)
    assert entry.url() in message and str(hub_cache / entry.file) in message and "refused" in message
    assert "put the file at" in message
    assert cache_listing(hub_cache) == []
    # the same from a command: one message, exit 2; a file put there by hand is then used offline
    assert weights.main(["--download", entry.name, "--no-progress"]) == 2
    assert entry.url() in capsys.readouterr().err
    assert cache_listing(hub_cache) == []


def test_a_copy_put_in_the_cache_by_hand_is_used_offline(hub_cache, tiny, monkeypatch, tmp_path):
    entry, data = tiny
    monkeypatch.setenv(weights.MIRROR_ENV, refused_base())
    hub_cache.mkdir(parents=True)
    (hub_cache / entry.file).write_bytes(data)
    model = memvit_16_16x4(weights="tiny", progress=False)
    assert equal_states(model, data, tmp_path)
    with_digest(monkeypatch, entry, data + b"x")  # the table's size disagrees: said, the file left alone
    with pytest.raises(weights.WeightsError, match="an incomplete or another file"):
        weights.fetch(entry.name)
    assert (hub_cache / entry.file).read_bytes() == data


def test_http_errors_and_a_server_that_ignores_range(server, hub_cache, tiny, monkeypatch):
    entry, data = tiny
    monkeypatch.setenv(weights.MIRROR_ENV, server.base)
    with pytest.raises(weights.WeightsError, match="HTTP 404"):
        weights.fetch(entry.name, progress=False)
    assert cache_listing(hub_cache) == []
    # a stale part from an earlier, other file: the server's 416 (nothing past its end) starts over
    hub_cache.mkdir(parents=True, exist_ok=True)
    (hub_cache / (entry.file + ".partial")).write_bytes(b"\0" * (len(data) + 10))
    serve(server, entry, data, monkeypatch)
    assert Path(weights.fetch(entry.name, progress=False)).read_bytes() == data
    assert [r for _, r in server.requests[1:]] == [f"bytes={len(data) + 10}-", None]


def test_names_in_configs_and_paths(hub_cache, tiny, monkeypatch, tmp_path, server):
    """An existing path wins over a name; a folder path to a published file that is missing says how
    to get it; a missing other path is left to the loader's message."""
    entry, data = tiny
    monkeypatch.chdir(tmp_path)
    Path(entry.file).write_bytes(b"a local file of that name")
    assert weights.resolve_checkpoint(entry.file) == entry.file
    with pytest.raises(CheckpointError, match=f"the name {entry.name} alone"):
        weights.resolve_checkpoint(f"models/AVA/{entry.file}")
    assert weights.resolve_checkpoint("models/mine.pyth") == "models/mine.pyth"
    serve(server, entry, data, monkeypatch)
    assert weights.resolve_checkpoint(entry.name, progress=False) == str(hub_cache / entry.file)


def test_weights_names_per_builder(hub_cache):
    assert weights.lookup("memvit_24_32x3", "ava_k600").name == "MeMViT_24L_32x3_K600pt"
    assert weights.lookup("memvit_24_32x3", "default").name == "MeMViT_24L_32x3_K700pt"
    assert weights.lookup("memvit_24_32x3", "default", "kinetics", 600).name == "MeMViT_24L_32x3_K600"
    assert weights.lookup("memvit_16_16x4", "default", "kinetics").name == "MeMViT_16L_16x4_K400"
    assert weights.lookup("memvit_16_16x4", "MeMViT_16L_16x4_K400pt.pyth").keys[0] == "ava"
    with pytest.raises(weights.WeightsError, match="'ava_k600', 'ava_k700', 'k600', 'k700'"):
        memvit_24_32x3(weights="k400")
    with pytest.raises(ValueError, match="kinetics model with 400 classes"):
        memvit_16_16x4("ava", weights="k400")
    for entry in weights.PUBLISHED.values():  # the authors' URLs, as their README lists them
        assert entry.url() == f"https://dl.fbaipublicfiles.com/memvit/models/{entry.path}"
        assert (ROOT / "configs" / entry.config).is_file()


def test_the_command_lists_the_table(hub_cache, capsys):
    assert weights.main([]) == 0
    out = capsys.readouterr().out
    assert "MeMViT_24L_32x3_K700pt" in out and "AVA mAP 34.4" in out and str(hub_cache) in out


def test_two_downloads_at_once_fetch_the_file_once(server, hub_cache, tiny, monkeypatch):
    """DDP ranks (or two notebooks) asking at the same moment: one downloads, the other waits for it."""
    from concurrent.futures import ThreadPoolExecutor

    entry, data = tiny
    serve(server, entry, data, monkeypatch)
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: weights.fetch(entry.name, progress=False), range(2)))
    assert paths[0] == paths[1] and Path(paths[0]).read_bytes() == data
    assert server.requests == [(entry.path, None)] and cache_listing(hub_cache) == [entry.file]
