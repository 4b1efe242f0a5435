# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The MeMViT network and its builders.

``create_memvit(**explicit arguments)`` returns a plain module tree (patch embed, blocks,
norm, head, box blocks) in the style of PyTorchVideo's ``create_multiscale_vision_transformers``;
``memvit_16_16x4`` and ``memvit_24_32x3`` give the released models. Parameter names are the
reference's, so its ``model_state`` loads with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
from torch import Tensor, nn

from memvit_ext.ops import IMPLEMENTATIONS

from .attention import BoxMemoryAttention, MemoryAttention, MemoryPoolingAttention
from .blocks import MemoryMultiScaleBlock
from .heads import ClassificationHead, RoIHead, pad_boxes, unpad_boxes
from .memory import MemoryBackend, MemoryBackendStep, MemoryState, memory_step, parse_sampler
from .packed_linear import pack_linear_layers
from .stem import PatchEmbed

Triple = Sequence[int]


class MeMViT(nn.Module):
    """Memory-augmented MViTv2 (arXiv 2201.08383) for video classification or AVA detection.

    Run clip after clip, each batch row walking its videos in time order::

        model.memory.reset()
        for clips, ids in loader:              # clips (B, 3, T, H, W), ids: one per row
            out = model(clips, video_ids=ids)  # + boxes=(K, 5) for the AVA head

    ``video_ids`` (any hashable per row, or a 1-D tensor) tell the memory where a video ends:
    cached clips of another video are not attended (see :class:`MemoryState` for the exact
    rule). Without ``video_ids`` the forward neither reads nor writes memory. Memory is
    explicit state in ``model.memory`` (not in ``state_dict``); pass ``memory=`` to use another
    :class:`~memvit.models.memory.MemoryBackend`: another :class:`MemoryState` (e.g. one per group
    of video streams) or a :class:`~memvit.models.SlotMemory` (every cache slot present: the
    exported ONNX step).
    """

    def __init__(self, *, patch_embed: PatchEmbed, embed_dim: int, cls_embed_on: bool, blocks: nn.ModuleList,
                 norm: nn.Module, head: nn.Module | None, box_blocks: nn.ModuleList | None = None,
                 memory: MemoryState | None = None, max_boxes: int = 100) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if cls_embed_on else None
        self.patch_embed = patch_embed
        self.blocks = blocks
        self.box_blocks = box_blocks if box_blocks is not None else nn.ModuleList()
        self.norm = norm
        self.head = head
        self.memory = memory
        self.max_boxes = max_boxes
        self.cls_embed_on = cls_embed_on

    @property
    def is_detection(self) -> bool:
        return isinstance(self.head, RoIHead)

    def forward(self, x: Tensor | Sequence[Tensor], video_ids: Sequence[Hashable] | Tensor | None = None,
                boxes: Tensor | None = None, memory: MemoryBackend | None = None) -> Tensor:
        """Clip ``(B, 3, T, H, W)`` (or PySlowFast's one-pathway list) -> class scores.

        Kinetics head: ``(B, classes)`` (logits in training, softmax in eval). AVA head: ``boxes``
        ``(K, 5)`` rows ``[batch index, x1, y1, x2, y2]`` in input pixels, at most ``max_boxes``
        per clip -> ``(K, 80)`` sigmoid scores, boxes ordered by batch index (stable), as the
        reference returns them.
        """
        if isinstance(x, (list, tuple)):
            x = x[0]
        if self.is_detection and boxes is None:
            raise ValueError("the AVA model needs boxes: a (K, 5) tensor [batch index, x1, y1, x2, y2]")
        state = memory if memory is not None else self.memory
        with memory_step(state, video_ids, x.shape[0], x.device) as step:
            return self._forward(x, step, boxes)

    def forward_features(self, x: Tensor,
                         memory: MemoryBackendStep | None = None) -> tuple[Tensor, tuple[int, int, int]]:
        """Backbone: clip -> normalised tokens ``(B, cls + t*h*w, C)`` and the final grid.

        The token grid is read from the patch embedding's output (the reference derives it from
        the config's frame count and the input height, which agree for inputs divisible by the
        patch stride).
        """
        x, thw = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x), dim=1)
        for block in self.blocks:
            x, thw = block(x, thw, memory)
        return self.norm(x), thw

    def _forward(self, x: Tensor, step: MemoryBackendStep | None, boxes: Tensor | None) -> Tensor:
        B = x.shape[0]
        x, thw = self.forward_features(x, step)
        if not self.is_detection:
            if self.head is None:
                return x
            return self.head(x[:, 0] if self.cls_embed_on else x.mean(dim=1))
        if self.cls_embed_on:
            x = x[:, 1:]
        x = x.transpose(1, 2).reshape(B, x.shape[2], *thw)
        if len(self.box_blocks) == 0:
            return self.head(x, boxes)
        feats = self.head.pool(x, boxes)
        slots, valid, where = pad_boxes(feats, boxes[:, 0].long(), B, self.max_boxes)
        for block in self.box_blocks:
            slots, _ = block(slots, (1, 1, self.max_boxes), step, valid)
        return self.head.classify(unpad_boxes(slots, where))


