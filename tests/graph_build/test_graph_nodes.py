"""build-graph --nodes: song, creator and hashtag node types, their tables, rules, stats and exports."""

from __future__ import annotations

import hashlib
import json

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from mdr_graph.cli import main as cli_main
from mdr_graph.errors import UserError
from mdr_graph.graph_build.build import build_graph
from mdr_graph.graph_build.entities import creators_table, hashtag_nodes, normalise_hashtag
from mdr_graph.graph_build.features import CREATOR_FEATURES, HASHTAG_FEATURES
from mdr_graph.graph_build.graph import load_graph
from mdr_graph.graph_build.schema import (CREATOR_COLUMNS, CREATOR_EDGE, HASHTAG_COLUMNS, HASHTAG_EDGE,
                                          REV_CREATOR_EDGE, REV_EDGE, REV_HASHTAG_EDGE, VIDEO_COLUMNS, VIDEO_EDGE)
from mdr_graph.graph_build.stats import graph_stats

T0 = 1_608_000_000
ALL = "song,creator,hashtag"
# Content digests of graph.pt built by mdr-graph at 7dfccb8 (before node types existed), for
# --nodes song to match: the fixture below, and trending-2020-12 as shipped in ../shared/data.
FIXTURE_DIGEST_BEFORE = "4606ebdd7dfaf13969f727438f1d30bca3de6e0ee1fb4abe45ff08fa326bc7e5"
TRENDING_DIGEST_BEFORE = "d6bfa0a48a8c928ed5eb6ff73820ef9f0137934989807d32deaa3561bacc2f1f"


def content_digest(graph_dir) -> str:
    """sha256 over every store of graph.pt: its key, attribute names, tensors (dtype, shape, bytes), lists.

    torch.save's bytes embed the temporary file's name, so the file itself differs per build.
    """
    g = load_graph(graph_dir)
    h = hashlib.sha256()
    for store in [g._global_store] + g.node_stores + g.edge_stores:
        h.update(repr(getattr(store, "_key", None)).encode())
        for k in sorted(store.keys()):
            v = store[k]
            h.update(k.encode())
            if isinstance(v, torch.Tensor):
                h.update(f"{v.dtype}{tuple(v.shape)}".encode())
                h.update(v.contiguous().numpy().tobytes())
            else:
                h.update(repr(v).encode())
    return h.hexdigest()


def _records():
    out = []
    for i in range(12):
        out.append({"id": str(100 + i), "text": f"clip {i} #FYP #Dance #tag{i % 3}", "createTime": T0 + 3600 * i,
                    "authorMeta": {"id": f"a{i % 4}", "name": f"user{i % 4}", "fans": 1000 * (i % 4) + 5},
                    "musicMeta": {"musicId": f"s{i % 5}", "musicName": f"Song {i % 5}", "musicAuthor": "Band",
                                  "musicOriginal": i % 2 == 0, "musicUses": 10 * i},
                    "videoMeta": {"duration": 10 + i},
                    "diggCount": 30 * i, "shareCount": i, "playCount": 500 * i + 1, "commentCount": 2 * i,
                    "hashtags": [{"name": "FYP"}, {"name": "Dance"}, {"name": f"tag{i % 3}"}]})
    return out


@pytest.fixture
def scrape(tmp_path):
    p = tmp_path / "scrape.json"
    p.write_text(json.dumps({"collector": _records()}))
    return p


def test_nodes_song_is_unchanged(tmp_path, scrape):
    build_graph([scrape], tmp_path / "song", scrape_time=T0 + 30 * 86400, nodes="song")
    assert content_digest(tmp_path / "song") == FIXTURE_DIGEST_BEFORE
    assert not (tmp_path / "song" / "creators.parquet").exists()
    assert not (tmp_path / "song" / "hashtags.parquet").exists()


def test_nodes_song_is_unchanged_on_real_data(tmp_path, shared_data):
    build_graph([shared_data / "tiktok-scraper" / "trending-2020-12.json"], tmp_path / "g", nodes=["song"])
    assert content_digest(tmp_path / "g") == TRENDING_DIGEST_BEFORE


