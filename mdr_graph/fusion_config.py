"""The fusion model's settings: one dataclass, the single default of every model knob.

Kept free of torch so that ``train``'s and ``compare``'s settings (and their ``--help``)
can take their defaults from here. ``FusionConfig()`` is the model that ``mdr-graph train``
builds with no flags (``tests/test_fusion_config.py`` checks it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mdr_graph.config import field_default
from mdr_graph.errors import UserError

FUSIONS = ("stacked", "guided")
RESIDUAL_CLAMP = 1e-3   # a corrected score is clamped into [c, 1 - c] before its logit
TEXT_FEATURES = ("ridge", "hashed")   # what the text modality reads (see mdr_graph.modalities)


@dataclass
class FusionConfig:
    """Settings of the fusion model and of the baselines built from the same encoders."""

    # Modalities in model order (the order of ``present``'s columns and of ``contributions``).
    modalities: list[str] = field(default_factory=lambda: ["network", "meta"])
    d_model: int = 64             # token width everywhere after the encoders
    heads: int = 4                # attention heads (d_model must be divisible by heads)
    layers: int = 1               # per-modality Transformer blocks (step 1); 0 = just pool the encoder tokens
    dropout: float = 0.1
    fusion: str = "stacked"       # "stacked" co-attention or "guided" co-attention
    patch: int = 16               # ViT patch size P (must divide the frame size)
    positional_encoding: bool = True   # ViT hierarchical positional encoding (off = ablation)
    text_dim: int = 2048          # hashed bag-of-words buckets (the hashed text input's width)
    text_features: str = "ridge"  # ridge: the out-of-fold text ridge's score | hashed: a Linear on the hashed counts
    # Stacking with a residual: the co-attention model corrects this modality's score (a prediction in
    # target units: the stacked gbdt's) instead of predicting from scratch: logit = logit(score) + head.
    # The head starts at zero, and that start is a candidate for early stopping (train/loop.py), so
    # a correction is kept only if it improves validation. "" predicts from scratch; a name not among
    # the modalities is ignored (so without `gbdt`, every model predicts from scratch). The default
    # since the real-data runs: see docs/real-data.md.
    residual: str = "gbdt"
    convlstm_path: str | None = None   # convlstm.pt from `mdr-graph pretrain-visual` (frozen encoder)
    coattention_layers: int = 1   # fusion layers (stacked co-attention, or guided cross-attention)
    ff_mult: int = 2              # FC width = ff_mult * d_model (0 = a single Linear, literally "FC")
    vit_layers: int = 1           # Transformer layers inside the ViT before the per-modality block
    audio_hidden: int = 256       # Audio-MLP bottleneck, used when narrower than d_model (else one Linear)
    audio_chunks: int = 1         # audio tokens: time cut into this many flattened chunks
    meta_hidden: int = 128        # hidden width of the metadata and labels MLPs
    head_hidden: int = 128        # hidden width of the final FC (0 = a single Linear)
    # Architecture of the frozen ConvLSTM encoder. Filled in from convlstm_path when a
    # model is built, so a saved model carries it and rebuilds without the file. Set
    # without convlstm_path it gives a randomly initialised frozen encoder (ablation).
    convlstm_arch: dict[str, int] | None = None

    def validate(self) -> "FusionConfig":
        """The settings on their own; the modality names are checked against the registry by the model
        (``fusion.py``), since the registry imports the encoders, which read their defaults here."""
        mods = list(self.modalities)
        if not mods:
            raise UserError("the fusion model needs at least one modality")
        if len(set(mods)) != len(mods):
            raise UserError(f"modalities must not repeat, got {mods}")
        if self.fusion not in FUSIONS:
            raise UserError(f"unknown fusion {self.fusion!r}; choose from {', '.join(FUSIONS)}")
        if self.text_features not in TEXT_FEATURES:
            raise UserError(f"unknown text_features {self.text_features!r}; choose from {', '.join(TEXT_FEATURES)}")
        if self.d_model <= 0 or self.heads <= 0 or self.d_model % self.heads:
            raise UserError(f"d_model ({self.d_model}) must be a positive multiple of heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("layers", "coattention_layers", "ff_mult", "vit_layers", "audio_hidden", "head_hidden"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.coattention_layers < 1:
            raise UserError("coattention_layers must be >= 1 (the fusion needs at least one layer)")
        return self


KNOBS = tuple(f.name for f in dataclasses.fields(FusionConfig) if f.name not in ("convlstm_path", "convlstm_arch"))


def knob(cfg: Any, name: str) -> Any:
    """``cfg.name``, or FusionConfig's default when ``cfg`` lacks it or holds None (one default per knob)."""
    value = getattr(cfg, name, None)
    return field_default(FusionConfig, name) if value is None else value


def fusion_config(settings: Any) -> FusionConfig:
    """The model's own config from a run's settings (a ``TrainConfig``), taken field by field by name.

    The run's ``convlstm`` path is the model's ``convlstm_path``.
    """
    values = {k: getattr(settings, k) for k in KNOBS if hasattr(settings, k)}
    return FusionConfig(**values, convlstm_path=getattr(settings, "convlstm", None) or None)
