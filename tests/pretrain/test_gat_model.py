"""The GAT encoder: shapes, the skip path for isolated nodes, exact compaction, and safe checkpoints."""

from __future__ import annotations

import io

import pytest
import torch

from mdr_graph.errors import UserError
from mdr_graph.graph_build.schema import REV_EDGE, VIDEO_EDGE
from mdr_graph.pretrain.model import GATConfig, LinkDecoder, build_model, feature_stats


def _graph(V=30, S=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {"video": torch.randn(V, 10, generator=g), "song": torch.randn(S, 4, generator=g)}
    ei = torch.stack([torch.arange(V - 5), torch.randint(0, S - 1, (V - 5,), generator=g)])  # 5 isolated videos,
    return x, ei                                                                           # last song unused


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_shapes_and_isolated_nodes_get_finite_feature_driven_embeddings(layers):
    torch.manual_seed(0)
    x, ei = _graph()
    enc, dec = build_model({"video": 10, "song": 4}, GATConfig(hidden=32, heads=4, layers=layers))
    enc.eval()
    z = enc(x, {VIDEO_EDGE: ei})
    assert z["video"].shape == (30, 32) and z["song"].shape == (5, 32)
    assert torch.isfinite(z["video"]).all() and torch.isfinite(z["song"]).all()
    # two isolated videos with different features get different embeddings (the skip path)
    assert not torch.allclose(z["video"][-1], z["video"][-2])
    # an isolated video's embedding does not depend on the rest of the graph
    z_alone = enc({"video": x["video"][-1:], "song": x["song"]}, {VIDEO_EDGE: torch.empty(2, 0, dtype=torch.long)})
    torch.testing.assert_close(z_alone["video"][0], z["video"][-1], atol=1e-5, rtol=1e-5)
    assert dec(z["song"][:3], z["video"][:3]).shape == (3,)


def test_compact_computation_is_exact():
    torch.manual_seed(1)
    x, ei = _graph()
    enc, _ = build_model({"video": 10, "song": 4}, GATConfig(hidden=16, heads=2))
    enc.eval()
    fast = enc(x, {VIDEO_EDGE: ei})
    enc.compact = False
    slow = enc(x, {VIDEO_EDGE: ei})
    for t in ("video", "song"):
        torch.testing.assert_close(fast[t], slow[t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_requested_rows_equal_slices_of_the_full_output(layers):
    torch.manual_seed(4)
    x, ei = _graph(V=40, S=6)
    enc, _ = build_model({"video": 10, "song": 4}, GATConfig(hidden=16, heads=2, layers=layers))
    enc.eval()
    full = enc(x, {VIDEO_EDGE: ei})
    idx = torch.tensor([39, 3, 3, 0, 36, 17])  # unsorted, repeated, isolated and linked videos
    part = enc(x, {VIDEO_EDGE: ei}, out_index={"video": idx})
    torch.testing.assert_close(part["video"], full["video"][idx], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(part["song"], full["song"], atol=1e-5, rtol=1e-5)
    songs = torch.tensor([2, 0])
    part = enc(x, {VIDEO_EDGE: ei}, out_index={"video": idx[:0], "song": songs})
    assert part["video"].shape == (0, 16)
    torch.testing.assert_close(part["song"], full["song"][songs], atol=1e-5, rtol=1e-5)


def test_messages_flow_both_ways_and_reverse_edges_are_derived():
    torch.manual_seed(2)
    x, ei = _graph()
    enc, _ = build_model({"video": 10, "song": 4}, GATConfig(hidden=16, heads=2))
    enc.eval()
    base = enc(x, {VIDEO_EDGE: ei})
    both = enc(x, {VIDEO_EDGE: ei, REV_EDGE: ei.flip(0)})
    torch.testing.assert_close(base["video"], both["video"])
    x2 = {"video": x["video"].clone(), "song": x["song"].clone()}
    x2["video"][0] += 3.0  # change a video: its song's embedding changes, other songs' do not
    z2 = enc(x2, {VIDEO_EDGE: ei})
    song0 = int(ei[1, 0])
    assert not torch.allclose(z2["song"][song0], base["song"][song0])
    others = [s for s in range(5) if s != song0]
    torch.testing.assert_close(z2["song"][others], base["song"][others])


def test_song_degree_input_sees_the_given_graph_only():
    torch.manual_seed(3)
    x, ei = _graph()
    enc, _ = build_model({"video": 10, "song": 4}, GATConfig(hidden=16, heads=2, layers=1))
    enc.eval()
    every = {"video": None, "song": None}
    h_full = enc._inputs(x, {VIDEO_EDGE: ei}, every)["song"]
    h_none = enc._inputs(x, {VIDEO_EDGE: ei[:, :0]}, every)["song"]
    assert not torch.allclose(h_full, h_none)
    unused = 4  # the last song has no videos in either graph
    torch.testing.assert_close(h_full[unused], h_none[unused])


def test_feature_stats_standardise_and_survive_constant_columns():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    mean, std = feature_stats(x)
    assert mean.tolist() == [2.0, 5.0] and std.tolist() == [1.0, 1.0]


def test_state_dict_round_trips_with_weights_only():
    enc, dec = build_model({"video": 10, "song": 4}, GATConfig(hidden=16, heads=2, decoder="mlp"))
    buf = io.BytesIO()
    torch.save({"encoder": enc.state_dict(), "decoder": dec.state_dict()}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    enc2, dec2 = build_model({"video": 10, "song": 4}, GATConfig(hidden=16, heads=2, decoder="mlp"))
    enc2.load_state_dict(loaded["encoder"])
    dec2.load_state_dict(loaded["decoder"])
    assert isinstance(dec2, LinkDecoder) and dec2.kind == "mlp"


@pytest.mark.parametrize("bad", [dict(hidden=30, heads=4), dict(layers=0), dict(loss="hinge"),
                                 dict(negatives="random"), dict(disjoint_train_ratio=0.0), dict(val_ratio=0.6,
                                                                                                test_ratio=0.5)])
def test_bad_settings_raise_user_errors(bad):
    with pytest.raises(UserError):
        GATConfig(**bad).validate()
