# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Configs: presets are the one statement of an architecture, the reference's configs and the
cfg text in its checkpoints load, unknown keys are errors naming the closest valid key."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import pytest
import yaml

from memvit.config import (
    REFERENCE_ONLY_KEYS,
    ConfigError,
    config_from_checkpoint,
    get_default_config,
    load_config,
    model_kwargs,
    preset_config,
)
from memvit.models import PRESETS, create_memvit, memvit_16_16x4, memvit_24_32x3

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name,builder", [("memvit_16_16x4", memvit_16_16x4), ("memvit_24_32x3", memvit_24_32x3)])
@pytest.mark.parametrize("head", ["ava", "kinetics"])
def test_preset_config_gives_exactly_the_builders_arguments(name, builder, head):
    """MODEL.PRESET fills every model key from the preset: the config's create_memvit
    arguments are the builder's (preset over create_memvit's defaults), argument by argument."""
    classes = 80 if head == "ava" else 400
    cfg = load_config(overrides=["MODEL.PRESET", name, "DETECTION.ENABLE", str(head == "ava"),
                                 "MODEL.NUM_CLASSES", str(classes)])
    defaults = {p.name: p.default for p in inspect.signature(create_memvit).parameters.values()
                if p.default is not inspect.Parameter.empty}
    expected = {**defaults, **PRESETS[name], "head": head, "num_classes": classes}
    expected.pop("norm_eps")  # not a config key: 1e-6 in the reference's every LayerNorm
    got = model_kwargs(cfg)
    for key in ("head_activation", "memory_exclude_layers", "embed_dim_mul", "atten_head_mul"):
        got.pop(key), expected.pop(key)
    assert got == expected
    assert model_kwargs(cfg)["memory_exclude_layers"] == tuple(PRESETS[name]["memory_exclude_layers"])
    assert [tuple(x) for x in model_kwargs(cfg)["embed_dim_mul"]] == list(PRESETS[name]["embed_dim_mul"])


def test_yaml_values_override_the_preset_and_overrides_the_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"MODEL": {"PRESET": "memvit_16_16x4"}, "MEMVIT": {"SAMPLER": "gap3"}}))
    cfg = load_config(str(path), ["MVIT.DEPTH", "4"])
    assert (cfg.MEMVIT.SAMPLER, cfg.MVIT.DEPTH, cfg.MEMVIT.ATTN_MAX_LEN) == ("gap3", 4, 3)


def reference_style_config() -> dict:
    """A config in the reference's own style: every model key spelled out (no preset), keys of
    features memvit does not have, PySlowFast's number formats ("1e-6")."""
    q_stride = [[i, 1, 2, 2] if i in (1, 3, 14) else [i, 1, 1, 1] for i in range(16)]
    return {
        "MEMVIT": {"ENABLE": True, "ATTN_MAX_LEN": 3, "SAMPLER": "gap2", "EXCLUDE_LAYERS": list(range(1, 16, 2)),
                   "COMPRESS": {"ENABLE": True, "POOL_KERNEL": [7, 3, 3], "POOL_STRIDE": [4, 2, 2]}},
        "MVIT": {"ZERO_DECAY_POS_CLS": False, "DEPTH": 16, "NUM_HEADS": 1, "EMBED_DIM": 96,
                 "PATCH_KERNEL": [3, 7, 7], "PATCH_STRIDE": [2, 4, 4], "PATCH_PADDING": [1, 3, 3],
                 "DROPPATH_RATE": 0.4, "DIM_MUL": [[1, 2.0], [3, 2.0], [14, 2.0]],
                 "HEAD_MUL": [[1, 2.0], [3, 2.0], [14, 2.0]], "POOL_KVQ_KERNEL": [3, 3, 3],
                 "POOL_KV_STRIDE_ADAPTIVE": [1, 8, 8], "POOL_Q_STRIDE": q_stride, "DIM_MUL_IN_ATT": True,
                 "CONV_Q": 1, "POOL_FIRST": True, "USE_ABS_POS": False, "REL_POS_SPATIAL": True,
                 "REL_POS_TEMPORAL": True, "BOX_DEPTH": 1, "BOX_DROP_ATTN_RATE": 0.5, "BOX_DROP_QKV_RATE": 0.3,
                 "BOX_DROPOUT_RATE": 0.3},
        "DATA": {"NUM_FRAMES": 16, "SAMPLING_RATE": 4, "TRAIN_CROP_SIZE": 224, "TEST_CROP_SIZE": 224,
                 "INPUT_CHANNEL_NUM": [3], "USE_OFFSET_SAMPLING": True, "DECODING_BACKEND": "torchvision"},
        "DETECTION": {"ENABLE": True, "ALIGNED": True, "SPATIAL_SCALE_FACTOR": 32},
        "SOLVER": {"BASE_LR": 0.075, "COSINE_END_LR": "1e-6", "WARMUP_START_LR": "1e-6", "WEIGHT_DECAY": "1e-8"},
        "MODEL": {"NUM_CLASSES": 80, "ARCH": "mvit", "MODEL_NAME": "MViT", "LOSS_FUNC": "bce", "DROPOUT_RATE": 0.5,
                  "HEAD_ACT": "sigmoid"},
        "BN": {"USE_PRECISE_STATS": False, "NUM_BATCHES_PRECISE": 200},
        "TENSORBOARD": {"ENABLE": False, "MODEL_VIS": {"GRAD_CAM": {"ENABLE": False}}},
        "TEST": {"NUM_SPATIAL_CROPS": 1},
    }


