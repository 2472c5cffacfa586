"""The training loop of the fusion model, readable top to bottom.

``fit(cfg, out_dir)``: split → normalise on train → Adam epochs with early stopping on
validation Spearman → best checkpoint → predictions for every split → metrics.json,
TensorBoard (scalars, validation contributions, scatter, hparams). The test split is
predicted once, at the end; per-epoch contributions are the validation split's. Every
epoch also writes ``checkpoint.pt`` (model, optimizer, settings, state, RNG states), so
``resume=True`` continues an interrupted run and reproduces the uninterrupted one exactly.
The epoch loop, early stopping, checkpoint and resume are :mod:`mdr_graph.trainloop`'s,
the run files :mod:`mdr_graph.train.run_files`', scoring :mod:`mdr_graph.train.inference`'s.
Under torchrun the model is wrapped in DistributedDataParallel; rank 0 alone writes.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from mdr_graph import distributed as ddp
from mdr_graph import trainloop
from mdr_graph.errors import UserError
from mdr_graph.fusion_config import RESIDUAL_CLAMP, fusion_config
from mdr_graph.io import torch_load, torch_save
from mdr_graph.runlog import set_seed, tensorboard_writer
from mdr_graph.train import inference
from mdr_graph.train.config import TrainConfig
from mdr_graph.train.inference import contrib_means, to_device
from mdr_graph.train.prepare import Prepared, prepare
from mdr_graph.train.metrics import regression_metrics
from mdr_graph.splits import SPLITS, SplitConfig, check_filled
from mdr_graph.train.run_files import run_metrics, write_run_inputs, write_run_result
from mdr_graph.train.runcheck import RUN_ONLY, check_settings

LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": lambda p, t: F.huber_loss(p, t, delta=0.1)}


def build(cfg: TrainConfig, prep: Prepared) -> torch.nn.Module:
    from mdr_graph.models import build_model

    model = build_model(cfg.model, fusion_config(cfg), prep.input_shapes)
    if cfg.finetune_gat and "network" in cfg.modalities:
        from mdr_graph.train.finetune import GraphViews, wrap

        train_rows = prep.datasets["train"].graph_rows   # the training videos' rows of prep.videos
        model = wrap(model, cfg.gat, cfg.graph, mode=cfg.network_embedding,
                     views=GraphViews.of_run(prep.videos, train_rows, cfg.split, cfg.seed, cfg.oof_folds))
    return model


def residual_of(model: torch.nn.Module) -> str:
    """The modality whose score ``model`` corrects (``FusionConfig.residual``), or ""."""
    return getattr(getattr(model, "fusion", model), "residual", "") or ""


def residual_report(name: str, preds, prep: Prepared) -> dict:
    """What the correction of a residual model did, on the test split: the corrected score's own
    Spearman beside the model's, and the spread of the correction (logit units; 0 = none kept).
    Attention contributions do not show a score that passes straight through, so this does."""
    test = preds[preds["split"] == "test"]
    base = np.clip(prep.datasets["test"].tabular[name].values[:, 0].astype(np.float64), RESIDUAL_CLAMP,
                   1 - RESIDUAL_CLAMP)   # the score exactly as the model reads it
    pred = np.clip(test["prediction"].to_numpy(np.float64), 1e-7, 1 - 1e-7)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    return {"modality": name, "test_spearman_of_" + name: regression_metrics(test["target"].to_numpy(), base)["spearman"],
            "correction_std": float(np.std(logit(pred) - logit(base))) if len(base) else 0.0}


def count_params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


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


def save_run_inputs(out: Path, cfg: TrainConfig, prep: Prepared) -> None:
    write_run_inputs(out, cfg, prep.splits, dataclasses.asdict(prep.normalizer))
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
    ckpt_path = out / trainloop.CHECKPOINT_FILE
    if resume and not ckpt_path.exists():
        raise UserError(f"--resume: no checkpoint at {ckpt_path}")
    if not resume and (out / "metrics.json").exists():
        raise UserError(f"{out} already holds a finished run; choose a new --out or pass --resume")
    check_settings(cfg)
    set_seed(cfg.seed)
    prep = prepare(cfg)
    check_splits(prep, cfg)  # before training: an empty split would only fail after it
    model = build(cfg, prep).to(device)
    if not resume:  # input standardisation is fitted on the training split; resume restores it
        fit_input_stats(model, prep.datasets["train"], cfg, device)
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                             weight_decay=cfg.weight_decay, foreach=True)
    state = trainloop.TrainState(higher_is_better=True)  # early stopping on validation Spearman
    if resume:
        ck = trainloop.load_checkpoint(ckpt_path, "train")
        trainloop.check_same_settings(ck, cfg, RUN_ONLY, ckpt_path)
        state = trainloop.resume(ck, model, optim, ckpt_path, info.rank)
    train_model = model
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        if not resume:
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
    val_ds = prep.datasets["val"]
    loss_fn = LOSSES[cfg.loss]
    last = {}  # the epoch's validation predictions, for the scatter plots

    def validate() -> tuple[np.ndarray, np.ndarray | None, np.ndarray, dict]:
        # Contributions are logged from the validation split: the test split is touched once, at the end.
        pred, contrib, present = inference.predict(model, val_ds, cfg, device, info)
        return pred, contrib, present, regression_metrics(val_ds.targets, pred)

    def epoch_body(epoch: int) -> tuple[float, dict]:
        t0 = time.perf_counter()
        train_loss = train_epoch(train_model, optim, prep.datasets["train"], loss_fn, cfg, epoch, info, device)
        val_pred, val_contrib, val_present, vm = validate()
        val_loss = float(loss_fn(torch.tensor(val_pred), torch.tensor(val_ds.targets, dtype=torch.float64)))
        last["pred"] = val_pred
        return vm["spearman"], {"train_loss": train_loss, "val_loss": val_loss, "val_spearman": vm["spearman"],
                                "seconds": time.perf_counter() - t0,
                                "contributions": contrib_means(val_contrib, val_present, cfg.modalities)}

    def end_epoch(epoch: int, record: dict, improved: bool) -> None:
        rngs = ddp.gather(trainloop.rng_state(), info)  # each rank's generators, for --resume
        if info.is_main:
            log_epoch(writer, epoch, record, optim, val_ds.targets, last["pred"], improved)
            if improved or not (out / "model.pt").exists():
                torch_save(out / "model.pt", model_checkpoint(model, cfg, prep, epoch))
            trainloop.save_checkpoint(ckpt_path, model, optim, cfg, state, rngs)
        ddp.barrier(info)

    if not resume and residual_of(model):
        # A residual model starts exactly at the score it corrects (its last layer is zero). That
        # start is a candidate like any epoch: a correction that does not improve validation
        # Spearman is not kept, and best_epoch 0 in metrics.json says so.
        state.improve(validate()[3]["spearman"], 0)
        if info.is_main:
            writer.add_scalar("spearman/val", state.best, 0)
            torch_save(out / "model.pt", model_checkpoint(model, cfg, prep, 0))
    trainloop.run_epochs(epoch_body, end_epoch, state, cfg.epochs, cfg.patience, desc="train", show=info.is_main)
    metrics = finish(model, cfg, prep, state, out, device, info, writer)
    if writer is not None:
        writer.close()
    ddp.cleanup(info)
    return metrics


def train_epoch(model: torch.nn.Module, optim: torch.optim.Optimizer, dataset, loss_fn, cfg: TrainConfig,
                epoch: int, info: ddp.DistInfo, device: torch.device) -> float:
    """One pass over the training split; returns the mean training loss per video (over all ranks)."""
    model.train()
    views = getattr(getattr(model, "module", model), "views", None)   # --finetune-gat (under DDP: .module)
    if views is not None and dataset.graph_rows is not None:
        # one GAT pass per view a batch reads: draw each batch from one view (finetune.view_batches)
        from mdr_graph.train.finetune import view_batches

        batches = view_batches(views.view_of.numpy()[dataset.graph_rows], cfg.batch_size, cfg.seed, epoch,
                               info.rank, info.world_size)
        loader = DataLoader(dataset, batch_sampler=batches, num_workers=cfg.num_workers)
    else:
        # The same seeded permutation on one process or many: each global batch of
        # `batch_size` is split across ranks, so DDP follows the single-process run.
        sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                     seed=cfg.seed)
        sampler.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=max(1, cfg.batch_size // info.world_size), sampler=sampler,
                            num_workers=cfg.num_workers)
    total, n = 0.0, 0
    for batch in loader:
        inputs, present, target = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            pred = model(inputs, present).pred
        loss = loss_fn(pred.float(), target.float())
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        total += loss.item() * len(target)
        n += len(target)
    if info.enabled:  # the epoch's training loss over all ranks
        total, n = (sum(x) for x in zip(*ddp.gather((total, n), info)))
    return total / max(n, 1)


def log_epoch(writer, epoch: int, record: dict, optim, val_target: np.ndarray, val_pred: np.ndarray,
              improved: bool) -> None:
    """TensorBoard: losses, validation Spearman, learning rate, validation contributions and scatter plots."""
    writer.add_scalar("loss/train", record["train_loss"], epoch)
    writer.add_scalar("loss/val", record["val_loss"], epoch)
    writer.add_scalar("spearman/val", record["val_spearman"], epoch)
    writer.add_scalar("lr", optim.param_groups[0]["lr"], epoch)
    for m, c in record["contributions"].items():
        writer.add_scalar(f"contribution/{m}", c, epoch)
    if len(val_target):  # every evaluation: a cheap numpy image; the matplotlib figure when it improves
        writer.add_image("val/pred_vs_true_every_epoch", scatter_image(val_target, val_pred), epoch)
    if len(val_target) and improved:  # a figure costs ~0.5 s: draw it when the model changes
        writer.add_figure("val/pred_vs_true", _scatter_figure(val_target, val_pred, f"epoch {epoch}"), epoch)


def check_splits(prep: Prepared, cfg: TrainConfig) -> None:
    """Every split must hold videos (see splits.check_filled)."""
    check_filled(prep.splits, SplitConfig.of(cfg), prep.videos)


def fit_input_stats(model: torch.nn.Module, dataset, cfg: TrainConfig, device: torch.device) -> None:
    """Fit the encoders' input standardisation (e.g. MFCC scale) on the training split, once."""
    loader = DataLoader(dataset, batch_size=max(cfg.batch_size, 64), shuffle=False, num_workers=cfg.num_workers)
    model.fit_input_stats((inputs, present) for inputs, present, _ in (to_device(b, device) for b in loader))


