"""The heterogeneous video-entity GAT, its link decoders, and their settings.

The graph has node types ``video`` and any of ``song``, ``creator``, ``hashtag``; videos
link only to entities (``uses``, ``posted_by``, ``tagged``), each relation in both
directions. ``HeteroGAT.forward(x_dict, edge_index_dict) -> {type: [n, d]}`` is a plain
``nn.Module`` forward, so the fusion model can fine-tune it end to end. One
:class:`LinkDecoder` per relation scores ``(video, entity)`` pairs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, HeteroConv

from mdr_graph.graph_build.schema import EDGE_TYPES, ENTITY_TYPES
from mdr_graph.pretrain.config import GATConfig

# The video -> entity relations, in a fixed order (the order of the `neighbours` embedding's
# blocks): the graph's contract, as graph_build declares it.
RELATIONS = tuple(EDGE_TYPES[t][0] for t in ENTITY_TYPES)
NODE_TYPES = ("video", "song", "creator", "hashtag")


def reverse(edge_type: tuple[str, str, str]) -> tuple[str, str, str]:
    """``(video, uses, song)`` -> ``(song, rev_uses, video)``: the graph's naming rule for reverse edges."""
    src, rel, dst = edge_type
    return (dst, f"rev_{rel}", src)


def graph_relations(data) -> list[tuple[str, str, str]]:
    """The forward relations (``video -> entity``) a graph holds links of, in :data:`RELATIONS` order.

    A relation without a single link (a small scrape whose every hashtag is a hub) carries nothing
    to learn or to read, and is left out like an absent node type.
    """
    present = {tuple(et) for et in data.edge_types}

    def links(et) -> int:
        return max((data[e].num_edges for e in (et, reverse(et)) if tuple(e) in present), default=0)

    return [et for et in RELATIONS if et in present and et[2] in data.node_types and links(et) > 0]


