"""Every fusion architecture by name: build a fresh one (:func:`build_model`), rebuild a saved one (:func:`load_model`).

The main model is the co-attention Transformer of :mod:`mdr_graph.fusion`; the others
here are its baselines, built from the same encoders. All take ``FusionConfig`` and per-sample ``input_shapes`` and share one forward
signature, ``forward(inputs, present) -> FusionOutput``, so the comparison trains
them with one loop on the same splits:

- ``coattention``: :class:`mdr_graph.fusion.FusionModel` (``cfg.fusion`` picks stacked or guided).
- ``unimodal``: the same model with exactly one modality.
- ``concat-mlp``: early fusion by concatenation (SiMVC-style): per-modality encoders,
  mean-pooled, concatenated, an MLP and a sigmoid. No contributions.
- ``single-transformer``: one Transformer over all modalities' tokens with a learned
  modality-type embedding and a [CLS] token (VATT-style). Contributions: the [CLS]
  token's last-layer attention mass per modality, averaged over heads.
- ``late-fusion``: the Georgia Tech student project generalised: each modality has its
  own Transformer and predicts on its own; a learned weighted average (softmax weights
  over the present modalities) combines the predictions at the decision level. The
  project's configuration is ``modalities = ["convlstm", "whisper"]``
  (:data:`LATE_FUSION_REFERENCE`). Contributions are the decision weights and ``parts``
  the per-modality predictions (useful for an auxiliary per-modality loss).

Missing modalities are masked everywhere: absent from attention, replaced by a learned
token in concatenations, given zero weight in decision averages.

Checkpoints are ``model.checkpoint()`` = ``{"kind", "config", "input_shapes", "model"}``
(plain data, ``weights_only``-loadable); :func:`load_model` rebuilds the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from mdr_graph.config import from_dict
from mdr_graph.encoders.layers import EncoderLayer
from mdr_graph.errors import UserError
from mdr_graph.fusion import (FusionConfig, FusionModel, FusionOutput, ModalityTransformer, MultimodalModel,
                              ScoreHead)

KINDS = ("coattention", "unimodal", "concat-mlp", "single-transformer", "late-fusion")
LATE_FUSION_REFERENCE = ("convlstm", "whisper")


class ConcatMLP(MultimodalModel):
    """Early fusion: ``sigmoid(MLP(concat(mean-pooled encoder tokens)))``."""

    kind = "concat-mlp"

    def __init__(self, cfg: FusionConfig, input_shapes: dict[str, tuple]):
        super().__init__(cfg, input_shapes)
        c = self.cfg
        self.missing = nn.Parameter(torch.randn(len(self.modalities), c.d_model) * 0.02)
        self.head = ScoreHead(len(self.modalities) * c.d_model, c.head_hidden or c.d_model, c.dropout)

    def forward(self, inputs: dict[str, Tensor], present: Tensor | None = None) -> FusionOutput:
        inputs, present = self.check_inputs(inputs, present)
        tokens = self.encode(inputs)
        z = torch.stack([tokens[m].mean(dim=1) for m in self.modalities], dim=1)
        z = self.missing_token_fill(z, present, self.missing)
        logits = self.head(z.flatten(1))
        return FusionOutput(torch.sigmoid(logits), logits, None)


class SingleTransformer(MultimodalModel):
    """One Transformer over ``[CLS] + all modality tokens``, with learned modality-type embeddings.

    Depth is ``layers + coattention_layers`` so it matches the co-attention model's
    per-modality plus fusion depth.
    """

    kind = "single-transformer"

    def __init__(self, cfg: FusionConfig, input_shapes: dict[str, tuple]):
        super().__init__(cfg, input_shapes)
        c = self.cfg
        self.type_embedding = nn.Parameter(torch.randn(len(self.modalities), c.d_model) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, c.d_model) * 0.02)
        depth = max(1, c.layers + c.coattention_layers)
        self.layers = nn.ModuleList(EncoderLayer(c.d_model, c.heads, c.ff_mult, c.dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(c.d_model)
        self.head = ScoreHead(c.d_model, c.head_hidden, c.dropout)

    def forward(self, inputs: dict[str, Tensor], present: Tensor | None = None) -> FusionOutput:
        inputs, present = self.check_inputs(inputs, present)
        tokens = self.encode(inputs)
        b = present.shape[0]
        seq = [self.cls.expand(b, -1, -1)]
        allowed = [torch.ones(b, 1, dtype=torch.bool, device=present.device)]
        lengths = []
        for j, m in enumerate(self.modalities):
            t = tokens[m] + self.type_embedding[j]
            seq.append(t)
            lengths.append(t.shape[1])
            allowed.append(present[:, j:j + 1].expand(b, t.shape[1]))
        x, allowed_t = torch.cat(seq, dim=1), torch.cat(allowed, dim=1)
        weights = None
        for i, layer in enumerate(self.layers):
            x, w = layer(x, allowed=allowed_t, need_weights=i == len(self.layers) - 1)
            weights = w if w is not None else weights
        logits = self.head(self.norm(x[:, 0]))
        cls_attn = weights[:, :, 0, 1:].float()                   # [B, H, L-1]: CLS -> modality tokens
        mass = torch.stack([part.sum(-1) for part in cls_attn.split(lengths, dim=-1)], dim=-1).mean(dim=1)
        total = mass.sum(-1, keepdim=True)
        contributions = torch.where(total > 0, mass / total.clamp_min(1e-12), torch.zeros_like(mass))
        return FusionOutput(torch.sigmoid(logits), logits, contributions)


class LateFusion(MultimodalModel):
    """Per-modality Transformers each predicting; a learned softmax-weighted average of the predictions."""

    kind = "late-fusion"

    def __init__(self, cfg: FusionConfig, input_shapes: dict[str, tuple]):
        super().__init__(cfg, input_shapes)
        c = self.cfg
        depth = max(1, c.layers)  # each branch is a Transformer, so at least one block
        self.branches = nn.ModuleDict({m: ModalityTransformer(c.d_model, c.heads, depth, c.ff_mult, c.dropout)
                                       for m in self.modalities})
        self.heads = nn.ModuleDict({m: ScoreHead(c.d_model, c.head_hidden, c.dropout) for m in self.modalities})
        self.decision_logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.prior = nn.Parameter(torch.zeros(()))  # the score of a sample with no modality at all

    def decision_weights(self, present: Tensor) -> Tensor:
        """``[B, M]``: softmax of the learned weights over each sample's present modalities."""
        w = self.decision_logits.expand(present.shape[0], -1).masked_fill(~present, torch.finfo(torch.float32).min)
        return torch.softmax(w, dim=-1) * present

    def forward(self, inputs: dict[str, Tensor], present: Tensor | None = None) -> FusionOutput:
        inputs, present = self.check_inputs(inputs, present)
        tokens = self.encode(inputs)
        part_logits = torch.stack([self.heads[m](self.branches[m](tokens[m])) for m in self.modalities], dim=1)
        parts = torch.sigmoid(part_logits)
        weights = self.decision_weights(present)
        any_present = present.any(dim=1)
        pred = torch.where(any_present, (weights * parts).sum(dim=1), torch.sigmoid(self.prior).expand_as(any_present))
        logits = torch.logit(pred, eps=1e-6)
        return FusionOutput(pred, logits, weights, parts)


