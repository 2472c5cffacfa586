"""--format smp-video: posts joined with videos, users and popularity; a given target (--target-column)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mdr_graph.errors import UserError
from mdr_graph.graph_build.build import build_graph
from mdr_graph.graph_build.formats import expand_inputs
from mdr_graph.graph_build.ingest import REJECT_REASONS, ingest_files


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _post(pid, uid, tags="fyp,Dance", time="2023-01-02 10:00"):
    return {"pid": pid, "uid": uid, "post_content": tags, "post_location": "US", "post_suggested_words": [],
            "post_text_language": "en", "video_path": f"train/{uid}/{pid}.mp4", "post_time": time}


@pytest.fixture
def smp_dir(tmp_path):
    d = tmp_path / "smp"
    d.mkdir()
    _jsonl(d / "posts_train.jsonl", [
        _post("P1", "U1"), _post("P2", "U1"), _post("P3", "U2", tags=""), _post("P4", "U3"),   # U3: no user row
        _post("P5", "U2"),                                                                     # no popularity
        _post("P6", "U2"),                                                                     # bad popularity
        _post("P1", "U1"),                                                                     # duplicate_exact
        _post("P7", "U2"),                                                                     # no video row
    ])
    _jsonl(d / "videos_train.jsonl", [
        {"vid": f"V{i}", "pid": pid, "uid": uid, "video_duration": 30, "music_title": title, "music_duration": 30}
        for i, (pid, uid, title) in enumerate([("P1", "U1", "original sound"), ("P2", "U1", "original sound"),
                                               ("P3", "U2", "original sound"), ("P4", "U3", "Flowers"),
                                               ("P5", "U2", "Flowers"), ("P6", "U2", "Flowers"),
                                               ("P99", "U9", "orphan")])])
    _jsonl(d / "users_train.jsonl", [
        {"uid": "U1", "user_following_count": 5, "user_follower_count": 1000, "user_likes_count": 50,
         "user_video_count": 3, "user_digg_count": 7, "user_heart_count": 50, "user_friend_count": 0},
        {"uid": "U2", "user_following_count": 1, "user_follower_count": 20, "user_likes_count": -5,
         "user_video_count": 9, "user_digg_count": 0, "user_heart_count": -5, "user_friend_count": 0}])
    _jsonl(d / "popularity_train.jsonl", [{"pid": p, "uid": "x", "popularity": v} for p, v in
                                          [("P1", 9.5), ("P2", 3.25), ("P3", 7.0), ("P4", 1.5), ("P6", "high"),
                                           ("P7", 4.0), ("P98", 2.0)]])
    return d


def test_directory_joins_posts_and_takes_the_given_target(smp_dir, tmp_path):
    assert [p.name for p in expand_inputs([smp_dir])] == ["posts_train.jsonl"]  # side tables are joined in
    out = tmp_path / "g"
    s = build_graph([smp_dir], out, target_column="popularity")
    assert s["format"] == "smp-video" and s["target"] == {"kind": "given", "column": "popularity"}
    assert (s["input_records"], s["videos"], s["rejected"]) == (8, 5, 3)
    assert s["rejects_by_reason"] == {"bad_target": 1, "duplicate_exact": 1, "missing_target": 1}
    assert {"missing_target", "bad_target"} <= set(REJECT_REASONS)
    assert s["files"][0]["unjoined_rows"] == {"videos": 1, "users": 0, "popularity": 1}
    v = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    assert v.index.tolist() == ["P1", "P2", "P3", "P4", "P7"]
    assert v["popularity_raw"].tolist() == [9.5, 3.25, 7.0, 1.5, 4.0]
    assert v["plays"].isna().all()  # no counts in this data: the target is given
    # song identity: "original sound" is each creator's own sound; "Flowers" one song; no video row: no song
    assert v.loc["P1", "song_id"] == v.loc["P2", "song_id"] != v.loc["P3", "song_id"]
    assert v.loc["P1", "song_id"].startswith("own-") and v.loc["P4", "song_id"].startswith("title-")
    assert pd.isna(v.loc["P7", "song_id"]) and s["videos_without_song"] == 1
    assert list(v.loc["P1", "hashtags"]) == ["fyp", "Dance"] and list(v.loc["P3", "hashtags"]) == []
    assert v.loc["P1", "author_id"] == "U1" and v.loc["P1", "author_followers"] == 1000
    assert (v.loc["P1", "author_following"], v.loc["P1", "author_videos"], v.loc["P1", "author_hearts"],
            v.loc["P1", "author_diggs"]) == (5, 3, 50, 7)
    assert pd.isna(v.loc["P3", "author_hearts"]) and s["unreadable_values"]["author_hearts"] == 4  # U2 negative
    assert pd.isna(v.loc["P4", "author_followers"])  # no user row
    assert v.loc["P1", "create_time"] == pd.Timestamp("2023-01-02 10:00", tz="UTC")
    assert pd.isna(v.loc["P1", "video_path"])  # the posts name a file, which is not there


def test_posts_file_and_default_target(smp_dir):
    res = ingest_files([smp_dir / "posts_train.jsonl"])
    assert res.files[0]["format"] == "smp-video" and res.target == {"kind": "given", "column": "popularity"}
    assert len(res.videos) == 5


def test_target_column_on_csv_and_mixed_targets(tmp_path, smp_dir, write_json, scraper_record):
    csv = tmp_path / "labelled.csv"
    csv.write_text("id,created,score\na,1600000000,0.5\nb,1600000000,\nc,1600000000,nan\n", encoding="utf-8")
    res = ingest_files([csv], columns={"video_id": "id", "create_time": "created"}, target_column="score")
    assert res.videos["popularity_raw"].tolist() == [0.5]
    assert dict(res.rejects.by_reason) == {"missing_target": 1, "bad_target": 1}
    with pytest.raises(UserError, match="not a column"):
        ingest_files([csv], columns={"video_id": "id", "create_time": "created"}, target_column="nope")
    scrape = write_json([scraper_record("1")])
    assert ingest_files([scrape]).target["kind"] == "computed"
    with pytest.raises(UserError, match="differs from the earlier files"):
        ingest_files([scrape, smp_dir / "posts_train.jsonl"])


def test_real_smp_video(shared_data, tmp_path):
    s = build_graph([shared_data / "smp-video"], tmp_path / "g", target_column="popularity")
    assert s["input_records"] == 4000 and s["videos"] + s["rejected"] == 4000
    assert s["target"] == {"kind": "given", "column": "popularity"}
    assert s["files"][0]["unjoined_rows"] == {"videos": 0, "users": 0, "popularity": 0}
    pop = pd.read_json(shared_data / "smp-video" / "popularity_train.jsonl", lines=True)
    v = pd.read_parquet(tmp_path / "g" / "videos.parquet")
    merged = v.merge(pop, left_on="video_id", right_on="pid")
    assert len(merged) == s["videos"] and np.allclose(merged["popularity_raw"], merged["popularity"])
    # 1,470 posts are titled exactly "original sound": each is its creator's own sound, not one song
    assert s["song_identity"]["own_sound"] >= 1470 and s["song_degree"]["max"] < 100
    assert v["author_followers"].notna().mean() > 0.99
