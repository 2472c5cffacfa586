"""GAT pretraining under torchrun: two gloo ranks share the link batches and the evaluation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

from mdr_graph.cli import main as cli
from mdr_graph.errors import UserError
from mdr_graph.graph_build.graph import save_graph
from mdr_graph.pretrain.embed import load_gat
from mdr_graph.pretrain.linksplit import split_links
from mdr_graph.pretrain.parts import graph_parts
from mdr_graph.testing.graphs import synthetic_graph
from mdr_graph.pretrain.trainer import message_graph

ARGS = ["--epochs", "12", "--patience", "100", "--hidden", "32", "--heads", "4", "--lr", "3e-3", "--dropout", "0",
        "--batch-edges", "50", "--seed", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MDR_GRAPH_NO_PROGRESS": "1"}


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "mdr_graph", *args], env=ENV, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 600-video graph whose links follow node features, pretrained by one process and by two ranks."""
    d = tmp_path_factory.mktemp("ddp_pretrain")
    (d / "graph").mkdir()
    save_graph(synthetic_graph(600, 30, signal=1.0, zipf_exponent=1.0, seed=0), d / "graph")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli(["pretrain", "--graph", str(d / "graph"), "--out", str(d / "single"), *ARGS]) == 0
    finally:
        torch.set_num_threads(threads)
    proc = torchrun("pretrain", "--graph", str(d / "graph"), "--out", str(d / "ddp"), *ARGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d, proc


def test_two_ranks_train_and_report_once(runs):
    d, proc = runs
    single = json.loads((d / "single" / "metrics.json").read_text())
    multi = json.loads((d / "ddp" / "metrics.json").read_text())
    assert (single["world_size"], multi["world_size"]) == (1, 2)
    assert proc.stdout.count('"world_size"') == 1  # only rank 0 reports
    assert multi["epochs"] == 12 and len(multi["history"]) == 12 and len(multi["peak_rss_mb_per_rank"]) == 2
    # The link batches are dealt out across ranks (192 supervision links in batches of 50: 4 batches, 2 per rank).
    assert single["relations"]["uses"]["links"]["sup"] == 192
    assert single["batch_edges"] == multi["batch_edges"] == 50
    # Same seed, same link split: the very same test and validation pairs.
    assert single["split_fingerprint"] == multi["split_fingerprint"]
    assert single["relations"]["uses"]["links"] == multi["relations"]["uses"]["links"]
    # Not the same trajectory (one optimizer step per batch in one process, per pair of
    # batches under DDP), but the same quality. Stated tolerance: 0.05 AUC; both beat the
    # song-degree baseline, which is strong on this graph (~0.8).
    assert multi["test_auc"] == pytest.approx(single["test_auc"], abs=0.05)
    assert multi["test_auc"] > multi["degree_baseline_auc"] + 0.03
    assert multi["history"][-1]["loss"] < multi["history"][0]["loss"]
    # Rank 0 alone wrote TensorBoard logs.
    assert len(list((d / "ddp" / "tb").glob("events.out.tfevents.*"))) == 1


def test_gathered_test_scores_cover_every_pair_once_and_are_exact(runs):
    d, _ = runs
    single = pd.read_csv(d / "single" / "test_edges.csv", dtype={"node_id": str, "video_id": str})
    multi = pd.read_csv(d / "ddp" / "test_edges.csv", dtype={"node_id": str, "video_id": str})
    key = ["relation", "node_id", "video_id", "label"]
    pd.testing.assert_frame_equal(single[key], multi[key])  # every test pair, in order, exactly once
    # Rescore the DDP run's best weights in one process on the full graph: the gathered,
    # rank-sharded scores are the full-graph scores.
    from mdr_graph.graph_build.graph import load_graph

    parts = graph_parts(load_graph(d / "graph"))
    encoder, meta = load_gat(d / "ddp" / "gat.pt")
    cfg = meta["config"]
    splits = split_links(parts.edges, parts.num_nodes, val_ratio=cfg.val_ratio, test_ratio=cfg.test_ratio,
                         disjoint_train_ratio=cfg.disjoint_train_ratio, neg_ratio=cfg.neg_ratio,
                         negatives=cfg.negatives, seed=cfg.seed)
    pairs, _ = splits["uses"].pairs("test")
    with torch.no_grad():
        z = encoder(parts.x, message_graph(splits, parts, "test"))
        logits = meta["decoders"]("uses", z["song"][pairs[1]], z["video"][pairs[0]])
    assert torch.sigmoid(logits.double()).numpy() == pytest.approx(multi["score"].to_numpy(), rel=1e-6, abs=1e-7)


def test_resume_needs_the_same_number_of_processes(runs, tmp_path):
    d, _ = runs
    run = tmp_path / "ddp"
    shutil.copytree(d / "ddp", run)
    with pytest.raises(UserError, match="same --nproc_per_node"):
        from mdr_graph.graph_build.graph import load_graph
        from mdr_graph.pretrain.config import GATConfig
        from mdr_graph.pretrain.trainer import train

        cfg = GATConfig(epochs=14, patience=100, hidden=32, heads=4, lr=3e-3, dropout=0.0, batch_edges=50, seed=1)
        train(load_graph(d / "graph"), cfg, run, resume=True)
    # Under torchrun with the same world size it continues where it stopped.
    proc = torchrun("pretrain", "--graph", str(d / "graph"), "--out", str(run), "--resume",
                    "--epochs", "14")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming" in proc.stdout and proc.stdout.count("resuming") == 1
    m = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in m["history"]] == list(range(1, 15))
