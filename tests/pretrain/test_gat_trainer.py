"""Pretraining end to end on small synthetic graphs: it learns, it reports honestly, it resumes exactly."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from mdr_graph.errors import UserError
from mdr_graph.pretrain import metrics as M
from mdr_graph.pretrain.model import GATConfig
from mdr_graph.pretrain.synthetic import synthetic_graph
from mdr_graph.pretrain.trainer import train

SMALL = dict(hidden=32, heads=4, lr=3e-3)


@pytest.fixture(scope="module")
def feature_graph():
    """Links follow node features; song popularity is Zipf-distributed, so the degree baseline is strong."""
    return synthetic_graph(600, 30, signal=1.0, zipf_exponent=1.0, seed=0)


@pytest.fixture(scope="module")
def trained(feature_graph, tmp_path_factory):
    rundir = tmp_path_factory.mktemp("gat_run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the suite's per-test one-thread fixture
    try:
        return rundir, train(feature_graph, GATConfig(epochs=30, patience=10, **SMALL), rundir)
    finally:
        torch.set_num_threads(threads)


def test_gat_beats_the_degree_baseline_when_links_follow_features(trained):
    _, m = trained
    assert m["degree_baseline_auc"] > 0.75  # the baseline is not a straw man here
    assert m["test_auc"] > m["degree_baseline_auc"] + 0.03
    assert m["test_mrr"] > m["degree_baseline_mrr"]
    assert m["beats_degree_baseline"] is True


def test_no_signal_no_learning(tmp_path):
    """With features unrelated to links and equal popularity, test AUC stays near chance."""
    g = synthetic_graph(600, 30, signal=0.0, zipf_exponent=0.0, seed=0)
    m = train(g, GATConfig(epochs=8, patience=3, **SMALL), tmp_path)
    assert 0.3 < m["test_auc"] < 0.7


def test_run_directory_holds_everything_promised(trained):
    rundir, m = trained
    for name in ("gat.pt", "checkpoint.pt", "metrics.json", "test_edges.csv", "config.toml"):
        assert (rundir / name).exists(), name
    assert list((rundir / "tb").iterdir()), "no TensorBoard events"
    saved = json.loads((rundir / "metrics.json").read_text())
    for key in ("val_auc", "val_ap", "test_auc", "test_ap", "test_mse", "epochs", "best_epoch", "seconds_per_epoch",
                "degree_baseline_auc"):
        assert key in saved and saved[key] == pytest.approx(m[key])
    assert 1 <= saved["best_epoch"] <= saved["epochs"] <= 30
    # the checkpoint files are data only
    gat = torch.load(rundir / "gat.pt", weights_only=True)
    assert gat["embedding_dim"] == 32 and gat["config"]["hidden"] == 32
    assert gat["in_dims"] == {"video": 10, "song": 4}
    torch.load(rundir / "checkpoint.pt", weights_only=True)


def test_test_edges_csv_reproduces_the_reported_metrics(trained, feature_graph):
    rundir, m = trained
    df = pd.read_csv(rundir / "test_edges.csv", dtype={"song_id": str, "video_id": str})
    assert list(df.columns) == ["song_id", "video_id", "label", "score"]
    assert df["label"].sum() == 60 and (df["label"] == 0).sum() == 30
    assert M.roc_auc(df["label"], df["score"]) == pytest.approx(m["test_auc"], abs=1e-6)
    assert M.brier(df["label"], df["score"]) == pytest.approx(m["test_mse"], abs=1e-6)
    # positives are real links, negatives are not
    ei = feature_graph["video", "uses", "song"].edge_index
    links = {(f"v{v}", f"s{s}") for v, s in ei.t().tolist()}
    pairs = list(zip(df["video_id"], df["song_id"]))
    assert all((p in links) == bool(lab) for p, lab in zip(pairs, df["label"]))


def test_refuses_to_overwrite_a_run(trained, feature_graph):
    rundir, _ = trained
    with pytest.raises(UserError, match="--resume"):
        train(feature_graph, GATConfig(epochs=2, **SMALL), rundir)


def _comparable(m: dict) -> dict:
    drop = {"seconds_per_epoch", "train_seconds_per_epoch", "peak_rss_mb", "peak_rss_mb_per_rank", "history"}
    return json.loads(json.dumps({k: v for k, v in m.items() if k not in drop}).replace("NaN", '"nan"'))


@pytest.mark.parametrize("batch_components", [0, 6])
def test_resume_reproduces_the_uninterrupted_run(feature_graph, tmp_path, batch_components):
    cfg = GATConfig(epochs=6, patience=100, batch_components=batch_components, seed=3, **SMALL)
    straight = train(feature_graph, cfg, tmp_path / "straight")

    def interrupt(epoch, _record):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(feature_graph, cfg, tmp_path / "resumed", on_epoch_end=interrupt)
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = train(feature_graph, cfg, tmp_path / "resumed", resume=True)
    assert _comparable(resumed) == _comparable(straight)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in straight["history"]]
    a = torch.load(tmp_path / "straight" / "gat.pt", weights_only=True)["encoder"]
    b = torch.load(tmp_path / "resumed" / "gat.pt", weights_only=True)["encoder"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_changed_settings_but_may_extend_epochs(feature_graph, tmp_path):
    train(feature_graph, GATConfig(epochs=2, patience=100, **SMALL), tmp_path)
    with pytest.raises(UserError, match="hidden"):
        train(feature_graph, GATConfig(epochs=4, patience=100, **{**SMALL, "hidden": 64}), tmp_path, resume=True)
    m = train(feature_graph, GATConfig(epochs=4, patience=100, **SMALL), tmp_path, resume=True)
    assert m["epochs"] == 4 and [h["epoch"] for h in m["history"]] == [1, 2, 3, 4]


def test_component_batches_learn_as_well_as_full_batch(feature_graph, tmp_path, trained):
    _, full = trained
    m = train(feature_graph, GATConfig(epochs=30, patience=10, batch_components=8, **SMALL), tmp_path)
    assert m["batches"] == 4
    assert m["test_auc"] > m["degree_baseline_auc"]
    assert abs(m["test_auc"] - full["test_auc"]) < 0.1


def test_mse_loss_and_mlp_decoder_train(feature_graph, tmp_path):
    m = train(feature_graph, GATConfig(epochs=5, patience=5, loss="mse", decoder="mlp", **SMALL), tmp_path)
    assert np.isfinite([m["test_auc"], m["test_ap"], m["test_mse"]]).all()
    assert m["history"][-1]["loss"] < m["history"][0]["loss"] + 0.05


@pytest.mark.parametrize("kind", ["dot", "mlp"])
def test_ranking_every_song_matches_the_decoder(kind):
    from mdr_graph.pretrain.model import LinkDecoder
    from mdr_graph.pretrain.trainer import rank_all_songs

    torch.manual_seed(0)
    dec = LinkDecoder(8, kind)
    z_song, z_query = torch.randn(7, 8), torch.randn(5, 8)
    with torch.no_grad():
        expected = torch.stack([dec(z_song, q.expand(7, 8)) for q in z_query])
    torch.testing.assert_close(rank_all_songs(dec, z_song, z_query, budget=30), expected)


def test_bf16_autocast_pretrains_on_cpu(feature_graph, tmp_path):
    """The bf16 path (meant for GPUs) runs here through CPU autocast; evaluation stays float32."""
    cfg = GATConfig(epochs=8, patience=100, seed=2, **SMALL)
    fp32 = train(feature_graph, cfg, tmp_path / "fp32")
    bf16 = train(feature_graph, dataclasses.replace(cfg, bf16=True), tmp_path / "bf16")
    assert np.isfinite([bf16["test_auc"], bf16["test_ap"], bf16["test_mse"]]).all()
    assert bf16["test_auc"] == pytest.approx(fp32["test_auc"], abs=0.05)
    assert bf16["history"][-1]["loss"] < bf16["history"][0]["loss"]