def test_all_node_types(tmp_path, scrape):
    out = tmp_path / "g"
    s = build_graph([scrape], out, scrape_time=T0 + 30 * 86400, nodes=ALL, hashtag_max_df=0.5,
                    hashtag_min_hub_videos=5)
    g = torch.load(out / "graph.pt", weights_only=True)
    assert g.node_types == ["video", "song", "creator", "hashtag"]
    assert g.edge_types == [VIDEO_EDGE, REV_EDGE, CREATOR_EDGE, REV_CREATOR_EDGE, HASHTAG_EDGE, REV_HASHTAG_EDGE]
    assert CREATOR_EDGE == ("video", "posted_by", "creator")
    assert REV_CREATOR_EDGE == ("creator", "rev_posted_by", "video")
    assert HASHTAG_EDGE == ("video", "tagged", "hashtag") and REV_HASHTAG_EDGE == ("hashtag", "rev_tagged", "video")
    for fwd, rev in ((VIDEO_EDGE, REV_EDGE), (CREATOR_EDGE, REV_CREATOR_EDGE), (HASHTAG_EDGE, REV_HASHTAG_EDGE)):
        assert torch.equal(g[rev].edge_index, g[fwd].edge_index.flip(0))
    assert g["creator"].creator_id == ["a0", "a1", "a2", "a3"]
    assert g["creator"].feature_names == CREATOR_FEATURES and g["creator"].x.shape == (4, len(CREATOR_FEATURES))
    assert g["hashtag"].feature_names == HASHTAG_FEATURES
    # #FYP and #Dance tag every video (over half): hubs, not nodes; tag0..2 tag a third each
    assert g["hashtag"].hashtag == ["tag0", "tag1", "tag2"]
    assert [h["hashtag"] for h in s["hashtag_hubs"]] == ["fyp", "dance"] and s["hashtag_hubs"][0]["share"] == 1.0
    assert s["hashtag_rule"] == {"max_df": 0.5, "min_hub_videos": 5}
    assert g[CREATOR_EDGE].edge_index.tolist() == [list(range(12)), [i % 4 for i in range(12)]]
    assert g[HASHTAG_EDGE].edge_index.tolist() == [list(range(12)), [i % 3 for i in range(12)]]
    assert s["node_types"] == ["video", "song", "creator", "hashtag"]
    assert s["nodes"] == {"video": 12, "song": 5, "creator": 4, "hashtag": 3}
    assert s["edges_by_type"] == {"video__uses__song": 12, "video__posted_by__creator": 12,
                                  "video__tagged__hashtag": 12}
    assert s["components"] == 1 and s["largest_component"] == 24
    creators = pd.read_parquet(out / "creators.parquet")
    assert pq.read_schema(out / "creators.parquet").names == list(CREATOR_COLUMNS)
    assert creators["creator_id"].tolist() == ["a0", "a1", "a2", "a3"] and creators["degree"].tolist() == [3] * 4
    assert creators["followers"].tolist() == [5, 1005, 2005, 3005]
    hashtags = pd.read_parquet(out / "hashtags.parquet")
    assert pq.read_schema(out / "hashtags.parquet").names == list(HASHTAG_COLUMNS)
    assert hashtags["degree"].tolist() == [4, 4, 4]
    assert pq.read_schema(out / "videos.parquet").names == list(VIDEO_COLUMNS)
    assert list(VIDEO_COLUMNS)[-4:] == ["author_following", "author_videos", "author_hearts", "author_diggs"]
    # the video and song features are those of --nodes song
    build_graph([scrape], tmp_path / "s", scrape_time=T0 + 30 * 86400)
    gs = load_graph(tmp_path / "s")
    assert torch.equal(gs["video"].x, g["video"].x) and torch.equal(gs["song"].x, g["song"].x)


