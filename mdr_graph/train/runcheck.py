"""Checks that a run's files still belong together, each failing with one line that says what differs.

A run directory is read back by ``train --resume``, ``evaluate`` and ``predict``; its
checkpoint, ``model.pt``, settings, splits and graph must be the ones that made it.
Without these checks a mismatch surfaces deep in torch as a ``load_state_dict``
traceback, a tensor-shape error or a ``KeyError`` listing every video id.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.errors import UserError
from mdr_graph.splits import SplitConfig
from mdr_graph.train.config import TrainConfig
from mdr_graph.trainloop import changed_settings

# Settings that change how a run is executed, not what it computes: they may differ on resume
# (checked by mdr_graph.trainloop.check_same_settings).
RUN_ONLY = frozenset({"epochs", "patience", "num_workers", "threads", "device", "fitted_cache"})


def settings_diff(saved: dict, now: TrainConfig, fmt: str = "{k}: {a!r} -> {b!r}",
                  skip: frozenset[str] = RUN_ONLY) -> list[str]:
    """``fmt`` of (name, saved, now) for every setting (outside ``skip``) that differs."""
    # a setting added after the run was saved held its default then
    saved = {**dataclasses.asdict(TrainConfig()), **saved}
    return changed_settings(saved, dataclasses.asdict(now), skip, fmt)


def check_settings(cfg: TrainConfig) -> None:
    """Settings that cannot train refused up front (``--epochs 0`` would only fail at the end)."""
    for name in ("epochs", "patience", "batch_size"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(cfg, name)}: need at least 1")
    SplitConfig.of(cfg)  # validates kind and fractions before any file is read
    check_convlstm_split(cfg)


def check_convlstm_split(cfg: TrainConfig) -> None:
    """The frozen ConvLSTM must have been pretrained on this run's training split.

    Pretrained under another split (kind, seed, fractions) or graph, it reconstructed some
    of this run's test videos during pretraining: a leak, refused before training.
    """
    if "convlstm" not in cfg.modalities or not cfg.convlstm:
        return
    from mdr_graph.encoders.convlstm import read_convlstm_checkpoint
    from mdr_graph.graph_build.tables import read_videos
    from mdr_graph.splits import make_splits, split_hash

    want = SplitConfig.of(cfg)
    redo = f"pretrain it with `mdr-graph pretrain-visual --graph {cfg.graph or 'GRAPHDIR'} {want.describe()}`"
    rec = read_convlstm_checkpoint(cfg.convlstm).get("split")
    if not isinstance(rec, dict):
        raise UserError(f"--convlstm {cfg.convlstm} records no graph split (pretrained without --graph, on every "
                        f"extracted video, or by an older version), so it may have seen this run's test videos; {redo}")
    got = SplitConfig(rec["kind"], rec["seed"], tuple(rec["fractions"]))
    if got != want:
        raise UserError(f"--convlstm {cfg.convlstm} was pretrained under another split ({got.describe()}) than this "
                        f"run's ({want.describe()}), so it saw some of this run's test videos; {redo}")
    if rec.get("hash") != split_hash(make_splits(read_videos(cfg.graph), want)):
        raise UserError(f"--convlstm {cfg.convlstm} was pretrained on another graph's split (fingerprint "
                        f"{rec.get('hash')}) than this run's graph {cfg.graph} gives; {redo}")


def check_model_matches(checkpoint: dict, cfg: TrainConfig, model_path: Path) -> None:
    """``model.pt`` must be the model of the run whose config.toml sits beside it."""
    saved = checkpoint.get("train_config") if isinstance(checkpoint, dict) else None
    if not isinstance(saved, dict):
        raise UserError(f"{model_path} is not a model written by `mdr-graph train`")
    diff = settings_diff(saved, cfg, "{k}: {a!r} in model.pt, {b!r} in config.toml")
    if diff:
        raise UserError(f"{model_path} and the run in {model_path.parent} disagree ({'; '.join(diff[:4])}): "
                        "the model file was replaced by another run's; retrain, or restore this run's model.pt")


def check_graph_matches(splits: dict[str, np.ndarray], videos: pd.DataFrame, run: Path, graph: str) -> None:
    """The run's saved splits must name videos of its graph: a rebuilt graph is a different one."""
    from mdr_graph.splits import split_hash

    have = set(videos["video_id"].astype(str))
    missing = [str(v) for s in splits.values() for v in s if str(v) not in have]
    if missing:
        n = sum(len(s) for s in splits.values())
        raise UserError(f"the graph {graph} changed since {run} was trained: {len(missing):,} of the run's {n:,} "
                        f"videos are not in it (e.g. {missing[0]}; split fingerprint {split_hash(splits)}); "
                        "evaluate against the graph the run was trained on, or retrain")
