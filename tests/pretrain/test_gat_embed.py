"""Frozen embeddings: transductive for graph videos, inductive for new videos and new songs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mdr_graph.cli import main as cli_main
from mdr_graph.graph_build.graph import build_hetero, load_graph, save_graph, songs_table
from mdr_graph.graph_build.schema import VIDEO_EDGE
from mdr_graph.pretrain import embed
from mdr_graph.pretrain.model import GATConfig
from mdr_graph.pretrain.trainer import train


def videos_table(n: int, n_songs: int, seed: int = 0, prefix: str = "v", song_prefix: str = "s") -> pd.DataFrame:
    """Rows in the videos.parquet schema (pre-publication fields only matter here)."""
    rng = np.random.default_rng(seed)
    song = rng.zipf(1.6, n) % n_songs
    return pd.DataFrame({
        "video_id": [f"{prefix}{i}" for i in range(n)],
        "song_id": [f"{song_prefix}{j}" for j in song],
        "song_original": song % 3 == 0,
        "song_uses": (1000 * (song + 1)).astype("int64"),
        "duration_s": rng.integers(5, 60, n).astype(float),
        "hashtags": [["fyp"] * int(k) for k in rng.integers(0, 5, n)],
        "caption": ["x" * int(k) for k in rng.integers(0, 80, n)],
        "create_time": pd.Timestamp("2020-12-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
        "author_followers": rng.integers(0, 10**6, n),
    })


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed")
    videos = videos_table(400, 25)
    save_graph(build_hetero(videos, songs_table(videos)), root / "graph")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(load_graph(root / "graph"), GATConfig(hidden=16, heads=2, epochs=3, patience=5), root / "run")
    finally:
        torch.set_num_threads(threads)
    return root, videos


def test_load_gat_gives_a_frozen_model_and_metadata(run):
    root, videos = run
    model, meta = embed.load_gat(root / "run" / "gat.pt")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert meta["embedding_dim"] == 16 == embed.embedding_dim(root / "run" / "gat.pt")
    assert embed.embedding_dim(root / "run") == 16  # a run directory works too
    assert meta["video_ids"] == videos["video_id"].tolist()
    assert meta["config"].hidden == 16


def test_embed_graph_is_the_frozen_model_on_the_full_graph(run):
    root, videos = run
    df = embed.embed_graph(root / "run" / "gat.pt", root / "graph")
    assert list(df.columns) == ["video_id", "song_id", "in_graph", "new_song", "embedding"]
    assert df["video_id"].tolist() == videos["video_id"].tolist()
    assert df["song_id"].tolist() == videos["song_id"].tolist()
    assert df["in_graph"].all() and not df["new_song"].any()
    emb = np.stack(df["embedding"].to_list())
    assert emb.shape == (400, 16) and emb.dtype == np.float32 and np.isfinite(emb).all()
    model, _ = embed.load_gat(root / "run")
    g = load_graph(root / "graph")
    with torch.no_grad():
        z = model({"video": g["video"].x, "song": g["song"].x}, {VIDEO_EDGE: g[VIDEO_EDGE].edge_index})
    np.testing.assert_allclose(emb, z["video"].numpy(), atol=1e-5)
    # batching by components (forced tiny batches) changes nothing
    small = embed.embed_graph(root / "run", root / "graph", batch_videos=37)
    np.testing.assert_allclose(np.stack(small["embedding"].to_list()), emb, atol=1e-5)


def test_embed_new_handles_known_songs_new_songs_no_song_and_graph_videos(run):
    root, videos = run
    new = videos_table(6, 25, seed=9, prefix="new")
    new.loc[0, "song_id"] = "s0"                  # a known song
    new.loc[1, "song_id"] = "brand-new-song"      # a song the graph lacks
    new.loc[2, "song_id"] = "brand-new-song"      # ...used twice
    new.loc[3, "song_id"] = None                  # no song at all
    graph_row = videos.iloc[[5]].copy()          # a video already in the graph
    df = embed.embed_new(root / "run" / "gat.pt", root / "graph", pd.concat([new, graph_row], ignore_index=True))
    assert df["video_id"].tolist() == new["video_id"].tolist() + ["v5"]
    assert df["in_graph"].tolist() == [False] * 6 + [True]
    assert df["new_song"].tolist() == [False, True, True, False, False, False, False]
    assert pd.isna(df.loc[3, "song_id"]) and df.loc[1, "song_id"] == "brand-new-song"
    emb = np.stack(df["embedding"].to_list())
    assert emb.shape == (7, 16) and np.isfinite(emb).all()
    full = embed.embed_graph(root / "run", root / "graph")
    np.testing.assert_allclose(emb[6], full.loc[5, "embedding"], atol=1e-5)  # transductive row unchanged
    assert not np.allclose(emb[0], emb[3])


def test_new_video_embedding_equals_rebuilding_the_graph_with_it(run):
    """Inductive embedding = frozen GAT on the graph rebuilt with the new rows (stateless features)."""
    root, videos = run
    new = videos_table(3, 25, seed=11, prefix="new")
    new["song_id"] = ["s1", "s2", "fresh"]
    out = embed.embed_new(root / "run", root / "graph", new)
    both = pd.concat([videos, new], ignore_index=True)
    g = build_hetero(both, songs_table(both))
    model, _ = embed.load_gat(root / "run")
    with torch.no_grad():
        z = model({"video": g["video"].x, "song": g["song"].x}, {VIDEO_EDGE: g[VIDEO_EDGE].edge_index})
    np.testing.assert_allclose(np.stack(out["embedding"].to_list()), z["video"][400:].numpy(), atol=1e-5)


def test_embed_new_rejects_bad_input(run):
    from mdr_graph.errors import UserError

    root, _ = run
    with pytest.raises(UserError, match="video_id"):
        embed.embed_new(root / "run", root / "graph", pd.DataFrame({"song_id": ["s1"]}))
    with pytest.raises(UserError, match="more than once"):
        embed.embed_new(root / "run", root / "graph", pd.DataFrame({"video_id": ["a", "a"], "song_id": ["s1", "s1"]}))
    with pytest.raises(UserError, match="no GAT checkpoint"):
        embed.load_gat(root / "nowhere.pt")


def test_cli_streams_graph_and_new_videos_to_parquet(run, tmp_path, capsys):
    root, _ = run
    new = videos_table(4, 30, seed=3, prefix="tomorrow")
    new.to_parquet(tmp_path / "new.parquet")
    out = tmp_path / "emb.parquet"
    rc = cli_main(["embed", "--gat", str(root / "run" / "gat.pt"), "--graph", str(root / "graph"), "--out", str(out),
                   "--new-videos", str(tmp_path / "new.parquet"), "--songs-out", str(tmp_path / "songs.parquet"),
                   "--batch-videos", "100"])
    assert rc == 0
    df = pd.read_parquet(out)
    assert len(df) == 404 and df["video_id"].is_unique
    assert df["in_graph"].sum() == 400
    assert np.stack(df["embedding"].to_list()).shape == (404, 16)
    songs = pd.read_parquet(tmp_path / "songs.parquet")
    assert len(songs) == 25 and songs["degree"].sum() == 400
    rc = cli_main(["embed", "--gat", str(root / "run"), "--graph", str(root / "graph"), "--out", str(out),
                   "--new-videos", str(tmp_path / "missing.parquet")])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_pretrain_cli_end_to_end_and_resume_flags(run, tmp_path, capsys):
    root, _ = run
    args = ["pretrain", "--graph", str(root / "graph"), "--out", str(tmp_path / "r"), "--epochs", "2",
            "--hidden", "8", "--heads", "2", "--seed", "1"]
    assert cli_main(args) == 0
    assert (tmp_path / "r" / "metrics.json").exists()
    assert cli_main(args) == 2 and "--resume" in capsys.readouterr().err
    assert cli_main(args + ["--resume", "--hidden", "16"]) == 2 and "hidden" in capsys.readouterr().err
    assert cli_main(args[:5] + ["--epochs", "3", "--resume"]) == 0
    assert cli_main(["pretrain", "--graph", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    assert "no graph" in capsys.readouterr().err