def model_checkpoint(model: torch.nn.Module, cfg: TrainConfig, prep: Prepared, epoch: int) -> dict:
    """``model.pt``: the model's own checkpoint (architecture + weights, frozen ConvLSTM included),
    plus the run settings and normalisation; loadable with weights_only=True."""
    return {**model.checkpoint(), "epoch": epoch, "train_config": dataclasses.asdict(cfg),
            "normalization": dataclasses.asdict(prep.normalizer)}


def finish(model, cfg: TrainConfig, prep: Prepared, state: trainloop.TrainState, out: Path, device, info,
           writer) -> dict:
    ddp.barrier(info)  # rank 0 wrote model.pt; every rank reloads the best weights
    best = torch_load(out / "model.pt")
    if "gat_state" in best:  # --finetune-gat: the fusion model and the GAT are stored apart
        model.fusion.load_state_dict(best["model"])
        model.gat.load_state_dict(best["gat_state"])
    else:
        model.load_state_dict(best["model"])
    preds, contribs = inference.split_predictions(model, cfg, prep, device, info)
    secs = [h["seconds"] for h in state.history]
    residual = residual_of(model)
    metrics = run_metrics(preds, prep.splits, cfg=cfg, model=cfg.model, modalities=cfg.modalities,
                          params=count_params(model), seconds_per_epoch=float(np.mean(secs)) if secs else 0.0,
                          seconds_total=float(np.sum(secs)) if secs else 0.0, epochs=state.epoch,
                          best_epoch=state.best_epoch, contributions=contribs["test"],
                          missing_media=prep.missing_media, world_size=info.world_size, history=state.history,
                          **({"residual": residual_report(residual, preds, prep)} if residual else {}))
    if info.is_main:
        write_run_result(out, preds, metrics)
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                   for k, v in dataclasses.asdict(cfg).items()}
        writer.add_hparams(hparams, {"hparam/test_spearman": metrics["test_spearman"],
                                     "hparam/val_spearman": metrics["val_spearman"],
                                     "hparam/test_mse": metrics["test_mse"]}, run_name=".")
    return metrics
