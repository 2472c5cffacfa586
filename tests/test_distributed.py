"""DDP under torchrun: two gloo processes on CPU train the same model as one process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest

from mdr_graph.cli import main as cli

ARGS = ["--modalities", "network,meta,text", "--epochs", "3", "--patience", "50", "--d-model", "32", "--heads", "2",
        "--batch-size", "16", "--dropout", "0", "--seed", "5"]


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp")
    assert cli(["synth", "--out", str(d / "corpus"), "--videos", "60", "--songs", "15", "--seed", "2",
                "--seconds", "1"]) == 0
    assert cli(["build-graph", str(d / "corpus" / "metadata.json"), "--out", str(d / "graph")]) == 0
    assert cli(["pretrain", "--graph", str(d / "graph"), "--out", str(d / "gat"), "--epochs", "2",
                "--hidden", "16", "--heads", "2"]) == 0
    return d


def test_two_gloo_ranks_match_one_process(graph):
    d = graph
    common = ["train", "--graph", str(d / "graph"), "--gat", str(d / "gat" / "gat.pt"), *ARGS]
    assert cli([*common, "--out", str(d / "single")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MDR_GRAPH_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "mdr_graph", *common, "--out", str(d / "ddp")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = json.loads((d / "single" / "metrics.json").read_text())
    multi = json.loads((d / "ddp" / "metrics.json").read_text())
    assert multi["world_size"] == 2 and single["world_size"] == 1
    # Gathered predictions: every video of every split exactly once.
    preds = pd.read_csv(d / "ddp" / "predictions.csv", dtype={"video_id": str})
    videos = pd.read_parquet(d / "graph" / "videos.parquet")
    assert preds["video_id"].is_unique and set(preds["video_id"]) == set(videos["video_id"])
    splits = json.loads((d / "ddp" / "splits.json").read_text())
    assert sorted(preds.loc[preds["split"] == "test", "video_id"]) == sorted(splits["test"])
    # Same seed, same global batches, no dropout: the runs agree up to float summation order.
    # Tolerance: 1e-3 on the normalised-target metrics (42 training videos split evenly over 2 ranks;
    # with an uneven count DistributedSampler repeats a video, and the runs drift further apart).
    for key in ("val_spearman", "test_spearman", "test_mse", "test_mae"):
        assert multi[key] == pytest.approx(single[key], abs=1e-3), key
    # Only rank 0 wrote TensorBoard logs: as many event files as the single-process run (scalars + hparams).
    events = lambda run: len(list((d / run / "tb").glob("events.out.tfevents.*")))  # noqa: E731
    assert events("ddp") == events("single") == 2


def test_bf16_autocast_trains_on_cpu(graph, tmp_path):
    """The bf16 path (meant for GPUs) runs here through CPU autocast and stays close to float32."""
    d = graph
    common = ["train", "--graph", str(d / "graph"), "--gat", str(d / "gat" / "gat.pt"), *ARGS]
    assert cli([*common, "--out", str(tmp_path / "fp32")]) == 0
    assert cli([*common, "--bf16", "--out", str(tmp_path / "bf16")]) == 0
    bf16 = json.loads((tmp_path / "bf16" / "metrics.json").read_text())
    assert all(map(math.isfinite, (bf16["val_spearman"], bf16["test_spearman"], bf16["test_mse"])))
    # Same seed and data, bf16 rounding only: the two models' predictions agree closely in rank
    # (measured Pearson 0.90 on these 60 videos; the bar is 0.8). Metrics on 6-9 videos a split
    # are too noisy to compare.
    a = pd.read_csv(tmp_path / "fp32" / "predictions.csv", dtype={"video_id": str})
    b = pd.read_csv(tmp_path / "bf16" / "predictions.csv", dtype={"video_id": str})
    both = a.merge(b, on="video_id", suffixes=("_fp32", "_bf16"))
    assert len(both) == 60
    assert both["prediction_fp32"].corr(both["prediction_bf16"]) > 0.8
    assert cli(["evaluate", "--run", str(tmp_path / "bf16")]) == 0  # the saved model reproduces its metrics


def test_two_gloo_ranks_finetune_the_gat_on_its_views(graph, capsys):
    """--finetune-gat under DDP: each step's global batch reads one graph view, split across the ranks
    (finetune.view_batches); both ranks take the same steps, so the run finishes and reproduces."""
    d = graph
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MDR_GRAPH_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "mdr_graph", "train", "--graph", str(d / "graph"), "--gat", str(d / "gat" / "gat.pt"),
                           *ARGS, "--modalities", "network,meta", "--finetune-gat", "--out", str(d / "ddp-ft")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((d / "ddp-ft" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and math.isfinite(metrics["test_spearman"])
    preds = pd.read_csv(d / "ddp-ft" / "predictions.csv", dtype={"video_id": str})
    assert preds["video_id"].is_unique and len(preds) == 60
    capsys.readouterr()
    assert cli(["evaluate", "--run", str(d / "ddp-ft"), "--split", "all"]) == 0
    assert '"matches_metrics_json": true' in capsys.readouterr().out
