# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""PySlowFast-style YAML configs: defaults, loading with ``KEY VALUE`` overrides, presets, and
the translation into :func:`memvit.models.create_memvit` arguments.

* Key names and defaults are PySlowFast's/MeMViT's, so the reference's YAML files and the
  ``cfg`` text stored in its checkpoints load unchanged. The defaults hold only keys memvit
  reads; keys the reference defines for other models or features (:data:`REFERENCE_ONLY_KEYS`)
  are accepted and reported once as ignored; any other key is an error naming the closest
  valid key. Keys we added are marked "ours" below.
* Nothing silent: a value memvit cannot honour is refused at load; a setting it accepts but
  does not act on (e.g. ``NUM_SHARDS``: torchrun decides) is reported at load, with the reason.
  Where the reference's effective behaviour differs from its evident intent, the default is
  the behaviour (the paper's numbers came from it) and an "ours" key gives the intent
  (docs/training.md, "Reference quirks").
* ``MODEL.PRESET`` (ours) names a released architecture (:data:`memvit.models.PRESETS`): its
  model keys are filled in before the YAML's own values, so a config states only its recipe.
* Modules never read the config: :func:`model_kwargs` turns it into explicit arguments at the
  edge (the command-line tools).
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from fvcore.common.config import CfgNode
from yacs.config import _check_and_coerce_cfg_value_type

from .cli import UserError

_decode_cfg_value = CfgNode._decode_cfg_value  # yacs: YAML strings such as "1e-6" are read as Python literals

logger = logging.getLogger(__name__)


class ConfigError(UserError, KeyError, ValueError):  # KeyError, ValueError: what callers caught before
    """An unknown key, a value of the wrong type or a setting memvit cannot run (names the key and
    where it came from). ``str()`` is plain: UserError's, not KeyError's quoted one."""


def get_default_config() -> CfgNode:
    """Every key memvit reads, with PySlowFast/MeMViT's defaults (data paths: our layout)."""
    c = CfgNode()
    c.NUM_GPUS = 1
    c.NUM_SHARDS = 1
    c.SHARD_ID = 0
    c.RNG_SEED = 1
    c.OUTPUT_DIR = "./tmp"
    c.LOG_PERIOD = 10
    c.LOG_MODEL_INFO = True
    c.DIST_BACKEND = "nccl"

    c.MODEL = CfgNode()
    c.MODEL.PRESET = ""  # ours: a name of memvit.models.PRESETS
    c.MODEL.ARCH = "mvit"
    c.MODEL.MODEL_NAME = "MViT"
    c.MODEL.NUM_CLASSES = 400
    c.MODEL.LOSS_FUNC = "cross_entropy"
    c.MODEL.DROPOUT_RATE = 0.5
    c.MODEL.HEAD_ACT = "softmax"
    c.MODEL.ACT_CHECKPOINT = False

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
    c.MVIT.POOL_KV_STRIDE = None  # the reference's None: no key/value pooling stride list
    c.MVIT.POOL_KV_STRIDE_ADAPTIVE = []
    c.MVIT.POOL_Q_STRIDE = []
    c.MVIT.POOL_KVQ_KERNEL = []
    c.MVIT.ZERO_DECAY_POS_CLS = True  # as the reference: exempts nothing (docs/training.md, reference quirks)
    c.MVIT.ZERO_DECAY_POS_CLS_EXEMPT = False  # ours: True exempts the cls token and rel-pos tables (the intent)
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

    c.DATA = CfgNode()
    c.DATA.NUM_FRAMES = 8
    c.DATA.SAMPLING_RATE = 8
    c.DATA.TRAIN_JITTER_SCALES = [256, 320]
    c.DATA.TRAIN_CROP_SIZE = 224
    c.DATA.TEST_CROP_SIZE = 256
    c.DATA.INPUT_CHANNEL_NUM = [3, 3]
    c.DATA.MEAN = [0.45, 0.45, 0.45]
    c.DATA.STD = [0.225, 0.225, 0.225]
    c.DATA.RANDOM_FLIP = True
    c.DATA.PERTURB_AVA_FRAMES = False
    c.DATA.TRAIN_PCA_EIGVAL = [0.225, 0.224, 0.229]
    c.DATA.TRAIN_PCA_EIGVEC = [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]

    c.DETECTION = CfgNode()
    c.DETECTION.ENABLE = False
    c.DETECTION.ALIGNED = True
    c.DETECTION.SPATIAL_SCALE_FACTOR = 16
    c.DETECTION.ROI_XFORM_RESOLUTION = 7

    c.AVA = CfgNode()
    c.AVA.FRAME_DIR = "data/ava/frames"
    c.AVA.FRAME_LIST_DIR = "data/ava/frame_lists"
    c.AVA.ANNOTATION_DIR = "data/ava/annotations"
    c.AVA.TRAIN_LISTS = ["train.csv"]
    c.AVA.TEST_LISTS = ["val.csv"]
    c.AVA.TRAIN_GT_BOX_LISTS = ["ava_train_v2.2.csv"]
    c.AVA.TRAIN_PREDICT_BOX_LISTS = []
    c.AVA.TEST_PREDICT_BOX_LISTS = ["ava_val_predicted_boxes.csv"]
    c.AVA.DETECTION_SCORE_THRESH = 0.9
    c.AVA.BGR = False
    c.AVA.TRAIN_USE_COLOR_AUGMENTATION = True
    c.AVA.TRAIN_PCA_JITTER_ONLY = False
    c.AVA.TEST_FORCE_FLIP = False  # val/test clips (and their boxes) flipped horizontally
    c.AVA.FULL_TEST_ON_VAL = False
    c.AVA.LABEL_MAP_FILE = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    c.AVA.EXCLUSION_FILE = "ava_val_excluded_timestamps_v2.2.csv"
    c.AVA.GROUNDTRUTH_FILE = "ava_val_v2.2.csv"
    c.AVA.IMG_PROC_BACKEND = "cv2"
    c.AVA.MEAN_STD_ORDER = "bgr"  # ours: DATA.MEAN/STD index order: "bgr" (the reference's loader) or "rgb"
    c.AVA.MERGE_BOXES_BY_VALUE = False  # ours: True merges box rows by value, not by their CSV text
    c.AVA.VIDEO_DIR = ""  # ours: clips decoded from VIDEO_DIR/<video id>.<ext> instead of frame folders
    c.AVA.TIMELINE_START = 900.0  # ours: video time (s) of timeline frame 0 (AVA: 900; own videos: 0)
    c.AVA.KEYFRAME_RANGE = [902, 1798]  # ours: first and last keyframe second read from box files; [] = any

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
    c.SOLVER.WARMUP_EPOCHS = 0.0
    c.SOLVER.WARMUP_START_LR = 0.01
    c.SOLVER.OPTIMIZING_METHOD = "sgd"
    c.SOLVER.ZERO_WD_1D_PARAM = False
    c.SOLVER.CLIP_GRAD_VAL = None
    c.SOLVER.CLIP_GRAD_L2NORM = -1.0  # <= 0: off; not applied when CLIP_GRAD_VAL is set (as the reference)
    c.SOLVER.CLIP_GRAD_BOTH = False  # ours: with both set, clip by value, then by norm

    c.TRAIN = CfgNode()
    c.TRAIN.ENABLE = True
    c.TRAIN.DATASET = "kinetics"
    c.TRAIN.BATCH_SIZE = 64
    c.TRAIN.EVAL_PERIOD = 10
    c.TRAIN.CHECKPOINT_PERIOD = 10
    c.TRAIN.CHECKPOINT_PERIOD_ITERS = 0  # ours: also checkpoint every N iterations (0: off)
    c.TRAIN.STREAM_GROUPS = 1  # ours: groups of BATCH_SIZE streams taking turns, each with its memory (1: reference)
    c.TRAIN.AUTO_RESUME = True
    c.TRAIN.CHECKPOINT_FILE_PATH = ""
    c.TRAIN.CHECKPOINT_TYPE = "pytorch"
    c.TRAIN.CHECKPOINT_EPOCH_RESET = False
    c.TRAIN.MIXED_PRECISION = False

    c.TEST = CfgNode()
    c.TEST.ENABLE = True
    c.TEST.DATASET = "kinetics"
    c.TEST.BATCH_SIZE = 8
    c.TEST.CHECKPOINT_FILE_PATH = ""
    c.TEST.FLIP_AVERAGE = False  # ours: score = mean of the plain and the flipped clip's (two passes)

    c.DATA_LOADER = CfgNode()
    c.DATA_LOADER.NUM_WORKERS = 8
    c.DATA_LOADER.PIN_MEMORY = True
    return c


# Keys the reference (facebookresearch/MeMViT's PySlowFast config) defines that memvit does not
# read: other architectures, other datasets, visualisation, multigrid, BatchNorm, and options
# of features we do not have. A config that sets them still loads; they are logged as ignored.
# With the keys of get_default_config they cover every key of the reference's defaults
# (tests/data/reference_config_keys.yaml; tests/test_reference_settings.py checks it).
_REFERENCE_ONLY = """
AUG.ENABLE AUG.NUM_SAMPLE AUG.COLOR_JITTER AUG.AA_TYPE AUG.INTERPOLATION AUG.RE_PROB AUG.RE_MODE AUG.RE_COUNT
AUG.RE_SPLIT MIXUP.ENABLE MIXUP.ALPHA MIXUP.CUTMIX_ALPHA MIXUP.PROB MIXUP.SWITCH_PROB MIXUP.LABEL_SMOOTH_VALUE
BN.USE_PRECISE_STATS BN.NUM_BATCHES_PRECISE BN.WEIGHT_DECAY BN.NORM_TYPE BN.NUM_SPLITS BN.NUM_SYNC_DEVICES
TRAIN.TRAIN_DATA_LIST TRAIN.VAL_DATA_LIST TRAIN.CHECKPOINT_INFLATE TRAIN.CHECKPOINT_NO_LOAD_OPT
TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN TRAIN.CHECKPOINT_IN_INIT
TEST.DATA_LIST TEST.NUM_ENSEMBLE_VIEWS TEST.NUM_SPATIAL_CROPS TEST.CHECKPOINT_TYPE TEST.SAVE_RESULTS_PATH
TEST.FULLY_CONV_TEST TEST.SAVE_KINETICS_PREDS
RESNET.TRANS_FUNC RESNET.NUM_GROUPS RESNET.WIDTH_PER_GROUP RESNET.INPLACE_RELU RESNET.STRIDE_1X1
RESNET.ZERO_INIT_FINAL_BN RESNET.DEPTH RESNET.NUM_BLOCK_TEMP_KERNEL RESNET.SPATIAL_STRIDES RESNET.SPATIAL_DILATIONS
X3D.WIDTH_FACTOR X3D.DEPTH_FACTOR X3D.BOTTLENECK_FACTOR X3D.DIM_C5 X3D.DIM_C1 X3D.SCALE_RES2 X3D.BN_LIN5
X3D.CHANNELWISE_3x3x3
NONLOCAL.LOCATION NONLOCAL.GROUP NONLOCAL.INSTANTIATION NONLOCAL.POOL
MODEL.NUM_CLASSES_LIST MODEL.SINGLE_PATHWAY_ARCH MODEL.MULTI_PATHWAY_ARCH MODEL.DROPCONNECT_RATE MODEL.FC_INIT_STD
MVIT.SEPARATE_QKV
SLOWFAST.BETA_INV SLOWFAST.ALPHA SLOWFAST.FUSION_CONV_CHANNEL_RATIO SLOWFAST.FUSION_KERNEL_SZ
DATA.PATH_TO_DATA_DIR DATA.PATH_LABEL_SEPARATOR DATA.PATH_PREFIX DATA.PATH_TO_PRELOAD_IMDB
DATA.TRAIN_JITTER_SCALES_RELATIVE DATA.TRAIN_JITTER_ASPECT_RELATIVE DATA.USE_OFFSET_SAMPLING
DATA.TRAIN_JITTER_MOTION_SHIFT DATA.TARGET_FPS DATA.DECODING_BACKEND DATA.INV_UNIFORM_SAMPLE DATA.MULTI_LABEL
DATA.ENSEMBLE_METHOD DATA.REVERSE_INPUT_CHANNEL
SOLVER.GAMMA SOLVER.STEP_SIZE SOLVER.STEPS SOLVER.LRS SOLVER.WARMUP_FACTOR
BENCHMARK.NUM_EPOCHS BENCHMARK.LOG_PERIOD BENCHMARK.SHUFFLE
DATA_LOADER.TEST_NUM_WORKERS DATA_LOADER.ENABLE_MULTI_THREAD_DECODE
MULTIGRID.EPOCH_FACTOR MULTIGRID.SHORT_CYCLE MULTIGRID.SHORT_CYCLE_FACTORS MULTIGRID.LONG_CYCLE
MULTIGRID.LONG_CYCLE_FACTORS MULTIGRID.BN_BASE_SIZE MULTIGRID.EVAL_FREQ MULTIGRID.LONG_CYCLE_SAMPLING_RATE
MULTIGRID.DEFAULT_B MULTIGRID.DEFAULT_T MULTIGRID.DEFAULT_S
TENSORBOARD.ENABLE TENSORBOARD.PREDICTIONS_PATH TENSORBOARD.LOG_DIR TENSORBOARD.CLASS_NAMES_PATH
TENSORBOARD.CATEGORIES_PATH TENSORBOARD.CONFUSION_MATRIX.ENABLE TENSORBOARD.CONFUSION_MATRIX.FIGSIZE
TENSORBOARD.CONFUSION_MATRIX.SUBSET_PATH TENSORBOARD.HISTOGRAM.ENABLE TENSORBOARD.HISTOGRAM.SUBSET_PATH
TENSORBOARD.HISTOGRAM.TOPK TENSORBOARD.HISTOGRAM.FIGSIZE TENSORBOARD.MODEL_VIS.ENABLE
TENSORBOARD.MODEL_VIS.MODEL_WEIGHTS TENSORBOARD.MODEL_VIS.ACTIVATIONS TENSORBOARD.MODEL_VIS.INPUT_VIDEO
TENSORBOARD.MODEL_VIS.LAYER_LIST TENSORBOARD.MODEL_VIS.TOPK_PREDS TENSORBOARD.MODEL_VIS.COLORMAP
TENSORBOARD.MODEL_VIS.GRAD_CAM.ENABLE TENSORBOARD.MODEL_VIS.GRAD_CAM.LAYER_LIST
TENSORBOARD.MODEL_VIS.GRAD_CAM.USE_TRUE_LABEL TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP
TENSORBOARD.WRONG_PRED_VIS.ENABLE TENSORBOARD.WRONG_PRED_VIS.TAG TENSORBOARD.WRONG_PRED_VIS.SUBSET_PATH
DEMO.ENABLE DEMO.LABEL_FILE_PATH DEMO.WEBCAM DEMO.INPUT_VIDEO DEMO.DISPLAY_WIDTH DEMO.DISPLAY_HEIGHT
DEMO.DETECTRON2_CFG DEMO.DETECTRON2_WEIGHTS DEMO.DETECTRON2_THRESH DEMO.BUFFER_SIZE DEMO.OUTPUT_FILE DEMO.OUTPUT_FPS
DEMO.INPUT_FORMAT DEMO.CLIP_VIS_SIZE DEMO.NUM_VIS_INSTANCES DEMO.PREDS_BOXES DEMO.THREAD_ENABLE DEMO.NUM_CLIPS_SKIP
DEMO.GT_BOXES DEMO.STARTING_SECOND DEMO.FPS DEMO.VIS_MODE DEMO.COMMON_CLASS_THRES DEMO.UNCOMMON_CLASS_THRES
DEMO.COMMON_CLASS_NAMES DEMO.SLOWMO
"""
REFERENCE_ONLY_KEYS: frozenset[str] = frozenset(_REFERENCE_ONLY.split())


# ------------------------------------------------------------------------------ loading
def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"A": {"B": 1}}`` -> ``("A.B", 1)``: config trees as dotted keys (no leaf is a mapping)."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


