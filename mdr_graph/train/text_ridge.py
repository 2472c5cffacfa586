"""The text ridge: a ridge regression on hashed word and character n-grams of caption, hashtags and transcript.

On short, hashtag-heavy captions a linear model on n-grams is the baseline to beat, and on
a few thousand videos a neural text encoder trained end to end with everything else does
not reach it. So the ``text`` modality (``text_features = "ridge"``, the default) reads this
ridge's score, fitted on the training split only and out-of-fold for training rows
(:mod:`mdr_graph.train.oof`), and the ``gbdt`` baseline reads the same score. With
``text_features = "hashed"`` the modality reads the raw hashed counts instead
(:func:`mdr_graph.encoders.text.hash_bag_of_words`) and learns its own linear layer.

Features: scikit-learn's ``HashingVectorizer`` (stateless, so a new video needs nothing
fitted but the coefficients): word 1–2-grams (tokens ``#?\\w+``, so ``#fyp`` and ``fyp``
differ) and ``char_wb`` 2–4-grams, each L2-normalised, ``2**18`` buckets each.

The penalty is fixed (:data:`ALPHA`, or ``text_ridge_alpha``), not picked by out-of-fold
error: a penalty chosen on every training row's out-of-fold error would carry each fold's
targets into that fold's own scores (``tests/train/test_label_features.py`` caught exactly
that). With L2-normalised rows the best penalty varies little: out-of-fold selection over
0.3–10 picked 1–3 on trending-2020-12's random splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.train.label_features import NO_PRIOR
from mdr_graph.train.oof import oof_predict

ALPHA = 3.0
N_FEATURES = 2 ** 18
RIDGE_FILE = "text_ridge.npz"


def hashed_ngrams(texts: list[str]):
    """``scipy.sparse [len(texts), 2 * N_FEATURES]``: word 1–2-grams beside char 2–4-grams."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import HashingVectorizer

    word = HashingVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"#?\w+", n_features=N_FEATURES,
                             alternate_sign=False, norm="l2")
    char = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=N_FEATURES, alternate_sign=False,
                             norm="l2")
    texts = [t if isinstance(t, str) else "" for t in texts]
    return sp.hstack([word.transform(texts), char.transform(texts)]).tocsr()


def _ridge(alpha: float):
    from sklearn.linear_model import Ridge

    return Ridge(alpha=alpha, solver="sparse_cg", tol=1e-4, max_iter=2000)


@dataclass
class TextRidge:
    """The ridge fitted on every training row: what ``predict`` applies to a new video."""

    alpha: float
    intercept: float
    index: np.ndarray      # nonzero coefficient positions
    coef: np.ndarray       # their values

    def predict(self, texts: list[str]) -> np.ndarray:
        x = hashed_ngrams(texts)
        w = np.zeros(x.shape[1])
        w[self.index] = self.coef
        return np.asarray(x @ w).ravel() + self.intercept

    def save(self, run_dir: str | Path) -> None:
        from mdr_graph.io import atomic_path

        with atomic_path(Path(run_dir) / RIDGE_FILE) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, alpha=self.alpha, intercept=self.intercept, index=self.index, coef=self.coef)

    @classmethod
    def load(cls, run_dir: str | Path) -> "TextRidge":
        with np.load(Path(run_dir) / RIDGE_FILE, allow_pickle=False) as z:
            return cls(float(z["alpha"]), float(z["intercept"]), z["index"], z["coef"])


def text_ridge_scores(videos: pd.DataFrame, texts: list[str], target: np.ndarray, train_rows: np.ndarray,
                      split: str, seed: int, folds: int, alpha: float = ALPHA,
                      hashed=None) -> tuple[np.ndarray, TextRidge]:
    """Every row's out-of-fold ridge score, and the ridge fitted on all training rows.

    ``hashed``: ``hashed_ngrams(texts)`` when the caller already has it (the nested stack refits often).
    """
    x = hashed_ngrams(texts) if hashed is None else hashed
    used = np.unique(x.indices)   # only buckets some video uses: ~10x fewer columns, same fit, faster solves
    x = x[:, used]
    y = np.asarray(target, dtype=np.float64)
    train_rows = np.asarray(train_rows, dtype=np.int64)

    def fit_predict(fit_rows, pred_rows):
        return _ridge(alpha).fit(x[fit_rows], y[fit_rows]).predict(x[pred_rows])

    # a row no model may score (the oldest block of a time split) gets the middle of the target range
    scores = oof_predict(fit_predict, videos, train_rows, split, seed, folds, NO_PRIOR)
    full = _ridge(alpha).fit(x[train_rows], y[train_rows]) if len(train_rows) else None
    if full is None:
        return scores, TextRidge(alpha, NO_PRIOR, np.zeros(0, np.int64), np.zeros(0))
    nz = np.flatnonzero(full.coef_)
    return scores, TextRidge(alpha, float(full.intercept_), used[nz].astype(np.int64), full.coef_[nz].astype(np.float64))
