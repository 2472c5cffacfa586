"""Videos without a song id: kept as song-less video nodes, counted, and harmless downstream."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mdr_graph.compare.tabular import fit_predict
from mdr_graph.graph_build.build import build_graph
from mdr_graph.graph_build.export import to_networkx
from mdr_graph.graph_build.graph import load_graph
from mdr_graph.graph_build.schema import REV_EDGE, VIDEO_EDGE
from mdr_graph.splits import SplitConfig, make_splits

T0 = 1_608_000_000
POPULARITY_COLUMNS = ("video_id=id,plays=view_count,likes=like_count,shares=share_count,"
                      "comments=comment_count,author_id=username,caption=video_description")


def test_videos_without_song_are_kept_without_a_song_edge(tmp_path, write_json, scraper_record, DELETE):
    recs = [scraper_record("1", "s1"), scraper_record("2", **{"musicMeta.musicId": "", "musicMeta.musicName": DELETE}),
            scraper_record("3", "s1"), scraper_record("4", musicMeta=DELETE)]
    out = tmp_path / "g"
    s = build_graph([write_json(recs)], out, scrape_time=T0 + 86_400, nodes="song")
    assert (s["videos"], s["songs"], s["edges"], s["videos_without_song"], s["rejected"]) == (4, 1, 2, 2, 0)
    assert s["components"] == 3  # the song with its two videos, and two song-less videos
    videos = pd.read_parquet(out / "videos.parquet")
    assert videos["song_id"].isna().tolist() == [False, True, False, True]
    g = load_graph(out)
    assert g["video"].video_id == ["1", "2", "3", "4"] and g["song"].song_id == ["s1"]
    assert g[VIDEO_EDGE].edge_index.tolist() == [[0, 2], [0, 0]]
    assert g[REV_EDGE].edge_index.tolist() == [[0, 0], [0, 2]]
    songs = pd.read_parquet(out / "songs.parquet")
    assert songs["song_id"].tolist() == ["s1"] and songs["degree"].tolist() == [2]
    nxg = to_networkx(videos, songs)
    assert nxg.number_of_nodes() == 5 and nxg.number_of_edges() == 2


def test_csv_without_a_song_column(tmp_path):
    csv = tmp_path / "export.csv"
    csv.write_text("id,created,views,shares,comments,text\n"
                   f"a,{T0},100,1,2,hello #Cats and #dogs\n"
                   f"b,{T0 + 60},50,0,0,no tags\n", encoding="utf-8")
    out = tmp_path / "g"
    s = build_graph([csv], out, columns={"video_id": "id", "create_time": "created", "plays": "views",
                                         "caption": "text"}, scrape_time=T0 + 86_400)
    assert (s["videos"], s["songs"], s["edges"], s["videos_without_song"], s["rejected"]) == (2, 0, 0, 2, 0)
    videos = pd.read_parquet(out / "videos.parquet")
    assert videos["song_id"].isna().all()
    # no hashtag column: the caption's #tags are the hashtags
    assert [list(t) for t in videos["hashtags"]] == [["Cats", "dogs"], []]
    g = load_graph(out)
    assert g[VIDEO_EDGE].edge_index.shape == (2, 0) and g["song"].x.shape[0] == 0


def test_downstream_copes_with_null_song_ids():
    videos = pd.DataFrame({"video_id": [f"v{i}" for i in range(10)],
                           "song_id": pd.array(["s1", None, "s1", None, "s2", None, None, "s2", None, None],
                                               dtype="string"),
                           "author_id": pd.array(["a"] * 10, dtype="string"),
                           "create_time": pd.date_range("2020-12-01", periods=10, freq="h", tz="UTC")})
    # song split: each song-less video is its own group, not one shared "<NA>" song
    parts = make_splits(videos, SplitConfig("song", seed=0, fractions=(0.5, 0.2, 0.3)))
    assert sorted(np.concatenate(list(parts.values()))) == sorted(videos["video_id"])
    assert min(len(p) for p in parts.values()) > 0
    rows = {"train": np.arange(6), "val": np.arange(6, 8), "test": np.arange(8, 10)}
    target = np.linspace(0, 1, 10)
    pred, info = fit_predict("song-mean", videos, rows, target, np.zeros((10, 1)))
    assert np.isfinite(pred).all() and info["songs_fitted"] == 2
    assert pred[1] == pytest.approx(info["global_mean"])


def test_tiktok_popularity_csv(tmp_path, shared_data):
    root = shared_data / "tiktok-popularity"
    out = tmp_path / "g"
    s = build_graph([root / "video-data.csv"], out, columns=dict(p.split("=") for p in POPULARITY_COLUMNS.split(",")),
                    media_root=root / "videos", scrape_time="2025-05-04")
    assert s["input_records"] == 167 and s["videos"] + s["rejected"] == 167
    assert s["videos_without_song"] == s["videos"] and s["songs"] == 0 and s["edges"] == 0
    videos = pd.read_parquet(out / "videos.parquet")
    found = videos["video_path"].notna()
    assert s["media_files"] == {"found": int(found.sum()), "missing": int((~found).sum())}
    assert found.sum() == len(list((root / "videos").glob("*.mp4")))
    assert all(p.startswith(str((root / "videos").resolve())) for p in videos.loc[found, "video_path"])
    assert videos["popularity_raw"].notna().all()
    assert sum(len(t) for t in videos["hashtags"] if t is not None) > 0 and videos["author_id"].notna().all()
    assert json.loads((out / "summary.json").read_text())["videos_without_song"] == s["videos"]