def set_attention_implementation(model: nn.Module, implementation: str) -> None:
    """Choose how every memory attention of ``model`` runs the op: ``"auto"`` (the fused kernel
    where one serves the inputs), ``"kernel"`` (error if none does) or ``"reference"`` (the
    PyTorch fallback). Used to compare the two in one process."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    for module in model.modules():
        if isinstance(module, MemoryAttention):
            module.implementation = implementation


class attention_implementation:  # noqa: N801  (a context manager, named like torch.no_grad)
    """``with attention_implementation(model, "reference"): ...`` runs the op's fallback inside."""

    def __init__(self, model: nn.Module, implementation: str) -> None:
        self.model, self.implementation = model, implementation
        self.saved: list[tuple[MemoryAttention, str]] = []

    def __enter__(self) -> nn.Module:
        self.saved = [(m, m.implementation) for m in self.model.modules() if isinstance(m, MemoryAttention)]
        set_attention_implementation(self.model, self.implementation)
        return self.model

    def __exit__(self, *exc) -> None:
        for module, implementation in self.saved:
            module.implementation = implementation


def round_width(width: float, multiplier: float, divisor: int = 1) -> int:
    """``width * multiplier`` rounded to a multiple of ``divisor`` (never below 90% of it), as MViT."""
    width *= multiplier
    out = max(1, int(width + divisor / 2) // divisor * divisor)
    if out < 0.9 * width:
        out += divisor
    return int(out)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, MemoryPoolingAttention):
        for name, param in module.named_parameters(recurse=False):
            if name.startswith("rel_pos"):
                nn.init.trunc_normal_(param, std=0.02)


