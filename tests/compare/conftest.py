"""A small graph directory written by hand, for the comparison tests that need no media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mdr_graph.graph_build.graph import build_hetero, save_graph, songs_table
from mdr_graph.io import write_parquet


def write_toy_graph(root: Path, n_videos: int = 60, n_songs: int = 8, seed: int = 0) -> Path:
    """``root/graph`` with videos.parquet, songs.parquet and graph.pt; popularity depends on song and followers."""
    rng = np.random.default_rng(seed)
    song = rng.integers(0, n_songs, n_videos)
    song[:n_songs] = np.arange(n_songs)  # every song used at least once
    followers = rng.integers(10, 100_000, n_videos)
    t0 = pd.Timestamp("2020-12-01", tz="UTC")
    videos = pd.DataFrame({
        "video_id": [f"{7_000_000_000_000_000_000 + i}" for i in range(n_videos)],
        "song_id": [f"s{s}" for s in song],
        "song_title": [f"title {s}" for s in song],
        "song_author": [f"author {s}" for s in song],
        "song_original": pd.array(song % 2 == 0, dtype="boolean"),
        "song_uses": pd.array(1000 * (song + 1), dtype="Int64"),
        "author_id": [f"a{i % 17}" for i in range(n_videos)],
        "author_followers": pd.array(followers, dtype="Int64"),
        "caption": [f"clip {i} #fyp" for i in range(n_videos)],
        "hashtags": [["fyp"] * (i % 3) for i in range(n_videos)],
        "duration_s": pd.array(rng.uniform(5, 60, n_videos), dtype="Float64"),
        "create_time": [t0 + pd.Timedelta(hours=int(h)) for h in rng.integers(0, 24 * 20, n_videos)],
        "scrape_time": [t0 + pd.Timedelta(days=21)] * n_videos,
        "plays": pd.array(rng.integers(100, 10_000, n_videos), dtype="Int64"),
        "likes": pd.array(np.zeros(n_videos, int), dtype="Int64"),
        "shares": pd.array(np.zeros(n_videos, int), dtype="Int64"),
        "comments": pd.array(np.zeros(n_videos, int), dtype="Int64"),
        "saves": pd.array(np.zeros(n_videos, int), dtype="Int64"),
        "video_path": pd.array([None] * n_videos, dtype="string"),
    })
    videos["popularity_raw"] = (0.5 * song + 0.3 * np.log1p(followers) + rng.normal(0, 0.3, n_videos)).astype(float)
    songs = songs_table(videos)
    gdir = root / "graph"
    gdir.mkdir(parents=True, exist_ok=True)
    write_parquet(gdir / "videos.parquet", videos)
    write_parquet(gdir / "songs.parquet", songs)
    save_graph(build_hetero(videos, songs), gdir)
    return gdir


@pytest.fixture
def toy_graph(tmp_path: Path) -> Path:
    return write_toy_graph(tmp_path)


@pytest.fixture(scope="session")
def make_toy_graph():
    """The writer itself, for module-scoped fixtures (``make_toy_graph(root)``)."""
    return write_toy_graph
