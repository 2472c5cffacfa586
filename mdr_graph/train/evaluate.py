"""Recompute a trained run's metrics from its saved model, splits and normalisation.

The result should equal what `train` wrote to metrics.json; this command says whether
it does. Example: mdr-graph evaluate --run runs/r1 --split test
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mdr_graph.config import from_dict, load_toml
from mdr_graph.errors import UserError
from mdr_graph.io import read_json
from mdr_graph.train.config import TrainConfig
from mdr_graph.splits import SPLITS
from mdr_graph.train.dataset import Normalizer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="a run directory written by `mdr-graph train`")
    p.add_argument("--split", default="test", choices=[*SPLITS, "all"], help="(default: %(default)s)")
    p.add_argument("--tolerance", type=float, default=1e-5,
                   help="largest difference that still counts as a match (float32 sums differ in the last digits "
                        "with the thread count; default: %(default)s)")


def load_run(run: str | Path) -> tuple[TrainConfig, dict, Normalizer]:
    run = Path(run)
    for name in ("config.toml", "splits.json", "normalization.json", "model.pt"):
        if not (run / name).exists():
            raise UserError(f"{run} is not a finished training run: {name} is missing")
    cfg = from_dict(TrainConfig, load_toml(run / "config.toml")["train"], source=str(run / "config.toml"))
    splits = {k: np.asarray(v, dtype=object) for k, v in read_json(run / "splits.json").items()}
    return cfg, splits, Normalizer(**read_json(run / "normalization.json"))


def evaluate_run(run: str | Path, split: str = "test") -> dict[str, dict]:
    """Metrics of the saved model per split, recomputed from scratch."""
    import torch

    from mdr_graph.graph_build.tables import read_videos
    from mdr_graph.train.inference import load_trained, split_predictions
    from mdr_graph.train.prepare import prepare
    from mdr_graph.train.run_files import split_metrics
    from mdr_graph.train.runcheck import check_graph_matches, check_model_matches

    cfg, splits, norm = load_run(run)
    model, ck = load_trained(Path(run) / "model.pt")
    check_model_matches(ck, cfg, Path(run) / "model.pt")
    check_graph_matches(splits, read_videos(cfg.graph), Path(run), cfg.graph)
    prep = prepare(cfg, splits=splits, normalizer=norm)
    preds, _ = split_predictions(model, cfg, prep, torch.device("cpu"))
    per = split_metrics(preds)
    return per if split == "all" else {split: per[split]}


def main(args: argparse.Namespace) -> int:
    per = evaluate_run(args.run, args.split)
    saved = read_json(Path(args.run) / "metrics.json").get("splits", {})
    worst = 0.0
    for s, m in per.items():
        ref = saved.get(s, {})
        diffs = {k: abs(m[k] - ref[k]) for k in ("spearman", "pearson", "mse", "mae") if k in ref}
        worst = max([worst, *diffs.values()])
        print(f"{s:5s} " + "  ".join(f"{k}={m[k]:.6f}" for k in ("spearman", "pearson", "mse", "mae"))
              + f"  n={m['n']}")
    match = worst <= args.tolerance
    print(json.dumps({"matches_metrics_json": match, "max_abs_difference": worst}))
    return 0 if match else 1