class HeteroGAT(nn.Module):
    """GAT over the heterogeneous video-entity graph: PyG ``HeteroConv`` of bipartite ``GATConv``.

    Each layer has one GATConv per edge direction present (a song attends over its videos,
    a video over its song, creator and hashtags), summed per target type. The convs are
    bipartite, with separate source/target projections and no self-loops (a self-loop would
    mix a node into a neighbourhood of another type); instead a per-type linear skip path
    carries a node's own state forward, so a node with no links (a new video, a held-out
    link, an unused song) still gets an embedding from its features.

    ``x_stats`` holds the per-type feature mean and std of the pretraining graph. They are
    buffers, so the same standardisation is applied to nodes that arrive later.
    """

    def __init__(self, node_types: list[str], relations: list[tuple[str, str, str]], in_dims: dict[str, int],
                 cfg: GATConfig, x_stats: dict[str, tuple[Tensor, Tensor]] | None = None):
        super().__init__()
        self.node_types = list(node_types)
        self.relations = [tuple(r) for r in relations]
        self.edge_types = [et for r in self.relations for et in (r, reverse(r))]
        self.in_dims = dict(in_dims)
        self.hidden, self.heads, self.num_layers = cfg.hidden, cfg.heads, cfg.layers
        self.dropout = cfg.dropout
        # Entities (not videos) get log(1 + number of videos linking to them) as an input:
        # GAT attention is a weighted mean, which cannot count, and popularity is a count.
        self.degree_types = [r[2] for r in self.relations] if cfg.degree_input else []
        for t in self.node_types:
            mean, std = x_stats[t] if x_stats else (torch.zeros(in_dims[t]), torch.ones(in_dims[t]))
            self.register_buffer(f"{t}_mean", mean.float().clone())
            self.register_buffer(f"{t}_std", std.float().clamp_min(1e-6).clone())
        # W^V and W^S of the design: one input projection per node type.
        self.proj = nn.ModuleDict({t: nn.Linear(in_dims[t] + int(t in self.degree_types), cfg.hidden)
                                   for t in self.node_types})
        self.convs = nn.ModuleList()
        self.skips = nn.ModuleList()
        self.norms = nn.ModuleList()
        for layer in range(cfg.layers):
            self.convs.append(HeteroConv({
                et: GATConv((cfg.hidden, cfg.hidden), cfg.hidden // cfg.heads, heads=cfg.heads, concat=True,
                            dropout=cfg.dropout, add_self_loops=False)
                for et in self.edge_types}, aggr="sum"))
            self.skips.append(nn.ModuleDict({t: nn.Linear(cfg.hidden, cfg.hidden) for t in self.node_types}))
            if layer < cfg.layers - 1:
                self.norms.append(nn.ModuleDict({t: nn.LayerNorm(cfg.hidden) for t in self.node_types}))

    @property
    def out_dim(self) -> int:
        return self.hidden

    def complete_edges(self, edge_index_dict: dict, device=None) -> dict:
        """Every edge type of the model: a missing reverse is the flipped forward (and vice versa), else empty."""
        out = {}
        for r in self.relations:
            fwd, rev = edge_index_dict.get(r), edge_index_dict.get(reverse(r))
            if fwd is None and rev is None:
                fwd = rev = torch.empty(2, 0, dtype=torch.long, device=device)
            out[r] = fwd if fwd is not None else rev.flip(0)
            out[reverse(r)] = rev if rev is not None else fwd.flip(0)
        return out

    def degrees(self, edge_index_dict: dict, num_nodes: dict[str, int]) -> dict[str, Tensor]:
        """Videos linking to each entity in the forward (``video -> entity``) edges given."""
        return {r[2]: torch.bincount(edge_index_dict[r][1], minlength=num_nodes[r[2]]).float()
                for r in self.relations if r[2] in self.degree_types}

    def forward(self, x_dict: dict[str, Tensor], edge_index_dict: dict,
                degree_dict: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Embed every node: ``{node type: [n, hidden]}``.

        ``edge_index_dict`` holds forward (``video -> entity``) and/or reverse edges; a missing
        direction is the flip of the other. The two may differ on purpose: reverse-only links
        let a video read its entities without writing to them (how held-out and new videos
        are embedded, see ``embed``). ``degree_dict`` overrides the entities' degree input
        (a subgraph passes its nodes' degrees in the whole graph; default: counted here from
        the forward edges).
        """
        dev = next(iter(x_dict.values())).device
        edges = self.complete_edges(edge_index_dict, dev)
        n = {t: x_dict[t].size(0) for t in self.node_types}
        deg = degree_dict if degree_dict is not None else self.degrees(edges, n)
        h = {}
        for t in self.node_types:
            x = (x_dict[t].float() - getattr(self, f"{t}_mean")) / getattr(self, f"{t}_std")
            if t in self.degree_types:
                x = torch.cat([x, torch.log1p(deg[t].to(x)).unsqueeze(1)], dim=1)
            h[t] = self.proj[t](x)
        for layer in range(self.num_layers):
            msg = self.convs[layer](h, edges)
            h = {t: self.skips[layer][t](h[t]) + (msg[t] if t in msg else 0.0) for t in self.node_types}
            if layer < self.num_layers - 1:
                h = {t: nn.functional.dropout(nn.functional.elu(self.norms[layer][t](h[t])),
                                              p=self.dropout, training=self.training) for t in self.node_types}
        return h


class LinkDecoder(nn.Module):
    """Score a (song, video) pair from the two embeddings; returns logits."""

    def __init__(self, dim: int, kind: str = "dot"):
        super().__init__()
        self.kind = kind
        if kind == "dot":
            self.scale = dim ** -0.5
            self.bias = nn.Parameter(torch.zeros(()))
        elif kind == "mlp":
            self.mlp = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(), nn.Linear(dim, 1))
        else:
            raise ValueError(f"unknown decoder {kind!r}")

    def forward(self, z_song: Tensor, z_video: Tensor) -> Tensor:
        if self.kind == "dot":
            return (z_song * z_video).sum(-1) * self.scale + self.bias
        return self.mlp(torch.cat([z_song, z_video, z_song * z_video], dim=-1)).squeeze(-1)


def feature_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-column mean and std (1 where a column is constant), for standardising inputs."""
    x = x.float()
    if x.size(0) == 0:
        return torch.zeros(x.size(1)), torch.ones(x.size(1))
    std = x.std(dim=0, unbiased=False)
    return x.mean(dim=0), torch.where(std > 1e-6, std, torch.ones_like(std))


class LinkDecoders(nn.Module):
    """One :class:`LinkDecoder` per relation (``uses``, ``posted_by``, ``tagged``): their base rates differ."""

    def __init__(self, relations: list[tuple[str, str, str]], dim: int, kind: str = "dot"):
        super().__init__()
        self.kind = kind
        self.by_relation = nn.ModuleDict({r[1]: LinkDecoder(dim, kind) for r in relations})

    def __getitem__(self, relation: str) -> LinkDecoder:
        return self.by_relation[relation]

    def forward(self, relation: str, z_dst: Tensor, z_video: Tensor) -> Tensor:
        return self.by_relation[relation](z_dst, z_video)


def build_model(node_types: list[str], relations: list[tuple[str, str, str]], in_dims: dict[str, int],
                cfg: GATConfig, x_stats: dict[str, tuple[Tensor, Tensor]] | None = None
                ) -> tuple[HeteroGAT, LinkDecoders]:
    encoder = HeteroGAT(node_types, relations, in_dims, cfg, x_stats)
    return encoder, LinkDecoders(relations, cfg.hidden, cfg.decoder)