_LEAVES = frozenset(key for key, _ in _flatten(get_default_config()))


def _unknown_key_message(key: str, source: str) -> str:
    close = difflib.get_close_matches(key, sorted(_LEAVES), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown config key {key!r} in {source}{hint}"


def _set(cfg: CfgNode, key: str, value: Any, source: str) -> None:
    *parents, leaf = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    original = node[leaf]
    value = _decode_cfg_value(value)
    if isinstance(original, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # YAML reads "1" as an int; PySlowFast's float keys accept it
    try:
        node[leaf] = _check_and_coerce_cfg_value_type(value, original, leaf, key)
    except ValueError as error:
        raise ConfigError(f"{source}: {key} = {value!r} has the wrong type ({error})") from None


def _layers(path: str | None, text: str | None, overrides: Sequence[str]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(source, [(key, value), ...]) of the YAML file, the YAML text and the overrides, in order."""
    layers = []
    if path is not None:
        if not os.path.isfile(path):
            shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
            raise ConfigError(f"config file not found: {path}",
                              f"the shipped configs are in {shipped}" if os.path.isdir(shipped) else None)
        try:
            layers.append((path, list(_flatten(CfgNode.load_yaml_with_base(path, allow_unsafe=False) or {}))))
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {error}") from None
        except OSError as error:  # a _BASE_ file that is not there
            raise ConfigError(f"{path}: its _BASE_ config cannot be read ({error})") from None
    if text is not None:
        try:
            layers.append(("the checkpoint's cfg", list(_flatten(yaml.safe_load(text) or {}))))
        except yaml.YAMLError as error:
            raise ConfigError(f"the checkpoint's cfg text is not valid YAML: {error}") from None
    overrides = list(overrides)
    if len(overrides) % 2:
        raise ConfigError(f"overrides come in KEY VALUE pairs; got {len(overrides)} items: {overrides}")
    pairs = [(key, _decode_cfg_value(value)) for key, value in zip(overrides[0::2], overrides[1::2])]
    layers.append(("the overrides", pairs))
    return layers


def load_config(path: str | None = None, overrides: Sequence[str] = (), *, text: str | None = None) -> CfgNode:
    """Defaults, then ``MODEL.PRESET``'s model keys, then the YAML at ``path`` (or YAML ``text``,
    e.g. the ``cfg`` stored in a PySlowFast checkpoint), then ``KEY VALUE`` ``overrides``.

    Raises :class:`ConfigError` for an unknown key (naming the closest valid one) or a value of
    the wrong type; logs, once, the reference's keys that memvit ignores.
    """
    layers = _layers(path, text, overrides)
    cfg = get_default_config()
    ignored: list[str] = []
    kept: list[tuple[str, list[tuple[str, Any]]]] = []
    for source, pairs in layers:
        keep = []
        for key, value in pairs:
            if key == "_BASE_":
                continue
            if key in _LEAVES:
                keep.append((key, value))
            elif key in REFERENCE_ONLY_KEYS:
                ignored.append(key)
            else:
                raise ConfigError(_unknown_key_message(key, source))
        kept.append((source, keep))
    presets = [value for _, pairs in kept for key, value in pairs if key == "MODEL.PRESET"]
    if presets and presets[-1]:
        for key, value in preset_config(presets[-1]).items():
            _set(cfg, key, value, f"MODEL.PRESET {presets[-1]}")
    for source, pairs in kept:
        for key, value in pairs:
            _set(cfg, key, value, source)
    refused = _refused(cfg)
    if refused:
        raise ConfigError("config not supported: " + "; ".join(refused), "docs/training.md, section 4 (Configs)")
    if ignored:
        names = sorted(set(ignored))
        logger.warning("config: %d key(s) of the reference that memvit does not use were ignored: %s",
                       len(names), ", ".join(names))
    inert = _not_acted_on(cfg, {key for _, pairs in kept for key, _ in pairs})
    if inert:
        logger.warning("config: %d setting(s) accepted but not acted on: %s", len(inert), "; ".join(inert))
    return cfg


def _refused(cfg: CfgNode) -> list[str]:
    """Values memvit cannot honour, refused at load rather than run differently."""
    checks = [
        (cfg.TRAIN.CHECKPOINT_TYPE != "pytorch",
         f"TRAIN.CHECKPOINT_TYPE {cfg.TRAIN.CHECKPOINT_TYPE!r}: memvit reads PyTorch checkpoints only ('pytorch')"),
        (cfg.AVA.MEAN_STD_ORDER not in ("bgr", "rgb"),
         f"AVA.MEAN_STD_ORDER {cfg.AVA.MEAN_STD_ORDER!r}: 'bgr' (the reference's loader) or 'rgb'"),
        (cfg.AVA.IMG_PROC_BACKEND not in ("cv2", "pytorch"),
         f"AVA.IMG_PROC_BACKEND {cfg.AVA.IMG_PROC_BACKEND!r}: 'cv2' (the reference's default) or 'pytorch'"),
        (not (len(cfg.AVA.KEYFRAME_RANGE) == 0 or (len(cfg.AVA.KEYFRAME_RANGE) == 2
                                                   and cfg.AVA.KEYFRAME_RANGE[0] <= cfg.AVA.KEYFRAME_RANGE[1])),
         f"AVA.KEYFRAME_RANGE {list(cfg.AVA.KEYFRAME_RANGE)}: [first, last] seconds (first <= last), or [] for any"),
        (cfg.AVA.TIMELINE_START < 0, f"AVA.TIMELINE_START {cfg.AVA.TIMELINE_START}: a video time, >= 0 seconds"),
    ]
    return [message for bad, message in checks if bad]


def _not_acted_on(cfg: CfgNode, explicit: set[str]) -> list[str]:
    """Settings a config gives that change nothing here, each with the reason ("KEY = value
    (why)"): keys memvit accepts for the reference's configs but does not read, and reference
    settings whose effect is nothing (reference quirks, docs/training.md)."""
    s, m = cfg.SOLVER, cfg.MVIT
    clip_val = s.CLIP_GRAD_VAL is not None and s.CLIP_GRAD_VAL > 0
    clip_norm = s.CLIP_GRAD_L2NORM is not None and s.CLIP_GRAD_L2NORM > 0
    checks = [
        ("NUM_SHARDS", cfg.NUM_SHARDS != 1, "not read: machines and ranks come from torchrun; "
         "BASE_LR_SCALE_NUM_SHARDS scales by the global batch over TRAIN.BATCH_SIZE"),
        ("SHARD_ID", cfg.SHARD_ID != 0, "not read: each process's rank comes from torchrun"),
        ("TEST.DATASET", str(cfg.TEST.DATASET).lower() != "ava", "not read: memvit.eval evaluates AVA"),
        ("DATA.INPUT_CHANNEL_NUM", len(cfg.DATA.INPUT_CHANNEL_NUM) != 1,
         "MViT has one pathway: only the first entry is used"),
        ("MVIT.ZERO_DECAY_POS_CLS", m.ZERO_DECAY_POS_CLS and not m.ZERO_DECAY_POS_CLS_EXEMPT,
         "exempts nothing from weight decay, as in the reference; MVIT.ZERO_DECAY_POS_CLS_EXEMPT True exempts "
         "the cls token and the rel-pos tables"),
        ("SOLVER.CLIP_GRAD_L2NORM", clip_val and clip_norm and not s.CLIP_GRAD_BOTH,
         "not applied: CLIP_GRAD_VAL is set and the reference then clips by value only; SOLVER.CLIP_GRAD_BOTH "
         "True applies both"),
        ("MVIT.ZERO_DECAY_POS_CLS_EXEMPT", m.ZERO_DECAY_POS_CLS_EXEMPT and not m.ZERO_DECAY_POS_CLS,
         "acts only with MVIT.ZERO_DECAY_POS_CLS True"),
        ("SOLVER.CLIP_GRAD_BOTH", s.CLIP_GRAD_BOTH and not (clip_val and clip_norm),
         "acts only when both SOLVER.CLIP_GRAD_VAL and SOLVER.CLIP_GRAD_L2NORM are set"),
    ]
    inert = [f"{key} = {_get(cfg, key)!r} ({why})" for key, bad, why in checks if bad and key in explicit]
    frame_keys = [key for key in ("AVA.FRAME_DIR", "AVA.FRAME_LIST_DIR", "AVA.TRAIN_LISTS", "AVA.TEST_LISTS")
                  if key in explicit]
    if cfg.AVA.VIDEO_DIR and frame_keys:
        inert.append(f"{', '.join(frame_keys)} (not read: AVA.VIDEO_DIR is set, so clips are decoded from the video "
                     "files and a split's videos are those its ground truth names)")
    return inert


def config_from_checkpoint(checkpoint: Mapping[str, Any]) -> CfgNode:
    """The config stored (as YAML text, PySlowFast's ``cfg``) in a checkpoint dict."""
    text = checkpoint.get("cfg")
    if not isinstance(text, str):
        raise ConfigError("the checkpoint holds no 'cfg' text")
    return load_config(text=text)


# ------------------------------------------------------------------------------ the model
def _unsupported(cfg: CfgNode) -> list[str]:
    checks = [
        (cfg.MODEL.ARCH.lower() != "mvit", f"MODEL.ARCH must be 'mvit' (got {cfg.MODEL.ARCH!r})"),
        (cfg.MODEL.MODEL_NAME != "MViT", f"MODEL.MODEL_NAME must be 'MViT' (got {cfg.MODEL.MODEL_NAME!r})"),
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


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _nested(value: Any) -> Any:
    return None if not value else [list(x) for x in value]


def _listed(value: Any) -> Any:
    return [] if value is None else [list(x) if isinstance(x, (list, tuple)) else x for x in value]


@dataclass(frozen=True)
class _Key:
    """One create_memvit argument and the config key that holds it."""

    argument: str
    key: str
    to_argument: Callable[[Any], Any] = lambda v: v
    to_config: Callable[[Any], Any] = lambda v: v


# The one translation between config keys and create_memvit arguments, in both directions:
# model_kwargs reads it one way, preset_config (MODEL.PRESET) the other.
_MODEL_KEYS = [
    _Key("spatial_size", "DATA.TRAIN_CROP_SIZE"),
    _Key("temporal_size", "DATA.NUM_FRAMES"),
    _Key("in_channels", "DATA.INPUT_CHANNEL_NUM", lambda v: v[0], lambda v: [v]),
    _Key("patch_embed_dim", "MVIT.EMBED_DIM"),
    _Key("conv_patch_embed_kernel", "MVIT.PATCH_KERNEL", _tuple, list),
    _Key("conv_patch_embed_stride", "MVIT.PATCH_STRIDE", _tuple, list),
    _Key("conv_patch_embed_padding", "MVIT.PATCH_PADDING", _tuple, list),
    _Key("cls_embed_on", "MVIT.CLS_EMBED_ON"),
    _Key("depth", "MVIT.DEPTH"),
    _Key("num_heads", "MVIT.NUM_HEADS"),
    _Key("mlp_ratio", "MVIT.MLP_RATIO"),
    _Key("qkv_bias", "MVIT.QKV_BIAS"),
    _Key("dropout_rate_block", "MVIT.DROPOUT_RATE"),
    _Key("droppath_rate_block", "MVIT.DROPPATH_RATE"),
    _Key("embed_dim_mul", "MVIT.DIM_MUL", _nested, _listed),
    _Key("atten_head_mul", "MVIT.HEAD_MUL", _nested, _listed),
    _Key("pool_q_stride_size", "MVIT.POOL_Q_STRIDE", _nested, _listed),
    _Key("pool_kv_stride_size", "MVIT.POOL_KV_STRIDE", _nested, _listed),
    _Key("pool_kv_stride_adaptive", "MVIT.POOL_KV_STRIDE_ADAPTIVE", lambda v: tuple(v) or None, _listed),
    _Key("pool_kvq_kernel", "MVIT.POOL_KVQ_KERNEL", lambda v: tuple(v) or None, _listed),
    _Key("rel_pos_spatial", "MVIT.REL_POS_SPATIAL"),
    _Key("rel_pos_temporal", "MVIT.REL_POS_TEMPORAL"),
    _Key("residual_pooling", "MVIT.CONV_Q", lambda v: v == 1, int),
    _Key("act_checkpoint", "MODEL.ACT_CHECKPOINT"),
    _Key("memory", "MEMVIT.ENABLE"),
    _Key("attn_max_len", "MEMVIT.ATTN_MAX_LEN"),
    _Key("memory_sampler", "MEMVIT.SAMPLER"),
    _Key("memory_exclude_layers", "MEMVIT.EXCLUDE_LAYERS", tuple, list),
    _Key("compress_stride", "MEMVIT.COMPRESS.POOL_STRIDE", _tuple, list),
    _Key("memory_isolation", "MEMVIT.ISOLATION"),
    _Key("num_classes", "MODEL.NUM_CLASSES"),
    _Key("head_dropout_rate", "MODEL.DROPOUT_RATE"),
    _Key("head_activation", "MODEL.HEAD_ACT"),
    _Key("roi_resolution", "DETECTION.ROI_XFORM_RESOLUTION"),
    _Key("spatial_scale_factor", "DETECTION.SPATIAL_SCALE_FACTOR"),
    _Key("roi_aligned", "DETECTION.ALIGNED"),
    _Key("box_depth", "MVIT.BOX_DEPTH"),
    _Key("box_drop_attn_rate", "MVIT.BOX_DROP_ATTN_RATE"),
    _Key("box_drop_qkv_rate", "MVIT.BOX_DROP_QKV_RATE"),
    _Key("box_dropout_rate", "MVIT.BOX_DROPOUT_RATE"),
    _Key("box_droppath_rate", "MVIT.BOX_DROPPATH_RATE"),
    _Key("max_boxes", "MEMVIT.MAX_BOXES"),
    _Key("mask_padded_boxes", "MEMVIT.MASK_PADDED_BOXES"),
]
# Config keys our architectures fix (model_kwargs refuses other values, see _unsupported).
_FIXED = {"MODEL.ARCH": "mvit", "MODEL.MODEL_NAME": "MViT", "MVIT.POOL_FIRST": True, "MVIT.DIM_MUL_IN_ATT": True,
          "MVIT.USE_ABS_POS": False, "MVIT.MODE": "conv", "MVIT.NORM": "layernorm"}


def _get(cfg: CfgNode, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def model_kwargs(cfg: CfgNode) -> dict[str, Any]:
    """The :func:`memvit.models.create_memvit` arguments a config describes."""
    problems = _unsupported(cfg)
    if problems:
        raise ConfigError("config not supported: " + "; ".join(problems))
    detection = cfg.DETECTION.ENABLE  # the AVA head (box block included) or a classifier
    kwargs = {k.argument: k.to_argument(_get(cfg, k.key)) for k in _MODEL_KEYS}
    compress = cfg.MEMVIT.COMPRESS
    kwargs["compress_kernel"] = tuple(compress.POOL_KERNEL) if compress.ENABLE else None
    kwargs["head"] = "ava" if detection else "kinetics"
    return kwargs


def preset_config(name: str) -> dict[str, Any]:
    """The config keys of a released architecture (``MODEL.PRESET``): every model key of
    ``memvit.models.PRESETS[name]`` over :func:`create_memvit`'s own defaults.

    ``MODEL.NUM_CLASSES`` and ``DETECTION.ENABLE`` (the task) are left to the config.
    """
    from .models import PRESETS, create_memvit

    if name not in PRESETS:
        raise ConfigError(f"unknown MODEL.PRESET {name!r}; known: {sorted(PRESETS)}")
    defaults = {p.name: p.default for p in inspect.signature(create_memvit).parameters.values()
                if p.default is not inspect.Parameter.empty}
    arguments = {**defaults, **PRESETS[name]}
    values = {k.key: k.to_config(arguments[k.argument]) for k in _MODEL_KEYS
              if k.argument in arguments and k.argument not in ("num_classes", "head_activation")}
    kernel = arguments["compress_kernel"]
    values["MEMVIT.COMPRESS.ENABLE"] = kernel is not None
    if kernel is not None:
        values["MEMVIT.COMPRESS.POOL_KERNEL"] = list(kernel)
    values.update(_FIXED)
    # None means "derived" in create_memvit; the config keeps its own value then.
    return {key: value for key, value in values.items() if value is not None}


def build_model(cfg: CfgNode):
    """``create_memvit(**model_kwargs(cfg))``: the model a config describes (random weights)."""
    from .models import create_memvit

    return create_memvit(**model_kwargs(cfg))


def input_shape(cfg: CfgNode, train: bool = True) -> tuple[int, int, int, int]:
    """(C, T, H, W) of one clip: the training or the test crop."""
    size = cfg.DATA.TRAIN_CROP_SIZE if train else cfg.DATA.TEST_CROP_SIZE
    return (cfg.DATA.INPUT_CHANNEL_NUM[0], cfg.DATA.NUM_FRAMES, size, size)