def test_hashtag_normalisation_and_one_edge_per_tag():
    assert normalise_hashtag("#FYP") == normalise_hashtag("ｆｙｐ") == normalise_hashtag(" fyp ") == "fyp"
    assert normalise_hashtag("#XuHuong") == "xuhuong" and normalise_hashtag("#") is None
    assert normalise_hashtag("Straße") == "strasse"  # case-folded
    videos = pd.DataFrame({"hashtags": [["FYP", "fyp", "#Cat"], None, ["cat", "ｆｙｐ", ""], []]})
    h = hashtag_nodes(videos, max_df=1.0)
    assert h.table["hashtag"].tolist() == ["fyp", "cat"] and h.table["degree"].tolist() == [2, 2]
    assert h.edges.tolist() == [[0, 0, 2, 2], [0, 1, 0, 1]] and h.hubs == []


def test_hub_rule_needs_both_the_share_and_the_count():
    tags = [["hub", f"t{i % 20}"] for i in range(200)] + [["rare"]] * 3 + [[]] * 97
    videos = pd.DataFrame({"hashtags": tags})
    h = hashtag_nodes(videos, max_df=0.05, min_hub_videos=10)  # hub: 200/300 videos; t*: 10 each (3.3%)
    assert [x["hashtag"] for x in h.hubs] == ["hub"] and h.hubs[0]["videos"] == 200
    assert "hub" not in set(h.table["hashtag"]) and len(h.table) == 21
    small = hashtag_nodes(videos.iloc[:8], max_df=0.05, min_hub_videos=10)  # 8 videos: nothing is a hub
    assert small.hubs == [] and "hub" in set(small.table["hashtag"])


def test_creator_features_never_hold_the_videos_engagement():
    base = pd.DataFrame({
        "author_id": pd.array(["a", "b", "a", None, "c"], dtype="string"),
        "scrape_time": pd.to_datetime([T0 + 10, T0 + 10, T0 + 20, T0, T0], unit="s", utc=True),
        "author_followers": pd.array([100, 7, 120, None, 3], dtype="Int64"),
        "author_following": pd.array([1, None, 2, None, None], dtype="Int64"),
        "author_videos": pd.array([9, 1, 9, None, None], dtype="Int64"),
        "author_hearts": pd.array([1000, 50, 1100, None, 40], dtype="Int64"),
        "author_diggs": pd.array([5, 5, 5, None, None], dtype="Int64"),
        "likes": pd.array([300, 50, 200, 9, None], dtype="Int64"),
        "plays": pd.array([1, 2, 3, 4, 5], dtype="Int64"),
    })
    c, rows = creators_table(base)
    assert rows.tolist() == [0, 1, 0, -1, 2] and c["creator_id"].tolist() == ["a", "b", "c"]
    assert c["followers"].tolist() == [120, 7, 3]  # the account as last scraped
    assert c["hearts"].tolist() == [1100, 50, 40]
    # hearts minus the likes of its videos here: a's other videos got 1100 - 500; b has no other likes;
    # c's likes are unknown, so its hearts cannot be cleaned and are left out (missing)
    assert c["hearts_other"].tolist()[:2] == [600, 0] and pd.isna(c["hearts_other"].iloc[2])
    # engagement of the predicted videos moves nothing else
    more = base.assign(plays=base["plays"] * 1000, likes=base["likes"] + 1)
    c2, _ = creators_table(more)
    assert c2.drop(columns="hearts_other").equals(c.drop(columns="hearts_other"))


def test_videos_without_creator_or_tags(tmp_path, write_json, scraper_record, DELETE):
    recs = [scraper_record("1", "s1"), scraper_record("2", "s1", authorMeta=DELETE, hashtags=[])]
    s = build_graph([write_json(recs)], tmp_path / "g", scrape_time=T0 + 86_400, nodes=ALL)
    g = load_graph(tmp_path / "g")
    assert g[CREATOR_EDGE].edge_index.tolist() == [[0], [0]] and s["videos_without_creator"] == 1
    assert g[HASHTAG_EDGE].edge_index[0].tolist() == [0, 0]


