"""Ingest: every reject reason, the accounting invariant, popularity, scrape times, media paths."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

from mdr_graph.errors import UserError
from mdr_graph.graph_build.ingest import REJECT_REASONS, ingest, ingest_files
from mdr_graph.graph_build.schema import VIDEO_COLUMNS

T0 = 1_608_000_000
DAY = 86_400


def _reasons(rejects):
    return {r["video_id"] or f"#{r['position']}": r["reason"] for r in rejects}


def test_every_reject_reason_and_the_invariant(tmp_path, write_json, scraper_record, DELETE):
    media = tmp_path / "media"
    media.mkdir()
    records = [
        scraper_record("ok1"),
        scraper_record("ok2", diggCount="541.2K", playCount="1.4M", shareCount="1,234", commentCount="44"),
        scraper_record("", ),                                                   # missing_video_id
        scraper_record("nosong", **{"musicMeta.musicId": "", "musicMeta.musicName": DELETE}),  # kept, no song
        scraper_record("noplays", playCount=DELETE),                            # missing_counts
        scraper_record("garbage", shareCount="lots"),                           # bad_count
        scraper_record("neg", commentCount=-3),                                 # negative_count
        scraper_record("negfans", **{"authorMeta.fans": -1}),                   # negative_count (followers)
        scraper_record("badtime", createTime="yesterday"),                      # bad_timestamp
        scraper_record("notime", createTime=DELETE),                            # bad_timestamp
        scraper_record("future", createTime=T0 + 30 * DAY),                     # created_after_scrape
        scraper_record("ok1"),                                                  # duplicate_exact
        scraper_record("ok2", diggCount=1),                                     # duplicate_conflicting
        scraper_record("escape", video_path="../outside.mp4"),                  # path_escapes_root
        7,                                                                      # not_a_record
    ]
    videos, rejects = ingest(write_json({"collector": records}), media_root=media,
                             scrape_time="2020-12-20T00:00:00Z")
    assert list(videos["video_id"]) == ["ok1", "ok2", "nosong"]
    assert videos["song_id"].isna().tolist() == [False, False, True]
    assert len(videos) + len(rejects) == len(records)
    got = _reasons(rejects)
    assert got == {
        "#3": "missing_video_id", "noplays": "missing_counts", "garbage": "bad_count",
        "neg": "negative_count", "negfans": "negative_count", "badtime": "bad_timestamp", "notime": "bad_timestamp",
        "future": "created_after_scrape", "ok1": "duplicate_exact", "ok2": "duplicate_conflicting",
        "escape": "path_escapes_root", "#15": "not_a_record",
    }
    assert set(got.values()) <= set(REJECT_REASONS)
    by_id = {r["video_id"]: r for r in rejects}
    assert by_id["ok2"]["duplicate_of"]["position"] == 2 and "likes" in by_id["ok2"]["detail"]
    assert by_id["ok1"]["duplicate_of"]["position"] == 1
    assert all(r["source"].endswith("scrape.json") and r["position"] >= 1 and r["detail"] for r in rejects)
    ok2 = videos.iloc[1]
    assert (ok2["likes"], ok2["plays"], ok2["shares"], ok2["comments"]) == (541_200, 1_400_000, 1_234, 44)


def test_invariant_holds_across_files_and_formats(tmp_path, write_json, scraper_record, api_record):
    a = write_json([scraper_record("1"), scraper_record("2")], name="a.json")
    b = write_json([api_record("2"), api_record("3"), {"bad": True}], name="b.jsonl", lines=True)
    res = ingest_files([a, b], scrape_time=T0 + DAY)
    assert res.input_records == 5
    assert len(res.videos) + res.rejects.total == res.input_records
    assert [f["format"] for f in res.files] == ["tiktok-scraper", "tiktok-api"]
    assert res.files[1]["records"] == 3 and res.files[1]["videos"] == 1
    assert res.rejects.by_reason == {"duplicate_conflicting": 1, "missing_video_id": 1}


def test_table_has_the_contract_columns_and_dtypes(write_json, scraper_record):
    videos, _ = ingest(write_json([scraper_record("1"), scraper_record("2", hashtags=[])]))
    assert list(videos.columns) == list(VIDEO_COLUMNS)
    for col, dtype in VIDEO_COLUMNS.items():
        assert str(videos[col].dtype) == dtype, col
    assert videos["hashtags"].iloc[0] == ["fyp", "dance"] and videos["hashtags"].iloc[1] == []
    assert videos["create_time"].iloc[0] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert videos["song_uses"].isna().all() and videos["video_path"].isna().all()


def test_popularity_formula_and_age_floor(write_json, scraper_record):
    recs = [scraper_record("old", createTime=T0 - 9 * DAY, playCount=1000, shareCount=10, commentCount=5),
            scraper_record("new", createTime=T0 - 3600, playCount=99, shareCount=0, commentCount=0)]
    videos, _ = ingest(write_json(recs), scrape_time=T0)
    pop = dict(zip(videos["video_id"], videos["popularity_raw"]))
    assert pop["old"] == pytest.approx(math.log((1000 + 10 + 5 + 1) / 9.0))
    assert pop["new"] == pytest.approx(math.log(100 / 1.0))  # an hour old counts as one day


def test_scrape_time_precedence(write_json, scraper_record, ytdlp_record):
    # 1) the record's own (yt-dlp epoch) beats --scrape-time
    v, _ = ingest(write_json(ytdlp_record("1")), scrape_time=T0 + 99 * DAY)
    assert v["scrape_time"].iloc[0] == pd.Timestamp(T0 + 10 * DAY, unit="s", tz="UTC")
    # 2) --scrape-time when the record has none
    recs = [scraper_record("a", createTime=T0 - 2 * DAY), scraper_record("b", createTime=T0)]
    v, _ = ingest(write_json(recs), scrape_time="2020-12-16")
    assert (v["scrape_time"] == pd.Timestamp("2020-12-16", tz="UTC")).all()
    # 3) else the latest create time among accepted records
    res = ingest_files([write_json(recs)])
    assert (res.videos["scrape_time"] == pd.Timestamp(T0, unit="s", tz="UTC")).all()
    assert res.scrape_time_sources == {"latest_create_time": 2}
    assert res.scrape_time_fallback == pd.Timestamp(T0, unit="s", tz="UTC").isoformat()
    # a per-record scrapeTime field in a tiktok-scraper dump is read too
    v, _ = ingest(write_json([scraper_record("c", scrapeTime="2020-12-25T00:00:00Z")]))
    assert v["scrape_time"].iloc[0] == pd.Timestamp("2020-12-25", tz="UTC")


def test_bad_scrape_time_option_is_a_user_error(write_json, scraper_record):
    with pytest.raises(UserError, match="--scrape-time"):
        ingest(write_json([scraper_record()]), scrape_time="soon")


def test_unreadable_optional_values_become_null_and_are_counted(write_json, scraper_record):
    rec = scraper_record("1", **{"videoMeta.duration": "long", "musicMeta.musicOriginal": "maybe",
                                 "authorMeta.fans": "many"})
    res = ingest_files([write_json([rec])])
    row = res.videos.iloc[0]
    assert pd.isna(row["duration_s"]) and pd.isna(row["song_original"]) and pd.isna(row["author_followers"])
    assert res.unreadable_values == {"duration_s": 1, "song_original": 1, "author_followers": 1}


def test_require_counts_false_accepts_new_videos(write_json, scraper_record, DELETE):
    rec = scraper_record("new", playCount=DELETE, shareCount=DELETE, commentCount=DELETE, diggCount=DELETE)
    videos, rejects = ingest(write_json([rec]), require_counts=False)
    assert rejects == [] and len(videos) == 1
    assert np.isnan(videos["popularity_raw"].iloc[0]) and videos["plays"].isna().all()
    _, rejects = ingest(write_json([rec]))
    assert rejects[0]["reason"] == "missing_counts"


def test_media_root_default_named_missing_and_escapes(tmp_path, write_json, ytdlp_record, scraper_record):
    media = tmp_path / "media"
    (media / "sub").mkdir(parents=True)
    (media / "v1.mp4").write_bytes(b"x")
    (media / "sub" / "clip.mp4").write_bytes(b"x")
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"x")
    os.symlink(outside, media / "v3.mp4")        # a symlink leading out of the root
    recs = [scraper_record("v1"), scraper_record("v2"), scraper_record("v3"),
            scraper_record("v4", video_path="sub/clip.mp4"), scraper_record("v5", video_path=str(outside)),
            scraper_record("v6", video_path="sub/../../secret.mp4"), scraper_record("../secret")]
    videos, rejects = ingest(write_json(recs), media_root=media, scrape_time=T0 + DAY)
    paths = dict(zip(videos["video_id"], videos["video_path"]))
    assert paths["v1"] == str((media / "v1.mp4").resolve())
    assert pd.isna(paths["v2"])                             # no file: null, not a reject
    assert paths["v4"] == str((media / "sub" / "clip.mp4").resolve())
    assert _reasons(rejects) == {"v3": "path_escapes_root", "v5": "path_escapes_root",
                                 "v6": "path_escapes_root", "../secret": "path_escapes_root"}


def test_without_media_root_paths_stay_under_the_metadata_directory(tmp_path, write_json, ytdlp_record):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "1.mp4").write_bytes(b"x")
    a = write_json(ytdlp_record("1", _filename="1.mp4"), name="dl/1.info.json")
    b = write_json(ytdlp_record("2", _filename="/etc/passwd"), name="dl/2.info.json")
    c = write_json(ytdlp_record("3", _filename="3.mp4"), name="dl/3.info.json")
    videos, rejects = ingest([a, b, c])
    assert dict(zip(videos["video_id"], videos["video_path"]))["1"] == str((tmp_path / "dl" / "1.mp4").resolve())
    assert pd.isna(dict(zip(videos["video_id"], videos["video_path"]))["3"])
    assert _reasons(rejects) == {"2": "path_escapes_root"}


def test_csv_ingest_with_abbreviated_counts(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("id,song,posted,plays,shares,comments,orig,tags,video_path,scrape_time\n"
                 "1,9,2020-12-01 10:00,541.2K,1.4M,\"1,234\",True,\"#a #b\",,2020-12-20T00:00:00+00:00\n"
                 "2,9,2020-12-01 10:00,1,1\n", encoding="utf-8")
    videos, rejects = ingest(p, columns={"video_id": "id", "song_id": "song", "create_time": "posted",
                                         "song_original": "orig", "hashtags": "tags"})
    row = videos.iloc[0]
    assert (row["plays"], row["shares"], row["comments"]) == (541_200, 1_400_000, 1_234)
    assert bool(row["song_original"]) is True and row["hashtags"] == ["a", "b"]
    assert row["scrape_time"] == pd.Timestamp("2020-12-20", tz="UTC")
    assert [(r["reason"], r["line"]) for r in rejects] == [("malformed_row", 3)]


def test_bad_json_line_and_yt_dlp_without_track(write_json, api_record, ytdlp_record, tmp_path):
    p = tmp_path / "items.jsonl"
    import json

    p.write_text(json.dumps(api_record("1")) + "\n{oops\n" + json.dumps(api_record("2")) + "\n")
    videos, rejects = ingest(p)
    assert list(videos["video_id"]) == ["1", "2"]
    assert rejects[0]["reason"] == "bad_json" and rejects[0]["line"] == 2
    p.write_text(json.dumps(api_record("1")) + "\n\n" + json.dumps(api_record("1", desc="other")) + "\n")
    _, rejects = ingest(p)
    assert [(r["reason"], r["position"], r["line"]) for r in rejects] == [("duplicate_conflicting", 2, 3)]
    videos, rejects = ingest(write_json(ytdlp_record("9", track=None), name="9.info.json"))
    assert rejects == [] and videos["song_id"].isna().all()  # kept, without a song