def test_reference_style_config_loads_and_builds_the_released_model(tmp_path, caplog):
    path = tmp_path / "MeMViT_16_K400.yaml"
    path.write_text(yaml.safe_dump(reference_style_config()))
    with caplog.at_level(logging.WARNING, logger="memvit.config"):
        cfg = load_config(str(path))
    ignored = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) == 1  # reported once, every key named
    for key in ("BN.USE_PRECISE_STATS", "DATA.USE_OFFSET_SAMPLING", "TENSORBOARD.MODEL_VIS.GRAD_CAM.ENABLE",
                "TEST.NUM_SPATIAL_CROPS"):
        assert key in ignored[0] and key in REFERENCE_ONLY_KEYS
    assert cfg.SOLVER.COSINE_END_LR == pytest.approx(1e-6)
    model = create_memvit(**model_kwargs(cfg))
    released = memvit_16_16x4(head="ava")
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in released.state_dict().items()}


def test_checkpoint_cfg_text_loads():
    """PySlowFast stores cfg.dump() in its checkpoints: every reference key, ours or not."""
    text = yaml.safe_dump({**reference_style_config(), "DEMO": {"ENABLE": False, "FPS": 30}, "LOG_PERIOD": 10})
    cfg = config_from_checkpoint({"cfg": text, "model_state": {}})
    assert cfg.MEMVIT.SAMPLER == "gap2" and cfg.MODEL.NUM_CLASSES == 80
    with pytest.raises(ConfigError, match="no 'cfg'"):
        config_from_checkpoint({"model_state": {}})


def test_unknown_keys_name_the_closest_valid_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'MEMVIT\.SAMPLR' in the overrides; did you mean 'MEMVIT\.SAMPLER'"):
        load_config(overrides=["MEMVIT.SAMPLR", "gap2"])
    path = tmp_path / "typo.yaml"
    path.write_text("SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError, match=rf"'SOLVER\.BASE_LRR' in {path}; did you mean 'SOLVER\.BASE_LR'"):
        load_config(str(path))
    with pytest.raises(ConfigError, match=r"MVIT\.DEPTH = 'deep' has the wrong type"):
        load_config(overrides=["MVIT.DEPTH", "deep"])
    with pytest.raises(ConfigError, match="unknown MODEL.PRESET 'memvit_99'"):
        load_config(overrides=["MODEL.PRESET", "memvit_99"])


def test_shipped_configs_state_only_their_recipe():
    """Configs that name a preset take the architecture from it: none of the preset's keys in them."""
    def keys(tree, prefix=""):
        for key, value in tree.items():
            yield from keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]

    presets = 0
    for path in CONFIG_DIR.glob("*.yaml"):
        tree = yaml.safe_load(path.read_text())
        load_config(str(path))
        preset = tree.get("MODEL", {}).get("PRESET")
        if preset:
            presets += 1
            assert not set(keys(tree)) & set(preset_config(preset)), path.name
    assert presets >= 4


def test_defaults_hold_no_cluster_paths_and_no_ignored_keys():
    def leaves(node, prefix=""):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]

    cfg = get_default_config()
    assert not any(str(v).startswith("/mnt") for v in cfg.AVA.values())
    assert not set(leaves(cfg)) & REFERENCE_ONLY_KEYS


def test_dtype_option_is_the_mixed_precision_key():
    """--dtype bf16 / fp32 set TRAIN.MIXED_PRECISION, over an override of it; absent, the config decides."""
    from memvit.cli import command_parser, load_cfg

    parser = command_parser("memvit.train", None, dtype=True)
    cfg = str(Path(__file__).parents[1] / "configs" / "synthetic.yaml")
    assert load_cfg(parser.parse_args(["--cfg", cfg, "--dtype", "bf16"])).TRAIN.MIXED_PRECISION is True
    assert load_cfg(parser.parse_args(["--cfg", cfg, "--dtype", "fp32", "TRAIN.MIXED_PRECISION", "True"])
                    ).TRAIN.MIXED_PRECISION is False
    assert load_cfg(parser.parse_args(["--cfg", cfg, "TRAIN.MIXED_PRECISION", "True"])).TRAIN.MIXED_PRECISION is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--cfg", cfg, "--dtype", "fp16"])
