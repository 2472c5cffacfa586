"""The dataset of a run's videos (one item per video, every modality's input) and the target/metadata normaliser.

Tabular modalities (see :mod:`mdr_graph.modalities`) are small and held in memory; media
modalities (frames, MFCC, filter banks, Whisper) are read lazily, per item, from the
feature store, so a corpus never has to fit in memory. A modality that a video lacks
(no file, no audio track, extraction error) is marked absent in ``present`` and is
masked out of attention by the model; its tensor is zeros only so that batches stack.
How the inputs are computed for a split is :mod:`mdr_graph.train.prepare`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from mdr_graph.errors import UserError
from mdr_graph.modalities import Columns, HashedText, check_modality

MediaLookup = Callable[[str], "dict | None"]


@dataclass
class Normalizer:
    """Statistics fitted on the training split only, saved with the run."""

    target_min: float
    target_max: float
    meta_mean: list[float]
    meta_std: list[float]

    @classmethod
    def fit(cls, train_target: np.ndarray, train_meta: np.ndarray) -> "Normalizer":
        lo, hi = float(np.min(train_target)), float(np.max(train_target))
        if hi <= lo:
            hi = lo + 1.0
        std = train_meta.std(axis=0)
        return cls(lo, hi, train_meta.mean(axis=0).tolist(), np.where(std > 1e-8, std, 1.0).tolist())

    def target(self, raw: np.ndarray) -> np.ndarray:
        return (np.asarray(raw, dtype=np.float64) - self.target_min) / (self.target_max - self.target_min)

    def target_inverse(self, norm: np.ndarray) -> np.ndarray:
        return np.asarray(norm, dtype=np.float64) * (self.target_max - self.target_min) + self.target_min

    def meta(self, m: np.ndarray) -> np.ndarray:
        return ((m - np.asarray(self.meta_mean)) / np.asarray(self.meta_std)).astype(np.float32)


class PopularityDataset(torch.utils.data.Dataset):
    """One item per video: ``{"index", "target", "present" [M], "inputs": {modality: tensor}}``.

    ``tabular`` holds each in-memory modality's :class:`~mdr_graph.modalities.Columns`,
    ``per_item`` the inputs computed per item (the hashed text); every other modality is
    read from the feature store through ``media``.
    """

    def __init__(self, video_ids: list[str], targets: np.ndarray, modalities: list[str],
                 input_shapes: dict[str, tuple], tabular: dict[str, Columns],
                 per_item: dict[str, HashedText] | None = None, media: MediaLookup | None = None,
                 graph_rows: np.ndarray | None = None):
        self.video_ids = [str(v) for v in video_ids]
        self.targets = np.asarray(targets, dtype=np.float32)
        self.modalities = list(modalities)
        self.input_shapes = input_shapes
        self.tabular = tabular
        self.per_item = dict(per_item or {})
        self.media = media
        # (store key, absent without audio, dtype) of each media modality
        self.store = {m: (s.store_key, s.audio, s.dtype) for m in self.modalities
                      if (s := check_modality(m)).kind == "media"}
        self.needs_store = bool(self.store) or any(p.needs_store for p in self.per_item.values())
        self.graph_rows = graph_rows  # node index of each video, when the GAT is fine-tuned

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> dict:
        inputs: dict[str, torch.Tensor] = {}
        present = []
        feats = self.media(self.video_ids[i]) if (self.media is not None and self.needs_store) else None
        for m in self.modalities:
            if m in self.tabular:
                inputs[m] = torch.from_numpy(self.tabular[m].values[i])
                present.append(bool(self.tabular[m].present[i]))
            elif m in self.per_item:
                inputs[m], ok = self.per_item[m](i, feats)
                present.append(ok)
            else:
                key, audio, dtype = self.store[m]
                ok = feats is not None and feats.get(key) is not None
                if ok and audio:
                    ok = bool(feats.get("has_audio", True))
                if ok:
                    t = torch.as_tensor(feats[key]).to(dtype)
                    if tuple(t.shape) != tuple(self.input_shapes[m]):
                        raise ValueError(f"video {self.video_ids[i]}: {key} has shape {tuple(t.shape)}, "
                                         f"expected {tuple(self.input_shapes[m])}; were features extracted with "
                                         f"different settings?")
                    inputs[m] = t
                else:
                    inputs[m] = torch.zeros(self.input_shapes[m], dtype=dtype)
                present.append(ok)
        if self.graph_rows is not None:
            inputs["network_index"] = torch.tensor(int(self.graph_rows[i]))
        return {"index": i, "target": torch.tensor(self.targets[i]), "present": torch.tensor(present),
                "inputs": inputs}


def media_input_shapes(modalities: list[str], sample: dict | None) -> dict[str, tuple]:
    """Per-sample shapes of the media modalities, read from one extracted item."""
    shapes: dict[str, tuple] = {}
    for m in modalities:
        spec = check_modality(m)
        if spec.kind != "media":
            continue
        if sample is None or sample.get(spec.store_key) is None:
            raise UserError(f"modality {m!r} needs {spec.store_key!r} features, which the feature store does not "
                            f"have; re-run {spec.extract_command()}")
        shapes[m] = tuple(torch.as_tensor(sample[spec.store_key]).shape)
    return shapes
