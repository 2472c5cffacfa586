"""Train/validation/test splits of the videos: random, by time, or song-disjoint.

Every stage that needs "the training split" (target normalisation, ConvLSTM
pretraining, the fusion model, the baselines) calls :func:`make_splits` with the same
arguments and gets the same video ids, and each run saves the ids it used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdr_graph.errors import UserError

SPLITS = ("train", "val", "test")
KINDS = ("random", "time", "song")


def _cut(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    return n_train, n_train + n_val


def make_splits(videos: pd.DataFrame, kind: str = "random", seed: int = 0,
                fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> dict[str, np.ndarray]:
    """Split ``videos`` (a ``videos.parquet`` table) into ``{"train"|"val"|"test": video_ids}``.

    - ``random``: a seeded permutation of the videos.
    - ``time``: oldest videos train, newest test (ties broken by video id), so the model
      is judged on the future, as it would be used.
    - ``song``: whole songs go to one split, so every test song is unseen in training
      (the cold-start case). Songs are shuffled with the seed and assigned until each
      split holds about its fraction of *videos*.
    """
    if kind not in KINDS:
        raise UserError(f"unknown split {kind!r}; choose from {', '.join(KINDS)}")
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise UserError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    ids = videos["video_id"].astype(str).to_numpy()
    n = len(ids)
    rng = np.random.default_rng(seed)
    if kind == "random":
        order = rng.permutation(n)
    elif kind == "time":
        t = pd.to_datetime(videos["create_time"], utc=True).astype("int64").to_numpy()
        order = np.lexsort((ids, t))
    else:
        # A video without a song is its own group (not one shared "<NA>" song).
        songs = videos["song_id"].astype(object).where(videos["song_id"].notna(),
                                                       "\0" + videos["video_id"].astype(str)).astype(str).to_numpy()
        uniq = np.unique(songs)
        song_rank = dict(zip(rng.permutation(uniq), range(len(uniq))))
        key = np.array([song_rank[s] for s in songs])
        order = np.lexsort((ids, key))
        # cut only at song boundaries
        sorted_songs = songs[order]
        a, b = _cut(n, fractions)
        a = _song_boundary(sorted_songs, a)
        b = max(a, _song_boundary(sorted_songs, b))
        return {"train": ids[order[:a]], "val": ids[order[a:b]], "test": ids[order[b:]]}
    a, b = _cut(n, fractions)
    return {"train": ids[order[:a]], "val": ids[order[a:b]], "test": ids[order[b:]]}


def _song_boundary(sorted_songs: np.ndarray, i: int) -> int:
    """Move cut ``i`` forward to the first position where the song changes."""
    while 0 < i < len(sorted_songs) and sorted_songs[i] == sorted_songs[i - 1]:
        i += 1
    return i


def split_hash(splits: dict[str, np.ndarray]) -> str:
    """A short fingerprint of split membership: equal hashes mean identical train/val/test ids."""
    import hashlib

    h = hashlib.sha256()
    for s in SPLITS:
        h.update(s.encode())
        for v in sorted(str(x) for x in splits[s]):
            h.update(b"\0" + v.encode())
    return h.hexdigest()[:16]
