"""Pretrain the song-video GAT by link prediction.

Splits the (video, uses, song) links 80/10/10 with RandomLinkSplit (reverse links split
alongside; 40% of training links supervise and the rest pass messages, so no link is
scored on a graph that contains it), trains with fresh negatives every epoch, stops
early on validation AUC and reports test AUC/AP/MSE next to the song-degree baseline,
plus MRR/hits@10 of ranking every song for a test video.

Negatives (--negatives) default to corrupt-song: a scored video paired with a random
song. Each video uses one song, so "uniform" negatives (random video, random song) let
the model score whether a video already has a song in the message-passing graph, and
inflate AUC; "shuffle" re-pairs the scored links' own videos and songs, leaving only
the pairing to learn. metrics.json also splits test AUC by whether the song kept any
link in the message-passing graph (cold vs warm songs).

Writes RUNDIR/gat.pt (best weights + everything needed to rebuild the model),
checkpoint.pt (for --resume), metrics.json, test_edges.csv (every scored test pair),
config.toml and TensorBoard logs (RUNDIR/tb unless --logdir).

example:
  mdr-graph pretrain --graph out/graph --out runs/gat --epochs 200
  mdr-graph pretrain --graph out/graph --out runs/gat --resume      # continue after an interruption
  mdr-graph pretrain --graph big/graph --out runs/big --batch-components 500   # graphs too big for one batch
  torchrun --standalone --nproc_per_node=2 -m mdr_graph pretrain --graph G --out runs/ddp  # DDP, see docs/distributed.md
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from mdr_graph.config import load_toml, resolve
from mdr_graph.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graph", required=True, help="graph directory (holding graph.pt) from `mdr-graph build-graph`")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--config", help="TOML file; settings under [pretrain] (a run's config.toml works)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--logdir", help="TensorBoard directory (default RUNDIR/tb)")
    g = p.add_argument_group("model and training (defaults in mdr_graph.pretrain.model.GATConfig)")
    for flag, typ, text in (
        ("--epochs", int, "maximum epochs (default 200)"),
        ("--hidden", int, "embedding width, a multiple of --heads (default 256)"),
        ("--heads", int, "attention heads, concatenated (default 4)"),
        ("--layers", int, "GAT layers (default 2)"),
        ("--dropout", float, "dropout on hidden states and attention (default 0.2)"),
        ("--lr", float, "AdamW learning rate (default 1e-3)"),
        ("--weight-decay", float, "AdamW weight decay (default 1e-4)"),
        ("--patience", int, "early-stopping patience in epochs on validation AUC (default 20)"),
        ("--neg-ratio", float, "negative pairs per positive (default 0.5)"),
        ("--disjoint-train-ratio", float, "share of training links used only for supervision (default 0.4)"),
        ("--batch-components", int, "connected components (a song with its videos) per mini-batch; "
                                    "0 = full batch (default 0)"),
        ("--seed", int, "seed of the split, initialisation and negatives (default 0)"),
    ):
        g.add_argument(flag, type=typ, default=None, help=text)
    g.add_argument("--loss", choices=("bce", "mse"), default=None,
                   help="bce on logits (default) or mse on probabilities")
    g.add_argument("--decoder", choices=("dot", "mlp"), default=None, help="pair scorer (default dot)")
    g.add_argument("--negatives", choices=("corrupt-song", "uniform", "shuffle"), default=None,
                   help="negative pairs: the positives' videos with random songs (default), random videos and "
                        "songs, or the positives' videos and songs re-paired")
    g.add_argument("--song-degree-input", action=argparse.BooleanOptionalAction, default=None,
                   help="give songs log(1 + message-passing degree) as an input (default on)")
    g.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default cpu")
    g.add_argument("--bf16", action="store_const", const=True, default=None,
                   help="bf16 autocast of the training forward pass (for GPUs; also runs, slowly, on CPU)")


def main(args: argparse.Namespace) -> int:
    from mdr_graph.graph_build.graph import load_graph
    from mdr_graph.pretrain.model import GATConfig
    from mdr_graph.pretrain.trainer import CHECKPOINT_FILE, train

    out = Path(args.out)
    base = None
    if args.resume and (out / CHECKPOINT_FILE).exists():
        saved = out / "config.toml"
        if saved.exists():  # the run's own settings, then --config and flags on top (checked in train)
            base = load_toml(saved).get("pretrain", {})
    elif args.resume:
        print(f"no checkpoint in {out}; starting a new run")
    elif (out / CHECKPOINT_FILE).exists():
        raise UserError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    cfg = resolve(GATConfig, args, "pretrain", base=base).validate()
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    data = load_graph(args.graph)
    n_links = data["video", "uses", "song"].edge_index.size(1)
    if main_rank:
        print(f"graph {args.graph}: {data['video'].x.size(0)} videos, {data['song'].x.size(0)} songs, "
              f"{n_links} links")
    m = train(data, cfg, out, logdir=args.logdir, resume=args.resume, graph_source=str(Path(args.graph).resolve()))
    if not main_rank:
        return 0
    summary = {k: m[k] for k in ("val_auc", "val_ap", "test_auc", "test_ap", "test_mse", "degree_baseline_auc",
                                 "test_mrr", "degree_baseline_mrr", "epochs", "best_epoch", "seconds_per_epoch",
                                 "world_size")}
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}, indent=2))
    if not m["beats_degree_baseline"]:
        print("note: the GAT does not beat the song-degree baseline on the test links")
    print(f"wrote {out / 'gat.pt'}, {out / 'metrics.json'}, {out / 'test_edges.csv'}")
    return 0
