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
from mdr_graph.pretrain.config import GATConfig
from mdr_graph.testing.graphs import synthetic_graph
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
    assert gat["format_version"] == 2 and gat["relations"] == [["video", "uses", "song"]]
    # a song-only graph reports its one relation, and the top-level numbers are that relation's
    assert list(saved["relations"]) == ["uses"]
    assert saved["relations"]["uses"]["test_auc"] == pytest.approx(saved["test_auc"])
    assert saved["relations"]["uses"]["degree_baseline_direction"] in ("higher", "lower")
    torch.load(rundir / "checkpoint.pt", weights_only=True)


def test_test_edges_csv_reproduces_the_reported_metrics(trained, feature_graph):
    rundir, m = trained
    df = pd.read_csv(rundir / "test_edges.csv", dtype={"node_id": str, "video_id": str})
    assert list(df.columns) == ["relation", "video_id", "node_id", "label", "score"]
    assert set(df["relation"]) == {"uses"}
    assert df["label"].sum() == 60 and (df["label"] == 0).sum() == 30
    assert M.roc_auc(df["label"], df["score"]) == pytest.approx(m["test_auc"], abs=1e-6)
    assert M.brier(df["label"], df["score"]) == pytest.approx(m["test_mse"], abs=1e-6)
    # positives are real links, negatives are not
    ei = feature_graph["video", "uses", "song"].edge_index
    links = {(f"v{v}", f"s{s}") for v, s in ei.t().tolist()}
    pairs = list(zip(df["video_id"], df["node_id"]))
    assert all((p in links) == bool(lab) for p, lab in zip(pairs, df["label"]))


def test_refuses_to_overwrite_a_run(trained, feature_graph):
    rundir, _ = trained
    with pytest.raises(UserError, match="--resume"):
        train(feature_graph, GATConfig(epochs=2, **SMALL), rundir)


def _comparable(m: dict) -> dict:
    drop = {"seconds_per_epoch", "train_seconds_per_epoch", "peak_rss_mb", "peak_rss_mb_per_rank", "history"}
    return json.loads(json.dumps({k: v for k, v in m.items() if k not in drop}).replace("NaN", '"nan"'))


@pytest.mark.parametrize("batch_edges", [0, 50])
def test_resume_reproduces_the_uninterrupted_run(feature_graph, tmp_path, batch_edges):
    cfg = GATConfig(epochs=6, patience=100, batch_edges=batch_edges, seed=3, **SMALL)
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


def test_edge_batches_learn_as_well_as_full_batch(feature_graph, tmp_path, trained):
    _, full = trained
    m = train(feature_graph, GATConfig(epochs=30, patience=10, batch_edges=64, **SMALL), tmp_path)
    assert m["batch_edges"] == 64
    assert m["test_auc"] > m["degree_baseline_auc"]
    assert abs(m["test_auc"] - full["test_auc"]) < 0.1


def test_batched_evaluation_scores_exactly_what_the_full_graph_scores(trained, feature_graph):
    """score_stage on k-hop subgraphs (any chunk size) equals one full-graph pass, pair by pair."""
    from mdr_graph import distributed as ddp
    from mdr_graph.pretrain.embed import load_gat
    from mdr_graph.pretrain.linksplit import split_links
    from mdr_graph.pretrain.parts import graph_parts
    from mdr_graph.pretrain.trainer import LinkModel, message_graph, score_stage

    rundir, _ = trained
    encoder, meta = load_gat(rundir)
    cfg = meta["config"]
    parts = graph_parts(feature_graph)
    splits = split_links(parts.edges, parts.num_nodes, val_ratio=cfg.val_ratio, test_ratio=cfg.test_ratio,
                         disjoint_train_ratio=cfg.disjoint_train_ratio, neg_ratio=cfg.neg_ratio,
                         negatives=cfg.negatives, seed=cfg.seed)
    mp = message_graph(splits, parts, "test")
    deg = encoder.degrees(mp, parts.num_nodes)
    pairs = {"uses": splits["uses"].pairs("test")[0]}
    model = LinkModel(encoder, meta["decoders"])
    info = ddp.init_from_env("cpu")
    full = score_stage(model, parts, mp, deg, pairs, 0, info, torch.device("cpu"))["uses"]
    for chunk in (1, 7, 1000):
        part = score_stage(model, parts, mp, deg, pairs, chunk, info, torch.device("cpu"))["uses"]
        torch.testing.assert_close(part, full, atol=1e-5, rtol=1e-5)
    df = pd.read_csv(rundir / "test_edges.csv")
    np.testing.assert_allclose(torch.sigmoid(full.double()).numpy(), df["score"].to_numpy(), rtol=1e-6, atol=1e-7)


