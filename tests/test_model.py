# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The MeMViT model: layout against the reference's tables, memory rules and API, isolation of
videos, training features (activation checkpointing, autocast, compile, DDP), configs."""

from __future__ import annotations

import copy
import inspect
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import memvit
from memvit.config import ConfigError, build_model, load_config, model_kwargs
from memvit.models import (
    MEMVIT_16_16X4,
    MemorySnapshot,
    MemoryState,
    attention_implementation,
    create_memvit,
    memvit_16_16x4,
    memvit_24_32x3,
    pad_boxes,
    sample_memory,
    unpad_boxes,
)
from memvit.models.memory import MemoryEntry, keep_max_len

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
TINY = dict(MEMVIT_16_16X4, spatial_size=64, temporal_size=8, depth=4, patch_embed_dim=16, num_heads=1,
            embed_dim_mul=((1, 2.0), (3, 2.0)), atten_head_mul=((1, 2.0), (3, 2.0)), pool_kv_stride_adaptive=(1, 4, 4),
            memory_exclude_layers=(1,), droppath_rate_block=0.0, spatial_scale_factor=16, max_boxes=8,
            head_dropout_rate=0.0)
CONFIGS = ["ava_16", "ava_24", "ava_24_k700", "k400_16", "k600_24", "k700_24"]


# Tiny models: one thread is faster and steadier than two contending ones (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(head="kinetics", seed=0, **kwargs):
    torch.manual_seed(seed)
    return create_memvit(**{**TINY, "head": head, "num_classes": 7, **kwargs}).eval()


def clip(batch=1, h=64, w=64):
    return torch.randn(batch, 3, 8, h, w)


# ---------------------------------------------------------------------------- package, layout
def test_compat_shim_makes_pytorchvideo_transforms_importable():
    import pytorchvideo.transforms  # noqa: F401  (fails on torchvision >= 0.17 without the shim)
    import torchvision.transforms._functional_tensor as current
    from pytorchvideo.transforms import augmentations

    assert augmentations.F_t is current
    assert list(inspect.signature(augmentations.F_t.affine).parameters) == ["img", "matrix", "interpolation", "fill"]
    assert memvit.compat.install_torchvision_shim() is False  # already installed: nothing to do


def test_import_memvit_imports_no_torch():
    """The shim is an import hook and the model API is imported on first use: data tools start fast."""
    import subprocess
    import sys

    code = "import sys, memvit; assert not {'torch', 'torchvision'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


@pytest.mark.parametrize("builder,head,tensors,params", [
    (memvit_16_16x4, "ava", 621, 42_230_624),
    (memvit_16_16x4, "kinetics", 605, 35_388_832),
    (memvit_24_32x3, "ava", 917, 59_443_136),
    (memvit_24_32x3, "kinetics", 901, 52_601_344),
])
def test_released_models_have_the_reference_parameter_counts(builder, head, tensors, params):
    model = builder(head=head)
    assert len(model.state_dict()) == tensors
    assert sum(p.numel() for p in model.parameters()) == params


def reference_layout(depth, frames, transitions):
    """Keys and shapes of the reference's AVA model_state, from the written key table."""
    T = frames // 2
    keys = {"cls_token": (1, 1, 96), "patch_embed.proj.weight": (96, 3, 3, 7, 7), "patch_embed.proj.bias": (96,)}
    side, dim, heads, kv = 56, 96, 1, 8
    for i in range(depth):
        d = dim
        if i in transitions:
            heads, dim, qs = heads * 2, dim * 2, 2
            kv = max(kv // 2, 1)
        else:
            qs = 1
        D, c = dim, d // heads
        q_size, kv_size = side // qs, side // kv
        R, Rm = 2 * max(q_size, kv_size) - 1, 2 * max(q_size, kv_size // 2) - 1
        p = f"blocks.{i}."
        keys.update({p + "norm1.weight": (d,), p + "norm1.bias": (d,), p + "attn.rel_pos_h": (R, 96),
                     p + "attn.rel_pos_w": (R, 96), p + "attn.rel_pos_mem_h": (Rm, 96),
                     p + "attn.rel_pos_mem_w": (Rm, 96), p + "attn.rel_pos_t": (2 * T - 1, 96),
                     p + "attn.rel_pos_mem_t": (3 * T - 1, 96), p + "attn.proj.weight": (D, D),
                     p + "attn.proj.bias": (D,), p + "norm2.weight": (D,), p + "norm2.bias": (D,),
                     p + "mlp.fc1.weight": (4 * D, D), p + "mlp.fc1.bias": (4 * D,), p + "mlp.fc2.weight": (D, 4 * D),
                     p + "mlp.fc2.bias": (D,)})
        for x in "qkv":
            keys.update({p + f"attn.{x}.weight": (D, d), p + f"attn.{x}.bias": (D,),
                         p + f"attn.pool_{x}.weight": (c, 1, 3, 3, 3), p + f"attn.norm_{x}.weight": (c,),
                         p + f"attn.norm_{x}.bias": (c,)})
        for x in "kv":
            keys.update({p + f"attn.compress_{x}.weight": (d, 1, 7, 3, 3), p + f"attn.norm_compress_{x}.weight": (d,),
                         p + f"attn.norm_compress_{x}.bias": (d,)})
        if d != D:
            keys.update({p + "proj.weight": (D, d), p + "proj.bias": (D,)})
        side = q_size
    p = "box_blocks.0."
    for n in ("norm1", "norm2"):
        keys.update({p + f"{n}.weight": (768,), p + f"{n}.bias": (768,)})
    for x in ("q", "k", "v", "proj"):
        keys.update({p + f"attn.{x}.weight": (768, 768), p + f"attn.{x}.bias": (768,)})
    keys.update({p + "mlp.fc1.weight": (3072, 768), p + "mlp.fc1.bias": (3072,), p + "mlp.fc2.weight": (768, 3072),
                 p + "mlp.fc2.bias": (768,), "norm.weight": (768,), "norm.bias": (768,),
                 "head.projection.weight": (80, 768), "head.projection.bias": (80,)})
    return keys


@pytest.mark.parametrize("builder,depth,frames,transitions", [
    (memvit_16_16x4, 16, 16, (1, 3, 14)), (memvit_24_32x3, 24, 32, (2, 5, 21))])
def test_state_dict_keys_and_shapes_are_the_reference_table(builder, depth, frames, transitions):
    ours = {k: tuple(v.shape) for k, v in builder().state_dict().items()}
    assert ours == reference_layout(depth, frames, transitions)


def test_memvit16_stage_schedule():
    """Grids per block at 224x224 with memory (REFERENCE_DETAILS §2.2)."""
    model = memvit_16_16x4(head="kinetics")
    expected = {0: (56, 7, (2, 4, 4)), 1: (28, 14, (2, 7, 7)), 2: (28, 7, (2, 4, 4)), 3: (14, 14, (2, 7, 7)),
                4: (14, 7, (2, 4, 4)), 13: (14, 7, (2, 4, 4)), 14: (7, 14, (2, 7, 7)), 15: (7, 7, (2, 4, 4))}
    thw = (8, 56, 56)
    for i, block in enumerate(model.blocks):
        q_thw, kv_thw = block.attn.output_grids(thw)
        entry = MemoryEntry(torch.zeros(1, 1 + math.prod(kv_thw), block.attn.dim),
                            torch.zeros(1, 1 + math.prod(kv_thw), block.attn.dim), kv_thw, True)
        mem = block.attn.compress(entry).thw
        if i in expected:
            assert (q_thw[1], kv_thw[1], mem) == expected[i], i
        assert block.attn.attend_memory == (i % 2 == 0)
        thw = q_thw


# ---------------------------------------------------------------------------- memory rules
class FakeLayer:
    """Drives a MemoryState like one attention layer; clip t's tensors hold the value t."""

    def __init__(self, sampler, attn_max_len=3):
        self.state = MemoryState(["layer"], attn_max_len, sampler)
        self.compressed_at = {}

    def step(self, t, ids=("v",)):
        step = self.state.begin_step(ids, torch.device("cpu"))
        k = torch.full((len(ids), 3, 2), float(t))

        def compress(entry):
            self.compressed_at[int(entry.k[0, 0, 0])] = t
            return MemoryEntry(entry.k, entry.v, (1, 1, 1), entry.has_cls, compressed=True)

        gathered = step.update("layer", k, k, (1, 1, 2), True, attend=True, compress=compress)
        step.finish()
        return [int(e.k[0, 0, 0]) for e in gathered.entries]


@pytest.mark.parametrize("sampler,expected", [
    ("gap2", [[], [], [0], [1], [0, 2], [1, 3], [2, 4]]),
    ("gap3", [[], [], [], [0], [1], [2], [0, 3], [1, 4], [2, 5]]),
    ("all", [[], [0], [0, 1], [1, 2], [2, 3]]),
])
def test_sampler_attends_the_reference_clips(sampler, expected):
    """gap2: t-2 then t-4, t-2; gap3: t-3 then t-6, t-3; all: t-2, t-1 (ATTN_MAX_LEN 3)."""
    layer = FakeLayer(sampler)
    assert [layer.step(t) for t in range(len(expected))] == expected
    assert layer.state.num_cached == keep_max_len(3, sampler) - 1
    for t, attended in enumerate(expected):
        assert attended == sample_memory_absolute(t, sampler)


def sample_memory_absolute(t, sampler):
    cached = list(range(max(0, t - (keep_max_len(3, sampler) - 1)), t))
    return [cached[i] for i in sample_memory(len(cached), sampler)]


@pytest.mark.parametrize("sampler,fresh_attended", [("gap2", False), ("gap3", False), ("all", True)])
def test_compression_one_step_late(sampler, fresh_attended):
    """Clip t-1 is compressed during step t; only the 'all' sampler attends it in that step."""
    layer = FakeLayer(sampler)
    for t in range(8):
        attended = layer.step(t)
        if t >= 1:
            assert layer.compressed_at[t - 1] == t
            assert ((t - 1) in attended) == fresh_attended


def test_compression_gets_no_gradient_under_gap_samplers():
    model = tiny(memory_sampler="gap2").train()
    for _ in range(6):
        model(clip(2), video_ids=[0, 1]).square().sum().backward()
    for name, param in model.named_parameters():
        if "compress" in name or ("rel_pos_mem" in name and "blocks.1." in name):
            assert param.grad is None, name
    assert model.get_parameter("blocks.0.attn.rel_pos_mem_t").grad is not None  # memory itself is trained


# ---------------------------------------------------------------------------- videos never mix
def run_streams(model, row0, row1):
    return [model(torch.stack([a, b]), video_ids=[ia, ib]) for (ia, a), (ib, b) in zip(row0, row1)]


@pytest.mark.parametrize("isolation", ["zero", "mask"])
def test_memory_of_one_video_never_reaches_another(isolation):
    model = tiny(memory_isolation=isolation)
    old = [("a", clip()[0]) for _ in range(3)]
    new = [("b", clip()[0]) for _ in range(5)]
    other = [("x", clip()[0]) for _ in range(8)]
    with torch.no_grad():
        first = run_streams(model, old + new, other)
        model.memory.reset()
        perturbed_old = [(i, c + torch.randn_like(c)) for i, c in old]
        second = run_streams(model, perturbed_old + new, other)
        for step in range(3, 8):  # row 0 on video b: independent of what video a showed
            torch.testing.assert_close(first[step][0], second[step][0], rtol=0, atol=1e-6)
        solo = copy.deepcopy(model)
        solo.memory.reset()
        alone = [solo(c[None], video_ids=[i])[0] for i, c in new]
    same = [torch.allclose(first[s][0], alone[s - 3], rtol=1e-5, atol=1e-6) for s in range(3, 8)]
    # "mask" excludes a's clips: exactly the fresh run of b. "zero" (the reference) attends a's
    # zeroed clips, and deeper layers cache b's features computed under them.
    assert same == [isolation == "mask"] * 5


def test_batch_rows_are_independent():
    model = tiny()
    a, b = clip(), clip()
    with torch.no_grad():
        out1 = [model(torch.cat([a, b + s]), video_ids=[0, 1]) for s in range(3)]
        model.memory.reset()
        out2 = [model(torch.cat([a, clip()]), video_ids=[0, 1]) for _ in range(3)]
    for x, y in zip(out1, out2):
        torch.testing.assert_close(x[0], y[0], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- memory API
def test_reset_and_stateless_forward():
    model = tiny()
    x = clip(2)
    with torch.no_grad():
        first = model(x, video_ids=[0, 1])
        model(x, video_ids=[0, 1])
        model(x, video_ids=[0, 1])
        assert model.memory.num_cached == 3
        with_memory = model(x, video_ids=[0, 1])
        assert not torch.allclose(first, with_memory)
        stateless = model(x)  # no ids: memory neither read nor written
        assert model.memory.num_cached == 4
        torch.testing.assert_close(stateless, first)
        model.memory.reset()
        assert model.memory.num_cached == 0 and all(not m.entries for m in model.memory.layers.values())
        torch.testing.assert_close(model(x, video_ids=[0, 1]), first)


def test_carry_memory_per_stream():
    """Snapshot rows to continue a stream alone, and stack solo streams into one batch."""
    batch = tiny()
    solo_a, solo_b = copy.deepcopy(batch), copy.deepcopy(batch)
    clips = [clip(2) for _ in range(5)]
    with torch.no_grad():
        for x in clips[:3]:
            batch(x, video_ids=["a", "b"])
            solo_a(x[:1], video_ids=["a"])
            solo_b(x[1:], video_ids=["b"])
        saved = batch.memory.get_state()
        expected = batch(clips[3], video_ids=["a", "b"])
        # Row 1 alone from the batch's memory.
        carried = copy.deepcopy(batch)
        carried.memory.set_state(saved.select_rows([1]))
        torch.testing.assert_close(carried(clips[3][1:], video_ids=["b"]), expected[1:], rtol=1e-5, atol=1e-6)
        # Two solo streams stacked into one batch.
        batch.memory.set_state(MemorySnapshot.concat_rows([solo_a.memory.get_state(), solo_b.memory.get_state()]))
        torch.testing.assert_close(batch(clips[3], video_ids=["a", "b"]), expected, rtol=1e-5, atol=1e-6)
        # An explicit MemoryState leaves the model's own untouched.
        other = MemoryState(batch.memory.layer_names, 3, "gap2")
        before = batch.memory.num_cached
        batch(clips[4], video_ids=["a", "b"], memory=other)
        assert other.num_cached == 1 and batch.memory.num_cached == before


def test_groups_of_streams_taking_turns_each_attend_to_their_own_clips():
    """TRAIN.STREAM_GROUPS: groups alternating on one model (GroupMemories) give each group the
    outputs it gets alone with a memory of its own; after a reset they start from empty memory."""
    from memvit.models.memory import GroupMemories

    model = tiny()
    alone = {group: tiny() for group in ("g0", "g1")}  # same seed: the same weights
    turns = GroupMemories(model.memory)
    clips = {group: [clip(2) for _ in range(4)] for group in alone}
    ids = {"g0": ["a", "b"], "g1": ["c", "d"]}
    with torch.no_grad():
        for step in range(4):
            for number, group in enumerate(alone):
                turns.switch([2 * number, 2 * number + 1])
                torch.testing.assert_close(model(clips[group][step], video_ids=ids[group]),
                                           alone[group](clips[group][step], video_ids=ids[group]))
        assert len(turns.waiting) == 1 and model.memory.num_cached == 4
        restored = GroupMemories(model.memory)  # a checkpoint's round trip
        restored.load_state_dict(turns.state_dict())
        assert restored.running == turns.running and set(restored.waiting) == set(turns.waiting)
        turns.reset()
        assert model.memory.num_cached == 0 and not turns.waiting
        turns.switch([0, 1])
        torch.testing.assert_close(model(clips["g0"][0], video_ids=ids["g0"]),
                                   tiny()(clips["g0"][0], video_ids=ids["g0"]))


def test_memory_errors_and_rollback():
    model = tiny(head="ava")
    boxes = torch.tensor([[0, 1.0, 1, 30, 30]])
    with torch.no_grad():
        model(clip(), video_ids=[0], boxes=boxes)
        too_many = boxes.repeat(9, 1)  # max_boxes is 8
        with pytest.raises(ValueError, match="boxes but the box block holds 8"):
            model(clip(), video_ids=[0], boxes=too_many)
        assert model.memory.num_cached == 1 and all(len(m.entries) == 1 for m in model.memory.layers.values())
        with pytest.raises(ValueError, match="batch grew"):
            model(clip(2), video_ids=[0, 1], boxes=boxes)
        with pytest.raises(ValueError, match="one id per row"):
            model(clip(2), video_ids=[0], boxes=boxes)
        with pytest.raises(ValueError, match="needs boxes"):
            model(clip(), video_ids=[0])


def test_memory_disabled_is_plain_mvitv2():
    model = tiny(memory=False, compress_kernel=None)
    assert model.memory is None
    assert not [n for n in model.state_dict() if "mem" in n or "compress" in n]
    x = clip(2)
    with torch.no_grad():
        torch.testing.assert_close(model(x, video_ids=[0, 1]), model(x, video_ids=[0, 1]))


# ---------------------------------------------------------------------------- heads
def test_box_slots_and_output_order():
    feats = torch.randn(5, 4)
    batch_index = torch.tensor([1, 0, 1, 2, 0])
    slots, valid, where = pad_boxes(feats, batch_index, 3, 4)
    assert valid.sum(1).tolist() == [2, 2, 1]
    torch.testing.assert_close(slots[1, :2], feats[[0, 2]])
    torch.testing.assert_close(unpad_boxes(slots, where), feats[[1, 4, 0, 2, 3]])  # grouped by clip


@pytest.mark.parametrize("mask_padded", [False, True])
def test_padded_box_slots(mask_padded):
    """The reference attends empty slots (outputs depend on the slot count); the option masks them."""
    outs = []
    boxes = torch.tensor([[0, 2.0, 3, 40, 50], [0, 10, 10, 30, 60]])
    x = [clip() for _ in range(3)]
    for slots in (4, 8):
        model = tiny("ava", max_boxes=slots, mask_padded_boxes=mask_padded)
        with torch.no_grad():
            outs.append([model(c, video_ids=[0], boxes=boxes) for c in x])
    same = all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(*outs))
    assert same == mask_padded


def test_attention_implementation_switch():
    model = tiny("ava")
    boxes = torch.tensor([[0, 2.0, 3, 40, 50]])
    x = [clip() for _ in range(3)]
    with torch.no_grad():
        kernel = [model(c, video_ids=[0], boxes=boxes) for c in x]
        model.memory.reset()
        with attention_implementation(model, "reference"):
            assert model.blocks[0].attn.implementation == "reference"
            reference = [model(c, video_ids=[0], boxes=boxes) for c in x]
    assert model.blocks[0].attn.implementation == "auto"
    for a, b in zip(kernel, reference):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- training features
def test_activation_checkpointing_gives_the_same_outputs_and_gradients():
    plain = tiny(memory_sampler="all").train()
    checkpointed = copy.deepcopy(plain)
    for block in checkpointed.blocks:
        block.act_checkpoint = True
    for _ in range(3):
        x = clip(2)
        a, b = plain(x, video_ids=[0, 1]), checkpointed(x, video_ids=[0, 1])
        a.square().sum().backward()
        b.square().sum().backward()
        torch.testing.assert_close(a, b)
        for p, q in zip(plain.parameters(), checkpointed.parameters()):
            assert (p.grad is None) == (q.grad is None)
            if p.grad is not None:
                torch.testing.assert_close(p.grad, q.grad)
    assert checkpointed.memory.num_cached == plain.memory.num_cached == 2


def test_bf16_autocast():
    model = tiny("ava")
    reference = copy.deepcopy(model)
    boxes = torch.tensor([[0, 2.0, 3, 40, 50], [1, 0, 0, 63, 63]])
    with torch.no_grad():
        for _ in range(4):
            x = clip(2)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(x, video_ids=[0, 1], boxes=boxes)
            assert torch.isfinite(out).all()
            torch.testing.assert_close(out.float(), reference(x, video_ids=[0, 1], boxes=boxes), rtol=0, atol=2e-2)


def test_bf16_autocast_gradients():
    """Backward through a forward under CPU bf16 autocast (the TRAIN.MIXED_PRECISION path, memory
    filled): loss and gradients, the pooling convs' and tables' included, against the model in
    float64, and no further from it than the same model run on PyTorch's own ops (attention
    implementation "reference"). Eval mode: no dropout draws, the runs differ only in precision."""
    from memvit.models import set_attention_implementation

    truth = tiny("ava").double()
    set_attention_implementation(truth, "reference")
    ours, plain = copy.deepcopy(truth).float(), copy.deepcopy(truth).float()
    set_attention_implementation(ours, "auto")
    boxes = torch.tensor([[0, 2.0, 3, 40, 50], [1, 0, 0, 63, 63]])
    target = torch.rand(2, 7, dtype=torch.float64)
    clips = [clip(2) for _ in range(3)]
    errors, losses = [], []
    for model in (truth, ours, plain):
        bf16 = model is not truth
        with torch.no_grad():
            for x in clips[:2]:  # fill the memory
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    model(x.to(truth.cls_token.dtype if not bf16 else torch.float32), video_ids=[0, 1], boxes=boxes)
        x = clips[2].double() if not bf16 else clips[2]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x, video_ids=[0, 1], boxes=boxes)
        loss = F.binary_cross_entropy(out.double(), target)
        loss.backward()
        losses.append(loss.item())
        named = dict(model.named_parameters())
        grads = torch.cat([named[n].grad.double().flatten() for n, p in truth.named_parameters()
                           if p.grad is not None])
        if not bf16:
            want = grads
            assert any(named[n].grad is not None for n in named if "pool_k" in n)
            assert any(named[n].grad is not None for n in named if "rel_pos_mem" in n)
        errors.append(((grads - want).norm() / want.norm()).item())
    assert abs(losses[1] - losses[0]) <= 1e-2 * losses[0]
    assert errors[1] <= max(1.25 * errors[2], 1e-2), errors  # ours vs PyTorch's ops, both in bf16
    assert errors[1] <= 0.3, errors  # bf16 keeps ~3 digits; through 5 blocks and a box head, ~15% here


def test_memory_cached_in_one_precision_is_read_in_another():
    """Steps under bf16 autocast, then plain fp32 steps of the same video (and back): the cached
    clips are read in the current step's dtype and the outputs stay finite and close to fp32."""
    model = tiny("ava")
    reference = copy.deepcopy(model)
    boxes = torch.tensor([[0, 2.0, 3, 40, 50], [1, 0, 0, 63, 63]])
    clips = [clip(2) for _ in range(7)]
    with torch.no_grad():
        for step, x in enumerate(clips):
            expected = reference(x, video_ids=[0, 1], boxes=boxes)
            bf16 = step < 3 or step == 5
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(x, video_ids=[0, 1], boxes=boxes)
            assert out.dtype == (torch.bfloat16 if bf16 else torch.float32)
            torch.testing.assert_close(out.float(), expected, rtol=0, atol=2e-2)
        assert model.memory.num_cached == reference.memory.num_cached == 4


def test_torch_compile_matches_eager():
    model = tiny(depth=2, embed_dim_mul=((1, 2.0),), atten_head_mul=((1, 2.0),), memory_exclude_layers=(),
                 memory_sampler="all", attn_max_len=2)
    eager = copy.deepcopy(model)
    compiled = torch.compile(model, backend="aot_eager")
    with torch.no_grad():
        for _ in range(3):  # empty memory, then one memory clip (steady state)
            x = clip(2)
            torch.testing.assert_close(compiled(x, video_ids=[0, 1]), eager(x, video_ids=[0, 1]))


def test_ddp_with_memory(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model = tiny(memory_sampler="gap2").train()
    plain = copy.deepcopy(model)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        # find_unused_parameters: compression and memory tables of excluded layers get no gradient.
        ddp = DistributedDataParallel(model, find_unused_parameters=True)
        for _ in range(4):
            x = clip(2)
            a, b = ddp(x, video_ids=[0, 1]), plain(x, video_ids=[0, 1])
            a.square().sum().backward()
            b.square().sum().backward()
            torch.testing.assert_close(a, b)
        for p, q in zip(model.parameters(), plain.parameters()):
            if q.grad is not None:
                torch.testing.assert_close(p.grad, q.grad)
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------- configs
@pytest.mark.parametrize("name", CONFIGS)
def test_configs_build_the_released_models(name):
    cfg = load_config(str(CONFIG_DIR / f"{name}.yaml"))
    kwargs = model_kwargs(cfg)
    depth = 16 if name.endswith("16") else 24
    builder = memvit_16_16x4 if depth == 16 else memvit_24_32x3
    released = builder(head=kwargs["head"], num_classes=kwargs["num_classes"])
    model = build_model(cfg)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in released.state_dict().items()}
    assert model.memory.sampler == ("gap2" if depth == 16 else "gap3")
    assert cfg.TRAIN.CHECKPOINT_FILE_PATH is not None and cfg.SOLVER.BASE_LR == 0.075  # training keys present


def test_config_overrides_and_errors():
    cfg = load_config(str(CONFIG_DIR / "ava_16.yaml"), ["MEMVIT.SAMPLER", "all", "MVIT.DIM_MUL", "[[1, 2.0]]"])
    assert cfg.MEMVIT.SAMPLER == "all" and cfg.MVIT.DIM_MUL == [[1, 2.0]]
    with pytest.raises(KeyError):
        load_config(str(CONFIG_DIR / "ava_16.yaml"), ["MEMVIT.NO_SUCH_KEY", "1"])
    with pytest.raises(ValueError, match="KEY VALUE pairs"):
        load_config(str(CONFIG_DIR / "ava_16.yaml"), ["MEMVIT.SAMPLER"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(CONFIG_DIR / "missing.yaml"))
    with pytest.raises(ValueError, match="USE_ABS_POS"):
        model_kwargs(load_config(str(CONFIG_DIR / "ava_16.yaml"), ["MVIT.USE_ABS_POS", "True"]))
