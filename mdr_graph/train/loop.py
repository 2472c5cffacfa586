"""The training loop of the fusion model, readable top to bottom.

``fit(cfg, out_dir)``: split → normalise on train → Adam epochs with early stopping on
validation Spearman → best checkpoint → predictions for every split → metrics.json,
TensorBoard (scalars, validation contributions, scatter, hparams). The test split is
predicted once, at the end; per-epoch contributions are the validation split's. Every
epoch also writes ``checkpoint.pt`` (model, optimizer, epoch, config, RNG state), so
``resume=True`` continues an interrupted run and reproduces the uninterrupted one exactly.
Under torchrun the model is wrapped in DistributedDataParallel; rank 0 alone writes.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, Subset

from mdr_graph import distributed as ddp
from mdr_graph.config import save_toml
from mdr_graph.errors import UserError
from mdr_graph.io import torch_load, torch_save, write_json, write_text
from mdr_graph.runlog import progress, set_seed, tensorboard_writer
from mdr_graph.train.config import TrainConfig
from mdr_graph.train.inputs import Prepared, prepare
from mdr_graph.train.metrics import regression_metrics
from mdr_graph.train.runcheck import check_resumable, check_settings
from mdr_graph.splits import SPLITS, SplitConfig, check_filled

LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": lambda p, t: F.huber_loss(p, t, delta=0.1)}


def fusion_config(cfg: TrainConfig):
    """The model's own config, taken from the run's settings by field name."""
    from mdr_graph.fusion import FusionConfig

    names = {f.name for f in dataclasses.fields(FusionConfig)}
    values = {k: v for k, v in dataclasses.asdict(cfg).items() if k in names}
    if "convlstm_path" in names:
        values["convlstm_path"] = cfg.convlstm
    return FusionConfig(**values)


def build(cfg: TrainConfig, input_shapes: dict[str, tuple]) -> torch.nn.Module:
    from mdr_graph.fusion_baselines import build_model

    if "convlstm" in cfg.modalities and not cfg.convlstm:
        raise UserError("modality 'convlstm' needs --convlstm RUNDIR/convlstm.pt (from `mdr-graph pretrain-visual`)")
    model = build_model(cfg.model, fusion_config(cfg), input_shapes)
    if cfg.finetune_gat and "network" in cfg.modalities:
        from mdr_graph.train.finetune import wrap

        model = wrap(model, cfg.gat, cfg.graph, mode=cfg.network_embedding)
    return model


def count_params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _to(batch: dict, device: torch.device) -> tuple[dict, torch.Tensor, torch.Tensor]:
    inputs = {k: v.to(device, non_blocking=True) for k, v in batch["inputs"].items()}
    return inputs, batch["present"].to(device), batch["target"].to(device)


@torch.no_grad()
def predict(model: torch.nn.Module, dataset, cfg: TrainConfig, device: torch.device,
            info: ddp.DistInfo | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Predictions, per-sample contributions and modality presence for the whole ``dataset``, in order.

    Under DDP each rank scores ``indices[rank::world]``; the pieces are gathered and put
    back in order, so every caller sees the whole split.
    """
    info = info or ddp.DistInfo()
    model.eval()
    idx = ddp.shard_indices(len(dataset), info)
    loader = DataLoader(Subset(dataset, idx), batch_size=max(cfg.batch_size, 64), shuffle=False,
                        num_workers=cfg.num_workers)
    preds, contribs, order, present_all = [], [], [], []
    for batch in loader:
        inputs, present, _ = _to(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            out = model(inputs, present)
        preds.append(out.pred.float().cpu())
        if out.contributions is not None:
            contribs.append(out.contributions.float().cpu())
        order.append(batch["index"])
        present_all.append(batch["present"])
    local = (torch.cat(order).numpy() if order else np.zeros(0, int),
             torch.cat(preds).numpy() if preds else np.zeros(0, np.float32),
             torch.cat(contribs).numpy() if contribs else None,
             torch.cat(present_all).numpy() if present_all else np.zeros((0, len(cfg.modalities)), bool))
    parts = ddp.gather(local, info)
    pos = np.concatenate([p[0] for p in parts])
    pred = np.empty(len(dataset), dtype=np.float64)
    pred[pos] = np.concatenate([p[1] for p in parts])
    present = np.zeros((len(dataset), len(cfg.modalities)), dtype=bool)
    present[pos] = np.concatenate([p[3] for p in parts])
    contrib = None
    if all(p[2] is not None for p in parts) and len(pos):
        contrib = np.empty((len(dataset), parts[0][2].shape[1]), dtype=np.float64)
        contrib[pos] = np.concatenate([p[2] for p in parts])
    return pred, contrib, present


def _scatter_figure(target: np.ndarray, pred: np.ndarray, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(target, pred, s=6, alpha=0.5)
    lo, hi = float(min(target.min(), pred.min())), float(max(target.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("true (normalised)")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def scatter_image(target: np.ndarray, pred: np.ndarray, size: int = 160) -> np.ndarray:
    """Predicted vs true as a ``uint8 [3, size, size]`` image, drawn with numpy in about a millisecond.

    Logged at every evaluation (a matplotlib figure costs ~0.5 s, so that one is drawn only
    when validation improves). x = true, y = predicted, both over the joint range; darker
    pixels hold more videos; the grey diagonal is a perfect prediction.
    """
    img = np.full((size, size), 255, dtype=np.uint8)
    t, p = np.asarray(target, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    diag = np.arange(size)
    img[size - 1 - diag, diag] = 170
    if t.size:
        lo, hi = min(t.min(), p.min()), max(t.max(), p.max())
        span = hi - lo if hi > lo else 1.0
        col = np.clip(((t - lo) / span * (size - 1)).round().astype(int), 0, size - 1)
        row = size - 1 - np.clip(((p - lo) / span * (size - 1)).round().astype(int), 0, size - 1)
        counts = np.zeros((size, size))
        np.add.at(counts, (row, col), 1)
        hit = counts > 0
        img[hit] = (200 * (1 - np.log1p(counts[hit]) / np.log1p(counts.max()))).astype(np.uint8)
    return np.repeat(img[None], 3, axis=0)


def _contrib_means(contrib: np.ndarray | None, present: np.ndarray, modalities: list[str]) -> dict[str, float]:
    """Mean contribution of each modality over the split (absent modalities count as 0)."""
    if contrib is None:
        return {}
    c = np.where(present, contrib, 0.0)
    return {m: float(c[:, j].mean()) for j, m in enumerate(modalities)}


def save_run_inputs(out: Path, cfg: TrainConfig, prep: Prepared) -> None:
    save_toml(out / "config.toml", {"train": cfg})
    write_json(out / "splits.json", {s: [str(v) for v in prep.splits[s]] for s in SPLITS})
    write_json(out / "normalization.json", dataclasses.asdict(prep.normalizer))
    if prep.fitted is not None and prep.fitted.ridge is not None:   # what `predict` applies to new text
        prep.fitted.ridge.save(out)
    if prep.fitted is not None and prep.fitted.gbdt_model is not None:
        prep.fitted.gbdt_model.save(out)


def fit(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, logdir: str | None = None) -> dict:
    """Train, select on validation Spearman, and write the run directory. Returns the metrics."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    info = ddp.init_from_env(cfg.device)
    device = ddp.device_for(info, cfg.device)
    out = Path(out_dir)
    ckpt_path = out / "checkpoint.pt"
    if resume and not ckpt_path.exists():
        raise UserError(f"--resume: no checkpoint at {ckpt_path}")
    if not resume and (out / "metrics.json").exists():
        raise UserError(f"{out} already holds a finished run; choose a new --out or pass --resume")
    check_settings(cfg)
    set_seed(cfg.seed)
    prep = prepare(cfg)
    check_splits(prep, cfg)  # before training: an empty split would only fail after it
    model = build(cfg, prep.input_shapes).to(device)
    if not resume:  # input standardisation is fitted on the training split; resume restores it
        fit_input_stats(model, prep.datasets["train"], cfg, device)
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                             weight_decay=cfg.weight_decay, foreach=True)
    state = {"epoch": 0, "best": -np.inf, "best_epoch": 0, "bad": 0, "history": []}
    if resume:
        ck = torch_load(ckpt_path)
        check_resumable(ck, cfg, ckpt_path)
        try:
            model.load_state_dict(ck["model"])
            optim.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise UserError(f"--resume: {ckpt_path} does not fit the model these settings build "
                            f"({str(e).splitlines()[0][:160]}); train into a new --out") from None
        state = ck["state"]
        torch.set_rng_state(ck["rng"])
    train_model = model
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        torch.manual_seed(cfg.seed + info.rank)  # per-rank dropout; weights were broadcast from rank 0
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_run_inputs(out, cfg, prep)
    writer = tensorboard_writer(logdir or out / "tb") if info.is_main else None
    if info.is_main and prep.missing_media:
        note = (f"{prep.missing_media} of {len(prep.videos)} videos have no extracted "
                f"features; their media modalities are masked (counted as missing_media in metrics.json)")
        print(f"note: {note}")
        writer.add_text("data/missing_media", note)
    train_ds = prep.datasets["train"]
    loss_fn = LOSSES[cfg.loss]
    start = cfg.epochs if state["bad"] >= cfg.patience else state["epoch"]  # resumed after early stop
    bar = progress(range(start, cfg.epochs), desc="train", unit="epoch",
                   initial=state["epoch"], total=cfg.epochs, disable=not info.is_main or None)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        # The same seeded permutation on one process or many: each global batch of
        # `batch_size` is split across ranks, so DDP follows the single-process run.
        sampler = DistributedSampler(train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                     seed=cfg.seed)
        sampler.set_epoch(epoch)
        loader = DataLoader(train_ds, batch_size=max(1, cfg.batch_size // info.world_size), sampler=sampler,
                            num_workers=cfg.num_workers)
        total, n = 0.0, 0
        for batch in loader:
            inputs, present, target = _to(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                pred = train_model(inputs, present).pred
            loss = loss_fn(pred.float(), target.float())
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += loss.item() * len(target)
            n += len(target)
        if info.enabled:  # the epoch's training loss over all ranks
            total, n = (sum(x) for x in zip(*ddp.gather((total, n), info)))
        # Contributions are logged from the validation split: the test split is touched once, at the end.
        val_pred, val_contrib, val_present = predict(model, prep.datasets["val"], cfg, device, info)
        val_t = prep.datasets["val"].targets
        vm = regression_metrics(val_t, val_pred)
        vm["loss"] = float(loss_fn(torch.tensor(val_pred), torch.tensor(val_t, dtype=torch.float64)))
        secs = time.perf_counter() - t0
        score = vm["spearman"] if np.isfinite(vm["spearman"]) else -np.inf
        improved = score > state["best"]
        if improved:
            state.update(best=score, best_epoch=epoch + 1, bad=0)
        else:
            state["bad"] += 1
        contrib = _contrib_means(val_contrib, val_present, cfg.modalities)
        state["history"].append({"epoch": epoch + 1, "train_loss": total / max(n, 1), "val_loss": vm["loss"],
                                 "val_spearman": vm["spearman"], "seconds": secs, "contributions": contrib})
        state["epoch"] = epoch + 1
        if info.is_main:
            writer.add_scalar("loss/train", total / max(n, 1), epoch + 1)
            writer.add_scalar("loss/val", vm["loss"], epoch + 1)
            writer.add_scalar("spearman/val", vm["spearman"], epoch + 1)
            writer.add_scalar("lr", optim.param_groups[0]["lr"], epoch + 1)
            for m, c in contrib.items():
                writer.add_scalar(f"contribution/{m}", c, epoch + 1)
            if len(val_t):  # every evaluation: a cheap numpy image; the matplotlib figure when it improves
                writer.add_image("val/pred_vs_true_every_epoch", scatter_image(val_t, val_pred), epoch + 1)
            if len(val_t) and improved:  # a figure costs ~0.5 s: draw it when the model changes
                writer.add_figure("val/pred_vs_true", _scatter_figure(val_t, val_pred, f"epoch {epoch + 1}"),
                                  epoch + 1)
            if improved or not (out / "model.pt").exists():
                torch_save(out / "model.pt", model_checkpoint(model, cfg, prep, epoch + 1))
            torch_save(ckpt_path, {"model": model.state_dict(), "optimizer": optim.state_dict(), "epoch": epoch + 1,
                                   "args": dataclasses.asdict(cfg), "state": state, "rng": torch.get_rng_state()})
            bar.set_postfix(loss=f"{total / max(n, 1):.4f}", val_rho=f"{vm['spearman']:.3f}")
        ddp.barrier(info)
        if state["bad"] >= cfg.patience:
            break
    metrics = finish(model, cfg, prep, state, out, device, info, writer)
    if writer is not None:
        writer.close()
    ddp.cleanup(info)
    return metrics


def check_splits(prep: Prepared, cfg: TrainConfig) -> None:
    """Every split must hold videos (see splits.check_filled)."""
    check_filled(prep.splits, SplitConfig.of(cfg), prep.videos)


def fit_input_stats(model: torch.nn.Module, dataset, cfg: TrainConfig, device: torch.device) -> None:
    """Fit the encoders' input standardisation (e.g. MFCC scale) on the training split, once."""
    loader = DataLoader(dataset, batch_size=max(cfg.batch_size, 64), shuffle=False, num_workers=cfg.num_workers)
    model.fit_input_stats((inputs, present) for inputs, present, _ in (_to(b, device) for b in loader))


def model_checkpoint(model: torch.nn.Module, cfg: TrainConfig, prep: Prepared, epoch: int) -> dict:
    """``model.pt``: the model's own checkpoint (architecture + weights, frozen ConvLSTM included),
    plus the run settings and normalisation; loadable with weights_only=True."""
    return {**model.checkpoint(), "epoch": epoch, "train_config": dataclasses.asdict(cfg),
            "normalization": dataclasses.asdict(prep.normalizer)}


def load_trained(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a trained model from ``model.pt`` (no other file is needed)."""
    from mdr_graph.fusion_baselines import load_model

    ck = torch_load(path)
    model = load_model(ck)
    if "gat_state" in ck:  # trained with --finetune-gat
        from mdr_graph.train.finetune import wrap

        cfg = ck["train_config"]
        model = wrap(model, cfg["gat"], cfg["graph"], ck["gat_state"], mode=cfg.get("network_embedding", "video"))
    return model.to(device).eval(), ck


def split_predictions(model, cfg, prep: Prepared, device, info=None) -> tuple[pd.DataFrame, dict]:
    """Predictions for every video of every split, and per-split contributions."""
    frames, contribs = [], {}
    for s in SPLITS:
        ds = prep.datasets[s]
        pred, contrib, present = predict(model, ds, cfg, device, info)
        frames.append(pd.DataFrame({"video_id": ds.video_ids, "split": s, "target": ds.targets.astype(np.float64),
                                    "prediction": pred}))
        contribs[s] = _contrib_means(contrib, present, cfg.modalities)
    return pd.concat(frames, ignore_index=True), contribs


def split_metrics(preds: pd.DataFrame) -> dict[str, dict]:
    return {s: regression_metrics(g["target"].to_numpy(), g["prediction"].to_numpy())
            for s, g in preds.groupby("split", sort=False)}


def finish(model, cfg: TrainConfig, prep: Prepared, state: dict, out: Path, device, info, writer) -> dict:
    ddp.barrier(info)  # rank 0 wrote model.pt; every rank reloads the best weights
    best = torch_load(out / "model.pt")
    if "gat_state" in best:  # --finetune-gat: the fusion model and the GAT are stored apart
        model.fusion.load_state_dict(best["model"])
        model.gat.load_state_dict(best["gat_state"])
    else:
        model.load_state_dict(best["model"])
    preds, contribs = split_predictions(model, cfg, prep, device, info)
    per = split_metrics(preds)
    hist = state["history"]
    metrics = {
        "val_spearman": per["val"]["spearman"], "test_spearman": per["test"]["spearman"],
        "test_pearson": per["test"]["pearson"], "test_mse": per["test"]["mse"], "test_mae": per["test"]["mae"],
        "train_spearman": per["train"]["spearman"],
        "contributions": contribs["test"], "params": count_params(model),
        "seconds_per_epoch": float(np.mean([h["seconds"] for h in hist])) if hist else 0.0,
        "seconds_total": float(np.sum([h["seconds"] for h in hist])) if hist else 0.0,
        "epochs": state["epoch"], "best_epoch": state["best_epoch"], "seed": cfg.seed,
        "model": cfg.model, "modalities": list(cfg.modalities), "split": cfg.split,
        "split_sizes": {s: int(len(prep.splits[s])) for s in SPLITS}, "missing_media": prep.missing_media,
        "world_size": info.world_size, "splits": per, "history": hist,
    }
    if info.is_main:
        write_text(out / "predictions.csv", preds.to_csv(index=False))
        write_json(out / "metrics.json", metrics)
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                   for k, v in dataclasses.asdict(cfg).items()}
        writer.add_hparams(hparams, {"hparam/test_spearman": metrics["test_spearman"],
                                     "hparam/val_spearman": metrics["val_spearman"],
                                     "hparam/test_mse": metrics["test_mse"]}, run_name=".")
    return metrics
