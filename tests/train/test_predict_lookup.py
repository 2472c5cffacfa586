"""predict --video: a known song's and creator's fields come from the run's graph, not "missing"."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from mdr_graph.encoders.meta import META_FEATURES, meta_features
from mdr_graph.graph_build.graph import songs_table
from mdr_graph.io import write_parquet
from mdr_graph.train.predict import fill_from_graph, videos_from_files


def _graph(root):
    t0 = pd.Timestamp("2020-12-01", tz="UTC")
    videos = pd.DataFrame({
        "video_id": ["v1", "v2", "v3"], "song_id": ["s1", "s1", "s2"], "song_title": ["a", "a", "b"],
        "song_original": pd.array([True, True, False], dtype="boolean"),
        "song_uses": pd.array([5000, 5000, 20], dtype="Int64"), "author_id": ["c1", "c1", "c2"],
        "author_followers": pd.array([100, 250, 7], dtype="Int64"),
        "create_time": [t0, t0 + pd.Timedelta(days=2), t0],
    })
    root.mkdir()
    write_parquet(root / "videos.parquet", videos)
    write_parquet(root / "songs.parquet", songs_table(videos))
    return root


def _args(tmp_path, **kw):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    base = dict(video=[str(clip), str(clip)], video_id=["new1", "new2"], song_id=["s1", "brand-new"],
                song_title=None, song_author=None, caption=None, hashtags=None, create_time=None,
                author_id=["c1", "nobody"], author_followers=None)
    return argparse.Namespace(**{**base, **kw})


def test_known_song_and_creator_fields_are_looked_up(tmp_path):
    graph = _graph(tmp_path / "g")
    rows = videos_from_files(_args(tmp_path))
    before = meta_features(rows)
    col = {n: i for i, n in enumerate(META_FEATURES)}
    assert before[0, col["uses_missing"]] == 1.0  # what predict gave a known song before the lookup
    filled = fill_from_graph(rows, graph)
    m = meta_features(filled)
    # the known song: its use count and originality, as training saw them
    assert m[0, col["uses_missing"]] == 0.0 and m[0, col["log_song_uses"]] == np.float32(np.log1p(5000))
    assert m[0, col["song_original"]] == 1.0 and m[0, col["original_missing"]] == 0.0
    # the known creator: followers from its latest video in the graph
    assert m[0, col["followers_missing"]] == 0.0 and m[0, col["log_author_followers"]] == np.float32(np.log1p(250))
    # a new song and a new creator stay missing
    assert m[1, col["uses_missing"]] == 1.0 and m[1, col["followers_missing"]] == 1.0


def test_given_values_win_over_the_graph(tmp_path):
    graph = _graph(tmp_path / "g")
    rows = videos_from_files(_args(tmp_path, author_followers=[9, None]))
    filled = fill_from_graph(rows, graph)
    assert int(filled.loc[0, "author_followers"]) == 9
