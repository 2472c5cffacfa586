"""Settings of a fusion-model training run, and its two presets.

Precedence: dataclass defaults < ``--preset`` < ``--config FILE.toml`` < explicit flags.
The resolved settings are saved as ``RUNDIR/config.toml``; passing that file back
with ``--config`` reproduces the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mdr_graph.fusion_config import FusionConfig
from mdr_graph.pretrain.config import DEFAULT_NETWORK_EMBEDDING
from mdr_graph.splits import SplitConfig
from mdr_graph.train.label_features import LabelFeatureConfig

# `cpu` is the dataclass defaults below (trains in minutes on two cores); `reference` is the
# published VAN setting.
PRESETS: dict[str, dict] = {
    "cpu": {},
    "reference": dict(d_model=1024, heads=4, layers=1, patch=32, lr=5e-6, batch_size=256, epochs=100, patience=10),
}

_model = FusionConfig()   # every model knob's one default


@dataclass
class TrainConfig:
    # inputs (paths are saved so `evaluate` and `predict` can rebuild the inputs)
    graph: str = ""
    features: str = ""
    gat: str = ""
    convlstm: str = ""
    modalities: list[str] = field(default_factory=lambda: list(_model.modalities))
    # model (mdr_graph.fusion_config.FusionConfig: each knob's meaning and its one default)
    model: str = "coattention"          # mdr_graph.models.KINDS
    fusion: str = _model.fusion
    preset: str = "cpu"
    d_model: int = _model.d_model
    heads: int = _model.heads
    layers: int = _model.layers
    dropout: float = _model.dropout
    patch: int = _model.patch
    positional_encoding: bool = _model.positional_encoding
    text_dim: int = _model.text_dim
    text_features: str = _model.text_features
    coattention_layers: int = _model.coattention_layers
    ff_mult: int = _model.ff_mult
    vit_layers: int = _model.vit_layers
    audio_hidden: int = _model.audio_hidden
    audio_chunks: int = _model.audio_chunks
    meta_hidden: int = _model.meta_hidden
    head_hidden: int = _model.head_hidden
    # the label-aware `labels` modality and the text ridge (fitted on train, out-of-fold for its rows)
    oof_folds: int = LabelFeatureConfig.folds
    label_smoothing: float = LabelFeatureConfig.smoothing
    label_recency_days: float = LabelFeatureConfig.recency_days
    label_max_hashtag_df: float = LabelFeatureConfig.max_hashtag_df
    residual: str = _model.residual     # coattention corrects this modality's score (e.g. gbdt) instead of predicting
    fitted_cache: str = ""              # directory caching those inputs across runs of one split (compare sets it)
    finetune_gat: bool = False
    # What the network modality sees (mdr_graph.pretrain.embed): "neighbours" (mean GAT embedding of the
    # video's song, creator and hashtags per relation), "song" (its song's, as in VAN) or "video" (its
    # own node output, which mixes in the meta modality's inputs). Entities see training videos only.
    network_embedding: str = DEFAULT_NETWORK_EMBEDDING
    # data
    split: str = SplitConfig.kind       # mdr_graph.splits.KINDS; with seed and split_fractions: SplitConfig.of(cfg)
    split_fractions: list[float] = field(default_factory=lambda: list(SplitConfig.fractions))
    # optimisation
    loss: str = "mse"                   # mdr_graph.train.loop.LOSSES
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 60
    patience: int = 10
    seed: int = SplitConfig.seed
    num_workers: int = 0
    threads: int = 0                    # torch CPU threads; 0 = torch's default. On 2 shared cores, 1 is often fastest
    # hardware
    device: str = "cpu"                 # cpu | cuda
    bf16: bool = False                  # bf16 autocast of forward passes (for GPUs; tested on CPU)
