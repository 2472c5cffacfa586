"""Link-prediction pretraining loop: split, train, validate, stop early, checkpoint, resume, report.

Every relation of the graph (``uses``, ``posted_by``, ``tagged``) is pretrained at once:
one leak-free split per relation, one decoder per relation, one loss summed over every
scored pair. An epoch visits every supervision link once, in batches of ``batch_edges``
links (0 = all in one full-batch step); a step scores its links and freshly drawn
negatives on the training message-passing graph, computed on the exact k-hop subgraph
around them (``batching.py``). Validation scores fixed pairs on ``MP + SUP`` links; the
final test scores fixed pairs on ``MP + SUP + VAL`` links with the best validation
weights. Early stopping follows the mean validation AUC over the relations.

Under ``torchrun`` (see ``docs/distributed.md``) the link batches are dealt out across
ranks and the encoder and decoders train as one DistributedDataParallel module. Each
optimizer step is one batch per rank, and the loss is weighted so that the averaged
gradient is the mean over every scored pair of the step. Evaluation is sharded: rank
``r`` scores ``pairs[r::world]`` and the scores are gathered before any metric is
computed. Rank 0 alone writes files.

The epoch loop, early stopping, ``checkpoint.pt`` and ``--resume`` are the shared skeleton
of :mod:`mdr_graph.trainloop`; this module holds the link-prediction epoch and evaluation.

Files in RUNDIR: ``checkpoint.pt`` (last epoch: weights, optimizer, RNG states, early
stopping state; rewritten every epoch), ``gat.pt`` (best weights plus everything needed
to rebuild the model, format in :mod:`mdr_graph.pretrain.gat_file`), ``metrics.json``,
``test_edges.csv`` and ``config.toml``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from mdr_graph import distributed as ddp
from mdr_graph import trainloop
from mdr_graph.config import save_toml
from mdr_graph.errors import UserError
from mdr_graph.io import atomic_path, torch_load, torch_save, write_json
from mdr_graph.pretrain import metrics as M
from mdr_graph.pretrain.gat_file import GAT_FILE, gat_payload
from mdr_graph.pretrain.batching import khop_subgraph
from mdr_graph.pretrain.linksplit import EdgeSet, LinkSplit, fingerprint, negative_pools, sample_negatives, split_links
from mdr_graph.pretrain.config import GATConfig
from mdr_graph.pretrain.model import HeteroGAT, LinkDecoders, build_model, feature_stats
from mdr_graph.pretrain.parts import GraphParts, both_directions, graph_parts
from mdr_graph.runlog import peak_rss_mb, progress, set_seed, tensorboard_writer

# Settings a resumed run may change: they do not alter what was already computed.
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "device", "bf16"})
MRR_QUERIES = 1000  # test videos ranked against every entity of the relation for MRR / hits@k

__all__ = ["train", "graph_parts"]


class LinkModel(nn.Module):
    """Encoder and decoders as one module: the unit DDP wraps, so one all-reduce syncs both."""

    def __init__(self, encoder: HeteroGAT, decoders: LinkDecoders):
        super().__init__()
        self.encoder, self.decoders = encoder, decoders

    def forward(self, x: dict[str, Tensor], edges: dict, degrees: dict[str, Tensor],
                pairs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Logits of ``pairs`` (``{relation name: [2, n] local (video, entity) rows}``)."""
        z = self.encoder(x, edges, degrees)
        dst = {r[1]: r[2] for r in self.encoder.relations}
        return {rel: self.decoders(rel, z[dst[rel]][p[1]], z["video"][p[0]]) for rel, p in pairs.items()}


# ----------------------------------------------------------------------------- one forward over some pairs

