"""The song-video GAT encoder, its link decoder, and their settings.

The graph is bipartite (videos only link to songs), so every layer has one GATConv per
edge direction: ``video -> song`` (a song attends over the videos that use it) and
``song -> video`` (a video attends over its song). Each direction is a bipartite
GATConv with separate source/target projections and no self-loops, since a self-loop
would mix a node into a neighbourhood of the other type. Instead a per-type linear skip
path carries a node's own state forward, so a node with no neighbours (a new video, a
held-out link, a song nobody has used yet) still gets an embedding from its features.

``SongVideoGAT.forward(x_dict, edge_index_dict) -> {'video': [V, d], 'song': [S, d]}``
is a plain ``nn.Module`` forward, so the fusion model can fine-tune it end to end.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv

from mdr_graph.errors import UserError
from mdr_graph.graph_build.schema import REV_EDGE, VIDEO_EDGE

NODE_TYPES = ("video", "song")
EDGE_TYPES = (VIDEO_EDGE, REV_EDGE)
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
    # How negative pairs are drawn against the positives being scored (see linksplit.negative_pools):
    # "corrupt-song" keeps the positives' videos and draws songs uniformly; "uniform" draws both
    # uniformly; "shuffle" re-pairs the positives' own videos and songs. Each video uses one song,
    # so with "uniform" a negative's video nearly always has its song in the message-passing graph
    # and a positive's never does: a shortcut the model learns instead of the task.
    negatives: str = "corrupt-song"
    val_ratio: float = 0.1
    test_ratio: float = 0.1
    disjoint_train_ratio: float = 0.4  # share of training links used only as supervision (60/40)
    loss: str = "bce"                 # bce on logits, or mse on probabilities (the reference design)
    decoder: str = "dot"              # dot product of the pair, or an MLP on [s, v, s*v]
    # Give songs log(1 + degree in the message-passing graph) as an input. GAT attention is a
    # weighted mean, which cannot count; this restores the popularity signal. It is computed from
    # whatever graph the model is run on, so held-out links never count.
    song_degree_input: bool = True
    batch_components: int = 0         # connected components per mini-batch; 0 = full batch
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
        if self.batch_components < 0:
            bad(f"batch_components={self.batch_components} must be >= 0 (0 = full batch)")
        if self.device == "cuda" and not torch.cuda.is_available():
            bad("device='cuda' but no CUDA device is available; use --device cpu")
        return self


def edge_key(edge_type: tuple[str, str, str]) -> str:
    """ModuleDict keys must be strings."""
    return "__".join(edge_type)


class SongVideoGAT(nn.Module):
    """Heterogeneous GAT over the bipartite song-video graph.

    ``x_stats`` holds the per-type feature mean and std of the pretraining graph. They are
    buffers, so the same standardisation is applied to nodes that arrive later.
    """

    def __init__(self, in_dims: dict[str, int], cfg: GATConfig,
                 x_stats: dict[str, tuple[Tensor, Tensor]] | None = None):
        super().__init__()
        self.in_dims = dict(in_dims)
        self.hidden, self.heads, self.num_layers = cfg.hidden, cfg.heads, cfg.layers
        self.song_degree_input = cfg.song_degree_input
        self.dropout = cfg.dropout
        self.compact = True  # compute only on rows an edge touches (exact; see _active_plan)
        for t in NODE_TYPES:
            mean, std = x_stats[t] if x_stats else (torch.zeros(in_dims[t]), torch.ones(in_dims[t]))
            self.register_buffer(f"{t}_mean", mean.float().clone())
            self.register_buffer(f"{t}_std", std.float().clamp_min(1e-6).clone())
        extra = {"video": 0, "song": int(cfg.song_degree_input)}
        # W^V and W^S of the design: one input projection per node type.
        self.proj = nn.ModuleDict({t: nn.Linear(in_dims[t] + extra[t], cfg.hidden) for t in NODE_TYPES})
        self.convs = nn.ModuleList()
        self.skips = nn.ModuleList()
        self.norms = nn.ModuleList()
        for layer in range(cfg.layers):
            self.convs.append(nn.ModuleDict({
                edge_key(et): GATConv((cfg.hidden, cfg.hidden), cfg.hidden // cfg.heads, heads=cfg.heads,
                                      concat=True, dropout=cfg.dropout, add_self_loops=False)
                for et in EDGE_TYPES}))
            self.skips.append(nn.ModuleDict({t: nn.Linear(cfg.hidden, cfg.hidden) for t in NODE_TYPES}))
            if layer < cfg.layers - 1:
                self.norms.append(nn.ModuleDict({t: nn.LayerNorm(cfg.hidden) for t in NODE_TYPES}))

    @property
    def out_dim(self) -> int:
        return self.hidden

    def _inputs(self, x_dict: dict[str, Tensor], edges: dict, rows: dict[str, Tensor | None]) -> dict[str, Tensor]:
        h = {}
        for t in NODE_TYPES:
            x = x_dict[t].float()
            n = x.size(0)
            if rows[t] is not None:
                x = x[rows[t]]
            x = (x - getattr(self, f"{t}_mean")) / getattr(self, f"{t}_std")
            if t == "song" and self.song_degree_input:
                ei = edges[VIDEO_EDGE]
                deg = torch.bincount(ei[1], minlength=n).to(x.dtype) if ei.numel() else x.new_zeros(n)
                deg = deg if rows[t] is None else deg[rows[t]]
                x = torch.cat([x, torch.log1p(deg).unsqueeze(1)], dim=1)
            h[t] = self.proj[t](x)
        return h

    def forward(self, x_dict: dict[str, Tensor], edge_index_dict: dict,
                out_index: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Embed the nodes: ``{'video': [V, hidden], 'song': [S, hidden]}``.

        ``edge_index_dict`` needs ``(video, uses, song)``; the reverse direction is derived
        from it when absent, so callers cannot pass inconsistent directions by accident.
        ``out_index`` optionally asks for some rows of a type only (e.g. ``{'video': idx}``
        returns ``len(idx)`` video rows in that order). Only the rows those outputs depend on
        are computed, layer by layer, so the values equal slicing the full output.
        """
        fwd = edge_index_dict.get(VIDEO_EDGE)
        if fwd is None:
            rev = edge_index_dict.get(REV_EDGE)
            fwd = rev.flip(0) if rev is not None else torch.empty(2, 0, dtype=torch.long,
                                                                  device=x_dict["video"].device)
        edges = {VIDEO_EDGE: fwd, REV_EDGE: edge_index_dict.get(REV_EDGE, fwd.flip(0))}
        n = {t: x_dict[t].size(0) for t in NODE_TYPES}
        rows = self._row_plan(edges, n, out_index or {})
        h = self._inputs(x_dict, edges, rows[0])
        for layer in range(self.num_layers):
            prev, cur = rows[layer], rows[layer + 1]
            h_dst = {t: h[t] if cur[t] is None or prev[t] is cur[t] else h[t][_positions(prev[t], cur[t], n[t])]
                     for t in NODE_TYPES}
            msg = {}
            for et in EDGE_TYPES:
                src, _, dst = et
                ei = _relabel(edges[et], prev[src], cur[dst], n[src], n[dst])
                plan = _active_plan(ei, h[src].size(0), h_dst[dst].size(0), self.compact)
                msg[dst] = _gat_message(self.convs[layer][edge_key(et)], h[src], h_dst[dst], plan)
            h = {t: self.skips[layer][t](h_dst[t]) + msg[t] for t in NODE_TYPES}
            if layer < self.num_layers - 1:
                h = {t: nn.functional.dropout(nn.functional.elu(self.norms[layer][t](h[t])),
                                              p=self.dropout, training=self.training) for t in NODE_TYPES}
        for t, idx in (out_index or {}).items():
            h[t] = h[t][_positions(rows[-1][t], idx, n[t])]
        return h

    def _row_plan(self, edges: dict, n: dict[str, int], out_index: dict[str, Tensor]) -> list[dict]:
        """``rows[l][t]``: sorted rows of type ``t`` whose layer-``l`` state is needed (``None`` = all).

        Walks back from the requested outputs: a row's layer-``l`` state needs its own and
        its in-neighbours' layer-``l-1`` states.
        """
        L = self.num_layers
        if not out_index:
            return [dict.fromkeys(NODE_TYPES)] * (L + 1)
        masks: list[dict[str, Tensor | None]] = [{} for _ in range(L + 1)]
        for t in NODE_TYPES:
            if t in out_index:
                m = torch.zeros(n[t], dtype=torch.bool, device=out_index[t].device)
                m[out_index[t]] = True
                masks[L][t] = m
            else:
                masks[L][t] = None
        for layer in range(L, 0, -1):
            cur = masks[layer]
            prev = {t: None if cur[t] is None else cur[t].clone() for t in NODE_TYPES}
            for et in EDGE_TYPES:
                src, _, dst = et
                if prev[src] is None:
                    continue
                ei = edges[et]
                prev[src][ei[0] if cur[dst] is None else ei[0][cur[dst][ei[1]]]] = True
            masks[layer - 1] = prev
        return [{t: None if m[t] is None or bool(m[t].all()) else torch.nonzero(m[t]).flatten() for t in NODE_TYPES}
                for m in masks]


