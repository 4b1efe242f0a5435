# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""PySlowFast-style YAML configs: defaults, loading with ``KEY VALUE`` overrides, and the
translation into :func:`memvit.models.create_memvit` arguments.

Modules never read the config: :func:`model_kwargs` turns it into explicit arguments at the
edge (the CLIs and, later, the training script). Key names are PySlowFast's/MeMViT's, so the
released YAML files and the ``cfg`` text stored in their checkpoints read the same way; keys
we added are marked below.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from fvcore.common.config import CfgNode


def get_default_config() -> CfgNode:
    """Every key the configs may set, with PySlowFast/MeMViT's defaults."""
    c = CfgNode()
    c.NUM_GPUS = 1
    c.NUM_SHARDS = 1
    c.SHARD_ID = 0
    c.RNG_SEED = 0
    c.OUTPUT_DIR = "."
    c.LOG_MODEL_INFO = False

    c.MEMVIT = CfgNode()
    c.MEMVIT.ENABLE = False
    c.MEMVIT.ATTN_MAX_LEN = 2
    c.MEMVIT.SAMPLER = "all"
    c.MEMVIT.EXCLUDE_LAYERS = []
    c.MEMVIT.ISOLATION = "zero"  # ours: "zero" (reference) or "mask"
    c.MEMVIT.MASK_PADDED_BOXES = False  # ours: mask empty box slots in the box block
    c.MEMVIT.MAX_BOXES = 100  # ours: box slots per clip (the reference's fixed 100)
    c.MEMVIT.COMPRESS = CfgNode()
    c.MEMVIT.COMPRESS.ENABLE = False
    c.MEMVIT.COMPRESS.POOL_KERNEL = [3, 3, 3]
    c.MEMVIT.COMPRESS.POOL_STRIDE = [2, 2, 2]

    c.MVIT = CfgNode()
    c.MVIT.MODE = "conv"
    c.MVIT.POOL_FIRST = False
    c.MVIT.CLS_EMBED_ON = True
    c.MVIT.PATCH_KERNEL = [3, 7, 7]
    c.MVIT.PATCH_STRIDE = [2, 4, 4]
    c.MVIT.PATCH_PADDING = [2, 4, 4]
    c.MVIT.PATCH_2D = False
    c.MVIT.EMBED_DIM = 96
    c.MVIT.NUM_HEADS = 1
    c.MVIT.MLP_RATIO = 4.0
    c.MVIT.QKV_BIAS = True
    c.MVIT.DROPPATH_RATE = 0.1
    c.MVIT.DEPTH = 16
    c.MVIT.NORM = "layernorm"
    c.MVIT.DIM_MUL = []
    c.MVIT.HEAD_MUL = []
    c.MVIT.POOL_KV_STRIDE = []
    c.MVIT.POOL_KV_STRIDE_ADAPTIVE = []
    c.MVIT.POOL_Q_STRIDE = []
    c.MVIT.POOL_KVQ_KERNEL = []
    c.MVIT.ZERO_DECAY_POS_CLS = True
    c.MVIT.NORM_STEM = False
    c.MVIT.SEP_POS_EMBED = False
    c.MVIT.DROPOUT_RATE = 0.0
    c.MVIT.USE_ABS_POS = True
    c.MVIT.REL_POS_SPATIAL = False
    c.MVIT.REL_POS_TEMPORAL = False
    c.MVIT.DROP_ATTN_RATE = 0.0
    c.MVIT.FRAME_LEVEL = False
    c.MVIT.CAUSAL = False
    c.MVIT.BOX_DEPTH = 0
    c.MVIT.BOX_DROPPATH_RATE = 0.1
    c.MVIT.BOX_DROP_ATTN_RATE = 0.0
    c.MVIT.BOX_DROP_QKV_RATE = 0.0
    c.MVIT.BOX_DROPOUT_RATE = 0.0
    c.MVIT.CONV_Q = 0
    c.MVIT.DIM_MUL_IN_ATT = False
    c.MVIT.SEPARATE_QKV = False

    c.MODEL = CfgNode()
    c.MODEL.ARCH = "mvit"
    c.MODEL.MODEL_NAME = "MViT"
    c.MODEL.NUM_CLASSES = 400
    c.MODEL.LOSS_FUNC = "cross_entropy"
    c.MODEL.DROPOUT_RATE = 0.5
    c.MODEL.HEAD_ACT = "softmax"
    c.MODEL.ACT_CHECKPOINT = False

    c.DATA = CfgNode()
    c.DATA.PATH_TO_DATA_DIR = ""
    c.DATA.NUM_FRAMES = 8
    c.DATA.SAMPLING_RATE = 8
    c.DATA.TRAIN_JITTER_SCALES = [256, 320]
    c.DATA.TRAIN_CROP_SIZE = 224
    c.DATA.TEST_CROP_SIZE = 256
    c.DATA.INPUT_CHANNEL_NUM = [3]
    c.DATA.MEAN = [0.45, 0.45, 0.45]
    c.DATA.STD = [0.225, 0.225, 0.225]
    c.DATA.RANDOM_FLIP = True
    c.DATA.USE_OFFSET_SAMPLING = False
    c.DATA.DECODING_BACKEND = "pyav"
    c.DATA.TRAIN_JITTER_SCALES_RELATIVE = []
    c.DATA.TRAIN_JITTER_ASPECT_RELATIVE = []
    c.DATA.PERTURB_AVA_FRAMES = False
    c.DATA.TRAIN_PCA_EIGVAL = [0.225, 0.224, 0.229]
    c.DATA.TRAIN_PCA_EIGVEC = [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]

    c.DETECTION = CfgNode()
    c.DETECTION.ENABLE = False
    c.DETECTION.ALIGNED = True
    c.DETECTION.SPATIAL_SCALE_FACTOR = 16
    c.DETECTION.ROI_XFORM_RESOLUTION = 7

    c.AVA = CfgNode()
    c.AVA.FRAME_DIR = "/mnt/fair-flash3-east/ava_trainval_frames.img/"
    c.AVA.FRAME_LIST_DIR = "/mnt/vol/gfsai-flash3-east/ai-group/users/haoqifan/ava/frame_list/"
    c.AVA.ANNOTATION_DIR = "/mnt/vol/gfsai-flash3-east/ai-group/users/haoqifan/ava/frame_list/"
    c.AVA.TRAIN_LISTS = ["train.csv"]
    c.AVA.TEST_LISTS = ["val.csv"]
    c.AVA.TRAIN_GT_BOX_LISTS = ["ava_train_v2.2.csv"]
    c.AVA.TRAIN_PREDICT_BOX_LISTS = []
    c.AVA.TEST_PREDICT_BOX_LISTS = ["ava_val_predicted_boxes.csv"]
    c.AVA.DETECTION_SCORE_THRESH = 0.9
    c.AVA.BGR = False
    c.AVA.TRAIN_USE_COLOR_AUGMENTATION = False
    c.AVA.TRAIN_PCA_JITTER_ONLY = True
    c.AVA.TEST_FORCE_FLIP = False
    c.AVA.FULL_TEST_ON_VAL = False
    c.AVA.LABEL_MAP_FILE = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    c.AVA.EXCLUSION_FILE = "ava_val_excluded_timestamps_v2.2.csv"
    c.AVA.GROUNDTRUTH_FILE = "ava_val_v2.2.csv"
    c.AVA.IMG_PROC_BACKEND = "cv2"

    c.SOLVER = CfgNode()
    c.SOLVER.BASE_LR = 0.1
    c.SOLVER.BASE_LR_SCALE_NUM_SHARDS = False
    c.SOLVER.LR_POLICY = "cosine"
    c.SOLVER.COSINE_END_LR = 0.0
    c.SOLVER.COSINE_AFTER_WARMUP = False
    c.SOLVER.MAX_EPOCH = 300
    c.SOLVER.MOMENTUM = 0.9
    c.SOLVER.DAMPENING = 0.0
    c.SOLVER.NESTEROV = True
    c.SOLVER.WEIGHT_DECAY = 1e-4
    c.SOLVER.WARMUP_FACTOR = 0.1
    c.SOLVER.WARMUP_EPOCHS = 0.0
    c.SOLVER.WARMUP_START_LR = 0.01
    c.SOLVER.OPTIMIZING_METHOD = "sgd"
    c.SOLVER.ZERO_WD_1D_PARAM = False
    c.SOLVER.CLIP_GRAD_VAL = -1.0
    c.SOLVER.CLIP_GRAD_L2NORM = -1.0

    c.TRAIN = CfgNode()
    c.TRAIN.ENABLE = True
    c.TRAIN.DATASET = "kinetics"
    c.TRAIN.BATCH_SIZE = 64
    c.TRAIN.EVAL_PERIOD = 10
    c.TRAIN.CHECKPOINT_PERIOD = 10
    c.TRAIN.AUTO_RESUME = True
    c.TRAIN.CHECKPOINT_FILE_PATH = ""
    c.TRAIN.CHECKPOINT_TYPE = "pytorch"
    c.TRAIN.CHECKPOINT_INFLATE = False
    c.TRAIN.CHECKPOINT_EPOCH_RESET = False
    c.TRAIN.MIXED_PRECISION = False

    c.TEST = CfgNode()
    c.TEST.ENABLE = True
    c.TEST.DATASET = "kinetics"
    c.TEST.BATCH_SIZE = 8
    c.TEST.CHECKPOINT_FILE_PATH = ""
    c.TEST.NUM_ENSEMBLE_VIEWS = 10
    c.TEST.NUM_SPATIAL_CROPS = 3
    c.TEST.CHECKPOINT_TYPE = "pytorch"

    c.DATA_LOADER = CfgNode()
    c.DATA_LOADER.NUM_WORKERS = 8
    c.DATA_LOADER.PIN_MEMORY = True

    c.BN = CfgNode()
    c.BN.USE_PRECISE_STATS = False
    c.BN.NUM_BATCHES_PRECISE = 200
    c.BN.WEIGHT_DECAY = 0.0
    return c