def pairs_logits(model: LinkModel, parts: GraphParts, edges: dict, degrees: dict[str, Tensor],
                 pairs: dict[str, Tensor], full: bool, device: torch.device, bf16: bool = False) -> dict[str, Tensor]:
    """Logits of global ``pairs`` per relation, on the message-passing ``edges`` (both directions).

    ``full``: run on the whole graph; otherwise on the exact k-hop subgraph of the pairs' nodes.
    """
    enc = model.module.encoder if isinstance(model, nn.parallel.DistributedDataParallel) else model.encoder
    dst = {r[1]: r[2] for r in enc.relations}
    if full:
        x, e, deg, local = parts.x, edges, degrees, pairs
    else:
        seeds: dict[str, list[Tensor]] = {}
        for rel, p in pairs.items():
            seeds.setdefault("video", []).append(p[0])
            seeds.setdefault(dst[rel], []).append(p[1])
        sub = khop_subgraph(edges, parts.num_nodes, {t: torch.cat(v) for t, v in seeds.items()}, enc.num_layers)
        x = {t: parts.x[t][sub.nodes[t]] for t in parts.node_types}
        e = sub.edges
        deg = {t: d[sub.nodes[t]] for t, d in degrees.items()}
        local = {rel: torch.stack([sub.rows("video", p[0]), sub.rows(dst[rel], p[1])]) for rel, p in pairs.items()}
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model({t: v.to(device) for t, v in x.items()}, {k: v.to(device) for k, v in e.items()},
                    {t: d.to(device) for t, d in deg.items()}, {r: p.to(device) for r, p in local.items()})
    return {r: v.float() for r, v in out.items()}


@torch.no_grad()
def score_stage(model: LinkModel, parts: GraphParts, edges: dict, degrees: dict[str, Tensor],
                pairs: dict[str, Tensor], batch_edges: int, info: ddp.DistInfo, device: torch.device
                ) -> dict[str, Tensor]:
    """Every pair's logit, per relation; rank ``r`` scores ``pairs[r::world]`` in chunks, then all are gathered."""
    model.eval()
    rels = list(pairs)
    rel_of = torch.cat([torch.full((pairs[r].size(1),), k, dtype=torch.long) for k, r in enumerate(rels)])
    flat = torch.cat([pairs[r] for r in rels], dim=1)
    mine_idx = torch.arange(info.rank, flat.size(1), info.world_size)
    chunk = batch_edges if batch_edges > 0 else max(mine_idx.numel(), 1)
    out = torch.empty(mine_idx.numel())
    for start in range(0, mine_idx.numel(), chunk):
        idx = mine_idx[start:start + chunk]
        sel = {r: flat[:, idx[rel_of[idx] == k]] for k, r in enumerate(rels)}
        logits = pairs_logits(model, parts, edges, degrees, sel, batch_edges <= 0, device)
        pos = torch.arange(start, start + idx.numel())
        for k, r in enumerate(rels):
            out[pos[rel_of[idx] == k]] = logits[r].cpu()
    full = ddp.unstride(ddp.gather(out, info), flat.size(1)) if info.enabled else out
    return {r: full[rel_of == k] for k, r in enumerate(rels)}


# ----------------------------------------------------------------------------- resume checks

def _check_resumable(ck: dict, fingerprint: str, ckpt: Path, world_size: int) -> None:
    """What only the GAT's resume needs on top of the shared settings check."""
    if ck["world_size"] != world_size:
        raise UserError(f"{ckpt} was trained by {ck['world_size']} process(es) and this run has "
                        f"{world_size}: the link batches are dealt out per process, so resume with the "
                        "same --nproc_per_node (and --nnodes)")
    if ck.get("split_fingerprint") != fingerprint:
        raise UserError(f"{ckpt} was trained on a different graph or link split; resume with the same --graph "
                        "or start a new --out")


# ----------------------------------------------------------------------------- training

def message_graph(splits: dict[str, LinkSplit], parts: GraphParts, stage: str) -> dict:
    """Both directions of every relation's message-passing links for ``stage``."""
    return both_directions({r: splits[r[1]].message_edges(stage) for r in parts.relations})


