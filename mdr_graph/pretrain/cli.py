"""Pretrain the heterogeneous GAT by link prediction on every relation of the graph.

The graph's relations (video uses song, video posted_by creator, video tagged hashtag;
whichever `build-graph --nodes` built) are each split 80/10/10 by one RandomLinkSplit
(reverse links split alongside; 40% of training links supervise and the rest pass
messages, so no link is scored on a graph that contains it). The GAT (HeteroConv of
GATConv) trains on all relations at once with fresh negatives every step, stops early on
the mean validation AUC and reports, per relation, test AUC/AP/MSE next to an entity-degree
baseline taken in its better direction (chosen on validation), plus MRR/hits@10 of
ranking every entity for a test video (full batch only).

Negatives (--negatives) default to corrupt-song: a scored video paired with a random
entity of the relation's type (song, creator or hashtag). A video has one song and one
creator, so "uniform" negatives (random video, random entity) let the model score whether
a video already has a link in the message-passing graph, and inflate AUC; "shuffle"
re-pairs the scored links' own videos and entities, leaving only the pairing to learn.
metrics.json also splits each relation's test AUC by whether the entity kept any link
in the message-passing graph (cold vs warm).

Writes RUNDIR/gat.pt (best weights + everything needed to rebuild the model),
checkpoint.pt (for --resume), metrics.json, test_edges.csv (every scored test pair),
config.toml and TensorBoard logs (RUNDIR/tb unless --logdir).

example:
  mdr-graph pretrain --graph out/graph --out runs/gat --epochs 200
  mdr-graph pretrain --graph out/graph --out runs/gat --resume      # continue after an interruption
  mdr-graph pretrain --graph big/graph --out runs/big --batch-edges 50000   # graphs too big for one batch
  torchrun --standalone --nproc_per_node=2 -m mdr_graph pretrain --graph G --out runs/ddp  # DDP, see docs/distributed.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from mdr_graph.config import DEVICES, load_toml, resolve, show_defaults
from mdr_graph.errors import UserError
from mdr_graph.pretrain.config import DECODERS, LOSSES, NEGATIVES, GATConfig, config_from_dict


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graph", required=True, help="graph directory (holding graph.pt) from `mdr-graph build-graph`")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--config", help="TOML file; settings under [pretrain] (a run's config.toml works)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--logdir", help="TensorBoard directory (default RUNDIR/tb)")
    g = p.add_argument_group("model and training (defaults from mdr_graph.pretrain.config.GATConfig)")
    for flag, typ, text in (
        ("--epochs", int, "maximum epochs"),
        ("--hidden", int, "embedding width, a multiple of --heads"),
        ("--heads", int, "attention heads, concatenated"),
        ("--layers", int, "GAT layers"),
        ("--dropout", float, "dropout on hidden states and attention"),
        ("--lr", float, "AdamW learning rate"),
        ("--weight-decay", float, "AdamW weight decay"),
        ("--patience", int, "early-stopping patience in epochs on validation AUC"),
        ("--neg-ratio", float, "negative pairs per positive"),
        ("--disjoint-train-ratio", float, "share of training links used only for supervision"),
        ("--batch-edges", int, "supervision links per step, each step on the exact 2-hop subgraph of its "
                               "pairs; 0 = full batch"),
        ("--seed", int, "seed of the split, initialisation and negatives"),
    ):
        g.add_argument(flag, type=typ, default=None, help=text)
    g.add_argument("--loss", choices=LOSSES, default=None, help="bce on logits or mse on probabilities")
    g.add_argument("--decoder", choices=DECODERS, default=None, help="pair scorer")
    g.add_argument("--negatives", choices=NEGATIVES, default=None,
                   help="negative pairs: the positives' videos with random entities, random "
                                "videos and entities, or the positives' videos and entities re-paired")
    g.add_argument("--degree-input", action=argparse.BooleanOptionalAction, default=None,
                   help="give songs, creators and hashtags log(1 + message-passing degree) "
                                "as an input")
    g.add_argument("--device", choices=DEVICES, default=None, help="where to train")
    g.add_argument("--bf16", action="store_const", const=True, default=None,
                   help="bf16 autocast of the training forward pass (for GPUs; also runs, slowly, "
                                "on CPU)")
    show_defaults(p, GATConfig)


def main(args: argparse.Namespace) -> int:
    from mdr_graph.graph_build.graph import load_graph
    from mdr_graph.pretrain.trainer import train
    from mdr_graph.trainloop import CHECKPOINT_FILE

    out = Path(args.out)
    base = None
    if args.resume and (out / CHECKPOINT_FILE).exists():
        saved = out / "config.toml"
        if saved.exists():  # the run's own settings, then --config and flags on top (checked in train)
            base = dataclasses.asdict(config_from_dict(load_toml(saved).get("pretrain", {})))
    elif args.resume:
        print(f"no checkpoint in {out}; starting a new run")
    elif (out / CHECKPOINT_FILE).exists():
        raise UserError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    cfg = resolve(GATConfig, args, "pretrain", base=base).validate()
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    data = load_graph(args.graph)
    if main_rank:
        nodes = ", ".join(f"{data[t].num_nodes} {t}s" for t in data.node_types)
        links = ", ".join(f"{data[et].edge_index.size(1)} {et[1]}" for et in data.edge_types
                          if not et[1].startswith("rev_"))
        print(f"graph {args.graph}: {nodes}; links: {links}")
    m = train(data, cfg, out, logdir=args.logdir, resume=args.resume, graph_source=str(Path(args.graph).resolve()))
    if not main_rank:
        return 0
    summary = {k: m[k] for k in ("val_auc", "val_ap", "test_auc", "test_ap", "test_mse", "degree_baseline_auc",
                                 "epochs", "best_epoch", "seconds_per_epoch", "world_size")}
    summary["relations"] = {r: {k: v for k, v in rm.items() if k in (
        "test_auc", "test_ap", "degree_baseline_auc", "degree_baseline_direction", "test_mrr")}
        for r, rm in m["relations"].items()}
    print(json.dumps(_rounded(summary), indent=2))
    for r, rm in m["relations"].items():
        if not rm["beats_degree_baseline"]:
            print(f"note: on {r!r} links the GAT does not beat the degree baseline")
    print(f"wrote {out / 'gat.pt'}, {out / 'metrics.json'}, {out / 'test_edges.csv'}")
    return 0


def _rounded(v):
    if isinstance(v, float):
        return round(v, 4)
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    return v
