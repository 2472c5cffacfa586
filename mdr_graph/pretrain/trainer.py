"""Link-prediction pretraining loop: split, train, validate, stop early, checkpoint, resume, report.

One epoch visits every component batch once (one batch = full batch). Each step scores
the batch's supervision links and freshly drawn negatives on the batch's
message-passing graph. Validation scores fixed pairs on ``MP + SUP`` links; the final
test scores fixed pairs on ``MP + SUP + VAL`` links with the best validation weights.

Under ``torchrun`` (see ``docs/distributed.md``) the component batches are dealt out
across ranks and the encoder and decoder train as one DistributedDataParallel module.
Each optimizer step is one batch per rank, and the loss is weighted so that the averaged
gradient is the mean over every scored pair of the step, as if one process had taken
the union of those batches. Evaluation is sharded the same way: each rank embeds its own
components (every node belongs to exactly one batch, so summing the ranks' embeddings
over the process group assembles the exact full-graph embeddings), scores
``pairs[:, rank::world]``, and the scores are gathered before any metric is computed.
Rank 0 alone writes files.

Files in RUNDIR: ``checkpoint.pt`` (last epoch: weights, optimizer, RNG states, early
stopping state; rewritten every epoch), ``gat.pt`` (best weights plus everything needed
to rebuild the model), ``metrics.json``, ``test_edges.csv`` and ``config.toml``.
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from mdr_graph import distributed as ddp
from mdr_graph.config import save_toml
from mdr_graph.errors import UserError
from mdr_graph.graph_build.schema import VIDEO_EDGE
from mdr_graph.io import atomic_path, torch_load, torch_save, write_json
from mdr_graph.pretrain import metrics as M
from mdr_graph.pretrain.components import ComponentBatches, pack_components
from mdr_graph.pretrain.linksplit import EdgeSet, LinkSplit, negative_pools, sample_negatives, split_links
from mdr_graph.pretrain.model import GATConfig, LinkDecoder, SongVideoGAT, build_model, feature_stats
from mdr_graph.runlog import peak_rss_mb, progress, set_seed, tensorboard_writer

GAT_FILE = "gat.pt"
CHECKPOINT_FILE = "checkpoint.pt"
GAT_FORMAT = "mdr-graph-gat"
GAT_FORMAT_VERSION = 1
# Settings a resumed run may change: they do not alter what was already computed.
RESUMABLE_CHANGES = {"epochs", "patience", "device", "bf16"}
MRR_QUERIES = 1000  # test videos ranked against every song for MRR / hits@k


# ----------------------------------------------------------------------------- graph access

def graph_parts(data: HeteroData) -> dict:
    """The tensors and id lists of a graph, with generic ids/names where a hand-made graph lacks them."""
    xv, xs = data["video"].x, data["song"].x
    ids = {t: list(getattr(data[t], f"{t}_id", None) or [str(i) for i in range(data[t].x.size(0))])
           for t in ("video", "song")}
    names = {t: list(getattr(data[t], "feature_names", None) or [f"{t}_f{i}" for i in range(data[t].x.size(1))])
             for t in ("video", "song")}
    return {"x": {"video": xv.float(), "song": xs.float()}, "edge_index": data[VIDEO_EDGE].edge_index.long(),
            "ids": ids, "feature_names": names}


def pack_ids(ids: list[str]) -> str | list[str]:
    """Node ids as one newline-joined string: pickling one string is ~100x faster than 3M small ones."""
    return "\n".join(ids) if not any("\n" in i for i in ids) else list(ids)


def unpack_ids(packed: str | list[str], n: int) -> list[str]:
    if isinstance(packed, list):
        return packed
    return packed.split("\n") if n else []


class LinkModel(nn.Module):
    """Encoder and decoder as one module: the unit DDP wraps, so one all-reduce syncs both."""

    def __init__(self, encoder: SongVideoGAT, decoder: LinkDecoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: dict[str, Tensor], message_edges: Tensor, pairs: Tensor) -> Tensor:
        """Logits of ``pairs`` (local ``(video, song)`` rows); only the rows they need are computed."""
        z = self.encoder(x, {VIDEO_EDGE: message_edges}, out_index={"video": pairs[0]})
        return self.decoder(z["song"][pairs[1]], z["video"])


# ----------------------------------------------------------------------------- scoring

@torch.no_grad()
def embed_for(encoder: SongVideoGAT, x: dict[str, Tensor], batches: ComponentBatches, mp_by_batch: list[Tensor],
              need_videos: Tensor, num_songs: int) -> tuple[Tensor, Tensor, Tensor]:
    """Embeddings of every song and of ``need_videos``, batch by batch (exact: batches are whole components).

    Returns ``(z_song [S, d], z_video [len(need), d], row_of [V])`` where ``row_of[v]`` is
    video ``v``'s row in ``z_video`` (-1 if not needed).
    """
    encoder.eval()
    dev = next(encoder.parameters()).device
    d = encoder.out_dim
    num_videos = x["video"].size(0)
    row_of = torch.full((num_videos,), -1, dtype=torch.long)
    need_videos = need_videos.unique()
    row_of[need_videos] = torch.arange(need_videos.numel())
    z_song = torch.zeros(num_songs, d)
    z_video = torch.zeros(need_videos.numel(), d)
    for i in range(len(batches)):
        vids, songs = batches.videos[i], batches.songs[i]
        xb = x if batches.is_full_batch else {"video": x["video"][vids], "song": x["song"][songs]}
        rows = row_of[vids]
        keep = torch.nonzero(rows >= 0).flatten()
        z = encoder({t: v.to(dev) for t, v in xb.items()}, {VIDEO_EDGE: mp_by_batch[i].to(dev)},
                    out_index={"video": keep.to(dev)})
        z_song[songs] = z["song"].cpu()
        z_video[rows[keep]] = z["video"].cpu()
    return z_song, z_video, row_of


@torch.no_grad()
def score_pairs(decoder: LinkDecoder, z_song: Tensor, z_video: Tensor, row_of: Tensor, pairs: Tensor,
                chunk: int = 262144) -> Tensor:
    decoder.eval()
    dev = next(decoder.parameters()).device
    out = [decoder(z_song[p[1]].to(dev), z_video[row_of[p[0]]].to(dev)).cpu() for p in torch.split(pairs, chunk, dim=1)]
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def embed_everywhere(encoder: SongVideoGAT, x: dict[str, Tensor], batches: ComponentBatches,
                     mp_by_batch: list[Tensor], need_videos: Tensor, num_songs: int,
                     info: ddp.DistInfo, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`embed_for` over all ranks' batches: every rank gets the full embeddings.

    Each rank embeds the nodes of its own batches and leaves the rest zero; every node is
    in exactly one batch, so the sum over ranks is the full-graph result, bit for bit.
    """
    z_song, z_video, row_of = embed_for(encoder, x, batches, mp_by_batch, need_videos, num_songs)
    return ddp.all_reduce_sum(z_song, info, device), ddp.all_reduce_sum(z_video, info, device), row_of