def load_config(path: str | None = None, overrides: Sequence[str] = ()) -> CfgNode:
    """Defaults, then the YAML at ``path``, then ``KEY VALUE`` pairs (``MEMVIT.SAMPLER gap3``).

    Raises ``KeyError`` for keys that do not exist (a typo is an error, as in PySlowFast).
    """
    cfg = get_default_config()
    overrides = list(overrides)
    if len(overrides) % 2:
        raise ValueError(f"overrides come in KEY VALUE pairs; got {len(overrides)} items: {overrides}")
    for key in overrides[0::2]:
        node = cfg
        for part in key.split("."):
            if not isinstance(node, CfgNode) or part not in node:
                raise KeyError(f"unknown config key {key!r}")
            node = node[part]
    try:
        if path is not None:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"config file not found: {path}")
            cfg.merge_from_file(path)
        cfg.merge_from_list(overrides)
    except AssertionError as error:  # yacs reports unknown keys and type clashes by assertion
        raise KeyError(f"{path or 'overrides'}: {error}") from None
    return cfg


def _unsupported(cfg: CfgNode) -> list[str]:
    checks = [
        (not cfg.MVIT.POOL_FIRST, "MVIT.POOL_FIRST must be True (MeMViT pools before projecting)"),
        (not cfg.MVIT.DIM_MUL_IN_ATT, "MVIT.DIM_MUL_IN_ATT must be True (channels grow inside attention)"),
        (cfg.MVIT.USE_ABS_POS, "MVIT.USE_ABS_POS is not supported (MeMViT uses relative positions)"),
        (cfg.MVIT.MODE != "conv", "MVIT.MODE must be 'conv'"),
        (cfg.MVIT.NORM != "layernorm", "MVIT.NORM must be 'layernorm'"),
        (cfg.MVIT.CONV_Q > 1, "MVIT.CONV_Q > 1 (a convolution on q) is not supported; 0 or 1"),
        (cfg.MVIT.PATCH_2D, "MVIT.PATCH_2D is not supported"),
        (cfg.MVIT.NORM_STEM, "MVIT.NORM_STEM is not supported"),
        (cfg.MVIT.SEP_POS_EMBED, "MVIT.SEP_POS_EMBED is not supported"),
        (cfg.MVIT.CAUSAL, "MVIT.CAUSAL is not supported"),
        (cfg.MVIT.FRAME_LEVEL, "MVIT.FRAME_LEVEL is not supported"),
        (cfg.MVIT.DROP_ATTN_RATE > 0, "MVIT.DROP_ATTN_RATE > 0 in the backbone is not supported"),
    ]
    return [message for bad, message in checks if bad]