def train(data: HeteroData, cfg: GATConfig, rundir: str | Path, *, logdir: str | Path | None = None,
          resume: bool = False, graph_source: str = "",
          on_epoch_end: Callable[[int, dict], None] | None = None) -> dict:
    """Pretrain the GAT on ``data`` by link prediction and write the run into ``rundir``.

    Returns the final metrics (also written to ``metrics.json``). ``on_epoch_end(epoch,
    record)`` is called after each epoch's checkpoint is written (hooks for callers and tests).
    """
    cfg.validate()
    rundir = Path(rundir)
    info = ddp.init_from_env(cfg.device)
    device = ddp.device_for(info, cfg.device)  # graph tensors stay on the CPU; batches move at the model boundary
    rundir.mkdir(parents=True, exist_ok=True)
    ckpt_path, gat_path = rundir / trainloop.CHECKPOINT_FILE, rundir / GAT_FILE
    if ckpt_path.exists() and not resume:
        raise UserError(f"{rundir} already holds a run ({ckpt_path.name}); pass --resume to continue it "
                        "or choose another --out")

    try:
        parts = graph_parts(data)
    except ValueError as e:
        raise UserError(f"cannot pretrain: {e}") from None
    splits = split_links(parts.edges, parts.num_nodes, val_ratio=cfg.val_ratio, test_ratio=cfg.test_ratio,
                         disjoint_train_ratio=cfg.disjoint_train_ratio, neg_ratio=cfg.neg_ratio,
                         negatives=cfg.negatives, seed=cfg.seed)
    fp = fingerprint(splits)
    train_mp = message_graph(splits, parts, "train")
    links = {r[1]: EdgeSet(parts.edges[r], parts.num_nodes[r[2]]) for r in parts.relations}

    set_seed(cfg.seed)
    stats = {t: feature_stats(parts.x[t]) for t in parts.node_types}
    encoder, decoders = build_model(parts.node_types, parts.relations, {t: parts.x[t].size(1) for t in parts.x},
                                    cfg, stats)
    model = LinkModel(encoder, decoders).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generators = {"negatives": torch.Generator().manual_seed(cfg.seed + 7919 + info.rank),  # per-rank negatives
                  "order": torch.Generator().manual_seed(cfg.seed + 104723)}  # the same batch order on every rank

    state = trainloop.TrainState(higher_is_better=True)  # early stopping on the mean validation AUC
    resumed = resume and ckpt_path.exists()
    if resumed:
        ck = trainloop.load_checkpoint(ckpt_path, "pretrain")
        _check_resumable(ck, fp, ckpt_path, info.world_size)
        trainloop.check_same_settings(ck, cfg, RESUMABLE_CHANGES, ckpt_path)
        state = trainloop.resume(ck, model, optimizer, ckpt_path, info.rank, generators)
        if info.is_main:
            print(f"resuming {rundir} after epoch {state.epoch} (best val AUC {state.best:.4f} "
                  f"at epoch {state.best_epoch})")
    train_model: nn.Module = model
    if info.enabled:
        # find_unused_parameters: a batch without links of one relation leaves its decoder unused.
        train_model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        if not resumed:
            torch.manual_seed(cfg.seed + info.rank)  # per-rank dropout; weights were broadcast from rank 0
    if info.is_main:
        save_toml(rundir / "config.toml", {"pretrain": cfg, "inputs": {"graph": graph_source},
                                           "run": {"world_size": info.world_size}})

    writer = tensorboard_writer(logdir or rundir / "tb") if info.is_main else None
    val_mp = message_graph(splits, parts, "val")
    val_deg = encoder.degrees(val_mp, parts.num_nodes)
    train_deg = encoder.degrees(train_mp, parts.num_nodes)
    val_pairs = {r: splits[r].pairs("val") for r in splits}

    def epoch_body(epoch: int) -> tuple[float, dict]:
        t0 = time.perf_counter()
        loss = _train_epoch(train_model, optimizer, parts, splits, train_mp, train_deg, links,
                            generators["negatives"], generators["order"], cfg, info, device)
        t1 = time.perf_counter()
        logits = score_stage(model, parts, val_mp, val_deg, {r: p for r, (p, _) in val_pairs.items()},
                             cfg.batch_edges, info, device)
        per = {r: M.link_metrics(val_pairs[r][1].numpy(), logits[r].numpy()) for r in splits}
        val = {k: float(np.mean([m[k] for m in per.values()])) for k in ("auc", "ap", "mse")}
        return val["auc"], {"loss": loss, "val_auc": val["auc"], "val_ap": val["ap"], "val_mse": val["mse"],
                            **{f"val_auc_{r}": m["auc"] for r, m in per.items()},
                            "train_s": t1 - t0, "val_s": time.perf_counter() - t1}

    def end_epoch(epoch: int, record: dict, improved: bool) -> None:
        rngs = ddp.gather(trainloop.rng_state(generators), info)  # each rank's generators, for --resume
        if info.is_main:
            if improved:
                val = {k: record[f"val_{k}"] for k in ("auc", "ap", "mse")}
                torch_save(gat_path, gat_payload(encoder, decoders, cfg, parts, {
                    "epoch": epoch, "val": val, "split_fingerprint": fp, "graph": graph_source,
                    "world_size": info.world_size}))
            trainloop.save_checkpoint(ckpt_path, model, optimizer, cfg, state, rngs, split_fingerprint=fp)
            _log_epoch(writer, epoch, record, optimizer)
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
        ddp.barrier(info)

    try:
        trainloop.run_epochs(epoch_body, end_epoch, state, cfg.epochs, cfg.patience, desc="pretrain",
                             show=info.is_main)
    finally:
        if writer is not None:
            writer.flush()
            writer.close()

    metrics = _finish(rundir, gat_path, cfg, parts, splits, state, graph_source, fp, info, device)
    ddp.cleanup(info)
    return metrics


