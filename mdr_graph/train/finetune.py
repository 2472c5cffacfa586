"""``--finetune-gat``: train the GAT together with the fusion model.

By default the network modality is the frozen GAT's embedding, computed once. With
fine-tuning, :class:`FinetunedGAT` holds the GAT and the graph, recomputes the video
embeddings at every step and hands the batch's rows to the fusion model.

It runs the GAT on the same forecaster's views as the frozen embedding
(:func:`mdr_graph.train.prepare.network_embeddings`), so fine-tuning changes the weights,
not what a video may see: a held-out video reads entities that only training videos
write; a training video reads entities that only the *other* folds' videos write (under
``--split time``, only strictly older videos), so its own links never shape its input,
as a held-out video's never do. No popularity label is a link. :class:`GraphViews` holds
these views, and the checkpoint carries it, so ``evaluate`` sees what training saw.

Cost: one full-graph GAT pass per view a batch reads, so it suits graphs that fit a full
batch. Training batches are therefore drawn one view at a time (:func:`view_batches`: each
is a random batch of one fold's videos, the batches in random order), one pass per step as
before the views. Without gradients (validation, the final predictions, input statistics)
each view is computed once until the weights may change, not once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

INDEX_KEY = "network_index"


@dataclass
class GraphViews:
    """``known[v]``: the graph videos whose links write in view ``v``; ``view_of[i]``: the view
    graph video ``i`` reads from. View 0 is the held-out view (every training video writes).
    ``videos``: a fingerprint of the video ids in node order, the order the masks index."""

    known: Tensor     # bool [views, V]
    view_of: Tensor   # long [V]
    videos: str

    @classmethod
    def everything(cls, video_ids) -> "GraphViews":
        """One view in which every link writes (a checkpoint from before the views)."""
        n = len(video_ids)
        return cls(torch.ones(1, n, dtype=torch.bool), torch.zeros(n, dtype=torch.long), video_order(video_ids))

    @classmethod
    def of_run(cls, videos: pd.DataFrame, train_rows: np.ndarray, split: str, seed: int,
               folds: int) -> "GraphViews":
        """The held-out view and one view per out-of-fold pair (:func:`mdr_graph.train.oof.oof_pairs`),
        over the rows of the run's ``videos`` (the graph's nodes, in the same order: ``wrap`` checks it)."""
        from mdr_graph.train.oof import oof_pairs

        def mask(rows) -> Tensor:
            m = torch.zeros(len(videos), dtype=torch.bool)
            m[torch.from_numpy(np.array(rows, dtype=np.int64))] = True   # a copy: the rows may be read-only
            return m

        known = [mask(train_rows)]
        view_of = torch.zeros(len(videos), dtype=torch.long)
        for fit, inside in oof_pairs(videos, train_rows, split, seed, folds):
            view_of[mask(inside)] = len(known)
            known.append(mask(fit))
        return cls(torch.stack(known), view_of, video_order(videos["video_id"]))

    def state(self) -> dict:
        """What ``model.pt`` keeps (tensors and a string: loadable with ``weights_only=True``)."""
        return {"known": self.known, "view_of": self.view_of, "videos": self.videos}

    @classmethod
    def from_state(cls, state: dict) -> "GraphViews":
        return cls(state["known"].bool(), state["view_of"].long(), state["videos"])


def view_batches(view_of_rows: np.ndarray, batch_size: int, seed: int, epoch: int, rank: int = 0,
                 world_size: int = 1) -> list[list[int]]:
    """This rank's training batches (dataset positions) for one epoch: each global batch holds
    ``batch_size`` random videos of one view (a view's last batch takes its short tail), in a
    random order of batches. Under DDP rank ``r`` takes every ``world_size``-th video of each
    global batch, so every batch holds at least ``world_size`` videos: a smaller view repeats
    its own videos, as ``DistributedSampler`` pads, and every rank takes the same steps."""
    rng = np.random.default_rng([seed, epoch])
    step = max(batch_size, world_size)
    batches: list[np.ndarray] = []
    for v in np.unique(view_of_rows):
        rows = rng.permutation(np.flatnonzero(view_of_rows == v))
        rows = np.resize(rows, max(len(rows), world_size))
        pieces = [rows[a:a + step] for a in range(0, len(rows), step)]
        if len(pieces) > 1 and len(pieces[-1]) < world_size:
            pieces[-2] = np.concatenate([pieces[-2], pieces.pop()])
        batches += pieces
    return [batches[b][rank::world_size].tolist() for b in rng.permutation(len(batches))]


def video_order(video_ids) -> str:
    """A fingerprint of video ids in their order (views index videos by graph node)."""
    import hashlib

    return hashlib.sha256("\n".join(map(str, video_ids)).encode()).hexdigest()


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

    def __init__(self, fusion: nn.Module, gat: nn.Module, parts, mode: str = "video",
                 views: GraphViews | None = None):
        super().__init__()
        self.fusion = fusion
        self.gat = gat
        self.parts = parts
        self.mode = mode
        self.views = views or GraphViews.everything(parts.ids["video"])
        self.modalities = fusion.modalities
        self._no_grad_views: dict[int, Tensor] = {}   # view -> embeddings, while the weights cannot change

    def train(self, mode: bool = True):
        self._no_grad_views.clear()   # a new phase: weights were stepped or loaded since the last one
        return super().train(mode)

    def view_embeddings(self, v: int) -> Tensor:
        """Every graph video's embedding in view ``v`` (differentiable)."""
        from mdr_graph.pretrain.embed import graph_view, view_embeddings

        view = graph_view(self.parts, self.views.known[v])
        dev = self.fusion_device
        view.x = {k: t.to(dev) for k, t in view.x.items()}
        view.reads = {k: t.to(dev) for k, t in view.reads.items()}
        view.writes = {k: t.to(dev) for k, t in view.writes.items()}
        return view_embeddings(self.gat, view, self.mode)[0]

    def video_embeddings(self, idx: Tensor) -> Tensor:
        """The embeddings of graph videos ``idx``, each from its own view (one GAT pass per view used)."""
        idx = idx.long().cpu()
        which = self.views.view_of[idx]
        if torch.is_grad_enabled():
            self._no_grad_views.clear()   # this step may change the weights
        pieces, order = [], []
        for v in which.unique().tolist():
            at = torch.nonzero(which == v).flatten()
            if torch.is_grad_enabled():
                z = self.view_embeddings(v)
            else:
                z = self._no_grad_views.get(v)
                if z is None:
                    z = self._no_grad_views[v] = self.view_embeddings(v)
            pieces.append(z[idx[at].to(self.fusion_device)])
            order.append(at)
        return torch.cat(pieces)[torch.argsort(torch.cat(order)).to(self.fusion_device)]

    @property
    def fusion_device(self) -> torch.device:
        return next(self.fusion.parameters()).device

    def with_network(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        inputs = dict(inputs)
        idx = inputs.pop(INDEX_KEY, None)
        if idx is not None:
            inputs["network"] = self.video_embeddings(idx)
        return inputs

    def forward(self, inputs: dict[str, Tensor], present: Tensor):
        return self.fusion(self.with_network(inputs), present)

    @torch.no_grad()
    def fit_input_stats(self, batches: Iterable[tuple[dict[str, Tensor], Tensor]]) -> list[str]:
        return self.fusion.fit_input_stats((self.with_network(i), p) for i, p in batches)

    def checkpoint(self) -> dict[str, Any]:
        """The fusion model's checkpoint plus the fine-tuned GAT weights and the views it ran on."""
        return {**self.fusion.checkpoint(), "gat_state": self.gat.state_dict(), "gat_views": self.views.state()}


def wrap(fusion: nn.Module, gat_path: str, graph_dir: str, gat_state: dict | None = None,
         mode: str = "video", views: GraphViews | None = None) -> FinetunedGAT:
    """``views``: the run's :class:`GraphViews` (``None``: every link writes, as before the views)."""
    gat, parts = load_gat_and_graph(gat_path, graph_dir)
    if gat_state is not None:
        gat.load_state_dict(gat_state)
    if views is not None and views.videos != video_order(parts.ids["video"]):
        from mdr_graph.errors import UserError

        raise UserError(f"{graph_dir} does not hold the videos, in the same order, that the fine-tuned model's "
                        "graph views index; use the graph the run was trained on")
    return FinetunedGAT(fusion, gat, parts, mode, views)
