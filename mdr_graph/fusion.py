"""The generalized N-modality co-attention Transformer (stacked and guided variants).

Any non-empty subset of the modalities registered in :mod:`mdr_graph.modalities`, in any number:

1. Each modality ``m`` has its own encoder and its own Transformer block(s) (weights
   not shared): ``z_m = FC(Norm(MSA(x, x, x) + x))``, mean-pooled over the modality's
   tokens.
2. Fusion, ``fusion="stacked"``: the ``z_m`` are stacked into ``[B, M, d]`` and pass
   through multi-head co-attention with a residual, a norm and an FC:
   ``O = FC(Norm(MSA(Z, Z, Z) + Z))``.
   ``fusion="guided"`` (the personality model's guided co-attention): with
   ``I_m = z_m`` from step 1, each modality has its own cross-attention whose query is
   its token and whose keys and values are the *other* modalities:
   ``F_m = FC(Norm(MSA(I_m, [I_others], [I_others]) + I_m))``.
3. The ``M`` outputs are concatenated, and an FC and a sigmoid give the score.

Missing modalities (a video without audio, a new video without a GAT embedding) are
masked per sample: they are never attended to, and their slot in the concatenation
holds a learned "missing" token of their own, so their (zero-filled) input cannot
influence the prediction.

Modality contributions (:func:`modality_contributions`): per head ``h`` of the first
fusion layer, ``R^h = (W^Q Z)(W^K Z)^T`` (``M x M``, unscaled, as in the design);
``c_i^h`` is the sum of row ``i`` over present keys; a softmax over present ``i`` and a
mean over heads give contributions that sum to 1 over a sample's present modalities.
For the guided variant row ``i`` uses modality ``i``'s own ``W^Q, W^K`` and excludes the
diagonal (a modality does not attend to itself there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from mdr_graph.encoders.layers import AttentionBlock, InputStandardizer
from mdr_graph.errors import UserError
from mdr_graph.fusion_config import RESIDUAL_CLAMP, FusionConfig
from mdr_graph.modalities import build_encoder, check_modality


class FusionOutput(NamedTuple):
    """What every model in :mod:`mdr_graph.models` returns."""

    pred: Tensor                  # [B] popularity score in (0, 1)
    logits: Tensor                # [B] pre-sigmoid score (use it for a numerically stable loss)
    contributions: Tensor | None  # [B, M] per-sample modality contributions (rows sum to 1 over present)
    parts: Tensor | None = None   # [B, M] per-modality predictions, where the model has them (late fusion)


def modality_contributions(scores: Tensor, present: Tensor, exclude_self: bool = False) -> Tensor:
    """Contributions ``[B, M]`` from raw query-key products ``scores [B, H, M, M]``.

    ``c_i^h = sum_j R^h_ij`` over present keys ``j`` (and ``j != i`` if ``exclude_self``);
    softmax over present ``i``; mean over heads. A sample with no modality present gets
    a row of zeros.
    """
    scores = scores.float()  # exact enough to sum to 1 even under bf16 autocast
    b, h, m, _ = scores.shape
    keys = present[:, None, None, :].expand(b, h, m, m)
    if exclude_self:
        keys = keys & ~torch.eye(m, dtype=torch.bool, device=scores.device)
    rows = torch.where(keys, scores, torch.zeros_like(scores)).sum(-1)           # [B, H, M]
    queries = present[:, None, :].expand(b, h, m)
    rows = rows.masked_fill(~queries, torch.finfo(rows.dtype).min)
    return (torch.softmax(rows, dim=-1) * queries).mean(dim=1)


class ModalityTransformer(nn.Module):
    """Step 1 for one modality: ``layers`` blocks ``FC(Norm(MSA(x,x,x)+x))``, then a mean over tokens."""

    def __init__(self, d_model: int, heads: int, layers: int, ff_mult: int, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(AttentionBlock(d_model, heads, ff_mult, dropout) for _ in range(layers))

    def forward(self, tokens: Tensor) -> Tensor:
        for block in self.blocks:
            tokens, _ = block(tokens)
        return tokens.mean(dim=1)


class ScoreHead(nn.Module):
    """The final FC to one logit: ``Linear-GELU-Dropout-Linear`` (or one ``Linear`` if ``hidden == 0``)."""

    def __init__(self, in_features: int, hidden: int, dropout: float):
        super().__init__()
        self.net = (nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))
                    if hidden > 0 else nn.Linear(in_features, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


class MultimodalModel(nn.Module):
    """What all fusion architectures share: encoders, input checks, input statistics, checkpoints."""

    kind = "multimodal"

    def __init__(self, cfg: FusionConfig, input_shapes: dict[str, tuple]):
        super().__init__()
        cfg = dataclasses.replace(cfg, modalities=list(cfg.modalities)).validate()
        for m in cfg.modalities:
            check_modality(m)
        absent = [m for m in cfg.modalities if m not in input_shapes]
        if absent:
            raise UserError(f"no input shape for modality {', '.join(absent)}; input_shapes has {sorted(input_shapes)}")
        self.modalities: list[str] = list(cfg.modalities)
        self.input_shapes: dict[str, tuple[int, ...]] = {m: tuple(int(x) for x in input_shapes[m])
                                                         for m in self.modalities}
        self.encoders = nn.ModuleDict({m: build_encoder(m, self.input_shapes[m], cfg.d_model, cfg)
                                       for m in self.modalities})
        if "convlstm" in self.encoders:
            cfg.convlstm_arch = dict(self.encoders["convlstm"].arch)
        self.cfg = cfg

    # -- inputs -------------------------------------------------------------------------
    def check_inputs(self, inputs: dict[str, Tensor], present: Tensor | None) -> tuple[dict[str, Tensor], Tensor]:
        """Validate shapes; fill absent keys of wholly missing modalities with zeros; default ``present``."""
        m_count = len(self.modalities)
        batch = None
        if present is not None:
            batch = present.shape[0]
        else:
            for m in self.modalities:
                if m in inputs:
                    batch = inputs[m].shape[0]
                    break
        if batch is None:
            raise UserError(f"no inputs given; the model expects {', '.join(self.modalities)}")
        device = next((inputs[m].device for m in self.modalities if m in inputs), None)
        if present is None:
            present = torch.ones(batch, m_count, dtype=torch.bool, device=device)
        if present.dim() != 2 or present.shape[1] != m_count:
            raise UserError(f"present must be [batch, {m_count}] (one column per modality, in the order "
                            f"{self.modalities}), got {tuple(present.shape)}")
        present = present.bool()
        out: dict[str, Tensor] = {}
        for j, m in enumerate(self.modalities):
            shape = self.input_shapes[m]
            x = inputs.get(m)
            if x is None:
                if bool(present[:, j].any()):
                    raise UserError(f"input {m!r} is missing but present[:, {j}] marks it present for some samples")
                x = torch.zeros((batch, *shape), dtype=check_modality(m).dtype, device=present.device)
            if x.shape[0] != batch or tuple(x.shape[1:]) != shape:
                raise UserError(f"input {m!r} has shape {tuple(x.shape)}, the model expects [batch={batch}, "
                                f"{', '.join(map(str, shape))}]; were the features extracted with other settings?")
            out[m] = x
        return out, present

    def encode(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Tokens ``[B, T_m, d_model]`` of every modality."""
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    @torch.no_grad()
    def fit_input_stats(self, batches: Iterable[tuple[dict[str, Tensor], Tensor]]) -> list[str]:
        """Fit the encoders' input standardisation on training batches ``(inputs, present)``.

        Only present samples count. Call it once, on the training split, before training;
        the statistics are buffers, saved and restored with the model. Returns the
        modalities whose statistics were fitted. One ``(inputs, present)`` pair works too.
        """
        if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], dict):
            batches = [batches]
        std = {m: [s for s in self.encoders[m].modules() if isinstance(s, InputStandardizer)] for m in self.modalities}
        for ss in std.values():
            for s in ss:
                s.start()
        for inputs, present in batches:
            inputs, present = self.check_inputs(inputs, present)
            for j, m in enumerate(self.modalities):
                if std[m]:
                    x = inputs[m][present[:, j]]
                    for s in std[m]:
                        s.update(x)
        return [m for m in self.modalities if std[m] and all([s.finish() for s in std[m]])]

    # -- persistence ----------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """``{"kind", "config", "input_shapes", "model"}``: plain data, rebuilt by ``models.load_model``."""
        return {"kind": self.kind, "config": dataclasses.asdict(self.cfg),
                "input_shapes": {m: list(s) for m, s in self.input_shapes.items()}, "model": self.state_dict()}

    def missing_token_fill(self, tokens: Tensor, present: Tensor, missing: Tensor) -> Tensor:
        """``tokens [B, M, d]`` with absent modalities' rows replaced by their learned ``missing [M, d]`` token."""
        return torch.where(present[..., None], tokens, missing.unsqueeze(0).to(tokens.dtype))


