"""Pretrain the ConvLSTM autoencoder on the training split's frames (unsupervised, MSE reconstruction).

Frames come from a feature directory written by `mdr-graph extract`. With --graph, only
the training split of `make_splits(GRAPHDIR/videos.parquet, --split --seed --split-fractions)`
is trained on and its validation split is scored, so the frozen encoder never saw a test
video. convlstm.pt records that split; `train` refuses it under any other split.
Without --graph every extracted video is used (a seeded 10% is held out for validation)
and a warning says so.

Writes RUNDIR/convlstm.pt (the best epoch's encoder, loadable with weights_only=True,
used by the fusion model's `convlstm` modality), checkpoint.pt (resume with --resume),
metrics.json (train/val reconstruction MSE per epoch, best epoch, seconds per epoch),
config.toml, splits.json and TensorBoard logs (losses, and input frames beside their
reconstructions) under RUNDIR/tb.

example:
  mdr-graph pretrain-visual --features feats --graph graph --split random --seed 0 --out runs/convlstm
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mdr_graph import trainloop
from mdr_graph.config import resolve, save_toml, show_defaults
from mdr_graph.encoders.convlstm import ConvLSTMAutoencoder, save_convlstm
from mdr_graph.errors import UserError
from mdr_graph.io import read_json, write_json
from mdr_graph.runlog import progress, set_seed, tensorboard_writer
from mdr_graph.splits import SplitConfig, add_split_arguments

SECTION = "pretrain_visual"
ARCH_FIELDS = ("hidden", "embed_dim", "kernel", "downsample", "grid")
# Settings that may change when resuming (they do not change what was already trained).
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "log_images", "cache_mb"})


@dataclass
class VisualPretrainConfig:
    """Settings of `mdr-graph pretrain-visual` (section ``[pretrain_visual]`` of config.toml)."""

    hidden: int = 64          # ConvLSTM channels
    embed_dim: int = 256      # bottleneck width = the visual embedding's width
    kernel: int = 3           # ConvLSTM kernel size
    downsample: int = 3       # stride-2 stem convolutions (64x64 frames -> 8x8 maps)
    grid: int = 4             # pooled map size before the bottleneck
    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 16
    grad_clip: float = 1.0    # max gradient norm (0 = no clipping)
    patience: int = 0         # stop after this many epochs without a better val MSE (0 = run all epochs)
    seed: int = SplitConfig.seed   # the split's seed and the training seed
    split: str = SplitConfig.kind  # mdr_graph.splits.KINDS (with --graph)
    split_fractions: list[float] = field(default_factory=lambda: list(SplitConfig.fractions))  # with --graph
    val_fraction: float = 0.1  # without --graph: seeded share of the videos held out for validation
    max_videos: int = 0       # use at most this many training videos (0 = all)
    cache_mb: int = 2048      # hold the frames in memory when they fit in this many MB, else read lazily
    log_images: int = 4       # clips shown as input | reconstruction in TensorBoard each epoch


def build_autoencoder(cfg: VisualPretrainConfig) -> ConvLSTMAutoencoder:
    return ConvLSTMAutoencoder(**{k: getattr(cfg, k) for k in ARCH_FIELDS})


# -- data ------------------------------------------------------------------------------------
class StoreFrames(Sequence):
    """Lazy ``Sequence`` of uint8 frame tensors ``[F, 3, S, S]`` read from a ``FeatureStore``."""

    def __init__(self, store: Any, ids: list[str]):
        self.store, self.ids = store, list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Tensor:
        return torch.as_tensor(self.store.get(self.ids[i])["frames"])


def gather(data: Sequence[Tensor] | Tensor, idx: Tensor) -> Tensor:
    """Stack items ``idx`` of ``data`` (a tensor of clips, or any sequence of clip tensors)."""
    if isinstance(data, Tensor):
        return data[idx]
    return torch.stack([torch.as_tensor(data[int(i)]) for i in idx])


def batches(data: Sequence[Tensor] | Tensor, order: Tensor, batch_size: int) -> Iterator[Tensor]:
    for start in range(0, len(order), batch_size):
        yield gather(data, order[start:start + batch_size])


def check_clip_shape(data: Sequence[Tensor] | Tensor, cfg: VisualPretrainConfig, name: str) -> tuple[int, ...]:
    shape = tuple(torch.as_tensor(data[0]).shape)
    m = 2 ** cfg.downsample
    if len(shape) != 4 or shape[1] != 3:
        raise UserError(f"{name} frames must be [frames, 3, S, S], got {shape}")
    if shape[2] % m or shape[3] % m:
        raise UserError(f"{name} frames are {shape[2]}x{shape[3]}, not divisible by 2**downsample = {m}; "
                        f"lower --downsample (config) or extract with a --size divisible by {m}")
    return shape


# -- training --------------------------------------------------------------------------------
def reconstruction_mse(model: ConvLSTMAutoencoder, frames: Tensor) -> Tensor:
    """Mean squared error between frames (uint8, scaled to [0, 1]) and their reconstruction."""
    target = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    return F.mse_loss(model(target), target)


@torch.no_grad()
def evaluate_mse(model: ConvLSTMAutoencoder, data: Sequence[Tensor] | Tensor, batch_size: int) -> float:
    """Per-pixel reconstruction MSE over all of ``data`` (NaN when empty)."""
    if len(data) == 0:
        return float("nan")
    model.eval()
    total, n = 0.0, 0
    for x in batches(data, torch.arange(len(data)), batch_size):
        total += float(reconstruction_mse(model, x)) * x.shape[0]
        n += x.shape[0]
    return total / n


def train_epoch(model: ConvLSTMAutoencoder, optimizer: torch.optim.Optimizer, data: Sequence[Tensor] | Tensor,
                order: Tensor, batch_size: int, grad_clip: float = 0.0, desc: str = "train") -> float:
    """One pass over ``data`` in ``order``; returns the sample-weighted mean training MSE."""
    model.train()
    total, n = 0.0, 0
    bar = progress(total=len(order), desc=desc, unit="clip", leave=False)
    for x in batches(data, order, batch_size):
        loss = reconstruction_mse(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total += loss.item() * x.shape[0]
        n += x.shape[0]
        bar.update(x.shape[0])
        bar.set_postfix(mse=f"{total / n:.5f}")
    bar.close()
    return total / max(n, 1)


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The shuffled order of epoch ``epoch``: a function of (seed, epoch) alone, so resuming repeats it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


@torch.no_grad()
def reconstruction_strip(model: ConvLSTMAutoencoder, frames: Tensor) -> Tensor:
    """``[k, 3, S, 2*F*S]`` in [0, 1]: each clip's frames, then their reconstructions, side by side."""
    model.eval()
    x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    rec = model(x)
    row = torch.cat([x, rec], dim=1)                       # [k, 2F, 3, S, S]
    return torch.cat(list(row.unbind(1)), dim=-1).clamp(0, 1)


