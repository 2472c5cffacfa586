"""Exact mini-batches for the heterogeneous GAT without a neighbour sampler: k-hop induced subgraphs.

An ``L``-layer GNN's output at a node depends only on the nodes within ``L`` hops
(against the direction of the messages). Running the model on the subgraph induced by
that set gives exactly the full-graph output at the seed nodes: a node ``d`` hops away
needs its state after ``L - d`` layers, and all of its in-neighbours (``d + 1`` hops) are
in the set. The one input a subgraph would get wrong is an entity's degree (its videos
at the set's edge are cut off), so the degree input is counted on the whole graph and
passed in.

Songs split the song-video graph into small stars, but creators and hashtags connect
almost everything, so batches of whole connected components no longer split the graph.
Instead each training step takes a batch of supervision links (and their negatives) and
runs the GAT on their k-hop subgraph, with every message-passing link of the graph
available. This needs only ``torch_geometric.utils.bipartite_subgraph``, not pyg-lib or
torch-sparse. A hub hashtag puts all of its videos into the 2-hop set of any batch that
touches it, so a step's cost is bounded by the hubs' degree, not by the batch alone.
With pyg-lib installed, ``LinkNeighborLoader`` samples a fixed number of neighbours per
hop instead (approximate, but bounded per step); see docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.utils import bipartite_subgraph


def khop_nodes(edges: dict[tuple[str, str, str], Tensor], num_nodes: dict[str, int], seeds: dict[str, Tensor],
               hops: int) -> dict[str, Tensor]:
    """Sorted ids, per node type, of every node within ``hops`` message-passing steps of the seeds."""
    mask = {t: torch.zeros(n, dtype=torch.bool) for t, n in num_nodes.items()}
    for t, idx in seeds.items():
        mask[t][idx] = True
    for _ in range(hops):
        new = {t: m.clone() for t, m in mask.items()}
        for (src, _, dst), ei in edges.items():  # a node needs the sources of the messages it receives
            new[src][ei[0][mask[dst][ei[1]]]] = True
        mask = new
    return {t: torch.nonzero(m).flatten() for t, m in mask.items()}


@dataclass
class Subgraph:
    """The subgraph induced by ``nodes`` (global ids per type), with its edges relabelled to local rows."""

    nodes: dict[str, Tensor]
    edges: dict[tuple[str, str, str], Tensor]
    local: dict[str, Tensor]      # global id -> local row (-1 outside the subgraph), per type

    def rows(self, node_type: str, ids: Tensor) -> Tensor:
        return self.local[node_type][ids]


def induced_subgraph(edges: dict[tuple[str, str, str], Tensor], num_nodes: dict[str, int],
                     nodes: dict[str, Tensor]) -> Subgraph:
    sub = {}
    for et, ei in edges.items():
        src, _, dst = et
        sub[et], _ = bipartite_subgraph((nodes[src], nodes[dst]), ei, relabel_nodes=True,
                                        size=(num_nodes[src], num_nodes[dst]))
    local = {}
    for t, idx in nodes.items():
        pos = torch.full((num_nodes[t],), -1, dtype=torch.long)
        pos[idx] = torch.arange(idx.numel())
        local[t] = pos
    return Subgraph(nodes, sub, local)


def khop_subgraph(edges: dict[tuple[str, str, str], Tensor], num_nodes: dict[str, int], seeds: dict[str, Tensor],
                  hops: int) -> Subgraph:
    """The exact computation graph of ``seeds`` for a ``hops``-layer GNN (see the module docstring)."""
    return induced_subgraph(edges, num_nodes, khop_nodes(edges, num_nodes, seeds, hops))
