"""build_graph / `mdr-graph build-graph`: outputs, their schema, atomicity, rebuilds, exports, real data."""

from __future__ import annotations

import json

import networkx as nx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mdr_graph.cli import main as cli_main
from mdr_graph.errors import UserError
from mdr_graph.graph_build.build import build_graph
from mdr_graph.graph_build.graph import load_graph
from mdr_graph.graph_build.schema import REV_EDGE, SONG_COLUMNS, VIDEO_COLUMNS, VIDEO_EDGE

T0 = 1_608_000_000


@pytest.fixture
def scrape(write_json, scraper_record, DELETE):
    recs = [scraper_record("1", "s1"), scraper_record("2", "s1"), scraper_record("3", "s2"),
            scraper_record("4", "s1", playCount=DELETE), scraper_record("2", "s1")]
    return write_json({"collector": recs})


def test_outputs_schema_and_graph(tmp_path, scrape):
    out = tmp_path / "g"
    s = build_graph([scrape], out, scrape_time=T0 + 86_400, nodes="song")
    assert sorted(p.name for p in out.iterdir()) == ["config.toml", "graph.pt", "rejects.jsonl", "songs.parquet",
                                                     "summary.json", "videos.parquet"]
    assert (s["input_records"], s["videos"], s["songs"], s["edges"], s["rejected"]) == (5, 3, 2, 3, 2)
    assert s["videos"] + s["rejected"] == s["input_records"]
    assert s["format"] == "tiktok-scraper" and s["rejects_by_reason"] == {"duplicate_exact": 1, "missing_counts": 1}
    assert s["song_degree"]["max"] == 2 and s["components"] == 2
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(s))

    schema = pq.read_schema(out / "videos.parquet")
    assert schema.names == list(VIDEO_COLUMNS)
    assert schema.field("hashtags").type == pa.list_(pa.string())
    assert schema.field("create_time").type == pa.timestamp("ns", tz="UTC")
    assert schema.field("video_path").type == pa.string()
    videos = pd.read_parquet(out / "videos.parquet")
    assert list(videos["video_id"]) == ["1", "2", "3"] and str(videos["plays"].dtype) == "Int64"
    songs = pd.read_parquet(out / "songs.parquet")
    assert list(songs.columns) == list(SONG_COLUMNS)
    assert list(zip(songs["song_id"], songs["degree"])) == [("s1", 2), ("s2", 1)]

    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(r["position"], r["reason"]) for r in rejects] == [(4, "missing_counts"), (5, "duplicate_exact")]
    assert all(r["source"] == str(scrape) for r in rejects)

    g = load_graph(out)
    assert g["video"].video_id == ["1", "2", "3"] and g["song"].song_id == ["s1", "s2"]
    assert g[VIDEO_EDGE].edge_index.tolist() == [[0, 1, 2], [0, 0, 1]]
    assert g[REV_EDGE].edge_index.tolist() == [[0, 0, 1], [0, 1, 2]]
    assert g["video"].x.shape[0] == 3 and g["song"].x.shape[0] == 2


def test_graph_pt_is_a_heterodata_loadable_with_weights_only(tmp_path, scrape):
    import torch
    from torch_geometric.data import HeteroData

    build_graph([scrape], tmp_path / "g", nodes="song")
    raw = torch.load(tmp_path / "g" / "graph.pt", weights_only=True)  # no code runs on load
    assert isinstance(raw, HeteroData)
    assert sorted(raw.node_types) == ["song", "video"] and set(raw.edge_types) == {VIDEO_EDGE, REV_EDGE}
    assert raw["video"].video_id == ["1", "2", "3"] and raw["song"].song_id == ["s1", "s2"]
    assert raw["video"].x.shape == (3, len(raw["video"].feature_names))


def test_format_1_graphs_still_load(tmp_path, scrape):
    """Graphs written by earlier versions (a plain dict, ids newline-joined) read the same."""
    import torch

    new = load_graph(build_graph([scrape], tmp_path / "g") and tmp_path / "g")
    (tmp_path / "old").mkdir()
    torch.save({"format_version": 1, "video_x": new["video"].x, "video_id": "1\n2\n3",
                "video_feature_names": new["video"].feature_names, "song_x": new["song"].x, "song_id": "s1\ns2",
                "song_feature_names": new["song"].feature_names, "edge_index": new[VIDEO_EDGE].edge_index},
               tmp_path / "old" / "graph.pt")
    old = load_graph(tmp_path / "old")
    assert old["video"].video_id == new["video"].video_id and old["song"].song_id == new["song"].song_id
    assert torch.equal(old[REV_EDGE].edge_index, new[REV_EDGE].edge_index)
    assert torch.equal(old["video"].x, new["video"].x)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "graph.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable graph"):
        load_graph(tmp_path / "bad")