def score_everywhere(decoder: LinkDecoder, z_song: Tensor, z_video: Tensor, row_of: Tensor, pairs: Tensor,
                     info: ddp.DistInfo) -> Tensor:
    """Every pair's logit, each scored by one rank (``pairs[:, rank::world]``) and gathered in order."""
    mine = score_pairs(decoder, z_song, z_video, row_of, pairs[:, info.rank::info.world_size])
    return ddp.unstride(ddp.gather(mine, info), pairs.size(1))


@torch.no_grad()
def rank_all_songs(decoder: LinkDecoder, z_song: Tensor, z_query: Tensor, budget: int = 1 << 24) -> Tensor:
    """``[n_queries, S]`` logits of every query video against every song (``budget`` floats per chunk)."""
    decoder.eval()
    dev = next(decoder.parameters()).device
    z_song = z_song.to(dev)
    S, d = z_song.shape
    if decoder.kind == "dot":  # same formula as LinkDecoder.forward, as one matrix product
        return torch.cat([(q.to(dev) @ z_song.T * decoder.scale + decoder.bias).cpu()
                          for q in torch.split(z_query, max(1, budget // max(S, 1)))] or [torch.empty(0, S)])
    rows = []
    for q in torch.split(z_query, max(1, budget // max(S * d * 3, 1))):
        zs = z_song.unsqueeze(0).expand(q.size(0), S, d)
        zv = q.to(dev).unsqueeze(1).expand(q.size(0), S, d)
        rows.append(decoder(zs, zv).cpu())
    return torch.cat(rows) if rows else torch.empty(0, S)


# ----------------------------------------------------------------------------- checkpoints

def rng_state(neg_gen: torch.Generator) -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "negatives": neg_gen.get_state(), "python": random.getstate(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}


def restore_rng(state: dict, neg_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    neg_gen.set_state(state["negatives"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))


def gat_payload(encoder: SongVideoGAT, decoder: LinkDecoder, cfg: GATConfig, parts: dict, extra: dict) -> dict:
    """Everything ``embed.load_gat`` needs to rebuild the model, as weights_only-loadable data."""
    return {
        "format": GAT_FORMAT, "format_version": GAT_FORMAT_VERSION,
        "encoder": encoder.state_dict(), "decoder": decoder.state_dict(),
        "config": dataclasses.asdict(cfg), "in_dims": dict(encoder.in_dims),
        "embedding_dim": encoder.out_dim, "feature_names": parts["feature_names"],
        "num_videos": len(parts["ids"]["video"]), "num_songs": len(parts["ids"]["song"]),
        "video_ids": pack_ids(parts["ids"]["video"]), "song_ids": pack_ids(parts["ids"]["song"]),
        **extra,
    }


def _check_resumable(saved: dict, cfg: GATConfig, fingerprint: str, ckpt: Path, world_size: int) -> None:
    if saved.get("world_size", 1) != world_size:
        raise UserError(f"{ckpt} was trained by {saved.get('world_size', 1)} process(es) and this run has "
                        f"{world_size}: the component batches are dealt out per process, so resume with the "
                        "same --nproc_per_node (and --nnodes)")
    now = dataclasses.asdict(cfg)
    changed = sorted(k for k, v in saved["config"].items() if k not in RESUMABLE_CHANGES and now.get(k) != v)
    if changed:
        was = ", ".join(f"{k}={saved['config'][k]!r}" for k in changed)
        free = ", ".join(sorted(RESUMABLE_CHANGES))
        raise UserError(f"{ckpt} was trained with different settings ({was}); --resume continues a run with its "
                        f"own settings (only {free} may change). Drop the conflicting flags or start a new --out")
    if saved["split_fingerprint"] != fingerprint:
        raise UserError(f"{ckpt} was trained on a different graph or link split; resume with the same --graph "
                        "or start a new --out")


# ----------------------------------------------------------------------------- training

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
    ckpt_path, gat_path = rundir / CHECKPOINT_FILE, rundir / GAT_FILE
    if ckpt_path.exists() and not resume:
        raise UserError(f"{rundir} already holds a run ({ckpt_path.name}); pass --resume to continue it "
                        "or choose another --out")

    parts = graph_parts(data)
    x, E = parts["x"], parts["edge_index"]
    V, S = x["video"].size(0), x["song"].size(0)
    split = split_links(E, V, S, val_ratio=cfg.val_ratio, test_ratio=cfg.test_ratio,
                        disjoint_train_ratio=cfg.disjoint_train_ratio, neg_ratio=cfg.neg_ratio,
                        negatives=cfg.negatives, seed=cfg.seed)
    fingerprint = split.fingerprint()
    batches = pack_components(E, V, S, components_per_batch=cfg.batch_components,
                              rank=info.rank, world_size=info.world_size)
    train_mp = batches.split_edges(split.message_edges("train"))
    train_sup = batches.split_edges(split.positives("train"))
    val_mp = batches.split_edges(split.message_edges("val"))
    links = EdgeSet(E, S)
    # Every rank takes the same number of steps (DDP all-reduces at each one); a rank that
    # runs out of batches takes empty steps.
    steps = max(ddp.gather(len(batches), info))

    set_seed(cfg.seed)
    stats = {t: feature_stats(x[t]) for t in ("video", "song")}
    encoder, decoder = build_model({t: x[t].size(1) for t in x}, cfg, stats)
    model = LinkModel(encoder, decoder).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    neg_gen = torch.Generator().manual_seed(cfg.seed + 7919 + info.rank)  # per-rank negatives

    state = {"epoch": 0, "best_auc": -1.0, "best_epoch": -1, "bad_epochs": 0, "stopped_early": False,
             "history": [], "best_val": {}}
    if resume and ckpt_path.exists():
        saved = torch_load(ckpt_path)
        _check_resumable(saved, cfg, fingerprint, ckpt_path, info.world_size)
        encoder.load_state_dict(saved["encoder"])
        decoder.load_state_dict(saved["decoder"])
        optimizer.load_state_dict(saved["optimizer"])
        restore_rng(saved["rng_by_rank"][info.rank] if "rng_by_rank" in saved else saved["rng"], neg_gen)
        state = saved["state"]
        if info.is_main:
            print(f"resuming {rundir} after epoch {state['epoch']} (best val AUC {state['best_auc']:.4f} "
                  f"at epoch {state['best_epoch']})")
    train_model: nn.Module = model
    if info.enabled:
        # find_unused_parameters: a batch without links in one direction leaves that GATConv unused.
        train_model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        if not (resume and ckpt_path.exists()):
            torch.manual_seed(cfg.seed + info.rank)  # per-rank dropout; weights were broadcast from rank 0
    if info.is_main:
        save_toml(rundir / "config.toml", {"pretrain": cfg, "inputs": {"graph": graph_source},
                                           "run": {"world_size": info.world_size}})

    writer = tensorboard_writer(logdir or rundir / "tb") if info.is_main else None
    val_pairs, val_labels = split.pairs("val")
    bar = progress(range(state["epoch"], cfg.epochs), desc="pretrain", unit="epoch",
                   initial=state["epoch"], total=cfg.epochs, disable=not info.is_main or None)
    try:
        for epoch in bar:
            if state["stopped_early"]:
                break
            t0 = time.perf_counter()
            loss = _train_epoch(train_model, optimizer, x, batches, train_mp, train_sup, links, neg_gen, cfg,
                                steps, info, device)
            t1 = time.perf_counter()
            z_song, z_video, row_of = embed_everywhere(encoder, x, batches, val_mp, val_pairs[0], S, info, device)
            logits = score_everywhere(decoder, z_song, z_video, row_of, val_pairs, info)
            val = M.link_metrics(val_labels.numpy(), logits.numpy())  # the same on every rank
            t2 = time.perf_counter()
            improved = val["auc"] > state["best_auc"]
            if improved:
                state.update(best_auc=val["auc"], best_epoch=epoch + 1, bad_epochs=0, best_val=val)
                if info.is_main:
                    torch_save(gat_path, gat_payload(encoder, decoder, cfg, parts, {
                        "epoch": epoch + 1, "val": val, "split_fingerprint": fingerprint, "graph": graph_source,
                        "world_size": info.world_size}))
            else:
                state["bad_epochs"] += 1
            state["stopped_early"] = state["bad_epochs"] >= cfg.patience
            record = {"epoch": epoch + 1, "loss": loss, "val_auc": val["auc"], "val_ap": val["ap"],
                      "val_mse": val["mse"], "train_s": t1 - t0, "val_s": t2 - t1}
            state["history"].append(record)
            state["epoch"] = epoch + 1
            rngs = ddp.gather(rng_state(neg_gen), info)  # each rank's negatives stream, for --resume
            if info.is_main:
                torch_save(ckpt_path, {"encoder": encoder.state_dict(), "decoder": decoder.state_dict(),
                                       "optimizer": optimizer.state_dict(), "config": dataclasses.asdict(cfg),
                                       "state": state, "rng": rngs[0], "rng_by_rank": rngs,
                                       "world_size": info.world_size, "split_fingerprint": fingerprint})
                _log_epoch(writer, epoch + 1, record, optimizer, z_song, z_video)
                bar.set_postfix(loss=f"{loss:.4f}", val_auc=f"{val['auc']:.4f}", best=state["best_epoch"])
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, record)
            ddp.barrier(info)
    finally:
        if writer is not None:
            writer.flush()
            writer.close()
        bar.close()

    metrics = _finish(rundir, gat_path, cfg, parts, split, batches, state, graph_source, info, device)
    ddp.cleanup(info)
    return metrics


def _train_epoch(model: nn.Module, optimizer, x, batches: ComponentBatches, train_mp, train_sup,
                 links: EdgeSet, neg_gen: torch.Generator, cfg: GATConfig, steps: int, info: ddp.DistInfo,
                 device: torch.device) -> float:
    """One pass over this rank's batches in a fresh random order; returns the mean loss per pair (all ranks)."""
    model.train()
    total, count = 0.0, 0
    order: list[int | None] = torch.randperm(len(batches), generator=neg_gen).tolist()
    order += [None] * (steps - len(order))
    empty = torch.empty(2, 0, dtype=torch.long)
    for i in (progress(order, desc="batches", leave=False, disable=not info.is_main or None)
              if len(order) >= 8 else order):
        sup = train_sup[i] if i is not None else empty
        if sup.size(1) == 0 and not info.enabled:
            continue
        if i is None:  # no batch left on this rank: an empty step that still joins the all-reduce
            xb, mp, pairs = {t: v[:0] for t, v in x.items()}, empty, empty
        else:
            vids, songs = batches.videos[i], batches.songs[i]
            xb = x if batches.is_full_batch else {"video": x["video"][vids], "song": x["song"][songs]}
            mp, pairs = train_mp[i], sup
            if sup.size(1):
                # Fresh negatives each step, drawn in global ids (to test against every real link), made local.
                video_pool, song_pool = negative_pools(cfg.negatives, torch.stack([vids[sup[0]], songs[sup[1]]]),
                                                       vids, songs)
                neg = sample_negatives(max(1, round(cfg.neg_ratio * sup.size(1))), video_pool, song_pool, links,
                                       neg_gen)
                pairs = torch.cat([sup, torch.stack([batches.video_local[neg[0]], batches.song_local[neg[1]]])], 1)
        labels = torch.zeros(pairs.size(1))
        labels[:sup.size(1)] = 1.0
        pairs, labels = pairs.to(device), labels.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model({t: v.to(device) for t, v in xb.items()}, mp.to(device), pairs)
        logits = logits.float()  # the loss in float32; evaluation always runs in float32
        if cfg.loss == "bce":
            loss_sum = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
        else:
            loss_sum = nn.functional.mse_loss(torch.sigmoid(logits), labels, reduction="sum")
        # DDP averages gradients over ranks; scaling by world / (pairs on all ranks) makes the
        # step's gradient the mean over every pair scored in it (one process: the batch mean).
        n_step = int(ddp.all_reduce_sum(torch.tensor([pairs.size(1)]), info, device).item())
        loss = loss_sum * (info.world_size / max(n_step, 1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss_sum.item()
        count += pairs.size(1)
    if info.enabled:
        total, count = (sum(v) for v in zip(*ddp.gather((total, count), info)))
    return total / max(count, 1)


def _log_epoch(writer, epoch: int, record: dict, optimizer, z_song: Tensor, z_video: Tensor) -> None:
    writer.add_scalar("loss/train", record["loss"], epoch)
    writer.add_scalar("val/auc", record["val_auc"], epoch)
    writer.add_scalar("val/ap", record["val_ap"], epoch)
    writer.add_scalar("val/mse", record["val_mse"], epoch)
    writer.add_scalar("lr", optimizer.param_groups[0]["lr"], epoch)
    writer.add_scalar("time/epoch_s", record["train_s"] + record["val_s"], epoch)
    if z_song.numel():
        writer.add_histogram("embedding_norm/song", z_song.norm(dim=1), epoch)
    if z_video.numel():
        writer.add_histogram("embedding_norm/video_val", z_video.norm(dim=1), epoch)


# ----------------------------------------------------------------------------- final evaluation

def _finish(rundir: Path, gat_path: Path, cfg: GATConfig, parts: dict, split: LinkSplit,
            batches: ComponentBatches, state: dict, graph_source: str, info: ddp.DistInfo,
            device: torch.device) -> dict:
    """Evaluate the best weights on the test links; rank 0 writes metrics.json and test_edges.csv.

    Every rank returns the same metrics.
    """
    ddp.barrier(info)  # rank 0 wrote gat.pt; every rank reloads the best weights from it
    if not gat_path.exists():
        raise UserError(f"{gat_path} is missing: no epoch finished; re-run with --resume")
    best = torch_load(gat_path)
    x = parts["x"]
    S = x["song"].size(0)
    encoder, decoder = build_model(best["in_dims"], cfg)
    encoder.load_state_dict(best["encoder"])
    decoder.load_state_dict(best["decoder"])
    encoder.to(device)
    decoder.to(device)

    out: dict = {}
    # The baseline to beat: score a pair by its song's degree in the training graph (every
    # training link, message-passing and supervision; never a validation or test link).
    train_degree = torch.bincount(split.message_edges("val")[1], minlength=S).double()
    for stage in ("val", "test"):
        pairs, labels = split.pairs(stage)
        mp = split.message_edges(stage)
        z_song, z_video, row_of = embed_everywhere(encoder, x, batches, batches.split_edges(mp), pairs[0], S,
                                                   info, device)
        logits = score_everywhere(decoder, z_song, z_video, row_of, pairs, info)
        m = M.link_metrics(labels.numpy(), logits.numpy())
        out.update({f"{stage}_{k}": v for k, v in m.items()})
        prefix = "degree_baseline" if stage == "test" else "val_degree_baseline"
        out[f"{prefix}_auc"] = M.roc_auc(labels.numpy(), train_degree[pairs[1]].numpy())
        out[f"{prefix}_ap"] = M.average_precision(labels.numpy(), train_degree[pairs[1]].numpy())
        if stage == "test":
            mp_degree = torch.bincount(mp[1], minlength=S)  # what the GAT sees when it scores the test links
            test = (pairs, labels, logits, mp_degree, z_song, z_video, row_of)

    peak = ddp.gather(peak_rss_mb(), info)
    if not info.is_main:  # the collective part is done; rank 0 summarises, writes and shares the result
        return ddp.broadcast_object(None, info)
    pairs, labels, logits, mp_degree, z_song, z_video, row_of = test
    pos = pairs[:, labels == 1]
    cold = mp_degree[pos[1]] == 0  # the song kept no link in the graph the test links are scored on
    neg_logits = logits[labels == 0].numpy()
    for name, mask in (("cold", cold), ("warm", ~cold)):
        lab = np.r_[np.ones(int(mask.sum())), np.zeros(neg_logits.size)]
        out[f"test_auc_{name}_songs"] = M.roc_auc(lab, np.r_[logits[labels == 1][mask].numpy(), neg_logits])
    out["test_cold_song_share"] = float(cold.double().mean()) if cold.numel() else float("nan")

    # "Which song does this video use?": rank every song for a fixed sample of test videos.
    g = torch.Generator().manual_seed(cfg.seed + 104729)
    q = pos[:, torch.randperm(pos.size(1), generator=g)[:MRR_QUERIES]]
    ranks = M.true_item_ranks(rank_all_songs(decoder, z_song, z_video[row_of[q[0]]]).numpy(), q[1].numpy())
    deg_ranks = M.true_item_ranks(train_degree.unsqueeze(0).expand(q.size(1), S).numpy(), q[1].numpy())
    out.update({f"test_{k}": v for k, v in M.rank_summary(ranks).items()})
    out.update({f"degree_baseline_{k}": v for k, v in M.rank_summary(deg_ranks).items()})
    out["mrr_queries"] = int(q.size(1))

    ids = parts["ids"]
    with atomic_path(rundir / "test_edges.csv") as tmp:
        pd.DataFrame({
            "song_id": np.asarray(ids["song"], dtype=object)[pairs[1].numpy()],
            "video_id": np.asarray(ids["video"], dtype=object)[pairs[0].numpy()],
            "label": labels.numpy().astype(np.int8),
            "score": torch.sigmoid(logits.double()).numpy(),
        }).to_csv(tmp, index=False, float_format="%.8g")

    hist = state["history"]
    metrics = {
        **{k: out[k] for k in ("val_auc", "val_ap", "val_mse", "test_auc", "test_ap", "test_mse")},
        "degree_baseline_auc": out["degree_baseline_auc"], "degree_baseline_ap": out["degree_baseline_ap"],
        "beats_degree_baseline": bool(out["test_auc"] > out["degree_baseline_auc"]),
        **{k: v for k, v in out.items() if k not in ("val_auc", "val_ap", "val_mse", "test_auc", "test_ap",
                                                     "test_mse", "degree_baseline_auc", "degree_baseline_ap")},
        "epochs": state["epoch"], "best_epoch": state["best_epoch"], "stopped_early": state["stopped_early"],
        "seconds_per_epoch": float(np.mean([h["train_s"] + h["val_s"] for h in hist])) if hist else float("nan"),
        "train_seconds_per_epoch": float(np.mean([h["train_s"] for h in hist])) if hist else float("nan"),
        "peak_rss_mb": max(peak), "peak_rss_mb_per_rank": peak, "world_size": info.world_size,
        "num_videos": x["video"].size(0), "num_songs": S, "num_links": int(split.edge_index.size(1)),
        "links": split.counts(), "batches": batches.num_batches_total, "negatives": cfg.negatives,
        "seed": cfg.seed, "split_fingerprint": split.fingerprint(), "graph": graph_source,
        "history": hist,
    }
    write_json(rundir / "metrics.json", metrics)
    return ddp.broadcast_object(metrics, info)
