"""The link split is leak-free per relation, has the configured proportions, and is a pure function of the seed."""

from __future__ import annotations

import pytest
import torch

from mdr_graph.errors import UserError
from mdr_graph.graph_build.graph import build_hetero, songs_table
from mdr_graph.graph_build.schema import VIDEO_EDGE
from mdr_graph.pretrain.linksplit import (MP, SUP, TEST, VAL, EdgeSet, fingerprint, negative_pools, sample_negatives,
                                          split_links)
from mdr_graph.pretrain.parts import graph_parts
from mdr_graph.testing.graphs import synthetic_graph

from hetero_graph import add_entities, videos_table

KW = dict(val_ratio=0.1, test_ratio=0.1, disjoint_train_ratio=0.4, neg_ratio=0.5)


def _split(seed=0, negatives="corrupt-song", V=2000, S=60):
    g = synthetic_graph(V, S, seed=1)
    ei = g[VIDEO_EDGE].edge_index
    return ei, split_links({VIDEO_EDGE: ei}, {"video": V, "song": S}, negatives=negatives, seed=seed, **KW)["uses"]


@pytest.fixture(scope="module")
def hetero_split():
    videos = videos_table(1500, 60, n_creators=80, n_tags=50)
    parts = graph_parts(add_entities(build_hetero(videos, songs_table(videos)), videos))
    return parts, split_links(parts.edges, parts.num_nodes, negatives="corrupt-song", seed=0, **KW)


def test_every_relation_is_split_leak_free_on_its_own(hetero_split):
    parts, splits = hetero_split
    assert set(splits) == {"uses", "posted_by", "tagged"}
    for r in parts.relations:
        sp = splits[r[1]]
        assert torch.equal(sp.edge_index, parts.edges[r]) and sp.num_dst == parts.num_nodes[r[2]]
        for stage in ("train", "val", "test"):
            assert not _keys(sp.message_edges(stage)) & _keys(sp.positives(stage)), (r, stage)
        assert not _keys(sp.message_edges("train")) & (_keys(sp.positives("val")) | _keys(sp.positives("test")))
        assert not _keys(sp.message_edges("val")) & _keys(sp.positives("test"))
        c = sp.counts()
        E = sp.edge_index.size(1)
        assert c["val"] == int(0.1 * E) and c["test"] == int(0.1 * E) and c["sup"] > 0 and c["mp"] > 0
        neg = sp.test_neg
        assert not _keys(neg) & _keys(sp.edge_index) and int(neg[1].max()) < sp.num_dst


def test_a_song_only_graph_gets_the_same_split_inside_a_heterogeneous_one(hetero_split):
    """Adding relations does not reshuffle the song links (one RandomLinkSplit, per-type, same seed order)."""
    parts, splits = hetero_split
    alone = split_links({VIDEO_EDGE: parts.edges[VIDEO_EDGE]}, {"video": parts.num_nodes["video"],
                                                                  "song": parts.num_nodes["song"]},
                        negatives="corrupt-song", seed=0, **KW)["uses"]
    assert torch.equal(alone.role, splits["uses"].role)
    assert torch.equal(alone.test_neg, splits["uses"].test_neg)


def _keys(ei):
    return set(map(tuple, ei.t().tolist()))


def test_no_message_passing_edge_is_a_scored_edge():
    _, sp = _split()
    for stage in ("train", "val", "test"):
        mp = _keys(sp.message_edges(stage))
        assert not mp & _keys(sp.positives(stage)), f"{stage}: a scored link passes messages"
    # validation/test links never pass messages in the graph that scores training or validation links
    assert not _keys(sp.message_edges("train")) & (_keys(sp.positives("val")) | _keys(sp.positives("test")))
    assert not _keys(sp.message_edges("val")) & _keys(sp.positives("test"))
    # and each stage's graph is the previous one plus the links scored before it
    assert _keys(sp.message_edges("val")) == _keys(sp.message_edges("train")) | _keys(sp.positives("train"))
    assert _keys(sp.message_edges("test")) == _keys(sp.message_edges("val")) | _keys(sp.positives("val"))


def test_proportions_are_80_10_10_with_60_40_inside_training():
    ei, sp = _split()
    c = sp.counts()
    E = ei.size(1)
    assert c["val"] == 200 and c["test"] == 200
    assert c["sup"] == int(0.4 * 1600) and c["mp"] == 1600 - c["sup"]
    assert sum(c[k] for k in ("mp", "sup", "val", "test")) == E
    assert c["val_neg"] == 100 and c["test_neg"] == 100


def test_negatives_are_not_links_and_come_from_the_configured_pools():
    ei, sp = _split()
    links = _keys(ei)
    for stage in ("val", "test"):
        pairs, labels = sp.pairs(stage)
        neg = pairs[:, labels == 0]
        assert not _keys(neg) & links
        # corrupt-song: negatives reuse the positives' videos
        assert set(neg[0].tolist()) <= set(sp.positives(stage)[0].tolist())
    _, sp_shuffle = _split(negatives="shuffle")
    neg = sp_shuffle.test_neg
    assert set(neg[1].tolist()) <= set(sp_shuffle.positives("test")[1].tolist())
    _, sp_uniform = _split(negatives="uniform")
    assert not set(sp_uniform.test_neg[0].tolist()) <= set(sp_uniform.positives("test")[0].tolist())


def test_split_is_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    _, a = _split(seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    _, b = _split(seed=5)
    _, c = _split(seed=6)
    assert fingerprint({"uses": a}) == fingerprint({"uses": b}) and torch.equal(a.role, b.role)
    assert fingerprint({"uses": a}) != fingerprint({"uses": c})


def test_roles_cover_every_edge_once():
    ei, sp = _split()
    assert set(sp.role.unique().tolist()) == {MP, SUP, VAL, TEST}
    assert torch.equal(sp.edge_index, ei)


def test_edge_set_and_sampler():
    ei = torch.tensor([[0, 1, 2], [0, 0, 1]])
    links = EdgeSet(ei, num_dst=2)
    assert links.contains(torch.tensor([0, 0, 2, 2]), torch.tensor([0, 1, 1, 0])).tolist() == [True, False, True, False]
    g = torch.Generator().manual_seed(0)
    neg = sample_negatives(50, torch.arange(3), torch.arange(2), links, g)
    assert neg.size(1) == 50 and not _keys(neg) & _keys(ei)
    # only one non-link exists among videos {0} x songs {0, 1}: the sampler finds it and nothing else
    neg = sample_negatives(5, torch.tensor([0]), torch.tensor([0, 1]), links, g)
    assert _keys(neg) == {(0, 1)}
    pos = torch.tensor([[4, 4, 5], [0, 1, 1]])
    videos, songs = negative_pools("corrupt-song", pos, torch.arange(9), torch.arange(3))
    assert videos.tolist() == [4, 5] and songs.tolist() == [0, 1, 2]


def test_too_small_graphs_are_refused_with_a_clear_error():
    ei = torch.tensor([[0, 1, 2], [0, 0, 1]])
    with pytest.raises(UserError, match="too few"):
        split_links({VIDEO_EDGE: ei}, {"video": 3, "song": 2}, negatives="corrupt-song", seed=0, **KW)
    with pytest.raises(UserError, match="no video links"):
        split_links({}, {"video": 3}, negatives="corrupt-song", seed=0, **KW)
