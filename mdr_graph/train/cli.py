"""Train the co-attention fusion model on any set of modalities, tracked in TensorBoard.

Example:
  mdr-graph train --graph G --features F --gat P/gat.pt --modalities network,meta,mfcc,vit --out runs/r1
  tensorboard --logdir runs/r1/tb

Writes RUNDIR/{model.pt, checkpoint.pt, metrics.json, predictions.csv, config.toml,
splits.json, normalization.json, tb/}. Settings: defaults < --preset < --config < flags.
Under `torchrun --nproc_per_node=N -m mdr_graph train ...` it trains with DDP.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mdr_graph.config import DEVICES, load_toml, resolve, show_defaults
from mdr_graph.errors import UserError
from mdr_graph.fusion_config import FUSIONS, TEXT_FEATURES
from mdr_graph.modalities import names, parse_modalities
from mdr_graph.pretrain.config import NETWORK_EMBEDDINGS
from mdr_graph.splits import add_split_arguments
from mdr_graph.train.config import PRESETS, TrainConfig


def _bool(text: str) -> bool:
    return str(text).lower() in ("1", "true", "yes", "on")


def add_training_arguments(p) -> None:
    """The model and optimisation flags that `train` and `compare` share (their defaults: TrainConfig's)."""
    from mdr_graph.train.loop import LOSSES

    p.add_argument("--loss", choices=list(LOSSES))
    p.add_argument("--epochs", type=int)
    p.add_argument("--patience", type=int, help="early-stopping patience on validation Spearman")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--d-model", dest="d_model", type=int, help="token width after the encoders")
    p.add_argument("--heads", type=int, help="attention heads (must divide --d-model)")
    p.add_argument("--layers", type=int, help="per-modality Transformer blocks")
    p.add_argument("--coattention-layers", dest="coattention_layers", type=int, help="fusion layers")
    p.add_argument("--dropout", type=float)
    p.add_argument("--patch", type=int, help="ViT patch size in pixels")
    p.add_argument("--positional-encoding", dest="positional_encoding", type=_bool, metavar="true|false",
                   help="the ViT's hierarchical positional encoding")
    p.add_argument("--text-dim", dest="text_dim", type=int, help="hashed bag-of-words size (--text-features hashed)")
    p.add_argument("--text-features", dest="text_features", choices=TEXT_FEATURES,
                   help="what the text modality reads: the out-of-fold score of a ridge on hashed word and "
                        "character n-grams, or the hashed word counts themselves")
    p.add_argument("--residual", metavar="MODALITY",
                   help="stacking with a residual: coattention corrects this one-score modality's score (the "
                        "stacked gbdt) instead of predicting from scratch, and keeps no correction unless it "
                        "improves validation; used only when the modality is in --modalities; '' turns it off")
    p.add_argument("--oof-folds", dest="oof_folds", type=int, help="folds of the out-of-fold label-derived inputs")
    p.add_argument("--network-embedding", dest="network_embedding", choices=NETWORK_EMBEDDINGS,
                   help="what the network modality sees: the mean GAT embedding of the video's song, creator and "
                        "hashtags (neighbours), its song's (song, VAN) or its own node's (video, mixes in meta)")
    # Every other FusionConfig knob is settable from TOML ([train] section): ff_mult, vit_layers,
    # audio_hidden, audio_chunks, meta_hidden, head_hidden.


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mdr_graph.models import KINDS

    p.add_argument("--graph", help="GRAPHDIR from `mdr-graph build-graph`")
    p.add_argument("--features", help="FEATDIR from `mdr-graph extract` (needed by media modalities)")
    p.add_argument("--gat", help="RUNDIR/gat.pt from `mdr-graph pretrain` (needed by the network modality)")
    p.add_argument("--convlstm", help="RUNDIR/convlstm.pt from `mdr-graph pretrain-visual` (convlstm modality)")
    p.add_argument("--modalities", help="comma-separated, from: " + ",".join(names()))
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--config", help="TOML file with a [train] section (e.g. a previous run's config.toml)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="cpu: the values shown here, minutes on 2 cores; "
                   "reference: " + ", ".join(f"{k} {v}" for k, v in PRESETS["reference"].items()))
    add_split_arguments(p)
    p.add_argument("--model", choices=KINDS)
    p.add_argument("--fusion", choices=FUSIONS, help="co-attention variant")
    add_training_arguments(p)
    p.add_argument("--finetune-gat", dest="finetune_gat", action="store_const", const=True,
                   help="train the GAT with the fusion model instead of using its frozen embeddings, on the "
                        "same leak-free graph views (a full-graph GAT pass per step; each batch is drawn "
                        "from one fold)")
    p.add_argument("--num-workers", dest="num_workers", type=int, help="DataLoader worker processes")
    p.add_argument("--threads", type=int, help="torch CPU threads (0 = as many as torch picks; small models train "
                   "fastest on 1)")
    p.add_argument("--device", choices=DEVICES)
    p.add_argument("--bf16", action="store_const", const=True,
                   help="bf16 autocast of forward passes (for GPUs; also runs, slowly, on CPU)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--logdir", help="TensorBoard directory (default RUNDIR/tb)")
    show_defaults(p, TrainConfig)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """defaults < preset < --config (or the run's own config.toml on --resume) < explicit flags."""
    own = Path(args.out) / "config.toml"
    from_run = args.resume and not args.config and own.exists()
    toml = load_toml(args.config or own).get("train", {}) if (args.config or from_run) else {}
    preset = args.preset or toml.get("preset") or TrainConfig.preset
    base = {**PRESETS[preset], "preset": preset, **(toml if from_run else {})}
    cfg = resolve(TrainConfig, args, "train", base=base)  # reads --config's [train] itself
    for k in ("graph", "features", "gat", "convlstm"):
        if getattr(args, k, None):
            setattr(cfg, k, str(Path(getattr(args, k)).resolve()))
    if not cfg.graph:
        raise UserError("--graph GRAPHDIR is required (or a --config with train.graph)")
    cfg.modalities = parse_modalities(cfg.modalities)
    if cfg.finetune_gat and "network" not in cfg.modalities:
        raise UserError("--finetune-gat needs the 'network' modality")
    return cfg


def main(args: argparse.Namespace) -> int:
    from mdr_graph.train.loop import fit

    cfg = resolve_config(args)
    metrics = fit(cfg, args.out, resume=args.resume, logdir=args.logdir)
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        keys = ("val_spearman", "test_spearman", "test_pearson", "test_mse", "test_mae", "epochs", "best_epoch",
                "params", "seconds_per_epoch")
        print(json.dumps({k: metrics[k] for k in keys}, indent=2))
        print("contributions (test):", json.dumps({k: round(v, 3) for k, v in metrics["contributions"].items()}))
        print(f"run: {args.out}   tensorboard --logdir {args.logdir or Path(args.out) / 'tb'}", file=sys.stderr)
    return 0