class FusionModel(MultimodalModel):
    """The co-attention fusion model; ``forward(inputs, present) -> FusionOutput``."""

    kind = "coattention"

    def __init__(self, cfg: FusionConfig, input_shapes: dict[str, tuple]):
        super().__init__(cfg, input_shapes)
        c, m_count = self.cfg, len(self.modalities)
        self.modality_blocks = nn.ModuleDict({m: ModalityTransformer(c.d_model, c.heads, c.layers, c.ff_mult, c.dropout)
                                              for m in self.modalities})
        self.missing = nn.Parameter(torch.randn(m_count, c.d_model) * 0.02)
        if c.fusion == "stacked":
            self.coattention = nn.ModuleList(AttentionBlock(c.d_model, c.heads, c.ff_mult, c.dropout)
                                             for _ in range(c.coattention_layers))
        else:
            self.guided = nn.ModuleList(
                nn.ModuleDict({m: AttentionBlock(c.d_model, c.heads, c.ff_mult, c.dropout) for m in self.modalities})
                for _ in range(c.coattention_layers))
        self.head = ScoreHead(m_count * c.d_model, c.head_hidden, c.dropout)
        self.residual = c.residual if c.residual in self.modalities else ""
        if self.residual:
            if self.input_shapes[self.residual] != (1,):
                raise UserError(f"residual: {self.residual!r} must be one score per video, "
                                f"got input shape {self.input_shapes[self.residual]}")
            last = self.head.net[-1] if isinstance(self.head.net, nn.Sequential) else self.head.net
            nn.init.zeros_(last.weight)   # start exactly at the score being corrected
            nn.init.zeros_(last.bias)

    def modality_tokens(self, inputs: dict[str, Tensor], present: Tensor) -> Tensor:
        """Step 1: ``z [B, M, d]`` (missing modalities already replaced by their missing token)."""
        tokens = self.encode(inputs)
        z = torch.stack([self.modality_blocks[m](tokens[m]) for m in self.modalities], dim=1)
        return self.missing_token_fill(z, present, self.missing)

    def forward(self, inputs: dict[str, Tensor], present: Tensor | None = None) -> FusionOutput:
        inputs, present = self.check_inputs(inputs, present)
        z = self.modality_tokens(inputs, present)
        if self.cfg.fusion == "stacked":
            contributions = modality_contributions(self.coattention[0].attn.scores(z, z), present)
            for block in self.coattention:
                z = self.missing_token_fill(block(z, allowed=present)[0], present, self.missing)
        else:
            contributions = modality_contributions(self._guided_scores(z), present, exclude_self=True)
            for layer in self.guided:
                z = self.missing_token_fill(self._guided_layer(layer, z, present), present, self.missing)
        logits = self.head(z.flatten(1))
        if self.residual:   # the fused tokens correct the stacked score (clamped into (0, 1) for its logit)
            logits = logits + torch.logit(inputs[self.residual][:, 0].float().clamp(RESIDUAL_CLAMP, 1 - RESIDUAL_CLAMP))
        return FusionOutput(torch.sigmoid(logits), logits, contributions)

    def _guided_layer(self, layer: nn.ModuleDict, z: Tensor, present: Tensor) -> Tensor:
        not_self = ~torch.eye(len(self.modalities), dtype=torch.bool, device=z.device)
        outs = [layer[m](z[:, j:j + 1], context=z, allowed=present & not_self[j])[0]
                for j, m in enumerate(self.modalities)]
        return torch.cat(outs, dim=1)

    def _guided_scores(self, z: Tensor) -> Tensor:
        first = self.guided[0]
        return torch.cat([first[m].attn.scores(z[:, j:j + 1], z) for j, m in enumerate(self.modalities)], dim=2)