def model_kwargs(cfg: CfgNode) -> dict[str, Any]:
    """The :func:`memvit.models.create_memvit` arguments a config describes."""
    problems = _unsupported(cfg)
    if problems:
        raise ValueError("config not supported: " + "; ".join(problems))
    m, mem = cfg.MVIT, cfg.MEMVIT
    detection = cfg.DETECTION.ENABLE
    if not detection and m.BOX_DEPTH > 0:
        raise ValueError("MVIT.BOX_DEPTH > 0 needs DETECTION.ENABLE (the box block is part of the AVA head)")
    return dict(
        spatial_size=cfg.DATA.TRAIN_CROP_SIZE,
        temporal_size=cfg.DATA.NUM_FRAMES,
        in_channels=cfg.DATA.INPUT_CHANNEL_NUM[0],
        patch_embed_dim=m.EMBED_DIM,
        conv_patch_embed_kernel=tuple(m.PATCH_KERNEL),
        conv_patch_embed_stride=tuple(m.PATCH_STRIDE),
        conv_patch_embed_padding=tuple(m.PATCH_PADDING),
        cls_embed_on=m.CLS_EMBED_ON,
        depth=m.DEPTH,
        num_heads=m.NUM_HEADS,
        mlp_ratio=m.MLP_RATIO,
        qkv_bias=m.QKV_BIAS,
        dropout_rate_block=m.DROPOUT_RATE,
        droppath_rate_block=m.DROPPATH_RATE,
        embed_dim_mul=[list(x) for x in m.DIM_MUL],
        atten_head_mul=[list(x) for x in m.HEAD_MUL],
        pool_q_stride_size=[list(x) for x in m.POOL_Q_STRIDE] or None,
        pool_kv_stride_size=[list(x) for x in m.POOL_KV_STRIDE] or None,
        pool_kv_stride_adaptive=list(m.POOL_KV_STRIDE_ADAPTIVE) or None,
        pool_kvq_kernel=list(m.POOL_KVQ_KERNEL) or None,
        rel_pos_spatial=m.REL_POS_SPATIAL,
        rel_pos_temporal=m.REL_POS_TEMPORAL,
        residual_pooling=m.CONV_Q == 1,
        act_checkpoint=cfg.MODEL.ACT_CHECKPOINT,
        memory=mem.ENABLE,
        attn_max_len=mem.ATTN_MAX_LEN,
        memory_sampler=mem.SAMPLER,
        memory_exclude_layers=list(mem.EXCLUDE_LAYERS),
        compress_kernel=list(mem.COMPRESS.POOL_KERNEL) if mem.COMPRESS.ENABLE else None,
        compress_stride=list(mem.COMPRESS.POOL_STRIDE),
        memory_isolation=mem.ISOLATION,
        head="ava" if detection else "kinetics",
        num_classes=cfg.MODEL.NUM_CLASSES,
        head_dropout_rate=cfg.MODEL.DROPOUT_RATE,
        head_activation=cfg.MODEL.HEAD_ACT,
        roi_resolution=cfg.DETECTION.ROI_XFORM_RESOLUTION,
        spatial_scale_factor=cfg.DETECTION.SPATIAL_SCALE_FACTOR,
        roi_aligned=cfg.DETECTION.ALIGNED,
        box_depth=m.BOX_DEPTH,
        box_drop_attn_rate=m.BOX_DROP_ATTN_RATE,
        box_drop_qkv_rate=m.BOX_DROP_QKV_RATE,
        box_dropout_rate=m.BOX_DROPOUT_RATE,
        box_droppath_rate=m.BOX_DROPPATH_RATE,
        max_boxes=mem.MAX_BOXES,
        mask_padded_boxes=mem.MASK_PADDED_BOXES,
    )


def build_model(cfg: CfgNode):
    """``create_memvit(**model_kwargs(cfg))``: the model a config describes (random weights)."""
    from .models import create_memvit

    return create_memvit(**model_kwargs(cfg))


def input_shape(cfg: CfgNode, train: bool = True) -> tuple[int, int, int, int]:
    """(C, T, H, W) of one clip: the training or the test crop."""
    size = cfg.DATA.TRAIN_CROP_SIZE if train else cfg.DATA.TEST_CROP_SIZE
    return (cfg.DATA.INPUT_CHANNEL_NUM[0], cfg.DATA.NUM_FRAMES, size, size)
