"""graph-stats: degree statistics, log bins, connected components and the printed report."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from mdr_graph.cli import main as cli_main
from mdr_graph.graph_build.build import build_graph
from mdr_graph.graph_build.stats import connected_components, degree_stats, log_histogram


def test_log_histogram_bins_and_totals():
    deg = np.array([1, 1, 2, 3, 4, 7, 8, 100])
    h = log_histogram(deg)
    assert [(b["min"], b["max"], b["nodes"]) for b in h] == [(1, 1, 2), (2, 3, 2), (4, 7, 2), (8, 15, 1),
                                                             (16, 31, 0), (32, 63, 0), (64, 127, 1)]
    assert sum(b["edges"] for b in h) == deg.sum()
    assert log_histogram(np.array([], dtype=int)) == []


def test_degree_stats():
    s = degree_stats(np.array([1, 1, 1, 5]))
    assert (s["min"], s["max"], s["mean"], s["median"], s["ones"], s["count"]) == (1, 5, 2.0, 1.0, 3, 4)
    assert degree_stats(np.array([]))["count"] == 0


def test_components_match_networkx():
    rng = np.random.default_rng(0)
    n_src, n_dst = 60, 25
    # a general bipartite graph (sources may have several edges), not only stars
    ei = np.stack([rng.integers(0, n_src, 50), rng.integers(0, n_dst, 50)])
    sizes = connected_components(ei, n_src, n_dst)
    g = nx.Graph()
    g.add_nodes_from(range(n_src + n_dst))
    g.add_edges_from(zip(ei[0], ei[1] + n_src))
    expected = sorted((len(c) for c in nx.connected_components(g)), reverse=True)
    assert sizes.tolist() == expected and sizes.sum() == n_src + n_dst


def test_graph_stats_cli_text_and_json(tmp_path, write_json, scraper_record, capsys):
    recs = [scraper_record(str(i), "hit", **{"musicMeta.musicName": "Hit Song"}) for i in range(5)]
    recs += [scraper_record("a", "s2"), scraper_record("b", "s3"), scraper_record("c", "s3")]
    out = tmp_path / "g"
    build_graph([write_json(recs)], out, nodes="song")
    assert cli_main(["graph-stats", str(out), "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert "videos" in text and "top 2 songs by degree" in text
    assert "1.       5  Hit Song" in text
    assert "connected components: 3; largest 6 nodes" in text
    assert cli_main(["graph-stats", str(out), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["summary"]["videos"] == 8 and st["components"]["count"] == 3
    assert [t["song_id"] for t in st["top_songs"][:2]] == ["hit", "s3"]
    assert st["song_degree_histogram"][0] == {"min": 1, "max": 1, "nodes": 1, "edges": 1}


def test_graph_stats_on_a_non_graph_directory(tmp_path, capsys):
    assert cli_main(["graph-stats", str(tmp_path)]) == 2
    assert "not a complete graph directory" in capsys.readouterr().err


@pytest.mark.needs_shared
def test_graph_stats_on_the_real_scrape(shared_data, tmp_path, capsys):
    build_graph([shared_data / "tiktok-scraper" / "trending-2020-12.json"], tmp_path / "g", nodes="song")
    assert cli_main(["graph-stats", str(tmp_path / "g")]) == 0
    text = capsys.readouterr().out
    assert "connected components: 907" in text and "Therefore I Am" in text
