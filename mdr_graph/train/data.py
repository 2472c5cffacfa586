"""Assemble each video's model inputs from the graph, the frozen GAT and the feature shards.

Tabular modalities (``network``, ``meta``) are small and held in memory; media
modalities (frames, MFCC, filter banks, Whisper) are read lazily, per item, from the
feature store, so a corpus never has to fit in memory. A modality that a video lacks
(no file, no audio track, extraction error) is marked absent in ``present`` and is
masked out of attention by the model; its tensor is zeros only so that batches stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from mdr_graph.errors import UserError

TABULAR_MODALITIES = ("network", "meta", "labels", "text", "gbdt")
MEDIA_MODALITIES = {"vit": "frames", "convlstm": "frames", "mfcc": "mfcc", "fbank": "fbank", "whisper": "whisper"}
AUDIO_KEYS = ("mfcc", "fbank", "whisper")
ALL_MODALITIES = ("network", "labels", "meta", "text", "gbdt", "mfcc", "fbank", "whisper", "vit", "convlstm")

MediaLookup = Callable[[str], "dict | None"]


def parse_modalities(text: str | list[str]) -> list[str]:
    mods = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in mods if m not in ALL_MODALITIES]
    if not mods or unknown:
        raise UserError(f"unknown or empty modalities {unknown or mods}; choose from {', '.join(ALL_MODALITIES)}")
    if len(set(mods)) != len(mods):
        raise UserError(f"modality listed twice in {','.join(mods)}")
    return mods


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


def network_matrix(videos: pd.DataFrame, emb: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings aligned with ``videos`` rows, and which rows have one."""
    lookup = dict(zip(emb["video_id"].astype(str), emb["embedding"]))
    dim = len(next(iter(lookup.values()))) if lookup else 0
    mat = np.zeros((len(videos), dim), dtype=np.float32)
    have = np.zeros(len(videos), dtype=bool)
    for i, vid in enumerate(videos["video_id"].astype(str)):
        e = lookup.get(vid)
        if e is not None:
            mat[i] = np.asarray(e, dtype=np.float32)
            have[i] = True
    return mat, have


class PopularityDataset(torch.utils.data.Dataset):
    """One item per video: ``{"index", "target", "present" [M], "inputs": {modality: tensor}}``."""

    def __init__(self, video_ids: list[str], targets: np.ndarray, modalities: list[str],
                 input_shapes: dict[str, tuple], tabular: dict[str, np.ndarray], tabular_present: dict[str, np.ndarray],
                 texts: list[str] | None = None, text_dim: int = 0, media: MediaLookup | None = None,
                 graph_rows: np.ndarray | None = None):
        self.video_ids = [str(v) for v in video_ids]
        self.targets = np.asarray(targets, dtype=np.float32)
        self.modalities = list(modalities)
        self.input_shapes = input_shapes
        self.tabular = tabular
        self.tabular_present = tabular_present
        self.texts = texts
        self.text_dim = text_dim
        self.media = media
        self.media_mods = [m for m in self.modalities if m in MEDIA_MODALITIES]
        self.graph_rows = graph_rows  # node index of each video, when the GAT is fine-tuned

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> dict:
        from mdr_graph.encoders.text import hash_bag_of_words

        inputs: dict[str, torch.Tensor] = {}
        present = []
        needs_media = self.media_mods or ("text" in self.modalities and "text" not in self.tabular)
        feats = self.media(self.video_ids[i]) if (self.media is not None and needs_media) else None
        for m in self.modalities:
            if m in self.tabular:   # network, meta, labels; text when it is the ridge's score
                inputs[m] = torch.from_numpy(self.tabular[m][i])
                present.append(bool(self.tabular_present[m][i]))
            elif m == "text":
                text = self.texts[i] if self.texts else ""
                if feats is not None and feats.get("transcript"):
                    text = f"{text} {feats['transcript']}"
                inputs[m] = hash_bag_of_words([text], self.text_dim)[0]
                present.append(bool(text.strip()))
            else:
                key = MEDIA_MODALITIES[m]
                ok = feats is not None and feats.get(key) is not None
                if ok and key in AUDIO_KEYS:
                    ok = bool(feats.get("has_audio", True))
                if ok:
                    t = torch.as_tensor(feats[key])
                    t = t if key == "frames" else t.float()
                    if tuple(t.shape) != tuple(self.input_shapes[m]):
                        raise ValueError(f"video {self.video_ids[i]}: {key} has shape {tuple(t.shape)}, "
                                         f"expected {tuple(self.input_shapes[m])}; were features extracted with "
                                         f"different settings?")
                    inputs[m] = t
                else:
                    dtype = torch.uint8 if key == "frames" else torch.float32
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
        if m not in MEDIA_MODALITIES:
            continue
        key = MEDIA_MODALITIES[m]
        if sample is None or sample.get(key) is None:
            raise UserError(f"modality {m!r} needs {key!r} features, which the feature store does not have; "
                            f"re-run `mdr-graph extract` with the option that produces them"
                            + (" (--whisper PATH)" if key == "whisper" else " (--fbank)" if key == "fbank" else ""))
        shapes[m] = tuple(torch.as_tensor(sample[key]).shape)
    return shapes
