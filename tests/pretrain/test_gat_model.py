"""The heterogeneous GAT: shapes, the skip path for isolated nodes, exact k-hop batches, reading-only links."""

from __future__ import annotations

import io

import pytest
import torch

from mdr_graph.errors import UserError
from mdr_graph.graph_build.schema import REV_EDGE, VIDEO_EDGE
from mdr_graph.pretrain.batching import khop_subgraph
from mdr_graph.pretrain.config import GATConfig
from mdr_graph.pretrain.model import HeteroGAT, LinkDecoders, build_model, feature_stats, reverse
from mdr_graph.pretrain.parts import both_directions

POSTED_BY = ("video", "posted_by", "creator")
TAGGED = ("video", "tagged", "hashtag")
RELS = [VIDEO_EDGE, POSTED_BY, TAGGED]
TYPES = ["video", "song", "creator", "hashtag"]
DIMS = {"video": 10, "song": 4, "creator": 2, "hashtag": 1}


def _graph(V=40, S=6, C=8, H=7, seed=0):
    """Random links; the last 5 videos and the last song, creator and hashtag have none."""
    g = torch.Generator().manual_seed(seed)
    n = {"video": V, "song": S, "creator": C, "hashtag": H}
    x = {t: torch.randn(n[t], DIMS[t], generator=g) for t in TYPES}
    linked = torch.arange(V - 5)
    edges = {VIDEO_EDGE: torch.stack([linked, torch.randint(0, S - 1, (V - 5,), generator=g)]),
             POSTED_BY: torch.stack([linked, torch.randint(0, C - 1, (V - 5,), generator=g)])}
    tv = torch.cat([linked, linked[::2]])
    edges[TAGGED] = torch.stack([tv, torch.randint(0, H - 1, (tv.numel(),), generator=g)]).unique(dim=1)
    return x, edges, n


def _model(layers=2, seed=0, **kw):
    torch.manual_seed(seed)
    enc, dec = build_model(TYPES, RELS, DIMS, GATConfig(hidden=16, heads=2, layers=layers, **kw))
    return enc.eval(), dec


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_shapes_and_isolated_nodes_get_finite_feature_driven_embeddings(layers):
    x, edges, n = _graph()
    enc, dec = _model(layers)
    assert isinstance(enc, HeteroGAT) and isinstance(dec, LinkDecoders)
    z = enc(x, edges)
    for t in TYPES:
        assert z[t].shape == (n[t], 16) and torch.isfinite(z[t]).all()
    # two isolated videos with different features get different embeddings (the skip path)
    assert not torch.allclose(z["video"][-1], z["video"][-2])
    # an isolated video's embedding does not depend on the rest of the graph
    alone = {**x, "video": x["video"][-1:]}
    z_alone = enc(alone, {r: torch.empty(2, 0, dtype=torch.long) for r in RELS},
                  degree_dict=enc.degrees(edges, n))
    torch.testing.assert_close(z_alone["video"][0], z["video"][-1], atol=1e-5, rtol=1e-5)
    for r in RELS:
        assert dec(r[1], z[r[2]][:3], z["video"][:3]).shape == (3,)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_the_khop_subgraph_gives_exactly_the_full_graph_output_at_its_seeds(layers):
    x, edges, n = _graph(V=60, S=8, C=10, H=9, seed=4)
    enc, _ = _model(layers, seed=4)
    both = both_directions(edges)
    full = enc(x, both)
    seeds = {"video": torch.tensor([59, 3, 0, 36, 17]), "hashtag": torch.tensor([2]), "creator": torch.tensor([1])}
    sub = khop_subgraph(both, n, seeds, layers)
    assert sub.nodes["video"].numel() < 60 or layers > 1  # a real subgraph, at least for one layer
    deg = {t: d[sub.nodes[t]] for t, d in enc.degrees(both, n).items()}
    z = enc({t: x[t][sub.nodes[t]] for t in TYPES}, sub.edges, deg)
    for t, idx in seeds.items():
        torch.testing.assert_close(z[t][sub.rows(t, idx)], full[t][idx], atol=1e-5, rtol=1e-5)


