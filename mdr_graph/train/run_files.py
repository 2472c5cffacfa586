"""The run directory every scoring model writes, in one place: ``train``, the tabular baselines, the ensembles.

Five files, the contract ``evaluate``, ``predict`` and ``compare`` read:

- ``config.toml`` (``[train]``: the settings), ``splits.json`` (``{split: [video ids]}``),
  ``normalization.json`` (the target and metadata scaling fitted on the training split),
  written first by :func:`write_run_inputs`;
- ``predictions.csv`` (``video_id, split, target, prediction``, normalised) and
  ``metrics.json`` (:func:`run_metrics`), written last by :func:`write_run_result`;
  ``metrics.json`` comes last of all: its presence marks the run finished.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.config import save_toml
from mdr_graph.io import write_json, write_text
from mdr_graph.train.metrics import regression_metrics
from mdr_graph.splits import SPLITS, split_hash

RUN_FILES = ("config.toml", "splits.json", "normalization.json", "predictions.csv", "metrics.json")


def split_metrics(preds: pd.DataFrame) -> dict[str, dict]:
    """Regression metrics of each split of ``predictions.csv``; an empty split gets its NaN entry."""
    per = {s: regression_metrics(g["target"].to_numpy(), g["prediction"].to_numpy())
           for s, g in preds.groupby("split", sort=False)}
    for s in SPLITS:
        per.setdefault(s, regression_metrics(np.zeros(0), np.zeros(0)))
    return per


def run_metrics(preds: pd.DataFrame, splits: dict, *, cfg, model: str, modalities: list[str], params: int,
                seconds_per_epoch: float, seconds_total: float, epochs: int = 1, best_epoch: int = 1,
                contributions: dict | None = None, missing_media: int = 0, world_size: int = 1,
                history: list | None = None, **extra) -> dict:
    """``metrics.json``: the headline numbers, then the run's facts, the per-split metrics and ``extra``."""
    per = split_metrics(preds)
    return {
        "val_spearman": per["val"]["spearman"], "test_spearman": per["test"]["spearman"],
        "test_pearson": per["test"]["pearson"], "test_mse": per["test"]["mse"], "test_mae": per["test"]["mae"],
        "train_spearman": per["train"]["spearman"], "contributions": contributions or {}, "params": int(params),
        "seconds_per_epoch": float(seconds_per_epoch), "seconds_total": float(seconds_total),
        "epochs": epochs, "best_epoch": best_epoch, "seed": cfg.seed, "model": model,
        "modalities": list(modalities), "split": cfg.split,
        "split_sizes": {s: int(len(splits[s])) for s in SPLITS}, "missing_media": missing_media,
        "world_size": world_size, "splits": per, "history": history or [], **extra,
        "split_hash": split_hash({s: np.asarray(splits[s], dtype=object) for s in SPLITS}),
    }


def write_run_inputs(out: str | Path, cfg, splits: dict, normalization: dict) -> None:
    """``config.toml``, ``splits.json`` and ``normalization.json``: what the run was fitted on."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_toml(out / "config.toml", {"train": cfg})
    write_json(out / "splits.json", {s: [str(v) for v in splits[s]] for s in SPLITS})
    write_json(out / "normalization.json", normalization)


def write_run_result(out: str | Path, preds: pd.DataFrame, metrics: dict) -> None:
    """``predictions.csv``, then ``metrics.json``: last, because its presence marks the run finished."""
    write_text(Path(out) / "predictions.csv", preds.to_csv(index=False))
    write_json(Path(out) / "metrics.json", metrics)