def pretrain_autoencoder(train: Sequence[Tensor] | Tensor, val: Sequence[Tensor] | Tensor, cfg: VisualPretrainConfig,
                         out_dir: str | Path, *, resume: bool = False, logdir: str | Path | None = None,
                         run_info: dict[str, Any] | None = None, log: Callable[[str], None] = print) -> dict:
    """Train the autoencoder on ``train`` clips (uint8 ``[F, 3, S, S]`` each), select on ``val``; write RUNDIR.

    The testable core of `mdr-graph pretrain-visual`: any sequence of clip tensors works
    (a list, a stacked uint8 tensor, :class:`StoreFrames`). Returns the metrics dict. The
    epoch loop, early stopping, checkpoint.pt and --resume are :mod:`mdr_graph.trainloop`'s.
    """
    out = Path(out_dir)
    ckpt_path = out / trainloop.CHECKPOINT_FILE
    if len(train) == 0:
        raise UserError("no training clips: the training split has no extracted frames")
    shape = check_clip_shape(train, cfg, "training")
    if len(val):
        if check_clip_shape(val, cfg, "validation") != shape:
            raise UserError(f"validation clips are {check_clip_shape(val, cfg, 'validation')}, training clips {shape}")
    else:
        log("note: no validation clips; the best epoch is chosen on the training MSE")
    if ckpt_path.exists() and not resume:
        raise UserError(f"{out} already holds a pretraining run ({ckpt_path.name}); pass --resume to continue it "
                        f"or choose another --out")

    set_seed(cfg.seed)
    model = build_autoencoder(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = trainloop.TrainState(higher_is_better=False)  # reconstruction MSE: lower is better
    if resume and ckpt_path.exists():
        ck = trainloop.load_checkpoint(ckpt_path, "pretrain-visual")
        trainloop.check_same_settings(ck, cfg, RESUMABLE_CHANGES, ckpt_path)
        state = trainloop.resume(ck, model, optimizer, ckpt_path)
        log(f"resuming {out} after epoch {state.epoch}")
    elif resume:
        log(f"note: nothing to resume in {out}; starting a new run")

    save_toml(out / "config.toml", {SECTION: cfg, "data": dict(run_info or {})})
    writer = tensorboard_writer(logdir or out / "tb")
    shown = gather(val if len(val) else train, torch.arange(min(cfg.log_images, len(val) or len(train))))
    n_params = sum(p.numel() for p in model.parameters())
    if state.epoch == 0:
        log(f"ConvLSTM autoencoder: {n_params:,} parameters; {len(train)} training clips, {len(val)} validation "
            f"clips of shape {list(shape)}")

    def epoch_body(epoch: int) -> tuple[float, dict]:
        t0 = time.perf_counter()
        train_mse = train_epoch(model, optimizer, train, epoch_order(len(train), cfg.seed, epoch),
                                cfg.batch_size, cfg.grad_clip, desc=f"epoch {epoch + 1}/{cfg.epochs}")
        seconds = time.perf_counter() - t0
        val_mse = evaluate_mse(model, val, cfg.batch_size) if len(val) else None
        return (train_mse if val_mse is None else val_mse), {"train_mse": train_mse, "val_mse": val_mse,
                                                              "seconds": seconds}

    def end_epoch(epoch: int, record: dict, improved: bool) -> None:
        if improved:
            save_convlstm(out / "convlstm.pt", model, shape, epoch,
                          extra={"pretrain_config": dataclasses.asdict(cfg), "split": (run_info or {}).get("split"),
                                 "val_mse": record["val_mse"],
                                 "train_mse": record["train_mse"]})
        trainloop.save_checkpoint(ckpt_path, model, optimizer, cfg, state, [trainloop.rng_state()])
        writer.add_scalar("mse/train", record["train_mse"], epoch)
        if record["val_mse"] is not None:
            writer.add_scalar("mse/val", record["val_mse"], epoch)
        writer.add_scalar("time/seconds_per_epoch", record["seconds"], epoch)
        writer.add_images("reconstructions/input_then_reconstruction", reconstruction_strip(model, shown),
                          epoch, dataformats="NCHW")
        writer.flush()
        write_json(out / "metrics.json", _metrics(state, cfg, len(train), len(val), shape, complete=False))
        log(f"epoch {epoch}/{cfg.epochs}: train mse {record['train_mse']:.5f}, val mse "
            f"{record['val_mse'] if record['val_mse'] is not None else math.nan:.5f}, "
            f"{record['seconds']:.1f}s{'  (best)' if improved else ''}")

    try:
        trainloop.run_epochs(epoch_body, end_epoch, state, cfg.epochs, cfg.patience, desc="pretrain-visual")
    finally:
        writer.close()
    metrics = _metrics(state, cfg, len(train), len(val), shape, complete=True)
    write_json(out / "metrics.json", metrics)
    log(f"best epoch {metrics['best_epoch']} (mse {metrics['best_mse']:.5f}); encoder saved to {out / 'convlstm.pt'}")
    return metrics


def _metrics(state: trainloop.TrainState, cfg: VisualPretrainConfig, n_train: int, n_val: int, shape: tuple,
             complete: bool) -> dict:
    hist = state.history
    secs = [h["seconds"] for h in hist]
    return {
        "train_mse": [h["train_mse"] for h in hist],
        "val_mse": [h["val_mse"] for h in hist],
        "best_epoch": state.best_epoch, "best_mse": state.best,
        "best_on": "val" if n_val else "train",
        "epochs": state.epoch, "seconds_per_epoch": float(np.mean(secs)) if secs else 0.0,
        "seconds_total": float(np.sum(secs)), "seed": cfg.seed, "n_train": n_train, "n_val": n_val,
        "clip_shape": list(shape), "complete": complete, "history": hist,
    }


# -- which videos ----------------------------------------------------------------------------
def select_ids(store_ids: list[str], graph_dir: str | Path | None, split: SplitConfig,
               val_fraction: float) -> tuple[list[str], list[str], str | None, dict | None]:
    """``(train_ids, val_ids, warning, split record)`` among the ids that have extracted features.

    The split record (``split`` as a dict plus the graph split's ``hash``) goes into
    convlstm.pt, so `train` can refuse this encoder under another split; None without a graph.
    """
    have = [str(i) for i in store_ids]
    have_set = set(have)
    if graph_dir:
        from mdr_graph.graph_build.tables import read_videos
        from mdr_graph.splits import make_splits, split_hash

        splits = make_splits(read_videos(graph_dir), split)
        train = [str(v) for v in splits["train"] if str(v) in have_set]
        val = [str(v) for v in splits["val"] if str(v) in have_set]
        return train, val, None, {**split.as_dict(), "hash": split_hash(splits)}
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(split.seed).permutation(len(have))
    n_val = int(round(val_fraction * len(have))) if len(have) > 1 else 0
    val = [have[i] for i in order[:n_val]]
    train = [have[i] for i in order[n_val:]]
    warning = ("warning: no --graph given, so the autoencoder trains on every extracted video (a seeded "
               f"{val_fraction:.0%} held out for validation), including videos a later model may test on; "
               "pass --graph GRAPHDIR --split ... --seed ... --split-fractions ... to train on the training split only")
    return train, val, warning, None


def load_clips(store: Any, ids: list[str], cache_mb: int, desc: str) -> tuple[Sequence[Tensor] | Tensor, list[str]]:
    """The clips of ``ids``: one uint8 tensor in memory if it fits in ``cache_mb``, else a lazy reader."""
    if not ids:
        return [], []
    first = torch.as_tensor(store.get(ids[0])["frames"])
    need_mb = first.numel() * first.element_size() * len(ids) / 2**20
    if need_mb > cache_mb:
        return StoreFrames(store, ids), list(ids)
    clips, kept = [], []
    for vid in progress(ids, desc=f"loading {desc} frames", unit="video"):
        frames = store.get(vid).get("frames")
        if frames is None:
            continue
        clips.append(torch.as_tensor(frames))
        kept.append(vid)
    return (torch.stack(clips) if clips else []), kept


# -- CLI -------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:

    p.add_argument("--features", required=True, metavar="FEATDIR", help="feature directory from `mdr-graph extract`")
    p.add_argument("--out", required=True, metavar="RUNDIR", help="run directory to write")
    p.add_argument("--graph", metavar="GRAPHDIR", help="graph directory: train on its training split only")
    add_split_arguments(p)
    p.add_argument("--epochs", type=int, default=None, help="epochs")
    p.add_argument("--hidden", type=int, default=None, help="ConvLSTM channels")
    p.add_argument("--embed-dim", type=int, default=None, help="bottleneck width")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--batch-size", type=int, default=None, help="clips per batch")
    p.add_argument("--patience", type=int, default=None,
                   help="early-stopping patience in epochs, 0 = off")
    p.add_argument("--max-videos", type=int, default=None, help="cap on training videos, 0 = all")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in RUNDIR")
    p.add_argument("--logdir", help="TensorBoard directory (default RUNDIR/tb)")
    p.add_argument("--config", help="TOML file with a [pretrain_visual] section (e.g. a previous RUNDIR/config.toml)")
    show_defaults(p, VisualPretrainConfig)


def main(args: argparse.Namespace) -> int:
    cfg = resolve(VisualPretrainConfig, args, SECTION)
    for name in ("epochs", "hidden", "embed_dim", "batch_size"):
        if getattr(cfg, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(cfg, name)}")
    feat = Path(args.features)
    if not feat.is_dir():
        raise UserError(f"no feature directory {feat}; extract features with "
                        f"`mdr-graph extract --graph GRAPHDIR --out {feat}`")
    try:
        from mdr_graph.media.store import FeatureStore
    except ImportError as e:  # pragma: no cover - the media package ships with the toolkit
        raise UserError(f"cannot read features: mdr_graph.media.store is unavailable ({e})") from None
    store = FeatureStore(feat)
    split = SplitConfig.of(cfg)
    train_ids, val_ids, warning, record = select_ids(list(store.ids), args.graph, split, cfg.val_fraction)
    if warning:
        print(warning)
    if cfg.max_videos and len(train_ids) > cfg.max_videos:
        train_ids = train_ids[:cfg.max_videos]
    if not train_ids:
        raise UserError(f"no training videos with extracted frames in {feat}"
                        + (f" among the {cfg.split} split's training videos of {args.graph}" if args.graph else ""))
    out = Path(args.out)
    splits_path = out / "splits.json"
    if (out / "checkpoint.pt").exists() and not args.resume:
        raise UserError(f"{out} already holds a pretraining run; pass --resume to continue it or choose another --out")
    train, train_ids = load_clips(store, train_ids, cfg.cache_mb, "training")
    val, val_ids = load_clips(store, val_ids, max(cfg.cache_mb - _mb(train), 0), "validation")
    if args.resume and splits_path.exists():
        old = read_json(splits_path)
        if old.get("train") != train_ids or old.get("val") != val_ids:
            raise UserError(f"cannot resume {out}: its training/validation videos differ from what {feat} and "
                            f"the split give now; use the same --features/--graph/--split/--seed or a new --out")
    write_json(splits_path, {"train": train_ids, "val": val_ids})
    info = {"features": str(feat.resolve()), "graph": str(Path(args.graph).resolve()) if args.graph else "",
            "n_train": len(train_ids), "n_val": len(val_ids),
            # what `train` checks against its own split (None: trained on every video, any run's test included)
            "split": record}
    pretrain_autoencoder(train, val, cfg, out, resume=args.resume, logdir=args.logdir, run_info=info)
    return 0


def _mb(data: Sequence[Tensor] | Tensor) -> int:
    return int(data.numel() * data.element_size() / 2**20) if isinstance(data, Tensor) else 0
