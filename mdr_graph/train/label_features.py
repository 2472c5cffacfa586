"""The ``labels`` modality: how popular were the *other* videos that share this video's song, creator or hashtags?

Link prediction teaches the GAT *which* song a video uses, not how well that song's other
videos did. On real scrapes that second fact is the strongest signal a graph holds (a
creator-mean lookup beats the flagship model), so it is given to the model directly, as
a leak-free table built from the training split's targets:

for each relation ``r`` in ``song``, ``creator``, ``hashtag`` and each video ``q``, over
the training videos ``p`` that share a key of ``r`` with ``q`` and that ``q`` may see:

=================  ==================================================================
``r_mean``         mean target, shrunk towards the prior: ``(Σy + m·prior) / (n + m)``
``r_log_count``    ``log1p(n)``, how many such videos (pairs, for hashtags)
``r_max``          the best of them (the prior when there are none)
``r_recent``       the same shrunk mean with weights ``exp(-|t_q - t_p| / τ)``
``prior``          the mean target of every training video ``q`` may see
=================  ==================================================================

**Who may see whom** is the whole point, and is decided in one place (:func:`visibility`):

- ``--split random`` / ``song``: training videos are split into ``folds`` folds and a
  training video sees only the training videos of the *other* folds (out-of-fold), so its
  own target never enters its own input. Validation and test videos see every training
  video and nothing else. Under ``song`` the folds are whole songs, so training rows look
  like the unseen-song test rows.
- ``--split time``: every video sees only training videos posted *strictly before* it,
  as a forecaster at posting time would.
- A new video (``predict``) sees every training video of the run.

Targets of validation and test videos are never read: changing them changes nothing here
(``tests/train/test_label_features.py`` does exactly that).

Keys follow the graph's id rules (:func:`mdr_graph.graph_build.entities.entity_keys`: hashtags
NFKC-normalised, case-folded, stripped of ``#``). A hub tag that tags more
than ``max_hashtag_df`` of the training videos (``#fyp``, ``#viral``) is dropped: its
neighbours are nearly every video, so its mean is the prior and its pairs would only cost
time. A video with several tags pools the pairs of all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mdr_graph.graph_build.entities import entity_keys
from mdr_graph.graph_build.schema import ENTITY_TYPES

RELATIONS = ENTITY_TYPES  # one block of label features per entity type, in graph order
STATS = ("mean", "log_count", "max", "recent")
NO_PRIOR = 0.5   # prior of a video that may see no training video at all (the middle of the [0, 1] target)


@dataclass
class LabelFeatureConfig:
    folds: int = 5                   # out-of-fold folds of the training split (random and song splits)
    smoothing: float = 5.0           # m: weight of the prior in each shrunk mean, in videos
    recency_days: float = 30.0       # τ of the recency weights
    max_hashtag_df: float = 0.05     # drop hashtags on more than this fraction of the training videos

    @classmethod
    def of(cls, cfg) -> "LabelFeatureConfig":
        """The settings a run's :class:`~mdr_graph.train.config.TrainConfig` holds for these features."""
        return cls(cfg.oof_folds, cfg.label_smoothing, cfg.label_recency_days, cfg.label_max_hashtag_df)


def feature_names(relations=RELATIONS) -> list[str]:
    return [f"{r}_{s}" for r in relations for s in STATS] + ["prior"]


