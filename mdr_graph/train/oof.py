"""Out-of-fold fitting: label-derived inputs that never see their own row's target.

Stacking a fitted model's score into another model (the text ridge's score into the
fusion model, the gbdt's score into the stacked fusion) is honest only if no row's input
was fitted on that row's target, and no held-out row's target was read at all. The rule of
who may see whom is :func:`mdr_graph.train.label_features.visibility`, shared with the
label-aware features, so every label-derived input of a run follows one rule:

- ``fold`` (random and song splits): training rows of fold ``g`` are predicted by a model
  fitted on the other folds; every other row by a model fitted on all training rows.
- ``past`` (time split): training rows are cut into ``folds`` chronological blocks; block
  ``b`` is predicted by a model fitted on the rows of blocks ``< b`` posted strictly before
  block ``b`` starts (block 0 has no past and gets ``fallback``); every other row by a
  model fitted on all training rows, which are all older than it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from mdr_graph.train.label_features import posting_days, visibility

# fit(train_index, predict_index) -> predictions for predict_index (indices into the run's rows)
FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]


def oof_pairs(videos: pd.DataFrame, train_rows: np.ndarray, split: str, seed: int,
              folds: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(fit_rows, predict_rows)`` covering every training row once, by the rule above.

    Under ``past`` the first block (and any block whose past is empty) comes with an empty
    ``fit_rows``: the caller decides what "nothing known" gives (a fallback score, or a graph
    view in which no video writes)."""
    train_rows = np.asarray(train_rows, dtype=np.int64)
    if len(train_rows) == 0:
        return
    rule, group = visibility(videos, train_rows, split, seed, folds)
    if rule == "fold":
        for g in np.unique(group[train_rows]):
            yield train_rows[group[train_rows] != g], train_rows[group[train_rows] == g]
        return
    t = np.nan_to_num(posting_days(videos), nan=-np.inf)
    order = train_rows[np.lexsort((train_rows, t[train_rows]))]
    blocks = np.array_split(order, max(2, min(int(folds), len(order))))
    for b in range(len(blocks)):
        past = np.concatenate(blocks[:b]) if b else order[:0]
        if len(blocks[b]):
            yield past[t[past] < t[blocks[b]].min()], blocks[b]   # ties with the block's first video are not its past


def oof_predict(fit_predict: FitPredict, videos: pd.DataFrame, train_rows: np.ndarray, split: str, seed: int,
                folds: int, fallback: float, held_out: bool = True) -> np.ndarray:
    """Every row's prediction by a model that never saw its target (see the module docstring).

    ``held_out=False`` leaves the rows outside ``train_rows`` at ``fallback`` (the caller scores them).
    """
    n = len(videos)
    train_rows = np.asarray(train_rows, dtype=np.int64)
    out = np.full(n, float(fallback))
    held = np.setdiff1d(np.arange(n), train_rows)
    if len(train_rows) == 0:
        return out
    if len(held) and held_out:
        out[held] = fit_predict(train_rows, held)
    for fit_rows, inside in oof_pairs(videos, train_rows, split, seed, folds):
        if len(fit_rows):   # a training row with nothing to learn from keeps the fallback
            out[inside] = fit_predict(fit_rows, inside)
    return out