_BUILDERS = {"coattention": FusionModel, "unimodal": FusionModel, "concat-mlp": ConcatMLP,
             "single-transformer": SingleTransformer, "late-fusion": LateFusion}


def build_model(kind: str, cfg: FusionConfig, input_shapes: dict[str, tuple]) -> MultimodalModel:
    """A fresh model of ``kind`` (one of :data:`KINDS`) over ``cfg.modalities``."""
    if kind not in _BUILDERS:
        raise UserError(f"unknown model kind {kind!r}; choose from {', '.join(KINDS)}")
    if kind == "unimodal" and len(cfg.modalities) != 1:
        raise UserError(f"a unimodal model takes exactly one modality, got {list(cfg.modalities)}")
    model = _BUILDERS[kind](cfg, input_shapes)
    model.kind = kind
    return model


def load_model(ckpt: dict[str, Any]) -> MultimodalModel:
    """Rebuild a model from ``model.checkpoint()`` (e.g. ``mdr_graph.io.torch_load(path)``)."""
    missing = [k for k in ("kind", "config", "input_shapes", "model") if k not in ckpt]
    if missing:
        raise UserError(f"not a model checkpoint: missing {', '.join(missing)} "
                        f"(expected the dict written from model.checkpoint())")
    cfg = from_dict(FusionConfig, dict(ckpt["config"]), source="model checkpoint")
    path = cfg.convlstm_path
    # The frozen ConvLSTM's weights are in the state_dict: rebuild from its architecture, not the file.
    build_cfg = dataclasses.replace(cfg, convlstm_path=None) if cfg.convlstm_arch else cfg
    shapes = {m: tuple(s) for m, s in ckpt["input_shapes"].items()}
    model = build_model(ckpt["kind"], build_cfg, shapes)
    model.load_state_dict(ckpt["model"])
    model.cfg.convlstm_path = path
    return model
