"""``--finetune-gat``: train the GAT together with the fusion model.

By default the network modality is the frozen GAT's embedding, computed once. With
fine-tuning, :class:`FinetunedGAT` holds the GAT and the song-video graph, recomputes
the video embeddings on the whole graph at every step (every link passing messages, as
at inference; no popularity label is a link), and hands the batch's rows to the fusion
model. Cost: one full-graph GAT pass per step, so it suits graphs that fit a full batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import torch
from torch import Tensor, nn

INDEX_KEY = "network_index"


def load_gat_and_graph(gat_path: str | Path, graph_dir: str | Path):
    """The pretrained GAT, made trainable, and the graph it was trained on (as tensors)."""
    from mdr_graph.pretrain.embed import _load_graph_checked, load_gat

    gat, meta = load_gat(gat_path)
    gat.requires_grad_(True)
    return gat, _load_graph_checked(graph_dir, meta)


class FinetunedGAT(nn.Module):
    """A fusion model whose ``network`` input comes from a GAT trained with it.

    Batches carry ``inputs["network_index"]``: each video's node index in the graph. A
    batch without it (new videos, embedded inductively) uses ``inputs["network"]`` as is.
    """

    def __init__(self, fusion: nn.Module, gat: nn.Module, parts, mode: str = "video"):
        super().__init__()
        self.fusion = fusion
        self.gat = gat
        self.parts = parts
        self.mode = mode
        self.modalities = fusion.modalities

    def video_embeddings(self) -> Tensor:
        from mdr_graph.pretrain.embed import graph_view, view_embeddings

        view = graph_view(self.parts, torch.ones(self.parts.num_nodes["video"], dtype=torch.bool))
        dev = self.fusion_device
        view.x = {k: v.to(dev) for k, v in view.x.items()}
        view.reads = {k: v.to(dev) for k, v in view.reads.items()}
        view.writes = {k: v.to(dev) for k, v in view.writes.items()}
        return view_embeddings(self.gat, view, self.mode)[0]

    @property
    def fusion_device(self) -> torch.device:
        return next(self.fusion.parameters()).device

    def with_network(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        inputs = dict(inputs)
        idx = inputs.pop(INDEX_KEY, None)
        if idx is not None:
            inputs["network"] = self.video_embeddings()[idx.long()]
        return inputs

    def forward(self, inputs: dict[str, Tensor], present: Tensor):
        return self.fusion(self.with_network(inputs), present)

    @torch.no_grad()
    def fit_input_stats(self, batches: Iterable[tuple[dict[str, Tensor], Tensor]]) -> list[str]:
        return self.fusion.fit_input_stats((self.with_network(i), p) for i, p in batches)

    def checkpoint(self) -> dict[str, Any]:
        """The fusion model's checkpoint plus the fine-tuned GAT weights."""
        return {**self.fusion.checkpoint(), "gat_state": self.gat.state_dict()}


def wrap(fusion: nn.Module, gat_path: str, graph_dir: str, gat_state: dict | None = None,
         mode: str = "video") -> FinetunedGAT:
    gat, parts = load_gat_and_graph(gat_path, graph_dir)
    if gat_state is not None:
        gat.load_state_dict(gat_state)
    return FinetunedGAT(fusion, gat, parts, mode)