def create_memvit(
    *,
    # input and stem
    spatial_size: int,
    temporal_size: int,
    in_channels: int = 3,
    patch_embed_dim: int = 96,
    conv_patch_embed_kernel: Triple = (3, 7, 7),
    conv_patch_embed_stride: Triple = (2, 4, 4),
    conv_patch_embed_padding: Triple = (1, 3, 3),
    cls_embed_on: bool = True,
    # backbone
    depth: int = 16,
    num_heads: int = 1,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
    dropout_rate_block: float = 0.0,
    droppath_rate_block: float = 0.0,
    norm_eps: float = 1e-6,
    embed_dim_mul: Sequence[Sequence[float]] | None = None,
    atten_head_mul: Sequence[Sequence[float]] | None = None,
    pool_q_stride_size: Sequence[Sequence[int]] | None = None,
    pool_kv_stride_size: Sequence[Sequence[int]] | None = None,
    pool_kv_stride_adaptive: Triple | None = None,
    pool_kvq_kernel: Triple | None = (3, 3, 3),
    rel_pos_spatial: bool = True,
    rel_pos_temporal: bool = True,
    residual_pooling: bool = True,
    act_checkpoint: bool = False,
    # memory
    memory: bool = True,
    attn_max_len: int = 2,
    memory_sampler: str = "all",
    memory_exclude_layers: Sequence[int] = (),
    compress_kernel: Triple | None = None,
    compress_stride: Triple = (1, 1, 1),
    memory_isolation: str = "zero",
    # head
    head: str | None = "kinetics",
    num_classes: int = 400,
    head_dropout_rate: float = 0.5,
    head_activation: str | None = None,
    # AVA head
    roi_resolution: int = 7,
    spatial_scale_factor: float | None = None,
    roi_aligned: bool = True,
    box_depth: int = 0,
    box_drop_attn_rate: float = 0.0,
    box_drop_qkv_rate: float = 0.0,
    box_dropout_rate: float = 0.0,
    box_droppath_rate: float = 0.0,
    max_boxes: int = 100,
    mask_padded_boxes: bool = False,
) -> MeMViT:
    """Build a MeMViT (MViTv2 pool-first backbone + memory) with explicit arguments.

    The defaults are generic (one stage, no k/v pooling, one uncompressed memory clip, a
    classifier); the released architectures are the presets :data:`MEMVIT_16_16X4` and
    :data:`MEMVIT_24_32X3` (``create_memvit(**MEMVIT_16_16X4, ...)``, or the builders
    :func:`memvit_16_16x4` / :func:`memvit_24_32x3`). Stage layout follows MViT's conventions:

    * ``embed_dim_mul`` / ``atten_head_mul``: ``[block, factor]``; channels and heads grow at
      these blocks, inside attention (the skip path gets a Linear).
    * ``pool_q_stride_size``: ``[block, s_t, s_h, s_w]`` for every block that pools q (kernel
      ``pool_kvq_kernel``); default: every block, stride (1, 2, 2) at the ``embed_dim_mul``
      blocks and 1 elsewhere (the MeMViT configs).
    * ``pool_kv_stride_adaptive``: k/v stride of block 0, divided by each q stride as the
      resolution drops (or give ``pool_kv_stride_size`` per block).
    * ``spatial_size`` / ``temporal_size``: the training input; they size the relative-position
      tables (other input sizes work: spatial tables are interpolated at run time).

    Memory: ``memory=False`` gives plain MViTv2 (no memory tables, no memory state).
    ``attn_max_len`` (current + memory clips), ``memory_sampler`` (``gapN`` or ``all``),
    ``memory_exclude_layers`` (blocks that attend no memory), ``compress_kernel`` /
    ``compress_stride`` (None: no compression), ``memory_isolation`` (``"zero"``: the
    reference; ``"mask"``: other-video memory masked out of attention).

    Heads: ``head="kinetics"`` (cls token -> dropout -> Linear, softmax in eval), ``"ava"``
    (RoIAlign head with ``box_depth`` box-memory blocks, sigmoid) or None (features). The RoI
    scale is ``1 / spatial_scale_factor``, by default the network's total spatial stride.
    ``mask_padded_boxes`` masks the empty box slots (the reference attends them).
    """
    if head not in ("ava", "kinetics", None):
        raise ValueError(f"head must be 'ava', 'kinetics' or None; got {head!r}")
    parse_sampler(memory_sampler)
    patch_embed = PatchEmbed(in_channels, patch_embed_dim, conv_patch_embed_kernel, conv_patch_embed_stride,
                             conv_patch_embed_padding)
    dim_mul, head_mul = [1.0] * (depth + 1), [1.0] * (depth + 1)
    for i, m in embed_dim_mul or ():
        dim_mul[int(i)] = float(m)
    for i, m in atten_head_mul or ():
        head_mul[int(i)] = float(m)
    if pool_q_stride_size is None:
        growth = {int(i) for i, _ in embed_dim_mul or ()}
        pool_q_stride_size = [[i, 1, 2, 2] if i in growth else [i, 1, 1, 1] for i in range(depth)]
    stride_q: list[list[int] | None] = [None] * depth
    for entry in pool_q_stride_size:
        stride_q[int(entry[0])] = [int(s) for s in entry[1:]]
    stride_kv: list[list[int] | None] = [None] * depth
    if pool_kv_stride_adaptive is not None:
        current = [int(s) for s in pool_kv_stride_adaptive]
        for i in range(depth):
            if stride_q[i] is not None:
                current = [max(c // s, 1) for c, s in zip(current, stride_q[i])]
            stride_kv[i] = current
    for entry in pool_kv_stride_size or ():
        stride_kv[int(entry[0])] = [int(s) for s in entry[1:]]

    def kernel(stride: list[int] | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if stride is None:
            return (1, 1, 1), (1, 1, 1)
        return tuple(pool_kvq_kernel or [s + 1 if s > 1 else s for s in stride]), tuple(stride)

    drop_path = torch.linspace(0, droppath_rate_block, depth, device="cpu").tolist()  # plain floats
    input_size = [temporal_size // conv_patch_embed_stride[0], spatial_size // conv_patch_embed_stride[1],
                  spatial_size // conv_patch_embed_stride[2]]
    exclude = {int(i) for i in memory_exclude_layers}
    feature_stride = int(conv_patch_embed_stride[1])  # input pixels per token of the last map
    blocks = nn.ModuleList()
    dim, heads = patch_embed_dim, num_heads
    memory_layers = []
    for i in range(depth):
        heads = round_width(heads, head_mul[i])
        dim_out = round_width(dim, dim_mul[i], divisor=round_width(heads, head_mul[i]))
        kq, sq = kernel(stride_q[i])
        kkv, skv = kernel(stride_kv[i])
        name = f"blocks.{i}"
        attend = memory and i not in exclude
        if attend:
            memory_layers.append(name)
        attn = MemoryPoolingAttention(
            dim, dim_out, heads, input_size, qkv_bias=qkv_bias, kernel_q=kq, kernel_kv=kkv, stride_q=sq,
            stride_kv=skv, has_cls_embed=cls_embed_on, rel_pos_spatial=rel_pos_spatial,
            rel_pos_temporal=rel_pos_temporal, residual_pooling=residual_pooling, memory=memory,
            attend_memory=attend, attn_max_len=attn_max_len, compress_kernel=compress_kernel,
            compress_stride=compress_stride, dropout_rate=dropout_rate_block, norm_eps=norm_eps, memory_name=name)
        blocks.append(MemoryMultiScaleBlock(dim, dim_out, attn, mlp_ratio, dropout_rate_block, drop_path[i], sq,
                                            cls_embed_on, norm_eps, act_checkpoint))
        input_size = [size // s for size, s in zip(input_size, sq)]
        feature_stride *= sq[1]
        dim = dim_out

    box_blocks = nn.ModuleList()
    if head == "ava":
        box_drop_path = torch.linspace(0, box_droppath_rate, box_depth, device="cpu").tolist()
        for j in range(box_depth):
            name = f"box_blocks.{j}"
            if memory:
                memory_layers.append(name)
            attn = BoxMemoryAttention(dim, heads, qkv_bias, box_drop_attn_rate, box_drop_qkv_rate, box_dropout_rate,
                                      memory=memory, mask_padding=mask_padded_boxes, memory_name=name)
            box_blocks.append(MemoryMultiScaleBlock(dim, dim, attn, mlp_ratio, box_dropout_rate, box_drop_path[j],
                                                    None, False, norm_eps))
    head_module: nn.Module | None = None
    if head == "kinetics":
        head_module = ClassificationHead(dim, num_classes, head_dropout_rate, head_activation or "softmax")
    elif head == "ava":
        head_module = RoIHead(dim, num_classes, roi_resolution, spatial_scale_factor or feature_stride, roi_aligned,
                              head_dropout_rate, head_activation or "sigmoid")
    state = MemoryState(memory_layers, attn_max_len, memory_sampler, memory_isolation) if memory else None
    model = MeMViT(patch_embed=patch_embed, embed_dim=patch_embed_dim, cls_embed_on=cls_embed_on, blocks=blocks,
                   norm=nn.LayerNorm(dim, eps=norm_eps), head=head_module, box_blocks=box_blocks, memory=state,
                   max_boxes=max_boxes)
    if model.cls_token is not None:
        nn.init.trunc_normal_(model.cls_token, std=0.02)
    model.apply(_init_weights)
    pack_linear_layers(model)  # float32 CPU inference on oneDNN (packed_linear.py)
    return model


# The released architectures: every argument in which MeMViT-16 / MeMViT-24 differ from the
# builder's generic defaults. These dicts are the one statement of each model: the builders
# below, the YAML configs (MODEL.PRESET) and the test shapes all read them.
_MEMVIT_COMMON = dict(
    spatial_size=224, pool_kv_stride_adaptive=(1, 8, 8), pool_kvq_kernel=(3, 3, 3), droppath_rate_block=0.4,
    attn_max_len=3, compress_kernel=(7, 3, 3), compress_stride=(4, 2, 2), spatial_scale_factor=32,
    box_depth=1, box_drop_attn_rate=0.5, box_drop_qkv_rate=0.3, box_dropout_rate=0.3, box_droppath_rate=0.1,
)
MEMVIT_16_16X4 = dict(
    _MEMVIT_COMMON, temporal_size=16, depth=16,
    embed_dim_mul=((1, 2.0), (3, 2.0), (14, 2.0)), atten_head_mul=((1, 2.0), (3, 2.0), (14, 2.0)),
    memory_sampler="gap2", memory_exclude_layers=tuple(range(1, 16, 2)),
)
MEMVIT_24_32X3 = dict(
    _MEMVIT_COMMON, temporal_size=32, depth=24,
    embed_dim_mul=((2, 2.0), (5, 2.0), (21, 2.0)), atten_head_mul=((2, 2.0), (5, 2.0), (21, 2.0)),
    memory_sampler="gap3", memory_exclude_layers=tuple(range(1, 24, 2)),
)
PRESETS = {"memvit_16_16x4": MEMVIT_16_16X4, "memvit_24_32x3": MEMVIT_24_32X3}


def _released(preset: str, head: str | None, num_classes: int | None, weights: str | None, progress: bool,
              kwargs: dict) -> MeMViT:
    if weights is None:
        head = head or "ava"
        if head not in ("ava", "kinetics"):
            raise ValueError(f"head must be 'ava' or 'kinetics'; got {head!r}")
        if num_classes is None:
            num_classes = 80 if head == "ava" else 400
        return create_memvit(**{**PRESETS[preset], "head": head, "num_classes": num_classes, **kwargs})
    from ..weights import load_weights, lookup

    entry = lookup(preset, weights, head, num_classes)
    if head not in (None, entry.head) or num_classes not in (None, entry.num_classes):
        raise ValueError(f"weights={weights!r} are {entry.name}, a {entry.head} model with {entry.num_classes} "
                         f"classes; got head={head!r}, num_classes={num_classes}")
    model = create_memvit(**{**PRESETS[preset], "head": entry.head, "num_classes": entry.num_classes,
                             **entry.model_kwargs, **kwargs})
    return load_weights(model, entry, progress=progress)


def memvit_16_16x4(head: str | None = None, num_classes: int | None = None, *, weights: str | None = None,
                   progress: bool = True, **kwargs) -> MeMViT:
    """MeMViT-16, 16 frames x stride 4: AVA (80 classes, box memory; the default) or Kinetics
    (``head="kinetics"``, 400 classes by default). ``kwargs`` override any :func:`create_memvit` argument.

    ``weights``: the authors' checkpoint, ``"ava"`` (AVA, 29.3 mAP) or ``"k400"`` (Kinetics-400),
    downloaded into the torch hub cache on first use (:mod:`memvit.weights`) and loaded strictly."""
    return _released("memvit_16_16x4", head, num_classes, weights, progress, kwargs)


def memvit_24_32x3(head: str | None = None, num_classes: int | None = None, *, weights: str | None = None,
                   progress: bool = True, **kwargs) -> MeMViT:
    """MeMViT-24, 32 frames x stride 3: AVA (80 classes; the default) or Kinetics (``head="kinetics"``;
    ``num_classes`` 600 or 700 for the released K600/K700 models, 400 by default).

    ``weights``: ``"ava_k600"`` / ``"ava_k700"`` (AVA from the Kinetics-600/700 models, 32.3 / 34.4 mAP)
    or ``"k600"`` / ``"k700"`` (the Kinetics models), as :func:`memvit_16_16x4`."""
    return _released("memvit_24_32x3", head, num_classes, weights, progress, kwargs)
