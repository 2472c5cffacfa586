"""The label-derived inputs of a run: the ``labels`` modality, the text ridge's score, the stacked gbdt.

They are fitted on the training split's targets (out-of-fold for its rows, see
:mod:`mdr_graph.train.oof`) and are the one costly part of preparing tabular inputs: the
stacked gbdt refits every other input once per fold. Every model of a comparison on the
same split and seed needs the very same arrays, so :func:`fitted_inputs` keeps them in a
cache directory when ``cfg.fitted_cache`` names one (``compare`` sets ``DIR/fitted``). The
cache key hashes everything the arrays depend on (the training rows' ids and targets, the
keys, times and texts of every row, the settings), so a stale entry is never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.encoders.text import video_texts
from mdr_graph.train.config import TrainConfig


def label_derived(mods) -> list[str]:
    """Those of ``mods`` whose inputs are fitted on the training targets (source ``fitted`` in the registry)."""
    from mdr_graph.modalities import specs

    return [s.name for s in specs(mods) if s.source == "fitted"]


@dataclass
class Fitted:
    """Label-derived inputs of every row of a run, fitted on its training split (out-of-fold for its rows)."""

    labels: np.ndarray | None = None       # [n, d_labels] the `labels` modality
    text: np.ndarray | None = None         # [n, 1] the text ridge's score (text_features = "ridge")
    text_present: np.ndarray | None = None  # [n] the video has any text at all
    ridge: object = None                   # the TextRidge on all training rows, for `predict`
    gbdt: np.ndarray | None = None         # [n, 1] the stacked gbdt's score (the `gbdt` modality)
    gbdt_model: object = None              # the gbdt on all training rows, for `predict`

    def rows(self, index: np.ndarray) -> "Fitted":
        pick = lambda a: None if a is None else a[index]   # noqa: E731
        return Fitted(pick(self.labels), pick(self.text), pick(self.text_present), self.ridge, pick(self.gbdt),
                      self.gbdt_model)


def fit_label_inputs(cfg: TrainConfig, videos: pd.DataFrame, target: np.ndarray, train_rows: np.ndarray,
                     transcripts: dict[str, str] | None = None, hashed=None) -> Fitted:
    """The ``labels`` modality and the text ridge's score for every row of ``videos``.

    Only ``target[train_rows]`` is read: validation and test targets never reach an input.
    """
    fitted = Fitted()
    stack = "gbdt" in cfg.modalities   # the stack's final gbdt reads the labels features and the text ridge
    if "labels" in cfg.modalities or stack:
        from mdr_graph.train.label_features import LabelFeatureConfig, label_features

        fitted.labels = label_features(videos, target, train_rows, cfg.split, cfg.seed, LabelFeatureConfig.of(cfg))
    if ("text" in cfg.modalities and cfg.text_features == "ridge") or stack:
        from mdr_graph.train.text_ridge import hashed_ngrams, text_ridge_scores

        texts = video_texts(videos, transcripts)
        hashed = hashed_ngrams(texts) if hashed is None else hashed
        score, fitted.ridge = text_ridge_scores(videos, texts, target, train_rows, cfg.split, cfg.seed, cfg.oof_folds,
                                                hashed=hashed)
        fitted.text = score[:, None].astype(np.float32)
        fitted.text_present = np.array([bool(t.strip()) for t in texts])
    if "gbdt" in cfg.modalities:
        from mdr_graph.train.gbdt import gbdt_stack_scores

        score, fitted.gbdt_model = gbdt_stack_scores(cfg, videos, target, train_rows, transcripts, hashed, fitted)
        fitted.gbdt = score[:, None].astype(np.float32)
    return fitted


def store_transcripts(store, ids) -> dict[str, str]:
    """Whisper's transcript of each video the feature store holds one for."""
    if store is None:
        return {}
    out = {}
    for vid in ids:
        feats = store.get(vid) if vid in store else None
        if feats is not None and feats.get("transcript"):
            out[vid] = feats["transcript"]
    return out


def _key(cfg: TrainConfig, videos: pd.DataFrame, target: np.ndarray, train_rows: np.ndarray,
         transcripts: dict[str, str] | None) -> str:
    h = hashlib.sha256()
    knobs = {k: getattr(cfg, k) for k in ("split", "seed", "oof_folds", "label_smoothing", "label_recency_days",
                                          "label_max_hashtag_df", "text_features")}
    knobs["modalities"] = sorted(label_derived(cfg.modalities))
    if "gbdt" in knobs["modalities"]:   # the stack's own settings: a cache of another stack is not this one
        from mdr_graph.train.gbdt import STACK_BAG, STACK_HOLDOUT

        knobs["stack"] = [STACK_BAG, STACK_HOLDOUT]
    h.update(json.dumps(knobs, sort_keys=True).encode())
    cols = [c for c in ("video_id", "song_id", "author_id", "create_time", "caption") if c in videos]
    h.update(pd.util.hash_pandas_object(videos[cols].astype(str), index=False).to_numpy().tobytes())
    if "hashtags" in videos:
        h.update("\n".join(map(str, videos["hashtags"])).encode())
    h.update(np.asarray(train_rows, np.int64).tobytes())
    h.update(np.asarray(target, np.float64)[np.asarray(train_rows, np.int64)].tobytes())
    h.update(json.dumps(transcripts or {}, sort_keys=True).encode())
    return h.hexdigest()[:24]


def _save(path: Path, f: Fitted) -> None:
    from mdr_graph.io import atomic_path

    arrays = {k: v for k, v in (("labels", f.labels), ("text", f.text), ("text_present", f.text_present),
                                ("gbdt", f.gbdt)) if v is not None}
    if f.ridge is not None:
        arrays.update(ridge_alpha=f.ridge.alpha, ridge_intercept=f.ridge.intercept, ridge_index=f.ridge.index,
                      ridge_coef=f.ridge.coef)
    if f.gbdt_model is not None:
        arrays["gbdt_model"] = np.array(f.gbdt_model.model_strs)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _load(path: Path) -> Fitted:
    from mdr_graph.train.text_ridge import TextRidge

    with np.load(path, allow_pickle=False) as z:
        get = lambda k: z[k] if k in z.files else None   # noqa: E731
        f = Fitted(get("labels"), get("text"), get("text_present"), None, get("gbdt"))
        if "ridge_alpha" in z.files:
            f.ridge = TextRidge(float(z["ridge_alpha"]), float(z["ridge_intercept"]), z["ridge_index"], z["ridge_coef"])
        if "gbdt_model" in z.files:
            from mdr_graph.train.gbdt import Stacked

            f.gbdt_model = Stacked.from_strings(z["gbdt_model"])
    return f


def fitted_inputs(cfg: TrainConfig, videos: pd.DataFrame, target: np.ndarray, train_rows: np.ndarray,
                  transcripts: dict[str, str] | None = None) -> Fitted:
    """:func:`fit_label_inputs`, through the cache of ``cfg.fitted_cache`` when it names one."""
    if not label_derived(cfg.modalities):
        return Fitted()
    if not cfg.fitted_cache:
        return fit_label_inputs(cfg, videos, target, train_rows, transcripts)
    path = Path(cfg.fitted_cache) / f"{_key(cfg, videos, target, train_rows, transcripts)}.npz"
    if path.exists():
        return _load(path)
    fitted = fit_label_inputs(cfg, videos, target, train_rows, transcripts)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(path, fitted)
    return fitted