def test_graph_stats_per_node_type_and_exports(tmp_path, scrape):
    out = tmp_path / "g"
    build_graph([scrape], out, scrape_time=T0 + 30 * 86400, nodes=ALL, hashtag_max_df=0.5,
                hashtag_min_hub_videos=5, export=["graphml", "gexf"])
    st = graph_stats(out, top=2)
    assert list(st["node_types"]) == ["song", "creator", "hashtag"]
    c = st["node_types"]["creator"]
    assert (c["count"], c["edges"], c["videos_linked"]) == (4, 12, 12)
    assert c["degree"]["max"] == 3 and c["hubs"] == [{"id": "a0", "degree": 3}, {"id": "a1", "degree": 3}]
    assert c["components"]["count"] == 4 and c["components"]["largest"] == 4
    assert st["node_types"]["song"]["degree"]["max"] == 3
    assert st["components"]["count"] == 1
    for ext, read in (("graphml", nx.read_graphml), ("gexf", nx.read_gexf)):
        nxg = read(out / f"graph.{ext}")
        types = pd.Series(dict(nxg.nodes(data="type"))).value_counts().to_dict()
        assert types == {"video": 12, "song": 5, "creator": 4, "hashtag": 3}, ext
        assert nxg.number_of_edges() == 36
        rel = pd.Series([r for _, _, r in nxg.edges(data="relation")]).value_counts().to_dict()
        assert rel == {"uses": 12, "posted_by": 12, "tagged": 12}


def test_cli_nodes(tmp_path, scrape, capsys):
    out = tmp_path / "g"
    assert cli_main(["build-graph", str(scrape), "--out", str(out), "--nodes", "creator,song",
                     "--scrape-time", "2021-01-01"]) == 0
    assert load_graph(out).node_types == ["video", "song", "creator"]
    assert "creators" in capsys.readouterr().out
    assert cli_main(["graph-stats", str(out)]) == 0
    assert "creator: 4 nodes" in capsys.readouterr().out
    assert cli_main(["build-graph", str(scrape), "--out", str(out), "--nodes", "song,users"]) == 2
    assert "--nodes song,users: choose one or more of song,creator,hashtag" in capsys.readouterr().err
    with pytest.raises(UserError):
        build_graph([scrape], out, nodes=ALL, hashtag_max_df=0)


def test_real_data_all_node_types(tmp_path, shared_data):
    s = build_graph([shared_data / "tiktok-scraper" / "trending-2020-12.json"], tmp_path / "g", nodes=ALL)
    hubs = {h["hashtag"]: h["share"] for h in s["hashtag_hubs"]}
    assert {"fyp", "foryou", "foryoupage"} <= set(hubs) and all(v > 0.05 for v in hubs.values())
    assert s["nodes"]["creator"] == 802 and s["edges_by_type"]["video__posted_by__creator"] == 1000
    st = graph_stats(tmp_path / "g")
    assert st["node_types"]["hashtag"]["degree"]["max"] <= 0.05 * 1000
    smp = build_graph([shared_data / "smp-video"], tmp_path / "smp", nodes=ALL, target_column="popularity")
    assert smp["nodes"]["creator"] == 3488 and smp["videos"] == 4000
    assert np.isfinite(load_graph(tmp_path / "smp")["creator"].x.numpy()).all()


def test_entity_keys_name_the_graphs_nodes():
    """New videos (embed, predict) and the label-aware features key entities exactly as the graph does."""
    import pandas as pd

    from mdr_graph.graph_build.entities import entity_keys

    rows = pd.DataFrame({"song_id": ["s1", None], "author_id": ["a", ""],
                         "hashtags": [["#Straße", "FYP", "ｆｙｐ", "#"], None]})
    assert entity_keys(rows, "song") == [["s1"], []]
    assert entity_keys(rows, "creator") == [["a"], []]
    assert entity_keys(rows, "hashtag") == [["strasse", "fyp"], []]
    assert all(k == normalise_hashtag(k) for k in entity_keys(rows, "hashtag")[0])