def _train_epoch(model: nn.Module, optimizer, parts: GraphParts, splits: dict[str, LinkSplit], train_mp: dict,
                 train_deg: dict[str, Tensor], links: dict[str, EdgeSet], neg_gen: torch.Generator,
                 order_gen: torch.Generator, cfg: GATConfig, info: ddp.DistInfo, device: torch.device) -> float:
    """One pass over every supervision link in a fresh random order; returns the mean loss per pair (all ranks)."""
    model.train()
    rels = list(splits)
    sup = {r: splits[r].positives("train") for r in rels}
    rel_of = torch.cat([torch.full((sup[r].size(1),), k, dtype=torch.long) for k, r in enumerate(rels)])
    flat = torch.cat([sup[r] for r in rels], dim=1)
    n = flat.size(1)
    size = cfg.batch_edges if cfg.batch_edges > 0 else math.ceil(n / info.world_size)
    order = torch.randperm(n, generator=order_gen)
    batches = list(torch.split(order, max(size, 1)))
    steps = math.ceil(len(batches) / info.world_size)
    mine = [batches[b] if b < len(batches) else None for b in range(info.rank, steps * info.world_size,
                                                                       info.world_size)]
    dst = {r[1]: r[2] for r in parts.relations}
    full = cfg.batch_edges <= 0 and not info.enabled
    total, count = 0.0, 0
    for idx in (progress(mine, desc="batches", leave=False, disable=not info.is_main or None)
                if len(mine) >= 8 else mine):
        pairs: dict[str, Tensor] = {}
        labels: dict[str, Tensor] = {}
        for k, r in enumerate(rels):
            pos = flat[:, idx[rel_of[idx] == k]] if idx is not None else flat[:, :0]
            if pos.size(1) == 0:
                continue
            # Fresh negatives each step, tested against every real link of the relation.
            video_pool, dst_pool = negative_pools(cfg.negatives, pos, torch.arange(parts.num_nodes["video"]),
                                                  torch.arange(parts.num_nodes[dst[r]]))
            neg = sample_negatives(max(1, round(cfg.neg_ratio * pos.size(1))), video_pool, dst_pool, links[r],
                                   neg_gen)
            pairs[r] = torch.cat([pos, neg], dim=1)
            labels[r] = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))])
        n_pairs = sum(p.size(1) for p in pairs.values())
        if n_pairs == 0 and not info.enabled:
            continue
        if pairs:
            logits = pairs_logits(model, parts, train_mp, train_deg, pairs, full, device, cfg.bf16)
            loss_sum = sum(_loss(cfg.loss, logits[r], labels[r].to(device)) for r in pairs)
        else:  # no batch left on this rank: an empty step that still joins the all-reduce
            loss_sum = sum(p.sum() for p in model.parameters()) * 0.0
        # DDP averages gradients over ranks; scaling by world / (pairs on all ranks) makes the
        # step's gradient the mean over every pair scored in it (one process: the batch mean).
        n_step = int(ddp.all_reduce_sum(torch.tensor([n_pairs]), info, device).item())
        loss = loss_sum * (info.world_size / max(n_step, 1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss_sum.item())
        count += n_pairs
    if info.enabled:
        total, count = (sum(v) for v in zip(*ddp.gather((total, count), info)))
    return total / max(count, 1)


def _loss(kind: str, logits: Tensor, labels: Tensor) -> Tensor:
    if kind == "bce":
        return nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
    return nn.functional.mse_loss(torch.sigmoid(logits), labels, reduction="sum")


def _log_epoch(writer, epoch: int, record: dict, optimizer) -> None:
    writer.add_scalar("loss/train", record["loss"], epoch)
    for k, v in record.items():
        if k.startswith("val_"):
            writer.add_scalar(f"val/{k[4:]}", v, epoch)
    writer.add_scalar("lr", optimizer.param_groups[0]["lr"], epoch)
    writer.add_scalar("time/epoch_s", record["train_s"] + record["val_s"], epoch)


# ----------------------------------------------------------------------------- final evaluation

def degree_heuristic(train_degree: Tensor, val: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor]) -> dict:
    """Score a pair by its entity's training degree, in the direction that wins on validation.

    Usually popular entities get more links ("higher"); on star forests, where most songs have
    one video, a song with no training link is the likelier positive ("lower"). The direction is
    chosen on the validation pairs, never on the test pairs it is reported on.
    """
    v_pairs, v_labels = val
    higher = M.roc_auc(v_labels.numpy(), train_degree[v_pairs[1]].numpy())
    sign = -1.0 if higher < 0.5 else 1.0
    t_pairs, t_labels = test
    score = sign * train_degree[t_pairs[1]].numpy()
    return {"degree_baseline_auc": M.roc_auc(t_labels.numpy(), score),
            "degree_baseline_ap": M.average_precision(t_labels.numpy(), score),
            "degree_baseline_direction": "lower" if sign < 0 else "higher", "sign": sign}


