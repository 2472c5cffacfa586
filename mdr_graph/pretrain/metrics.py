"""Ranking metrics for link prediction, in NumPy (scikit-learn is not a dependency).

Definitions follow scikit-learn's so numbers are comparable with published work:

- ROC AUC is the Mann-Whitney statistic: the probability that a random positive
  outscores a random negative, ties counting one half (average ranks).
- Average precision is the step-wise sum ``sum_k (R_k - R_{k-1}) P_k`` over the distinct
  score thresholds, highest first (no interpolation), so tied scores form one step.
- The per-query ranks (MRR, hits@k) answer "which song does this video use?": the true
  song's rank among all songs, ties averaged so a constant scorer gets no free credit.
"""

from __future__ import annotations

import numpy as np


def _as_arrays(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, s


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` in ascending order, tied values sharing their mean rank."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    sorted_v = values[order]
    # start index of each run of equal values
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], sorted_v.size]
    mean_rank = (starts + ends + 1) / 2.0          # mean of 1-based positions starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve; ``nan`` when only one class is present."""
    y, s = _as_arrays(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = average_ranks(s)
    return float((r[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(labels, scores) -> float:
    """Average precision (area under the step-wise precision-recall curve); ``nan`` without positives."""
    y, s = _as_arrays(labels, scores)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    # last index of each distinct threshold
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def brier(labels, probs) -> float:
    """Mean squared error between 0/1 labels and predicted probabilities."""
    y, p = _as_arrays(labels, probs)
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def true_item_ranks(scores: np.ndarray, true_index: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of each row's true column in ``scores [n_queries, n_items]``, ties averaged."""
    scores = np.asarray(scores, dtype=np.float64)
    true_index = np.asarray(true_index, dtype=np.int64)
    true_score = scores[np.arange(scores.shape[0]), true_index][:, None]
    higher = (scores > true_score).sum(axis=1)
    tied = (scores == true_score).sum(axis=1)          # includes the true item itself
    return higher + (tied + 1) / 2.0


def rank_summary(ranks: np.ndarray, ks: tuple[int, ...] = (1, 10)) -> dict[str, float]:
    """Mean reciprocal rank and hits@k of 1-based ``ranks`` (fractional ranks from ties allowed)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        return {"mrr": float("nan"), **{f"hits_at_{k}": float("nan") for k in ks}}
    return {"mrr": float(np.mean(1.0 / ranks)), **{f"hits_at_{k}": float(np.mean(ranks <= k)) for k in ks}}


def link_metrics(labels, logits) -> dict[str, float]:
    """AUC, AP and the MSE of the sigmoid probabilities, from raw decoder logits."""
    logits = np.asarray(logits, dtype=np.float64)
    probs = 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
    return {"auc": roc_auc(labels, logits), "ap": average_precision(labels, logits), "mse": brier(labels, probs)}
