"""The heterogeneous video-entity GAT, its link decoders, and their settings.

The graph has node types ``video`` and any of ``song``, ``creator``, ``hashtag``; videos
link only to entities (``uses``, ``posted_by``, ``tagged``), each relation in both
directions. ``HeteroGAT.forward(x_dict, edge_index_dict) -> {type: [n, d]}`` is a plain
``nn.Module`` forward, so the fusion model can fine-tune it end to end. One
:class:`LinkDecoder` per relation scores ``(video, entity)`` pairs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, HeteroConv

from mdr_graph.errors import UserError
from mdr_graph.graph_build.schema import EDGE_TYPES, ENTITY_TYPES

# The video -> entity relations, in a fixed order (the order of the `neighbours` embedding's
# blocks): the graph's contract, as graph_build declares it.
RELATIONS = tuple(EDGE_TYPES[t][0] for t in ENTITY_TYPES)
LOSSES = ("bce", "mse")
DECODERS = ("dot", "mlp")
NEGATIVES = ("corrupt-song", "uniform", "shuffle")


@dataclass
class GATConfig:
    """Settings of ``mdr-graph pretrain`` (section ``[pretrain]`` of config.toml)."""

    hidden: int = 256                 # embedding width; heads are concatenated, so hidden % heads == 0
    heads: int = 4
    layers: int = 2
    dropout: float = 0.2              # on hidden states and on attention coefficients
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 200
    patience: int = 20                # stop when val AUC has not improved for this many epochs
    neg_ratio: float = 0.5            # negatives per positive (the reference design used 0.5)
    # How negative pairs are drawn against the positives being scored, per relation (see
    # linksplit.negative_pools): "corrupt-song" keeps the positives' videos and draws the other end
    # (a song, creator or hashtag) uniformly; "uniform" draws both uniformly; "shuffle" re-pairs the
    # positives' own videos and entities. A video has one song and one creator, so with "uniform" a
    # negative's video nearly always keeps its link in the message-passing graph and a positive's
    # never does: a shortcut the model learns instead of the task.
    negatives: str = "corrupt-song"
    val_ratio: float = 0.1
    test_ratio: float = 0.1
    disjoint_train_ratio: float = 0.4  # share of training links used only as supervision (60/40)
    loss: str = "bce"                 # bce on logits, or mse on probabilities (the reference design)
    decoder: str = "dot"              # dot product of the pair, or an MLP on [s, v, s*v]
    # Give every entity (song, creator, hashtag) log(1 + its degree in the message-passing graph) as
    # an input. GAT attention is a weighted mean, which cannot count; this restores the popularity
    # signal. It is counted on the graph the model is run on, so held-out links never count.
    degree_input: bool = True
    # Supervision links per optimizer step; each step runs the GAT on the exact 2-hop (``layers``-hop)
    # subgraph around the step's pairs (see batching.py). 0 = full batch: one step on the whole graph.
    batch_edges: int = 0
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False                # bf16 autocast of the training forward pass (meant for GPUs; runs on CPU)

    def validate(self) -> "GATConfig":
        def bad(msg: str) -> None:
            raise UserError(f"pretrain setting {msg}")

        if self.hidden <= 0 or self.heads <= 0 or self.hidden % self.heads:
            bad(f"hidden={self.hidden} must be a positive multiple of heads={self.heads}")
        if self.layers < 1:
            bad(f"layers={self.layers} must be at least 1")
        if not 0 <= self.dropout < 1:
            bad(f"dropout={self.dropout} must be in [0, 1)")
        if self.lr <= 0 or self.weight_decay < 0:
            bad(f"lr={self.lr} must be > 0 and weight_decay={self.weight_decay} >= 0")
        if self.epochs < 1 or self.patience < 1:
            bad(f"epochs={self.epochs} and patience={self.patience} must be at least 1")
        if self.neg_ratio <= 0:
            bad(f"neg_ratio={self.neg_ratio} must be > 0")
        if not (0 < self.val_ratio < 1 and 0 < self.test_ratio < 1 and self.val_ratio + self.test_ratio < 1):
            bad(f"val_ratio={self.val_ratio} and test_ratio={self.test_ratio} must be in (0, 1) and sum below 1")
        if not 0 < self.disjoint_train_ratio < 1:
            bad(f"disjoint_train_ratio={self.disjoint_train_ratio} must be in (0, 1): training links are split "
                "into message-passing and supervision links so a link never predicts itself")
        for name, value, choices in (("loss", self.loss, LOSSES), ("decoder", self.decoder, DECODERS),
                                     ("negatives", self.negatives, NEGATIVES), ("device", self.device,
                                                                                   ("cpu", "cuda"))):
            if value not in choices:
                bad(f"{name}={value!r}; choose from {', '.join(choices)}")
        if self.batch_edges < 0:
            bad(f"batch_edges={self.batch_edges} must be >= 0 (0 = full batch)")
        if self.device == "cuda" and not torch.cuda.is_available():
            bad("device='cuda' but no CUDA device is available; use --device cpu")
        return self


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


def config_from_dict(values: dict) -> GATConfig:
    """Rebuild a ``GATConfig`` from a checkpoint or config.toml, ignoring settings a newer version dropped."""
    values = dict(values)
    if "song_degree_input" in values:  # its name before entities other than songs had it
        values.setdefault("degree_input", values.pop("song_degree_input"))
    names = {f.name for f in dataclasses.fields(GATConfig)}
    return GATConfig(**{k: v for k, v in values.items() if k in names})
