"""Train/validation/test splits of the videos: random, by time, or song-disjoint.

Every stage that needs "the training split" (target normalisation, ConvLSTM
pretraining, the fusion model, the baselines) builds one :class:`SplitConfig` from its
settings and calls :func:`make_splits` with it, so they all get the same video ids; each
run saves the ids it used. The split-kind names and the split defaults live here only.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mdr_graph.errors import UserError

SPLITS = ("train", "val", "test")
KINDS = ("random", "time", "song")


@dataclass(frozen=True)
class SplitConfig:
    """Which split: its kind, its seed and the train/val/test fractions of the videos.

    Stage configs keep these as the flat settings ``split``, ``seed`` and
    ``split_fractions`` (one TOML key each); :meth:`of` reads them from any such config.
    """

    kind: str = "random"
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"unknown split {self.kind!r}; choose from {', '.join(KINDS)}")
        fr = tuple(float(x) for x in self.fractions)
        if len(fr) != 3 or abs(sum(fr) - 1.0) > 1e-6 or min(fr) < 0:
            raise UserError(f"split fractions must be three non-negative numbers (train, val, test) that sum to 1, "
                            f"got {list(self.fractions)}")
        object.__setattr__(self, "fractions", fr)
        object.__setattr__(self, "seed", int(self.seed))

    @classmethod
    def of(cls, cfg: Any) -> "SplitConfig":
        """The split of a stage config with fields ``split``, ``seed`` and ``split_fractions``."""
        return cls(cfg.split, cfg.seed, tuple(cfg.split_fractions))

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for checkpoints and JSON): ``{"kind", "seed", "fractions"}``."""
        d = asdict(self)
        d["fractions"] = list(self.fractions)
        return d

    def describe(self) -> str:
        return f"--split {self.kind} --seed {self.seed} --split-fractions {','.join(f'{x:g}' for x in self.fractions)}"


def parse_fractions(text: str) -> list[float]:
    """``"0.7,0.1,0.2"`` -> ``[0.7, 0.1, 0.2]`` (validated by :class:`SplitConfig`)."""
    try:
        return [float(x) for x in str(text).split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from None


def add_split_arguments(p: argparse.ArgumentParser, seed: bool = True) -> None:
    """The split flags every stage shares, onto the config fields ``split``, ``seed`` and
    ``split_fractions``. Each defaults to ``None`` so TOML settings show through; the
    stage's ``config.show_defaults`` adds the defaults to the help."""
    p.add_argument("--split", choices=KINDS, help="split kind")
    if seed:
        p.add_argument("--seed", type=int, help="split and training seed")
    p.add_argument("--split-fractions", dest="split_fractions", type=parse_fractions, metavar="TRAIN,VAL,TEST",
                   help="shares of the videos per split")


def _cut(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    return n_train, n_train + n_val


def make_splits(videos: pd.DataFrame, cfg: SplitConfig) -> dict[str, np.ndarray]:
    """Split ``videos`` (a ``videos.parquet`` table) into ``{"train"|"val"|"test": video_ids}``.

    - ``random``: a seeded permutation of the videos.
    - ``time``: oldest videos train, newest test (ties broken by video id), so the model
      is judged on the future, as it would be used.
    - ``song``: whole songs go to one split, so every test song is unseen in training
      (the cold-start case). Songs are shuffled with the seed and assigned until each
      split holds about its fraction of *videos*.
    """
    kind, fractions = cfg.kind, cfg.fractions
    ids = videos["video_id"].astype(str).to_numpy()
    n = len(ids)
    rng = np.random.default_rng(cfg.seed)
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


def check_filled(splits: dict[str, np.ndarray], cfg: SplitConfig, videos: pd.DataFrame) -> None:
    """Refuse, before any training, a split that leaves train, validation or test empty.

    Validation selects the epoch and test is the result, so an empty one would only fail
    after all the work. ``--split song`` cuts only between songs: a graph where one song
    holds most videos can leave validation empty.
    """
    sizes = {s: len(splits[s]) for s in SPLITS}
    empty = [s for s in SPLITS if not sizes[s]]
    if not empty:
        return
    names = {"train": "training", "val": "validation", "test": "test"}
    what = " and ".join(names[s] for s in empty)
    if cfg.kind == "song":
        n_songs = videos["song_id"].nunique()
        fix = (f"--split song cuts only between songs and this graph has {n_songs} song(s); use --split random "
               "(or time), or a graph with more songs")
    else:
        fix = "build the graph from more records"
    raise UserError(f"the {what} split{'s' if len(empty) > 1 else ''} would be empty (train/val/test = "
                    f"{sizes['train']}/{sizes['val']}/{sizes['test']} of {len(videos)} videos, "
                    f"--split {cfg.kind}, fractions {list(cfg.fractions)}): {fix}")


def _song_boundary(sorted_songs: np.ndarray, i: int) -> int:
    """Move cut ``i`` forward to the first position where the song changes."""
    while 0 < i < len(sorted_songs) and sorted_songs[i] == sorted_songs[i - 1]:
        i += 1
    return i


def split_hash(splits: dict[str, np.ndarray]) -> str:
    """A short fingerprint of split membership: equal hashes mean identical train/val/test ids."""
    h = hashlib.sha256()
    for s in SPLITS:
        h.update(s.encode())
        for v in sorted(str(x) for x in splits[s]):
            h.update(b"\0" + v.encode())
    return h.hexdigest()[:16]
