# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Parity of the model with the reference's behaviour, clip after clip.

The oracle below re-states the reference forward naively from its written specification
(shared notes REFERENCE_DETAILS §2-§4): explicit pooling, explicit concatenation of memory,
explicit (Nq x Nk) relative-position bias, the reference's caching, masking (zeroing in place,
dropping with a batch of one), one-step-late compression and sampler, and the AVA head with its
box memory. It reads only the model's parameters, never its modules, and runs in float64.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from memvit.models import MEMVIT_16_16X4, create_memvit

TRANSITIONS = (1, 3)
TINY = dict(MEMVIT_16_16X4, spatial_size=64, temporal_size=8, depth=4, patch_embed_dim=16, num_heads=1,
            embed_dim_mul=((1, 2.0), (3, 2.0)), atten_head_mul=((1, 2.0), (3, 2.0)), pool_kv_stride_adaptive=(1, 4, 4),
            memory_exclude_layers=(1,), droppath_rate_block=0.0, spatial_scale_factor=16, max_boxes=6)


# Tiny models: one thread is faster and steadier than two contending ones (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def interp(table, rows):
    if table.shape[0] == rows:
        return table
    return F.interpolate(table.t()[None], size=rows, mode="linear")[0].t()


class ReferenceOracle:
    """The reference MeMViT forward, written from its specification (no shared code)."""

    def __init__(self, model, *, sampler, attn_max_len, exclude, box_slots=6):
        self.model = model
        self.gap = None if sampler == "all" else int(sampler[3:])
        self.keep = attn_max_len if self.gap is None else (attn_max_len - 1) * self.gap + 1
        self.exclude = set(exclude)
        self.depth = len([n for n, _ in model.named_parameters() if n.endswith("norm1.weight")
                          and n.startswith("blocks.")])
        self.caches = {}
        self.box_slots = box_slots
        # Strides as the spec derives them: q (1,2,2) at the transitions, kv adaptive (1,4,4)
        # divided by every q stride met.
        self.stride_q, self.stride_kv, kv = [], [], [1, 4, 4]
        for i in range(self.depth):
            sq = [1, 2, 2] if i in TRANSITIONS else [1, 1, 1]
            kv = [max(a // b, 1) for a, b in zip(kv, sq)]
            self.stride_q.append(sq)
            self.stride_kv.append(list(kv))

    def P(self, name):
        return self.model.get_parameter(name)

    def has(self, name):
        return name in dict(self.model.named_parameters())

    def ln(self, x, prefix):
        return F.layer_norm(x, (x.shape[-1],), self.P(prefix + ".weight"), self.P(prefix + ".bias"), 1e-6)

    def linear(self, x, prefix):
        return F.linear(x, self.P(prefix + ".weight"), self.P(prefix + ".bias"))

    # ------------------------------------------------------------------ memory (reference rules)
    def sample(self, length):
        if length == 0:
            return []
        if self.gap is None:
            return list(range(length))
        if length < self.gap:
            return []
        used = length // self.gap
        return list(range(length))[-self.gap * used::self.gap]

    def mask_memory(self, cache, names, selection):
        kept = []
        for t, cached_names in enumerate(cache["names"]):
            keep = True
            for r in range(len(names)):
                if cached_names[r] != names[r]:
                    for key in ("k", "v"):
                        zeroed = cache[key][t].clone()
                        zeroed[r] = 0.0
                        cache[key][t] = zeroed
                    keep = False
            if keep:
                kept.append(t)
        if cache["k"] and cache["k"][0].shape[0] == 1:
            new = {old: i for i, old in enumerate(kept)}
            for key in ("k", "v", "names"):
                cache[key] = [cache[key][t] for t in kept]
            selection = [new[t] for t in selection if t in new]
        return selection

    def remember(self, layer, k_in, v_in, names, selection, compress):
        """Returns the memory tensors to prepend and the compressed grid."""
        cache = self.caches.setdefault(layer, {"k": [], "v": [], "names": []})
        selection = self.mask_memory(cache, names, selection)
        cache["k"].append(k_in.detach())
        cache["v"].append(v_in.detach())
        cache["names"].append(list(names))
        mem_grid = None
        if len(cache["k"]) > 1 and compress is not None:
            cache["k"][-2], mem_grid = compress(cache["k"][-2], "k")
            cache["v"][-2], _ = compress(cache["v"][-2], "v")
        B = k_in.shape[0]
        mem_k = [cache["k"][:-1][i][:B] for i in selection]
        mem_v = [cache["v"][:-1][i][:B] for i in selection]
        if len(cache["k"]) > 1:
            cache["k"][-2] = cache["k"][-2].detach()
            cache["v"][-2] = cache["v"][-2].detach()
        if len(cache["k"]) == self.keep:
            for key in ("k", "v", "names"):
                cache[key] = cache[key][1:]
        return mem_k, mem_v, mem_grid

    # ------------------------------------------------------------------ relative positions
    def spatial(self, rq, q_thw, k_thw, table_h, table_w):
        _, qh, qw = q_thw
        _, kh, kw = k_thw
        dh, dw = 2 * max(qh, kh) - 1, 2 * max(qw, kw) - 1
        q_ratio_h, k_ratio_h = max(kh / qh, 1.0), max(qh / kh, 1.0)
        dist_h = (torch.arange(qh)[:, None] * q_ratio_h - torch.arange(kh)[None, :] * k_ratio_h
                  + (kh - 1) * k_ratio_h)
        Th = interp(table_h, dh)
        if dw == dh:
            Tw = interp(table_w, dw)
            q_ratio_w, k_ratio_w = max(kw / qw, 1.0), max(qw / kw, 1.0)
            dist_w = (torch.arange(qw)[:, None] * q_ratio_w - torch.arange(kw)[None, :] * k_ratio_w
                      + (kw - 1) * k_ratio_w)
        else:
            assert dw > dh, "taller-than-wide inputs fail in the reference"
            Tw = interp(table_w, dh)
            dist_w = torch.arange(qw)[:, None] * q_ratio_h - torch.arange(kw)[None, :] * k_ratio_h + dist_h[0, 0]
            dist_w = dist_w.clamp(dist_h.min(), dist_h.max())
        Rh, Rw = Th[dist_h.long()], Tw[dist_w.long()]
        return (torch.einsum("bnthwc,hkc->bnthwk", rq, Rh), torch.einsum("bnthwc,wkc->bnthwk", rq, Rw))

    def bias(self, prefix, q, q_thw, k_thw, mem_grid, n_mem):
        B, H, Nq, d = q.shape
        qt, qh, qw = q_thw
        rq = q[:, :, 1:].reshape(B, H, qt, qh, qw, d)
        segments = [(mem_grid, True)] * n_mem + [(k_thw, False)]
        total = sum(1 + math.prod(g) for g, _ in segments)
        bias = torch.zeros(B, H, Nq, total, dtype=q.dtype)
        slots = n_mem * mem_grid[0] if n_mem else 0
        column, slot = 0, 0
        for grid, is_mem in segments:
            kt, kh, kw = grid
            mem = "mem_" if is_mem else ""
            rel_h, rel_w = self.spatial(rq, q_thw, grid, self.P(f"{prefix}rel_pos_{mem}h"),
                                        self.P(f"{prefix}rel_pos_{mem}w"))
            if is_mem:
                j = torch.arange(slot, slot + kt)
                dist_t = torch.arange(qt)[:, None] - 4 * j[None, :] + 4 * (slots - 1)
                slot += kt
            else:
                dist_t = torch.arange(qt)[:, None] - torch.arange(kt)[None, :] + (kt - 1)
            Rt = self.P(f"{prefix}rel_pos_{mem}t")[dist_t]
            rel_t = torch.einsum("bnthwc,tkc->bnthwk", rq, Rt)
            block = (rel_t[..., :, None, None] + rel_h[..., None, :, None] + rel_w[..., None, None, :])
            n = math.prod(grid)
            bias[:, :, 1:, column + 1:column + 1 + n] = block.reshape(B, H, qt * qh * qw, n)
            column += 1 + n
        return bias

    # ------------------------------------------------------------------ backbone
    def attention(self, i, xn, thw, selection, names):
        p = f"blocks.{i}.attn."
        B, N, C = xn.shape
        c = self.P(p + "pool_q.weight").shape[0]
        H = C // c
        heads = xn.reshape(B, N, H, c).permute(0, 2, 1, 3)

        def pool(which, stride):
            cls, tok = heads[:, :, :1], heads[:, :, 1:]
            g = tok.reshape(B * H, *thw, c).permute(0, 4, 1, 2, 3)
            g = F.conv3d(g, self.P(p + f"pool_{which}.weight"), stride=stride, padding=1, groups=c)
            grid = tuple(g.shape[2:])
            g = g.reshape(B, H, c, -1).transpose(2, 3)
            return self.ln(torch.cat([cls, g], 2), p + f"norm_{which}"), grid

        q, q_thw = pool("q", self.stride_q[i])
        k, k_thw = pool("k", self.stride_kv[i])
        v, _ = pool("v", self.stride_kv[i])

        def merge(t):
            return t.permute(0, 2, 1, 3).reshape(B, t.shape[2], C)

        D = self.P(p + "q.weight").shape[0]
        hd = D // H
        q = self.linear(merge(q), p + "q").reshape(B, -1, H, hd).permute(0, 2, 1, 3)
        k_in, v_in = merge(k), merge(v)

        def compress(t, which):
            cls, tok = t[:, :1], t[:, 1:]
            g = tok.reshape(t.shape[0], *k_thw, C).permute(0, 4, 1, 2, 3)
            g = F.conv3d(g, self.P(p + f"compress_{which}.weight"), stride=(4, 2, 2), padding=(3, 1, 1), groups=C)
            grid = tuple(g.shape[2:])
            out = torch.cat([cls, g.flatten(2).transpose(1, 2)], 1)
            return self.ln(out, p + f"norm_compress_{which}"), grid

        mem_k, mem_v, mem_grid = self.remember(i, k_in, v_in, names, selection, compress)
        kk = self.linear(torch.cat(mem_k + [k_in], 1), p + "k").reshape(B, -1, H, hd).permute(0, 2, 1, 3)
        vv = self.linear(torch.cat(mem_v + [v_in], 1), p + "v").reshape(B, -1, H, hd).permute(0, 2, 1, 3)
        attn = (q @ kk.transpose(-2, -1)) * hd ** -0.5
        attn = attn + self.bias(p, q, q_thw, k_thw, mem_grid, len(mem_k))
        out = attn.softmax(-1) @ vv
        residual = q.clone()
        residual[:, :, 0] = 0.0
        out = (out + residual).permute(0, 2, 1, 3).reshape(B, -1, D)
        return self.linear(out, p + "proj"), q_thw

    def block(self, i, x, thw, selection, names):
        p = f"blocks.{i}."
        xn = self.ln(x, p + "norm1")
        a, q_thw = self.attention(i, xn, thw, selection, names)
        if self.has(p + "proj.weight"):
            x = self.linear(xn, p + "proj")
        if self.stride_q[i] != [1, 1, 1]:
            cls, tok = x[:, :1], x[:, 1:]
            B, _, C = x.shape
            g = tok.reshape(B, *thw, C).permute(0, 4, 1, 2, 3)
            g = F.max_pool3d(g, (1, 3, 3), (1, 2, 2), (0, 1, 1))
            x = torch.cat([cls, g.flatten(2).transpose(1, 2)], 1)
        x = x + a
        h = self.linear(F.gelu(self.linear(self.ln(x, p + "norm2"), p + "mlp.fc1")), p + "mlp.fc2")
        return x + h, q_thw

    def box_block(self, x, selection, names):
        p = "box_blocks.0."
        xn = self.ln(x, p + "norm1")
        B, S, C = xn.shape
        H = C // 16
        mem_k, mem_v, _ = self.remember("box", xn, xn, names, selection, None)

        def heads(t):
            return t.reshape(B, t.shape[1], H, 16).permute(0, 2, 1, 3)

        q = heads(self.linear(xn, p + "attn.q"))
        k = heads(self.linear(torch.cat(mem_k + [xn], 1), p + "attn.k"))
        v = heads(self.linear(torch.cat(mem_v + [xn], 1), p + "attn.v"))
        out = ((q @ k.transpose(-2, -1)) * 16 ** -0.5).softmax(-1) @ v + q
        x = x + self.linear(out.permute(0, 2, 1, 3).reshape(B, S, C), p + "attn.proj")
        h = self.linear(F.gelu(self.linear(self.ln(x, p + "norm2"), p + "mlp.fc1")), p + "mlp.fc2")
        return x + h

    def __call__(self, clip, names, boxes=None):
        x = F.conv3d(clip, self.P("patch_embed.proj.weight"), self.P("patch_embed.proj.bias"), stride=(2, 4, 4),
                     padding=(1, 3, 3))
        B = x.shape[0]
        thw = (clip.shape[2] // 2, clip.shape[3] // 4, x.flatten(2).shape[2] // (clip.shape[3] // 4)
               // (clip.shape[2] // 2))
        x = torch.cat([self.P("cls_token").expand(B, -1, -1), x.flatten(2).transpose(1, 2)], 1)
        length = len(self.caches.get(0, {"k": []})["k"])
        selection = self.sample(length)
        for i in range(self.depth):
            x, thw = self.block(i, x, thw, [] if i in self.exclude else selection, names)
        x = self.ln(x, "norm")
        if boxes is None:
            return self.linear(x[:, 0], "head.projection").softmax(-1)
        feat = x[:, 1:].transpose(1, 2).reshape(B, -1, *thw).mean(2)
        pooled = roi_align(feat, boxes, (7, 7), 1 / 16, 0, aligned=True).amax(dim=(2, 3))
        slots = torch.zeros(B, self.box_slots, pooled.shape[1], dtype=pooled.dtype)
        for b in sorted(set(boxes[:, 0].long().tolist())):
            mine = pooled[boxes[:, 0].long() == b]
            slots[b, :mine.shape[0]] = mine
        slots = self.box_block(slots, selection, names)
        out = torch.cat([slots[b, :int((boxes[:, 0] == b).sum())] for b in range(B)])
        return torch.sigmoid(self.linear(out, "head.projection"))


def _models(head, sampler="gap2", attn_max_len=3, exclude=(1,), seed=0, **kwargs):
    torch.manual_seed(seed)
    model = create_memvit(**{**TINY, "memory_exclude_layers": exclude, "memory_sampler": sampler,
                             "attn_max_len": attn_max_len}, head=head, num_classes=7, **kwargs).double().eval()
    # Random (not initial) LayerNorm and bias values, so every parameter matters.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    oracle_model = copy.deepcopy(model)
    return model, ReferenceOracle(oracle_model, sampler=sampler, attn_max_len=attn_max_len, exclude=exclude)


def _clip(batch, h=64, w=64):
    return torch.randn(batch, 3, 8, h, w, dtype=torch.float64)


STREAMS = [  # video id of each row, step by step: row 0 changes video at step 3, row 1 at step 6
    ("a", "x"), ("a", "x"), ("a", "x"), ("b", "x"), ("b", "x"), ("b", "x"), ("b", "y"), ("b", "y"), ("b", "y"),
]


@pytest.mark.parametrize("sampler,attn_max_len", [("gap2", 3), ("gap3", 3), ("all", 3)])
def test_classifier_matches_reference_over_streams(sampler, attn_max_len):
    """Batch of two streams crossing video boundaries: memory zeroed and attended as the reference."""
    model, oracle = _models("kinetics", sampler, attn_max_len)
    with torch.no_grad():
        for step, ids in enumerate(STREAMS):
            clip = _clip(2)
            ours, ref = model(clip, video_ids=ids), oracle(clip, ids)
            torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-11, msg=f"step {step}")


def test_batch_of_one_drops_other_video_memory_as_reference():
    model, oracle = _models("kinetics", "gap2", exclude=(1, 3))
    with torch.no_grad():
        for step, (vid, _) in enumerate(STREAMS):
            clip = _clip(1)
            torch.testing.assert_close(model(clip, video_ids=[vid]), oracle(clip, [vid]), rtol=1e-9, atol=1e-11,
                                       msg=f"step {step}")
    # After the switch to "b" at step 3 only b's clips remain cached.
    assert set(ids for ids, in model.memory.video_ids) == {"b"}


def test_ava_head_with_box_memory_matches_reference():
    model, oracle = _models("ava", "gap2")
    with torch.no_grad():
        for step, ids in enumerate(STREAMS[:7]):
            clip = _clip(2)
            n0, n1 = 1 + step % 3, 2 + step % 2  # box counts vary clip to clip
            boxes = torch.cat([torch.rand(n0 + n1, 2) * 30, torch.rand(n0 + n1, 2) * 30 + 33], 1).double()
            boxes = torch.cat([torch.tensor([0.0] * n0 + [1.0] * n1, dtype=torch.float64)[:, None], boxes], 1)
            torch.testing.assert_close(model(clip, video_ids=ids, boxes=boxes), oracle(clip, ids, boxes), rtol=1e-9,
                                       atol=1e-11, msg=f"step {step}")


def test_wide_input_and_other_size_match_reference():
    """Non-square test-time frames (wider than tall) and a size other than the build size:
    interpolated spatial tables and the reference's w-distance rule."""
    model, oracle = _models("kinetics", "gap2")
    with torch.no_grad():
        for step in range(5):
            clip = _clip(1, 48, 80)
            torch.testing.assert_close(model(clip, video_ids=["v"]), oracle(clip, ["v"]), rtol=1e-9, atol=1e-11,
                                       msg=f"step {step}")


def test_compression_gradients_match_reference():
    """With sampler 'all' the compression is trained through the next step (t-1 attended):
    gradients of every parameter, compression included, equal the reference's."""
    model, oracle = _models("kinetics", "all", 3)
    weights = torch.randn(2, 7, dtype=torch.float64)
    for step in range(4):
        clip = _clip(2)
        ids = ("a", "b")
        (model(clip, video_ids=ids) * weights).sum().backward()
        (oracle(clip, ids) * weights).sum().backward()
        for (name, p), (_, p_ref) in zip(model.named_parameters(), oracle.model.named_parameters()):
            if p_ref.grad is None:
                assert p.grad is None or not p.grad.any(), name
            else:
                torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-7, atol=1e-10, msg=f"{name} step {step}")
        compress_grad = model.get_parameter("blocks.0.attn.compress_k.weight").grad
        assert (compress_grad is not None) == (step >= 1)  # from step 1 on, clip t-1 is compressed and attended
        model.zero_grad()
        oracle.model.zero_grad()
