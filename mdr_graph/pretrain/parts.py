"""The tensors of a graph the GAT needs, read once from its ``HeteroData``.

Node types are ``video`` plus the entity types the graph links videos to (any of
``song``, ``creator``, ``hashtag``); a ``build-graph --nodes song`` graph is the
bipartite song-video graph. Only forward relations (``video -> entity``) are kept; the
reverse direction is their flip (see ``HeteroGAT.complete_edges``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from mdr_graph.graph_build.schema import ID_ATTRS
from mdr_graph.pretrain.model import graph_relations, reverse


@dataclass
class GraphParts:
    node_types: list[str]
    relations: list[tuple[str, str, str]]
    x: dict[str, Tensor]
    ids: dict[str, list[str]]
    feature_names: dict[str, list[str]]
    edges: dict[tuple[str, str, str], Tensor]   # forward relation -> [2, E] (video, entity)

    @property
    def num_nodes(self) -> dict[str, int]:
        return {t: self.x[t].size(0) for t in self.node_types}

    def entity_of(self, relation: tuple[str, str, str]) -> str:
        return relation[2]


def graph_parts(data: HeteroData) -> GraphParts:
    """The tensors and id lists of a graph, with generic ids/names where a hand-made graph lacks them."""
    relations = graph_relations(data)
    if not relations:
        raise ValueError("the graph links videos to no song, creator or hashtag")
    node_types = ["video", *[r[2] for r in relations]]
    x, ids, names = {}, {}, {}
    for t in node_types:
        x[t] = data[t].x.float()
        n, d = x[t].shape
        ids[t] = [str(i) for i in (getattr(data[t], ID_ATTRS[t], None) or [f"{t}{i}" for i in range(n)])]
        names[t] = list(getattr(data[t], "feature_names", None) or [f"{t}_f{i}" for i in range(d)])
    edges = {}
    for r in relations:
        store = data[r] if "edge_index" in data[r] else None
        edges[r] = (store.edge_index if store is not None else data[reverse(r)].edge_index.flip(0)).long()
    return GraphParts(node_types, relations, x, ids, names, edges)


def both_directions(edges: dict[tuple[str, str, str], Tensor]) -> dict[tuple[str, str, str], Tensor]:
    """Forward relations plus their reverses (flipped), as HeteroConv and k-hop expansion need them."""
    out = dict(edges)
    for r, ei in edges.items():
        out[reverse(r)] = ei.flip(0)
    return out


def empty_edges() -> Tensor:
    return torch.empty(2, 0, dtype=torch.long)
