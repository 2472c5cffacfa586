"""Component mini-batches partition the graph and give exactly the full-graph embeddings."""

from __future__ import annotations

import torch

from mdr_graph.graph_build.schema import VIDEO_EDGE
from mdr_graph.pretrain.components import connected_components, pack_components
from mdr_graph.pretrain.model import GATConfig, build_model
from mdr_graph.pretrain.synthetic import synthetic_graph


def test_components_of_a_star_graph_are_songs_with_their_videos():
    # videos 0,1 -> song 0; video 2 -> song 2; video 3 has no song; song 1 has no video
    ei = torch.tensor([[0, 1, 2], [0, 0, 2]])
    vc, sc = connected_components(ei, 4, 3)
    assert vc[0] == vc[1] == sc[0]
    assert vc[2] == sc[2] != vc[0]
    assert len({int(vc[3]), int(sc[1]), int(vc[0]), int(vc[2])}) == 4
    assert int(max(vc.max(), sc.max())) + 1 == 4


def test_components_handle_a_video_with_two_songs():
    ei = torch.tensor([[0, 1, 1, 2], [0, 0, 1, 1]])  # chain song0 - video1 - song1
    vc, sc = connected_components(ei, 3, 2)
    assert len(set(vc.tolist()) | set(sc.tolist())) == 1


def test_packing_partitions_nodes_and_relabels_edges():
    g = synthetic_graph(500, 40, seed=3)
    ei = g[VIDEO_EDGE].edge_index
    b = pack_components(ei, 500, 40, components_per_batch=7)
    assert b.num_batches_total == 6 and len(b) == 6
    assert torch.equal(torch.cat(b.videos).sort().values, torch.arange(500))
    assert torch.equal(torch.cat(b.songs).sort().values, torch.arange(40))
    parts = b.split_edges(ei)
    assert sum(p.size(1) for p in parts) == ei.size(1)
    for vids, songs, local in zip(b.videos, b.songs, parts):
        glob = torch.stack([vids[local[0]], songs[local[1]]])
        # every local edge maps back to a real edge of the graph
        assert set(map(tuple, glob.t().tolist())) <= set(map(tuple, ei.t().tolist()))
    sizes = [v.numel() + s.numel() for v, s in zip(b.videos, b.songs)]
    assert max(sizes) - min(sizes) <= max(int(torch.bincount(ei[1]).max()) + 1, 1)  # balanced up to one component


def test_ranks_share_the_batches_disjointly():
    g = synthetic_graph(300, 30, seed=4)
    ei = g[VIDEO_EDGE].edge_index
    shards = [pack_components(ei, 300, 30, num_batches=5, rank=r, world_size=2) for r in range(2)]
    assert shards[0].num_batches_total == 6  # rounded up to a multiple of world_size
    assert len(shards[0]) == len(shards[1]) == 3
    ids = torch.cat([v for s in shards for v in s.videos])
    assert torch.equal(ids.sort().values, torch.arange(300))


def test_batched_forward_equals_full_graph_forward():
    torch.manual_seed(0)
    g = synthetic_graph(400, 25, seed=5)
    ei = g[VIDEO_EDGE].edge_index[:, :350]  # leave some videos isolated
    x = {"video": g["video"].x, "song": g["song"].x}
    enc, _ = build_model({"video": 10, "song": 4}, GATConfig(hidden=16, heads=2, layers=2))
    enc.eval()
    full = enc(x, {VIDEO_EDGE: ei})
    b = pack_components(ei, 400, 25, components_per_batch=4)
    assert len(b) > 1
    out_v = torch.zeros_like(full["video"])
    out_s = torch.zeros_like(full["song"])
    for vids, songs, local in zip(b.videos, b.songs, b.split_edges(ei)):
        z = enc({"video": x["video"][vids], "song": x["song"][songs]}, {VIDEO_EDGE: local})
        out_v[vids], out_s[songs] = z["video"], z["song"]
    torch.testing.assert_close(out_v, full["video"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_s, full["song"], atol=1e-5, rtol=1e-5)


def test_full_batch_copies_nothing():
    ei = torch.tensor([[0, 1], [0, 1]])
    b = pack_components(ei, 2, 2, components_per_batch=0)
    assert b.is_full_batch and b.split_edges(ei)[0] is ei
