"""build-graph faults: nothing accepted, wrong format, future dates, overflowing counts, bad
characters, deep nesting (§2, §3, §7, §8, §9, §16). Every record is a video or a reject."""

from __future__ import annotations

import json

import pandas as pd

from mdr_graph.graph_build.build import build_graph


def _rejects(graph) -> list[dict]:
    return [json.loads(ln) for ln in (graph / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]


def _accounted(summary: dict) -> bool:
    return summary["videos"] + summary["rejected"] == summary["input_records"]


def test_a_build_accepting_nothing_keeps_the_previous_graph_and_names_the_format(
        tmp_path, scrape, record, cli, one_line_error):
    src = scrape([record(i) for i in range(10)])
    out = tmp_path / "g"
    assert cli("build-graph", src, "--out", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc, err = cli("build-graph", src, "--out", out, "--format", "tiktok-api")
    line = one_line_error(err)
    assert rc == 2 and "no video was accepted from 10 record(s) (missing_counts 10)" in line
    assert "looks like tiktok-scraper" in line and "--format tiktok-scraper" in line and "left as it was" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_one_future_dated_record_does_not_move_everyones_scrape_time(tmp_path, scrape, record):
    recs = [record(i) for i in range(20)]
    recs[3]["createTime"] += 5 * 365 * 86_400          # five years ahead, yet before today
    s = build_graph([scrape(recs)], tmp_path / "g")
    assert _accounted(s) and s["rejects_by_reason"] == {"created_after_scrape": 1}
    latest = max(r["createTime"] for i, r in enumerate(recs) if i != 3)
    assert pd.Timestamp(s["scrape_time_fallback"]) == pd.Timestamp(latest, unit="s", tz="UTC")
    assert "latest create time" in s["scrape_time_fallback_reason"]
    assert "1 record(s)" in s["scrape_time_fallback_reason"]


def test_record_created_after_its_file_was_written_is_rejected(tmp_path, scrape, record):
    recs = [record(i) for i in range(3)]
    recs[0]["createTime"] = 4_000_000_000               # 2096: after the file was written
    s = build_graph([scrape(recs)], tmp_path / "g")
    assert s["rejects_by_reason"] == {"created_after_scrape": 1} and _accounted(s)


def test_overflowing_counts_are_bad_count_rejects(tmp_path, scrape, record):
    recs = [record(0, playCount=1e30), record(1, **{"authorMeta.fans": 1e30}), record(2, playCount=10**30),
            record(3, shareCount="1e30"), record(4, playCount="99999999999999999999B"), record(5)]
    s = build_graph([scrape(recs)], tmp_path / "g")
    assert s["videos"] == 1 and s["rejects_by_reason"] == {"bad_count": 5} and _accounted(s)
    assert all("too large" in r["detail"] or "cannot read" in r["detail"] for r in _rejects(tmp_path / "g"))


def test_bad_characters_clean_free_text_and_reject_ids_and_paths(tmp_path, scrape, record):
    recs = [record(0, text="bad \ud83d half"), record(1, text="nul\x00here", **{"musicMeta.musicName": "a\ud800"}),
            record(2, id="12\ud83d"), record(3, **{"musicMeta.musicId": "9\x000"}), record(4)]
    src = tmp_path / "scrape.json"
    src.write_text(json.dumps({"collector": recs}), encoding="utf-8")   # \ud83d stays a JSON escape
    s = build_graph([src], tmp_path / "g")
    assert s["videos"] == 3 and s["rejects_by_reason"] == {"bad_text": 2} and _accounted(s)
    v = pd.read_parquet(tmp_path / "g" / "videos.parquet").set_index("video_id")
    assert v.loc["7000000", "caption"] == "bad \ufffd half" and v.loc["7000001", "caption"] == "nulhere"
    assert v.loc["7000001", "song_title"] == "a\ufffd"


def test_bad_characters_in_a_csv_video_path_are_rejected(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("video_id,song_id,plays,shares,comments,create_time,video_path\n"
                   "1,9,10,1,1,2020-12-01,ok.mp4\n2,9,10,1,1,2020-12-01,a\x00b.mp4\n", encoding="utf-8")
    s = build_graph([csv], tmp_path / "g")
    assert s["videos"] == 1 and s["rejects_by_reason"] == {"bad_text": 1}


def test_deep_nesting_is_a_reject_in_json_lines_and_one_line_for_a_whole_file(
        tmp_path, scrape, record, cli, one_line_error):
    deep = "[" * 200_000 + "]" * 200_000
    lines = tmp_path / "x.jsonl"
    lines.write_text(json.dumps(record(0)) + "\n" + deep + "\n" + json.dumps(record(1)) + "\n")
    s = build_graph([lines], tmp_path / "g")
    assert s["videos"] == 2 and s["rejects_by_reason"] == {"bad_json": 1}
    whole = tmp_path / "deep.json"
    whole.write_text(deep)
    rc, err = cli("build-graph", whole, "--out", tmp_path / "g2")
    assert rc == 2 and "nested too deeply" in one_line_error(err) and not (tmp_path / "g2").exists()