def test_invalid_json_writes_nothing_and_keeps_the_previous_graph(tmp_path, scrape):
    out = tmp_path / "g"
    build_graph([scrape], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = tmp_path / "broken.json"
    broken.write_text('{"collector": [{"id": "1"}, {"id": ]}')
    with pytest.raises(UserError, match="broken.json: not valid JSON"):
        build_graph([scrape, broken], out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    fresh = tmp_path / "fresh"
    with pytest.raises(UserError):
        build_graph([broken], fresh)
    assert not fresh.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_rebuild_replaces_outputs_and_drops_stale_exports(tmp_path, scrape, write_json, scraper_record):
    out = tmp_path / "g"
    build_graph([scrape], out, export=["graphml", "gexf"])
    assert (out / "graph.graphml").exists() and (out / "graph.gexf").exists()
    (out / "notes.txt").write_text("mine")
    other = write_json([scraper_record("9", "s9")], name="other.json")
    s = build_graph([other], out)
    assert s["videos"] == 1 and not (out / "graph.graphml").exists() and not (out / "graph.gexf").exists()
    assert (out / "notes.txt").read_text() == "mine"  # files the build does not own are left alone
    assert list(pd.read_parquet(out / "videos.parquet")["video_id"]) == ["9"]


def test_graph_dir_inside_the_input_directory_is_not_read_back(tmp_path, write_json, scraper_record):
    data = tmp_path / "scrape"
    write_json([scraper_record("1"), scraper_record("2", playCount=None)], name="scrape/a.json")
    first = build_graph([data], data / "graph")
    assert (data / "graph" / "rejects.jsonl").read_text()  # a .jsonl file now sits under the input dir
    again = build_graph([data], data / "graph")
    assert (again["input_records"], again["videos"], again["rejected"]) == (2, 1, 1) == (
        first["input_records"], first["videos"], first["rejected"])


def test_exports_open_in_networkx(tmp_path, scrape):
    out = tmp_path / "g"
    build_graph([scrape], out, export=["graphml", "gexf"], nodes="song")
    for g in (nx.read_graphml(out / "graph.graphml"), nx.read_gexf(out / "graph.gexf")):
        assert g.number_of_nodes() == 5 and g.number_of_edges() == 3
        assert g.nodes["video:1"]["type"] == "video" and g.nodes["song:s1"]["type"] == "song"
        assert g.has_edge("video:3", "song:s2")
        assert int(g.nodes["song:s1"]["degree"]) == 2


def test_cli_build_and_errors(tmp_path, scrape, capsys):
    out = tmp_path / "g"
    assert cli_main(["build-graph", str(scrape), "--out", str(out), "--scrape-time", "2020-12-20T00:00:00Z"]) == 0
    text = capsys.readouterr()
    assert "tiktok-scraper (records have musicMeta)" in text.err and "input records" in text.out
    cfg = (out / "config.toml").read_text()
    assert "[build_graph]" in cfg and "2020-12-20T00:00:00Z" in cfg
    # --config reproduces the run
    again = tmp_path / "again"
    assert cli_main(["build-graph", "--config", str(out / "config.toml"), "--out", str(again)]) == 0
    assert json.loads((again / "summary.json").read_text())["videos"] == 3
    capsys.readouterr()
    assert cli_main(["build-graph", str(tmp_path / "nope.json"), "--out", str(out)]) == 2
    assert "input not found" in capsys.readouterr().err
    assert cli_main(["build-graph", str(scrape)]) == 2
    assert "--out" in capsys.readouterr().err
    assert cli_main(["build-graph", str(scrape), "--out", str(out), "--columns", "plays"]) == 2
    assert "canonical=source" in capsys.readouterr().err


def test_cli_csv_with_columns_media_root_and_export(tmp_path, capsys):
    media = tmp_path / "media"
    media.mkdir()
    (media / "v1.mp4").write_bytes(b"x")
    p = tmp_path / "export.csv"
    p.write_text("id,music,title,posted,views,reposts,replies,followers\n"
                 "v1,m1,Song,2020-12-01T10:00:00Z,1.2K,3,4,10K\n"
                 "v2,m1,Song,2020-12-02T10:00:00Z,99,1,0,\n", encoding="utf-8")
    out = tmp_path / "g"
    rc = cli_main(["build-graph", str(p), "--out", str(out), "--media-root", str(media), "--export", "gexf",
                   "--columns", "video_id=id,song_id=music,song_title=title,create_time=posted,plays=views,"
                                "shares=reposts,comments=replies,author_followers=followers"])
    assert rc == 0
    assert "csv" in capsys.readouterr().err
    videos = pd.read_parquet(out / "videos.parquet")
    assert list(videos["plays"]) == [1200, 99] and list(videos["author_followers"].astype("float")[:1]) == [1e4]
    assert videos["video_path"].iloc[0] == str((media / "v1.mp4").resolve()) and pd.isna(videos["video_path"].iloc[1])
    s = json.loads((out / "summary.json").read_text())
    assert s["format"] == "csv" and s["media_files"] == {"found": 1, "missing": 1} and (out / "graph.gexf").exists()


def test_cli_all_rejected_is_a_failure_that_writes_nothing(tmp_path, write_json, scraper_record, capsys):
    p = write_json([scraper_record("", )])
    assert cli_main(["build-graph", str(p), "--out", str(tmp_path / "g")]) == 2
    assert "no video was accepted from 1 record(s) (missing_video_id 1)" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


@pytest.mark.needs_shared
def test_real_tiktok_scraper_trending(shared_data, tmp_path):
    s = build_graph([shared_data / "tiktok-scraper" / "trending-2020-12.json"], tmp_path / "g")
    assert (s["videos"], s["songs"], s["edges"], s["rejected"]) == (1000, 907, 1000, 0)
    assert s["input_records"] == 1000 and s["format"] == "tiktok-scraper"
    videos = pd.read_parquet(tmp_path / "g" / "videos.parquet")
    assert videos["popularity_raw"].notna().all() and videos["video_id"].is_unique
    assert (videos["create_time"] <= videos["scrape_time"]).all()


@pytest.mark.needs_shared
def test_real_tiktok_api_sample(shared_data, tmp_path):
    s = build_graph([shared_data / "tiktok-api" / "trending-sample.json"], tmp_path / "g")
    assert s["format"] == "tiktok-api" and s["input_records"] == 10
    assert s["videos"] + s["rejected"] == 10 and s["videos"] == 10
    videos = pd.read_parquet(tmp_path / "g" / "videos.parquet")
    assert videos["author_followers"].notna().all()
