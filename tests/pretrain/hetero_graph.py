"""Heterogeneous test graphs (video, song, creator, hashtag) in the graph contract of issue 11.

Until `build-graph --nodes song,creator,hashtag` lands, tests build such graphs here: today's
song-video graph plus creator nodes from ``author_id`` and hashtag nodes from ``hashtags``,
with the contract's edge types in both directions and id lists ``creator_id`` / ``hashtag``.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from mdr_graph.graph_build.graph import GRAPH_FILE, build_hetero, songs_table
from mdr_graph.io import torch_save, write_parquet

POSTED_BY = ("video", "posted_by", "creator")
TAGGED = ("video", "tagged", "hashtag")


def _tag(t: str) -> str:
    return unicodedata.normalize("NFKC", str(t)).strip().lstrip("#").lower()


def add_entities(data: HeteroData, videos: pd.DataFrame, creators: bool = True, hashtags: bool = True) -> HeteroData:
    """``data`` (rows = ``videos`` rows) plus creator and hashtag nodes and their links."""
    V = len(videos)
    if creators:
        has = videos["author_id"].notna().to_numpy()
        ids = list(dict.fromkeys(videos.loc[has, "author_id"].astype(str)))
        pos = pd.Index(ids).get_indexer(videos["author_id"].astype(str))
        fol = pd.to_numeric(videos["author_followers"], errors="coerce")
        per = pd.DataFrame({"c": pos, "f": fol})[has].groupby("c")["f"].max().reindex(range(len(ids)))
        x = np.stack([np.log1p(per.fillna(0).to_numpy()), per.isna().to_numpy()], 1).astype(np.float32)
        data["creator"].x = torch.from_numpy(x)
        data["creator"].creator_id = ids
        data["creator"].feature_names = ["log_followers", "followers_missing"]
        ei = torch.from_numpy(np.stack([np.arange(V)[has], pos[has]]).astype(np.int64))
        data[POSTED_BY].edge_index = ei
        data["creator", "rev_posted_by", "video"].edge_index = ei.flip(0).contiguous()
    if hashtags:
        per_video = [list(dict.fromkeys(_tag(t) for t in (tags if isinstance(tags, (list, np.ndarray)) else [])
                                        if _tag(t))) for tags in videos["hashtags"]]
        ids = list(dict.fromkeys(t for ts in per_video for t in ts))
        index = pd.Index(ids)
        src = np.repeat(np.arange(V), [len(t) for t in per_video])
        dst = index.get_indexer([t for ts in per_video for t in ts]) if ids else np.zeros(0, int)
        data["hashtag"].x = torch.tensor([[np.log1p(len(t))] for t in ids], dtype=torch.float32).reshape(-1, 1)
        data["hashtag"].hashtag = ids
        data["hashtag"].feature_names = ["log_chars"]
        ei = torch.from_numpy(np.stack([src, dst]).astype(np.int64)).reshape(2, -1)
        data[TAGGED].edge_index = ei
        data["hashtag", "rev_tagged", "video"].edge_index = ei.flip(0).contiguous()
    return data


def videos_table(n: int, n_songs: int, n_creators: int = 40, n_tags: int = 30, seed: int = 0,
                 prefix: str = "v") -> pd.DataFrame:
    """Rows in the videos.parquet schema; links follow latent groups so that they can be predicted."""
    rng = np.random.default_rng(seed)
    song = rng.zipf(1.6, n) % n_songs
    creator = rng.zipf(1.5, n) % n_creators
    tags = [[f"T{(creator[i] * 7 + k) % n_tags}" for k in range(int(rng.integers(0, 4)))] + ["#FYP"] * int(i % 3 == 0)
            for i in range(n)]
    return pd.DataFrame({
        "video_id": [f"{prefix}{i}" for i in range(n)],
        "song_id": [f"s{j}" for j in song],
        "song_title": [f"title {j}" for j in song],
        "song_original": song % 3 == 0,
        "song_uses": (1000 * (song + 1)).astype("int64"),
        "author_id": [f"c{c}" for c in creator],
        "author_followers": (100 * (creator + 1) ** 2).astype("int64"),
        "duration_s": (5 + creator % 50).astype(float) + rng.random(n),
        "hashtags": tags,
        "caption": ["x" * int(k) for k in rng.integers(0, 80, n)],
        "create_time": pd.Timestamp("2020-12-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
        "popularity_raw": rng.normal(size=n) + np.log1p(creator),
    })


def write_graph(root: Path, videos: pd.DataFrame, creators: bool = True, hashtags: bool = True) -> Path:
    """``root`` with videos.parquet, songs.parquet and a heterogeneous graph.pt (the build-graph layout)."""
    root.mkdir(parents=True, exist_ok=True)
    songs = songs_table(videos)
    write_parquet(root / "videos.parquet", videos)
    write_parquet(root / "songs.parquet", songs)
    torch_save(root / GRAPH_FILE, add_entities(build_hetero(videos, songs), videos, creators, hashtags))
    return root
