"""Settings of a fusion-model training run, and its two presets.

Precedence: dataclass defaults < ``--preset`` < ``--config FILE.toml`` < explicit flags.
The resolved settings are saved as ``RUNDIR/config.toml``; passing that file back
with ``--config`` reproduces the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mdr_graph.splits import SplitConfig
from mdr_graph.train.label_features import LabelFeatureConfig

TEXT_FEATURES = ("ridge", "hashed")

# `reference` is the published VAN setting; `cpu` trains in minutes on two cores.
PRESETS: dict[str, dict] = {
    "cpu": dict(d_model=64, heads=4, layers=1, patch=16, lr=1e-3, batch_size=32, epochs=60, patience=10),
    "reference": dict(d_model=1024, heads=4, layers=1, patch=32, lr=5e-6, batch_size=256, epochs=100, patience=10),
}


@dataclass
class TrainConfig:
    # inputs (paths are saved so `evaluate` and `predict` can rebuild the inputs)
    graph: str = ""
    features: str = ""
    gat: str = ""
    convlstm: str = ""
    modalities: list[str] = field(default_factory=lambda: ["network", "meta"])
    # model
    model: str = "coattention"          # coattention | concat-mlp | single-transformer | late-fusion
    fusion: str = "stacked"             # stacked | guided (co-attention variant)
    preset: str = "cpu"
    d_model: int = 64
    heads: int = 4
    layers: int = 1
    dropout: float = 0.1
    patch: int = 16
    positional_encoding: bool = True
    text_dim: int = 2048
    text_features: str = "ridge"       # ridge: the out-of-fold text ridge's score | hashed: raw hashed counts
    # the label-aware `labels` modality and the text ridge (fitted on train, out-of-fold for its rows)
    oof_folds: int = LabelFeatureConfig.folds
    label_smoothing: float = LabelFeatureConfig.smoothing
    label_recency_days: float = LabelFeatureConfig.recency_days
    label_max_hashtag_df: float = LabelFeatureConfig.max_hashtag_df
    residual: str = ""                  # coattention corrects this modality's score (e.g. gbdt) instead of predicting (fusion.py)
    fitted_cache: str = ""              # directory caching those inputs across runs of one split (compare sets it)
    finetune_gat: bool = False
    # What the network modality sees (mdr_graph.pretrain.embed): "neighbours" (mean GAT embedding of the
    # video's song, creator and hashtags per relation), "song" (its song's, as in VAN) or "video" (its
    # own node output, which mixes in the meta modality's inputs). Entities see training videos only.
    network_embedding: str = "neighbours"
    # data
    split: str = SplitConfig.kind       # mdr_graph.splits.KINDS; with seed and split_fractions: SplitConfig.of(cfg)
    split_fractions: list[float] = field(default_factory=lambda: list(SplitConfig.fractions))
    # optimisation
    loss: str = "mse"                   # mse | mae | huber
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
