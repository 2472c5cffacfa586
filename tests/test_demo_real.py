"""The second way to try the toolkit: the demo on the 50 real TikTok videos and their 167-row CSV
(needs ../shared/data). The CSV has no song column, so there is no GAT; 117 rows have no file."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mdr_graph.cli import main
from mdr_graph.io import read_json

COLUMNS = ("video_id=id,plays=view_count,likes=like_count,shares=share_count,comments=comment_count,"
           "caption=video_description,author_id=username")


@pytest.mark.slow
@pytest.mark.needs_shared
def test_real_video_demo_end_to_end(tmp_path, real_videos, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--quick", "--out", str(out), "--data", str(real_videos.parent / "video-data.csv"),
            "--media-root", str(real_videos), "--scrape-time", "2025-05-04", "--columns", COLUMNS,
            "--workers", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    graph = read_json(out / "graph" / "summary.json")
    assert (graph["videos"], graph["edges"], graph["rejected"]) == (167, 0, 0)
    assert graph["media_files"] == {"found": 50, "missing": 117}
    # every real file yields features; every row without one is in errors.jsonl, saying so
    index = pd.read_parquet(out / "features" / "index.parquet")
    assert len(index) == 167 and index["error"].isna().sum() == 50
    errors = [json.loads(line) for line in (out / "features" / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 117 and all(e["error"].startswith("no media file") for e in errors)
    assert "117 without a media file, 0 could not be decoded" in printed.err
    # no song links: no GAT, no network modality; the rows without a file keep their tabular modalities
    assert not (out / "gat" / "gat.pt").exists() and "no song links" in printed.err
    summary = read_json(out / "compare" / "compare.json")
    assert summary["fusion_modalities"] == ["labels", "meta", "text", "gbdt", "mfcc", "vit", "convlstm"]
    assert {m["name"] for m in summary["models"] if m["skip"]} >= {"gat-only"}
    metrics = read_json(out / "compare" / "coattention" / "seed0" / "metrics.json")
    assert metrics["missing_media"] == 117 and sum(metrics["split_sizes"].values()) == 167
    assert "| coattention |" in printed.out