def _positions(rows: Tensor | None, idx: Tensor, n: int) -> Tensor:
    """Where global ids ``idx`` sit within the sorted subset ``rows`` (``None`` = all rows)."""
    if rows is None:
        return idx
    pos = torch.full((n,), -1, dtype=torch.long, device=idx.device)
    pos[rows] = torch.arange(rows.numel(), device=idx.device)
    return pos[idx]


def _relabel(ei: Tensor, src_rows: Tensor | None, dst_rows: Tensor | None, n_src: int, n_dst: int) -> Tensor:
    """Edges into ``dst_rows``, relabelled to positions within ``src_rows`` / ``dst_rows``."""
    if dst_rows is not None:
        d = _positions(dst_rows, ei[1], n_dst)
        keep = d >= 0
        ei = torch.stack([ei[0][keep], d[keep]])
    if src_rows is not None:
        ei = torch.stack([_positions(src_rows, ei[0], n_src), ei[1]])
    return ei


def _active_plan(ei: Tensor, n_src: int, n_dst: int, compact: bool) -> tuple[Tensor | None, Tensor | None, Tensor]:
    """Which source/target rows an edge type touches, and its edges relabelled to those rows.

    A GATConv transforms every source and target row, but only rows with an edge matter:
    a target without edges receives just the bias, and a source without edges sends
    nothing. During training about half the videos are isolated (their only link is held
    out or supervises), so computing on touched rows only is exact and saves that work.
    ``None`` means "all rows" (no gather needed).
    """
    if not compact or ei.numel() == 0:
        return None, None, ei
    src, src_inv = torch.unique(ei[0], return_inverse=True)
    dst, dst_inv = torch.unique(ei[1], return_inverse=True)
    src_all, dst_all = src.numel() == n_src, dst.numel() == n_dst
    return (None if src_all else src, None if dst_all else dst,
            torch.stack([ei[0] if src_all else src_inv, ei[1] if dst_all else dst_inv]))


def _gat_message(conv: GATConv, h_src: Tensor, h_dst: Tensor, plan) -> Tensor:
    src, dst, ei = plan
    xs = h_src if src is None else h_src[src]
    xd = h_dst if dst is None else h_dst[dst]
    if ei.numel() == 0:  # no edges: every target gets the bias alone
        return conv.bias.expand(h_dst.size(0), -1)
    out = conv((xs, xd), ei, size=(xs.size(0), xd.size(0)))
    if dst is None:
        return out
    return conv.bias.unsqueeze(0).expand(h_dst.size(0), -1).index_copy(0, dst, out)


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


def build_model(in_dims: dict[str, int], cfg: GATConfig,
                x_stats: dict[str, tuple[Tensor, Tensor]] | None = None) -> tuple[SongVideoGAT, LinkDecoder]:
    encoder = SongVideoGAT(in_dims, cfg, x_stats)
    return encoder, LinkDecoder(cfg.hidden, cfg.decoder)


def config_from_dict(values: dict) -> GATConfig:
    """Rebuild a ``GATConfig`` from a checkpoint, ignoring settings a newer version dropped."""
    names = {f.name for f in dataclasses.fields(GATConfig)}
    return GATConfig(**{k: v for k, v in values.items() if k in names})