def test_messages_flow_both_ways_per_relation_and_reverse_edges_are_derived():
    x, edges, n = _graph()
    enc, _ = _model(seed=2)
    base = enc(x, edges)
    explicit = enc(x, both_directions(edges))
    for t in TYPES:
        torch.testing.assert_close(base[t], explicit[t])
    x2 = {t: v.clone() for t, v in x.items()}
    x2["video"][0] += 3.0  # change a video: its creator's embedding changes, unrelated creators' do not
    z2 = enc(x2, edges)
    c0 = int(edges[POSTED_BY][1, 0])
    assert not torch.allclose(z2["creator"][c0], base["creator"][c0])
    # creators more than 2 hops away (no shared song, creator or hashtag with video 0) are untouched
    both = both_directions(edges)
    near = khop_subgraph(both, n, {"video": torch.tensor([0])}, 2).nodes["creator"]
    far = [c for c in range(n["creator"]) if c not in set(near.tolist())]
    assert far, "the test graph should have creators out of reach"
    torch.testing.assert_close(z2["creator"][far], base["creator"][far])


def test_reading_only_links_leave_every_entity_and_other_video_unchanged():
    """A video linked by entity -> video edges only reads: nothing else in the graph moves."""
    x, edges, n = _graph()
    enc, _ = _model(seed=5)
    base = enc(x, edges)
    # video V-1 (isolated) now reads song 0, creator 0, hashtag 0 without writing to them
    reads = {r: torch.cat([edges[r], torch.tensor([[n["video"] - 1], [0]])], 1) for r in RELS}
    z = enc(x, {**{r: edges[r] for r in RELS}, **{reverse(r): reads[r].flip(0) for r in RELS}})
    for t in ("song", "creator", "hashtag"):
        torch.testing.assert_close(z[t], base[t])
    torch.testing.assert_close(z["video"][:-1], base["video"][:-1])
    assert not torch.allclose(z["video"][-1], base["video"][-1])


def test_degree_input_counts_the_given_forward_links_only():
    x, edges, n = _graph()
    enc, _ = _model(layers=1, seed=3)
    deg = enc.degrees(enc.complete_edges(edges), n)
    assert set(deg) == {"song", "creator", "hashtag"}
    assert deg["song"].sum() == edges[VIDEO_EDGE].size(1) and deg["song"][-1] == 0
    empty = {r: edges[r][:, :0] for r in RELS}
    z_full, z_none = enc(x, edges), enc(x, empty)
    z_none_but_deg = enc(x, empty, degree_dict=deg)
    assert not torch.allclose(z_full["song"], z_none["song"])
    # the unused song has degree 0 either way and no messages: the same embedding
    torch.testing.assert_close(z_none_but_deg["song"][-1], z_full["song"][-1])
    enc_off, _ = _model(layers=1, seed=3, degree_input=False)
    assert enc_off.degree_types == [] and enc_off.proj["song"].in_features == 4


def test_a_song_only_model_has_only_the_song_relation():
    enc, dec = build_model(["video", "song"], [VIDEO_EDGE], {"video": 10, "song": 4}, GATConfig(hidden=16, heads=2))
    assert enc.edge_types == [VIDEO_EDGE, REV_EDGE] and list(dec.by_relation) == ["uses"]
    z = enc({"video": torch.randn(5, 10), "song": torch.randn(2, 4)}, {VIDEO_EDGE: torch.tensor([[0, 1], [0, 1]])})
    assert set(z) == {"video", "song"}


def test_feature_stats_standardise_and_survive_constant_columns():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    mean, std = feature_stats(x)
    assert mean.tolist() == [2.0, 5.0] and std.tolist() == [1.0, 1.0]


def test_state_dict_round_trips_with_weights_only():
    enc, dec = build_model(TYPES, RELS, DIMS, GATConfig(hidden=16, heads=2, decoder="mlp"))
    buf = io.BytesIO()
    torch.save({"encoder": enc.state_dict(), "decoder": dec.state_dict()}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    enc2, dec2 = build_model(TYPES, RELS, DIMS, GATConfig(hidden=16, heads=2, decoder="mlp"))
    enc2.load_state_dict(loaded["encoder"])
    dec2.load_state_dict(loaded["decoder"])
    assert dec2["tagged"].kind == "mlp"


def test_old_config_names_are_still_read():
    from mdr_graph.pretrain.config import config_from_dict

    cfg = config_from_dict({"hidden": 8, "heads": 2, "song_degree_input": False, "batch_components": 3})
    assert cfg.degree_input is False and cfg.hidden == 8


@pytest.mark.parametrize("bad", [dict(hidden=30, heads=4), dict(layers=0), dict(loss="hinge"),
                                 dict(negatives="random"), dict(disjoint_train_ratio=0.0),
                                 dict(val_ratio=0.6, test_ratio=0.5), dict(batch_edges=-1)])
def test_bad_settings_raise_user_errors(bad):
    with pytest.raises(UserError):
        GATConfig(**bad).validate()
