"""Mini-batches of whole connected components: exact GNN batching without a neighbour sampler.

A GNN's output at a node depends only on the node's connected component, so running the
model on a batch made of whole components gives exactly the full-graph result for those
nodes. Every video uses one song, so the song-video graph falls apart into one star per
song (the song and its videos) plus isolated nodes. Packing stars into batches bounds
memory by the batch rather than the graph, and needs neither pyg-lib nor torch-sparse.

Batches are balanced by node count (largest components first, dealt out in snake order)
and are fixed for a run. Under data parallelism batch ``b`` belongs to rank
``b % world_size`` and every rank gets the same number of batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def connected_components(edge_index: Tensor, num_videos: int, num_songs: int) -> tuple[Tensor, Tensor]:
    """Component id of every video and song, ``0 .. C-1``, via min-label propagation.

    Label propagation with pointer jumping converges in a handful of vectorised passes on
    star-shaped components; it is general, so a video with several songs is also handled.
    """
    n = num_videos + num_songs
    label = torch.arange(n)
    if edge_index.numel():
        a = edge_index[0]
        b = edge_index[1] + num_videos
        while True:
            m = torch.minimum(label[a], label[b])
            new = label.clone()
            new.scatter_reduce_(0, a, m, reduce="amin")
            new.scatter_reduce_(0, b, m, reduce="amin")
            new = new[new]  # pointer jumping
            if torch.equal(new, label):
                break
            label = new
    _, comp = torch.unique(label, return_inverse=True)
    return comp[:num_videos], comp[num_videos:]


@dataclass
class ComponentBatches:
    """A partition of the nodes into batches of whole components, with per-batch local ids.

    ``video_batch[v]`` is the batch of global video ``v`` and ``video_local[v]`` its row in
    that batch; likewise for songs. ``videos[i]`` / ``songs[i]`` list the global ids of this
    rank's ``i``-th batch, in ascending order (its local order).
    """

    video_batch: Tensor
    song_batch: Tensor
    video_local: Tensor
    song_local: Tensor
    batch_ids: list[int]          # global batch id of each of this rank's batches
    videos: list[Tensor]
    songs: list[Tensor]
    num_batches_total: int

    def __len__(self) -> int:
        return len(self.batch_ids)

    @property
    def is_full_batch(self) -> bool:
        return self.num_batches_total == 1

    def split_edges(self, edge_index: Tensor) -> list[Tensor]:
        """Split global ``(video, song)`` pairs into this rank's batches, relabelled to local ids.

        Pairs must lie within one component (true for every edge of the graph it was built from).
        """
        if self.is_full_batch:
            return [edge_index] if self.batch_ids else []
        b = self.video_batch[edge_index[0]]
        if not torch.equal(b, self.song_batch[edge_index[1]]):
            raise ValueError("a pair crosses batches: it is not an edge of the graph the batches were built from")
        local = torch.stack([self.video_local[edge_index[0]], self.song_local[edge_index[1]]])
        order = torch.argsort(b, stable=True)
        counts = torch.bincount(b, minlength=self.num_batches_total).tolist()
        chunks = torch.split(local[:, order], counts, dim=1)
        return [chunks[i] for i in self.batch_ids]


def pack_components(edge_index: Tensor, num_videos: int, num_songs: int, *, components_per_batch: int = 0,
                    num_batches: int | None = None, rank: int = 0, world_size: int = 1) -> ComponentBatches:
    """Pack whole components into node-balanced batches and keep this rank's share.

    Give either ``components_per_batch`` (0 = full batch) or ``num_batches``. One batch holds
    the whole graph with local ids equal to global ids, so full-batch training copies nothing.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world_size {world_size}")
    full = num_batches <= 1 if num_batches is not None else components_per_batch <= 0
    if full and world_size == 1:
        return ComponentBatches(torch.zeros(num_videos, dtype=torch.long), torch.zeros(num_songs, dtype=torch.long),
                                torch.arange(num_videos), torch.arange(num_songs), [0],
                                [torch.arange(num_videos)], [torch.arange(num_songs)], 1)
    video_comp, song_comp = connected_components(edge_index, num_videos, num_songs)
    n_comp = int(max(video_comp.max().item() if num_videos else -1, song_comp.max().item() if num_songs else -1)) + 1
    if num_batches is None:
        num_batches = math.ceil(n_comp / components_per_batch) if components_per_batch > 0 else 1
    num_batches = max(num_batches, world_size)
    num_batches = min(math.ceil(num_batches / world_size) * world_size, max(n_comp, 1))
    size = torch.bincount(video_comp, minlength=n_comp) + torch.bincount(song_comp, minlength=n_comp)
    # Largest first, dealt in snake order 0..B-1, B-1..0, ...: near-equal node counts per batch.
    order = torch.argsort(size, descending=True, stable=True)
    pos = torch.arange(n_comp)
    rnd, col = pos // num_batches, pos % num_batches
    slot = torch.where(rnd % 2 == 0, col, num_batches - 1 - col)
    comp_batch = torch.empty(n_comp, dtype=torch.long)
    comp_batch[order] = slot
    video_batch, song_batch = comp_batch[video_comp], comp_batch[song_comp]
    video_local, videos = _local_ids(video_batch, num_batches)
    song_local, songs = _local_ids(song_batch, num_batches)
    mine = [b for b in range(num_batches) if b % world_size == rank]
    return ComponentBatches(video_batch, song_batch, video_local, song_local, mine,
                            [videos[b] for b in mine], [songs[b] for b in mine], num_batches)


def _local_ids(node_batch: Tensor, num_batches: int) -> tuple[Tensor, list[Tensor]]:
    """Row of each node within its batch, and each batch's global ids in ascending order."""
    order = torch.argsort(node_batch, stable=True)           # stable: ascending global id within a batch
    counts = torch.bincount(node_batch, minlength=num_batches)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.empty_like(node_batch)
    local[order] = torch.arange(node_batch.numel()) - starts[node_batch[order]]
    return local, list(torch.split(order, counts.tolist()))