def test_every_relation_of_a_heterogeneous_graph_is_pretrained_and_reported(tmp_path):
    from mdr_graph.graph_build.graph import build_hetero, songs_table

    from hetero_graph import add_entities, videos_table

    videos = videos_table(600, 30, n_creators=50, n_tags=40)
    data = add_entities(build_hetero(videos, songs_table(videos)), videos)
    m = train(data, GATConfig(epochs=12, patience=100, batch_edges=200, **SMALL), tmp_path)
    assert set(m["relations"]) == {"uses", "posted_by", "tagged"}
    for name, r in m["relations"].items():
        for k in ("val_auc", "test_auc", "test_ap", "degree_baseline_auc", "degree_baseline_ap",
                  "test_auc_cold", "test_cold_share"):
            assert k in r, (name, k)
        assert np.isfinite([r["test_auc"], r["degree_baseline_auc"]]).all()
        assert r["degree_baseline_auc"] >= 0.5 - 0.1  # taken in its better (validation-chosen) direction
        assert r["node_type"] == {"uses": "song", "posted_by": "creator", "tagged": "hashtag"}[name]
    assert m["test_auc"] == pytest.approx(np.mean([r["test_auc"] for r in m["relations"].values()]))
    df = pd.read_csv(tmp_path / "test_edges.csv", dtype={"node_id": str, "video_id": str})
    for name, r in m["relations"].items():
        sub = df[df["relation"] == name]
        assert M.roc_auc(sub["label"], sub["score"]) == pytest.approx(r["test_auc"], abs=1e-6)
    gat = torch.load(tmp_path / "gat.pt", weights_only=True)
    assert gat["node_types"] == ["video", "song", "creator", "hashtag"]
    assert m["history"][-1]["loss"] < m["history"][0]["loss"]


def test_degree_heuristic_takes_its_better_direction_from_validation():
    from mdr_graph.pretrain.trainer import degree_heuristic

    deg = torch.tensor([0.0, 5.0, 1.0, 9.0])
    # positives point at low-degree entities (a star forest's "the song with no links is the positive")
    val = (torch.tensor([[0, 1, 2, 3], [0, 2, 1, 3]]), torch.tensor([1.0, 1.0, 0.0, 0.0]))
    test = (torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    h = degree_heuristic(deg, val, test)
    assert h["degree_baseline_direction"] == "lower" and h["degree_baseline_auc"] == 1.0
    h = degree_heuristic(deg, (val[0], 1 - val[1]), test)  # validation says "higher": applied as is on test
    assert h["degree_baseline_direction"] == "higher" and h["degree_baseline_auc"] == 0.0


def test_mse_loss_and_mlp_decoder_train(feature_graph, tmp_path):
    m = train(feature_graph, GATConfig(epochs=5, patience=5, loss="mse", decoder="mlp", **SMALL), tmp_path)
    assert np.isfinite([m["test_auc"], m["test_ap"], m["test_mse"]]).all()
    assert m["history"][-1]["loss"] < m["history"][0]["loss"] + 0.05


@pytest.mark.parametrize("kind", ["dot", "mlp"])
def test_ranking_every_entity_matches_the_decoder(kind):
    from mdr_graph.pretrain.model import LinkDecoder
    from mdr_graph.pretrain.trainer import rank_all

    torch.manual_seed(0)
    dec = LinkDecoder(8, kind)
    z_song, z_query = torch.randn(7, 8), torch.randn(5, 8)
    with torch.no_grad():
        expected = torch.stack([dec(z_song, q.expand(7, 8)) for q in z_query])
    torch.testing.assert_close(rank_all(dec, z_song, z_query, budget=30), expected)


def test_bf16_autocast_pretrains_on_cpu(feature_graph, tmp_path):
    """The bf16 path (meant for GPUs) runs here through CPU autocast; evaluation stays float32."""
    cfg = GATConfig(epochs=8, patience=100, seed=2, **SMALL)
    fp32 = train(feature_graph, cfg, tmp_path / "fp32")
    bf16 = train(feature_graph, dataclasses.replace(cfg, bf16=True), tmp_path / "bf16")
    assert np.isfinite([bf16["test_auc"], bf16["test_ap"], bf16["test_mse"]]).all()
    assert bf16["test_auc"] == pytest.approx(fp32["test_auc"], abs=0.05)
    assert bf16["history"][-1]["loss"] < bf16["history"][0]["loss"]