def _finish(rundir: Path, gat_path: Path, cfg: GATConfig, parts: GraphParts, splits: dict[str, LinkSplit],
            state: trainloop.TrainState, graph_source: str, fp: str, info: ddp.DistInfo, device: torch.device
            ) -> dict:
    """Evaluate the best weights on every relation's test links; rank 0 writes metrics.json and test_edges.csv.

    Every rank returns the same metrics.
    """
    ddp.barrier(info)  # rank 0 wrote gat.pt; every rank reloads the best weights from it
    if not gat_path.exists():
        raise UserError(f"{gat_path} is missing: no epoch finished; re-run with --resume")
    best = torch_load(gat_path)
    encoder, decoders = build_model(parts.node_types, parts.relations, best["in_dims"], cfg)
    encoder.load_state_dict(best["encoder"])
    decoders.load_state_dict(best["decoder"])
    model = LinkModel(encoder, decoders).to(device)

    logits, pairs = {}, {}
    for stage in ("val", "test"):
        mp = message_graph(splits, parts, stage)
        pairs[stage] = {r: splits[r].pairs(stage) for r in splits}
        logits[stage] = score_stage(model, parts, mp, encoder.degrees(mp, parts.num_nodes),
                                    {r: p for r, (p, _) in pairs[stage].items()}, cfg.batch_edges, info, device)
    test_mp = message_graph(splits, parts, "test")
    full_z = None
    if cfg.batch_edges <= 0:  # every entity's embedding is at hand only in a full-graph pass
        with torch.no_grad():
            encoder.eval()
            full_z = {t: z.cpu() for t, z in encoder({t: v.to(device) for t, v in parts.x.items()},
                                                     {k: v.to(device) for k, v in test_mp.items()}).items()}
    peak = ddp.gather(peak_rss_mb(), info)
    if not info.is_main:  # the collective part is done; rank 0 summarises, writes and shares the result
        return ddp.broadcast_object(None, info)

    relations: dict[str, dict] = {}
    frames = []
    for r in parts.relations:
        name, dst = r[1], r[2]
        sp = splits[name]
        out: dict = {"node_type": dst, "links": sp.counts()}
        for stage in ("val", "test"):
            p, lab = pairs[stage][name]
            out.update({f"{stage}_{k}": v for k, v in M.link_metrics(lab.numpy(), logits[stage][name].numpy()).items()})
        train_degree = torch.bincount(sp.message_edges("val")[1], minlength=sp.num_dst).double()
        heur = degree_heuristic(train_degree, pairs["val"][name], pairs["test"][name])
        sign = heur.pop("sign")
        out.update(heur)
        out["beats_degree_baseline"] = bool(out["test_auc"] > out["degree_baseline_auc"])
        p, lab = pairs["test"][name]
        lg = logits["test"][name]
        mp_degree = torch.bincount(sp.message_edges("test")[1], minlength=sp.num_dst)
        pos = p[:, lab == 1]
        cold = mp_degree[pos[1]] == 0  # the entity kept no link in the graph the test links are scored on
        neg_logits = lg[lab == 0].numpy()
        for kind, mask in (("cold", cold), ("warm", ~cold)):
            y = np.r_[np.ones(int(mask.sum())), np.zeros(neg_logits.size)]
            out[f"test_auc_{kind}"] = M.roc_auc(y, np.r_[lg[lab == 1][mask].numpy(), neg_logits])
        out["test_cold_share"] = float(cold.double().mean()) if cold.numel() else float("nan")
        if full_z is not None:
            # "Which entity does this video link to?": rank every entity for a fixed sample of test links.
            g = torch.Generator().manual_seed(cfg.seed + 104729)
            q = pos[:, torch.randperm(pos.size(1), generator=g)[:MRR_QUERIES]]
            ranks = M.true_item_ranks(rank_all(decoders[name], full_z[dst], full_z["video"][q[0]]).numpy(),
                                      q[1].numpy())
            deg_ranks = M.true_item_ranks((sign * train_degree).unsqueeze(0).expand(q.size(1), sp.num_dst).numpy(),
                                          q[1].numpy())
            out.update({f"test_{k}": v for k, v in M.rank_summary(ranks).items()})
            out.update({f"degree_baseline_{k}": v for k, v in M.rank_summary(deg_ranks).items()})
            out["mrr_queries"] = int(q.size(1))
        relations[name] = out
        frames.append(pd.DataFrame({
            "relation": name,
            "video_id": np.asarray(parts.ids["video"], dtype=object)[p[0].numpy()],
            "node_id": np.asarray(parts.ids[dst], dtype=object)[p[1].numpy()],
            "label": lab.numpy().astype(np.int8),
            "score": torch.sigmoid(lg.double()).numpy(),
        }))
    with atomic_path(rundir / "test_edges.csv") as tmp:
        pd.concat(frames, ignore_index=True).to_csv(tmp, index=False, float_format="%.8g")

    def mean(key: str) -> float:
        vals = [m[key] for m in relations.values() if key in m]
        return float(np.mean(vals)) if vals else float("nan")

    hist = state.history
    # Top-level numbers are the mean over relations (on a song-only graph: the song relation's own).
    metrics = {
        **{k: mean(k) for k in ("val_auc", "val_ap", "val_mse", "test_auc", "test_ap", "test_mse",
                                "degree_baseline_auc", "degree_baseline_ap")},
        "beats_degree_baseline": all(m["beats_degree_baseline"] for m in relations.values()),
        **({k: mean(k) for k in ("test_mrr", "degree_baseline_mrr")} if full_z is not None else {}),
        "relations": relations,
        "epochs": state.epoch, "best_epoch": state.best_epoch, "stopped_early": state.stopped(cfg.patience),
        "seconds_per_epoch": float(np.mean([h["train_s"] + h["val_s"] for h in hist])) if hist else float("nan"),
        "train_seconds_per_epoch": float(np.mean([h["train_s"] for h in hist])) if hist else float("nan"),
        "peak_rss_mb": max(peak), "peak_rss_mb_per_rank": peak, "world_size": info.world_size,
        "num_nodes": parts.num_nodes, "num_links": {r[1]: int(parts.edges[r].size(1)) for r in parts.relations},
        "batch_edges": cfg.batch_edges, "negatives": cfg.negatives,
        "seed": cfg.seed, "split_fingerprint": fp, "graph": graph_source,
        "history": hist,
    }
    write_json(rundir / "metrics.json", metrics)
    return ddp.broadcast_object(metrics, info)


@torch.no_grad()
def rank_all(decoder, z_dst: Tensor, z_query: Tensor, budget: int = 1 << 24) -> Tensor:
    """``[n_queries, N]`` logits of every query video against every entity (``budget`` floats per chunk)."""
    decoder.eval()
    N, d = z_dst.shape
    if decoder.kind == "dot":  # same formula as LinkDecoder.forward, as one matrix product
        return torch.cat([q @ z_dst.T * decoder.scale + decoder.bias
                          for q in torch.split(z_query, max(1, budget // max(N, 1)))] or [torch.empty(0, N)])
    rows = []
    for q in torch.split(z_query, max(1, budget // max(N * d * 3, 1))):
        rows.append(decoder(z_dst.unsqueeze(0).expand(q.size(0), N, d), q.unsqueeze(1).expand(q.size(0), N, d)))
    return torch.cat(rows) if rows else torch.empty(0, N)
