"""Scoring with a trained fusion model: what ``train``, ``evaluate`` and ``predict`` share.

Kept apart from the training loop so that ``evaluate`` and ``predict`` import only this:
rebuild a model from ``model.pt``, score a dataset (sharded under DDP, gathered in order),
and the per-split predictions table with each split's mean modality contributions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from mdr_graph import distributed as ddp
from mdr_graph.io import torch_load
from mdr_graph.train.config import TrainConfig
from mdr_graph.splits import SPLITS


def to_device(batch: dict, device: torch.device) -> tuple[dict, torch.Tensor, torch.Tensor]:
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
        inputs, present, _ = to_device(batch, device)
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


def contrib_means(contrib: np.ndarray | None, present: np.ndarray, modalities: list[str]) -> dict[str, float]:
    """Mean contribution of each modality over the split (absent modalities count as 0)."""
    if contrib is None:
        return {}
    c = np.where(present, contrib, 0.0)
    return {m: float(c[:, j].mean()) for j, m in enumerate(modalities)}


def load_trained(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a trained model from ``model.pt`` (no other file is needed)."""
    from mdr_graph.models import load_model

    ck = torch_load(path)
    model = load_model(ck)
    if "gat_state" in ck:  # trained with --finetune-gat
        from mdr_graph.train.finetune import GraphViews, wrap

        cfg = ck["train_config"]
        views = GraphViews.from_state(ck["gat_views"]) if "gat_views" in ck else None   # none before the views
        model = wrap(model, cfg["gat"], cfg["graph"], ck["gat_state"], mode=cfg.get("network_embedding", "video"),
                     views=views)
    return model.to(device).eval(), ck


def split_predictions(model, cfg, prep, device, info=None) -> tuple[pd.DataFrame, dict]:
    """Predictions for every video of every split, and per-split contributions."""
    frames, contribs = [], {}
    for s in SPLITS:
        ds = prep.datasets[s]
        pred, contrib, present = predict(model, ds, cfg, device, info)
        frames.append(pd.DataFrame({"video_id": ds.video_ids, "split": s, "target": ds.targets.astype(np.float64),
                                    "prediction": pred}))
        contribs[s] = contrib_means(contrib, present, cfg.modalities)
    return pd.concat(frames, ignore_index=True), contribs