def posting_days(videos: pd.DataFrame) -> np.ndarray:
    """Posting times in days (float); missing times are NaN."""
    if "create_time" not in videos:
        return np.full(len(videos), np.nan)
    t = pd.to_datetime(videos["create_time"], utc=True)
    days = (t - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() / 86400.0
    return days.to_numpy(dtype=np.float64, na_value=np.nan)


def visibility(videos: pd.DataFrame, train_rows: np.ndarray, split: str, seed: int,
               folds: int) -> tuple[str, np.ndarray]:
    """``(rule, group)`` deciding which training rows each row may see.

    rule ``fold``: row ``q`` sees training row ``p`` iff ``group[q] != group[p]``; training
    rows carry their fold (0..folds-1), every other row ``-1``, so held-out rows see all of
    training and a training row never sees its own fold (itself included).
    rule ``past``: row ``q`` sees training row ``p`` iff ``t_p < t_q``.
    """
    group = np.full(len(videos), -1, dtype=np.int64)
    if split == "time":
        return "past", group
    train_rows = np.asarray(train_rows, dtype=np.int64)
    k = max(2, min(int(folds), len(train_rows))) if len(train_rows) > 1 else 1
    rng = np.random.default_rng(seed)
    if split == "song" and "song_id" in videos:
        # whole songs per fold, so a training row's song features look like a test row's (an unseen song)
        songs = videos["song_id"].iloc[train_rows].astype(str).to_numpy()
        uniq = np.unique(songs)
        fold_of = dict(zip(uniq[rng.permutation(len(uniq))], np.arange(len(uniq)) % k))
        group[train_rows] = [fold_of[s] for s in songs]
    else:
        group[train_rows] = rng.permutation(len(train_rows)) % k
    return "fold", group


def _allowed(rule: str, gq: np.ndarray, gp: np.ndarray, tq: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """``[len(q), len(p)]`` bool: may query ``q`` see pool row ``p``? (The single leak-freedom rule.)"""
    if rule == "fold":
        return gq[:, None] != gp[None, :]
    return tp[None, :] < tq[:, None]   # NaN times compare False: an undated video sees no past


def _prior(rule: str, y: np.ndarray, gp: np.ndarray, tp: np.ndarray, gq: np.ndarray, tq: np.ndarray) -> np.ndarray:
    """Mean training target each query may see (the shrinkage target)."""
    if len(y) == 0:
        return np.full(len(gq), NO_PRIOR)
    if rule == "fold":
        total, n = y.sum(), len(y)
        out = np.full(len(gq), total / n)
        for g in np.unique(gp):
            inside = gp == g
            if n - inside.sum() > 0:
                out[gq == g] = (total - y[inside].sum()) / (n - inside.sum())
        return out
    order = np.argsort(tp, kind="stable")
    ts, cum = tp[order], np.concatenate([[0.0], np.cumsum(y[order])])
    k = np.searchsorted(ts, tq, side="left")          # pool rows strictly before each query
    k = np.where(np.isnan(tq), 0, k)
    return np.where(k > 0, cum[k] / np.maximum(k, 1), NO_PRIOR)


def _relation_stats(q_keys, p_keys, y, rule, gq, gp, tq, tp, prior, cfg: LabelFeatureConfig,
                    drop: set[str]) -> np.ndarray:
    """``[len(q), 4]``: the shrunk mean, log count, max and recency mean of one relation."""
    nq = len(q_keys)
    cnt, s, ws, wy = (np.zeros(nq) for _ in range(4))
    mx = np.full(nq, -np.inf)
    pool: dict[str, list[int]] = {}
    for j, keys in enumerate(p_keys):
        for k in keys:
            if k not in drop:
                pool.setdefault(k, []).append(j)
    queries: dict[str, list[int]] = {}
    for i, keys in enumerate(q_keys):
        for k in keys:
            if k in pool:
                queries.setdefault(k, []).append(i)
    tau = max(float(cfg.recency_days), 1e-6)
    for k, qi in queries.items():
        pj = np.asarray(pool[k])
        yp, tpk = y[pj], tp[pj]
        qi = np.asarray(qi)
        step = max(1, 4_000_000 // len(pj))            # bound the [q, p] block's memory
        for a in range(0, len(qi), step):
            q = qi[a:a + step]
            mask = _allowed(rule, gq[q], gp[pj], tq[q], tpk)
            cnt[q] += mask.sum(1)
            s[q] += mask @ yp
            mx[q] = np.maximum(mx[q], np.where(mask, yp[None, :], -np.inf).max(1))
            dt = np.abs(tq[q][:, None] - tpk[None, :])
            w = np.where(mask, np.exp(-np.nan_to_num(dt, nan=np.inf) / tau), 0.0)
            ws[q] += w.sum(1)
            wy[q] += w @ yp
    m = float(cfg.smoothing)
    # no neighbour at all: the prior, whatever the smoothing
    mean = np.where(cnt + m > 0, (s + m * prior) / np.maximum(cnt + m, 1e-12), prior)
    recent = np.where(ws + m > 0, (wy + m * prior) / np.maximum(ws + m, 1e-12), prior)
    return np.stack([mean, np.log1p(cnt), np.where(cnt > 0, mx, prior), recent], axis=1)


def hub_hashtags(keys: list[list[str]], rows: np.ndarray, max_df: float) -> set[str]:
    """Tags on more than ``max_df`` of ``rows`` (counted on those rows only)."""
    from collections import Counter

    df = Counter(k for r in rows for k in keys[r])
    limit = max_df * max(len(rows), 1)
    return {k for k, c in df.items() if c > limit}


def _features(videos: pd.DataFrame, y: np.ndarray, train_rows: np.ndarray, query_rows: np.ndarray, rule: str,
              group: np.ndarray, cfg: LabelFeatureConfig, relations) -> np.ndarray:
    """The feature rows of ``query_rows``, over the training rows (targets ``y``) each may see."""
    t = posting_days(videos)
    gp, tp, gq, tq = group[train_rows], t[train_rows], group[query_rows], t[query_rows]
    prior = _prior(rule, y, gp, tp, gq, tq)
    cols = []
    for r in relations:
        keys = entity_keys(videos, r)
        drop = hub_hashtags(keys, train_rows, cfg.max_hashtag_df) if r == "hashtag" else set()
        cols.append(_relation_stats([keys[i] for i in query_rows], [keys[j] for j in train_rows], y, rule, gq, gp,
                                    tq, tp, prior, cfg, drop))
    return np.concatenate([*cols, prior[:, None]], axis=1).astype(np.float32)


def label_features(videos: pd.DataFrame, target: np.ndarray, train_rows: np.ndarray, split: str, seed: int,
                   cfg: LabelFeatureConfig | None = None, relations=RELATIONS) -> np.ndarray:
    """``float32 [len(videos), len(feature_names())]`` for every row of a run's ``videos``.

    Only ``target[train_rows]`` is read; which training rows each row sees is :func:`visibility`.
    """
    cfg = cfg or LabelFeatureConfig()
    train_rows = np.asarray(train_rows, dtype=np.int64)
    rule, group = visibility(videos, train_rows, split, seed, cfg.folds)
    y = np.asarray(target, dtype=np.float64)[train_rows]
    return _features(videos, y, train_rows, np.arange(len(videos)), rule, group, cfg, relations)


def label_features_new(new: pd.DataFrame, train_videos: pd.DataFrame, train_target: np.ndarray,
                       cfg: LabelFeatureConfig | None = None, relations=RELATIONS) -> np.ndarray:
    """Features of videos outside the run (``predict``): each sees every training video of the run."""
    both = pd.concat([train_videos, new], ignore_index=True)
    train_rows = np.arange(len(train_videos))
    # rule "fold" with the training rows in one fold and the new rows at -1: new rows see all of training
    group = np.where(np.arange(len(both)) < len(train_videos), 0, -1)
    return _features(both, np.asarray(train_target, np.float64), train_rows, np.arange(len(train_videos), len(both)),
                     "fold", group, cfg or LabelFeatureConfig(), relations)
