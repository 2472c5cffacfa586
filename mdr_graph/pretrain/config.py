"""Settings of ``mdr-graph pretrain``: ``GATConfig`` and its choice lists.

Kept apart from the model (no torch import) so that ``mdr-graph pretrain --help`` can show
each default from the dataclass without loading torch and PyG.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mdr_graph.config import DEVICES
from mdr_graph.errors import UserError

LOSSES = ("bce", "mse")
DECODERS = ("dot", "mlp")
NEGATIVES = ("corrupt-song", "uniform", "shuffle")
# What a video's network embedding is (mdr_graph.pretrain.embed): read by `embed`, `train` and `compare`.
NETWORK_EMBEDDINGS = ("neighbours", "song", "video")
DEFAULT_NETWORK_EMBEDDING = "neighbours"


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
                                     ("negatives", self.negatives, NEGATIVES), ("device", self.device, DEVICES)):
            if value not in choices:
                bad(f"{name}={value!r}; choose from {', '.join(choices)}")
        if self.batch_edges < 0:
            bad(f"batch_edges={self.batch_edges} must be >= 0 (0 = full batch)")
        if self.device == "cuda" and not _cuda_available():
            bad("device='cuda' but no CUDA device is available; use --device cpu")
        return self


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def config_from_dict(values: dict) -> GATConfig:
    """Rebuild a ``GATConfig`` from a checkpoint or config.toml, ignoring settings a newer version dropped."""
    values = dict(values)
    if "song_degree_input" in values:  # its name before entities other than songs had it
        values.setdefault("degree_input", values.pop("song_degree_input"))
    names = {f.name for f in dataclasses.fields(GATConfig)}
    return GATConfig(**{k: v for k, v in values.items() if k in names})
