"""Where extracted features live on disk, and the lazy reader over them.

Layout of ``FEATDIR``::

    config.toml                     [extract] settings (+ [source] graph) every shard shares
    shards/<tag>-<k>.pt             features of up to shard_size videos, stacked tensors
    shards/<tag>-<k>.parquet        that chunk's part index: every video it processed, ok or not
    index-<tag>.parquet             one extract process's index, written when it finishes
    index.parquet                   the merged index: video_id, shard, offset, has_audio,
                                    n_frames_sampled, duration_s, error
    errors.jsonl                    one line per video that could not be decoded, with the reason

``<tag>`` names the process's slice of the corpus (``s001of004`` is shard 1 of 4; a
single process is ``s000of001``) and ``<k>`` counts its chunks, so independent
processes on one machine or many never write the same file. Each chunk is written
atomically, tensors first and part index second, so a part index always describes a
complete shard: a killed run loses at most the chunk it was filling, and the part
indexes alone say exactly which videos are done.

Shards are plain ``torch.save`` dicts of tensors, lists of str and numbers, read with
``weights_only=True`` and ``mmap=True``: opening one costs a page-in of only the
videos you touch.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch

from mdr_graph.errors import UserError
from mdr_graph.io import torch_load, torch_save, write_parquet
from mdr_graph.media.extract_config import ExtractConfig, load_config

FORMAT_VERSION = 1
SHARD_DIR = "shards"
INDEX_FILE = "index.parquet"
ERRORS_FILE = "errors.jsonl"
INDEX_COLUMNS = ["video_id", "shard", "offset", "has_audio", "n_frames_sampled", "duration_s", "error"]
# Part indexes also keep where the file was and how it went, for errors.jsonl and metrics.
PART_COLUMNS = INDEX_COLUMNS + ["video_path", "strategy", "seconds"]
TENSOR_KEYS = ("frames", "frame_times", "mfcc", "fbank", "whisper")
_PART_RE = re.compile(r"^(s\d+of\d+)-(\d+)\.parquet$")


def shard_tag(i: int, n: int) -> str:
    """``s001of004``: the file-name tag of shard ``i`` of ``n`` (zero-based)."""
    width = max(3, len(str(n)))
    return f"s{i:0{width}d}of{n:0{width}d}"


def chunk_paths(featdir: str | Path, tag: str, k: int) -> tuple[Path, Path]:
    """(tensor file, part index) of chunk ``k`` of ``tag``."""
    base = Path(featdir) / SHARD_DIR / f"{tag}-{k:05d}"
    return base.with_suffix(".pt"), base.with_suffix(".parquet")


def pack(records: list[dict]) -> dict[str, Any]:
    """Stack per-video feature dicts (as from ``extract_video``) into one shard payload."""
    payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "video_id": [r["video_id"] for r in records]}
    for key in TENSOR_KEYS:
        if records[0].get(key) is not None:
            payload[key] = torch.stack([torch.as_tensor(r[key]) for r in records]).contiguous()
    if "transcript" in records[0]:
        payload["transcript"] = [str(r.get("transcript", "")) for r in records]
        payload["language"] = [str(r.get("language", "")) for r in records]
    payload["has_audio"] = torch.tensor([bool(r["has_audio"]) for r in records])
    payload["n_frames_sampled"] = torch.tensor([int(r["n_frames_sampled"]) for r in records], dtype=torch.int64)
    payload["duration_s"] = torch.tensor([float(r["duration_s"]) for r in records], dtype=torch.float64)
    return payload


def write_chunk(featdir: str | Path, tag: str, k: int, rows: list[dict]) -> pd.DataFrame:
    """Persist one chunk: the tensors of its ok videos, then its part index. Returns the part index.

    Each row is ``{"video_id", "video_path", "error", "strategy", "seconds"}`` plus, when
    ``error`` is None, the features of ``extract_video``.
    """
    pt, part = chunk_paths(featdir, tag, k)
    ok = [r for r in rows if r.get("error") is None]
    if ok:
        torch_save(pt, pack(ok))
    shard_name = f"{SHARD_DIR}/{pt.name}"
    offsets = {id(r): j for j, r in enumerate(ok)}
    df = pd.DataFrame({
        "video_id": pd.array([str(r["video_id"]) for r in rows], dtype="string"),
        "shard": pd.array([shard_name if id(r) in offsets else None for r in rows], dtype="string"),
        "offset": pd.array([offsets.get(id(r)) for r in rows], dtype="Int64"),
        "has_audio": pd.array([bool(r["has_audio"]) if id(r) in offsets else None for r in rows], dtype="boolean"),
        "n_frames_sampled": pd.array([int(r["n_frames_sampled"]) if id(r) in offsets else None for r in rows],
                                     dtype="Int64"),
        "duration_s": pd.array([_float_or_none(r.get("duration_s")) for r in rows], dtype="Float64"),
        "error": pd.array([r.get("error") for r in rows], dtype="string"),
        "video_path": pd.array([None if r.get("video_path") is None else str(r["video_path"]) for r in rows],
                               dtype="string"),
        "strategy": pd.array([r.get("strategy") for r in rows], dtype="string"),
        "seconds": pd.array([_float_or_none(r.get("seconds")) for r in rows], dtype="Float64"),
    })
    write_parquet(part, df)
    return df


def _float_or_none(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if np.isnan(v) else v


def list_parts(featdir: str | Path) -> list[tuple[str, int, Path]]:
    """Every finished chunk in ``featdir``: (tag, k, part index path), in name order."""
    d = Path(featdir) / SHARD_DIR
    out = []
    if d.is_dir():
        for name in sorted(os.listdir(d)):
            m = _PART_RE.match(name)
            if m:
                out.append((m.group(1), int(m.group(2)), d / name))
    return out


def read_parts(featdir: str | Path, tags: set[str] | None = None) -> pd.DataFrame:
    """All part indexes (optionally of some tags), concatenated in name order."""
    frames = [pd.read_parquet(p) for tag, _, p in list_parts(featdir) if tags is None or tag in tags]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in PART_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def dedupe(parts: pd.DataFrame) -> pd.DataFrame:
    """One row per video: a success beats an error (a retried file), else the first row wins."""
    if parts.empty:
        return parts
    failed = parts["error"].notna().to_numpy()
    order = np.lexsort((np.arange(len(parts)), failed))
    best = parts.iloc[order].drop_duplicates("video_id", keep="first")
    return best.sort_index()


def errors_records(index: pd.DataFrame) -> list[dict]:
    """The rows of ``errors.jsonl``: video id, path and reason of each failed video."""
    bad = index[index["error"].notna()]
    paths = bad["video_path"] if "video_path" in bad else pd.Series([None] * len(bad), index=bad.index)
    return [{"video_id": str(v), "video_path": None if pd.isna(p) else str(p), "error": str(e)}
            for v, p, e in zip(bad["video_id"], paths, bad["error"])]


class FeatureStore:
    """Lazy, read-only access to an extracted ``FEATDIR``.

    Construction reads only ``config.toml`` and ``index.parquet``. Shards are opened
    memory-mapped on first use and kept in a small LRU (``cache_shards``), per process:
    after a fork (DataLoader workers) or when unpickled, the cache starts empty, so the
    store is safe to hand to ``DataLoader(num_workers>0)``.

    >>> store = FeatureStore("feats")            # doctest: +SKIP
    >>> item = store.get(store.ids[0])           # doctest: +SKIP
    >>> item["frames"].shape, item["mfcc"].shape  # doctest: +SKIP
    (torch.Size([2, 3, 64, 64]), torch.Size([40, 1001]))
    """

    def __init__(self, featdir: str | Path, cache_shards: int = 4):
        self.featdir = Path(featdir)
        self.cache_shards = max(1, int(cache_shards))
        index_path = self.featdir / INDEX_FILE
        if not index_path.is_file():
            pending = sorted(self.featdir.glob("index-s*.parquet"))
            hint = (" (shard indexes exist: run `mdr-graph extract --merge --out "
                    f"{self.featdir}` once every shard has finished)" if pending else
                    "; run `mdr-graph extract --graph GRAPHDIR --out FEATDIR` first")
            raise UserError(f"no feature index at {index_path}{hint}")
        self.index = pd.read_parquet(index_path)
        missing = [c for c in INDEX_COLUMNS if c not in self.index.columns]
        if missing:
            raise UserError(f"{index_path} lacks columns {missing}; it was not written by `mdr-graph extract`")
        ok = self.index["error"].isna().to_numpy() & self.index["shard"].notna().to_numpy()
        good = self.index[ok]
        self.ids: list[str] = good["video_id"].astype(str).tolist()
        self._where: dict[str, tuple[str, int]] = dict(zip(self.ids, zip(good["shard"].astype(str),
                                                                          good["offset"].astype(int))))
        self._config = None
        self._init_cache()

    def _init_cache(self) -> None:
        self._cache: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for k in ("_cache", "_lock", "_pid"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_cache()

    @property
    def config(self) -> ExtractConfig:
        """The :class:`~mdr_graph.media.extract_config.ExtractConfig` the features were extracted with."""
        if self._config is None:
            self._config = load_config(self.featdir)
        return self._config

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, video_id: object) -> bool:
        return str(video_id) in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __getitem__(self, key: int | str) -> dict[str, Any]:
        """``store[i]`` (the i-th id of :attr:`ids`) or ``store[video_id]``: a map-style dataset."""
        if isinstance(key, (int, np.integer)):
            return self.get(self.ids[int(key)])
        return self.get(str(key))

    def error(self, video_id: str) -> str | None:
        """Why a video has no features (None when it has them or was never seen)."""
        rows = self.index[self.index["video_id"] == str(video_id)]
        if rows.empty or pd.isna(rows["error"].iloc[0]):
            return None
        return str(rows["error"].iloc[0])

    def _shard(self, name: str) -> dict:
        with self._lock:
            if self._pid != os.getpid():  # forked: do not share the parent's maps and lock
                self._cache, self._pid = OrderedDict(), os.getpid()
            if name in self._cache:
                self._cache.move_to_end(name)
                return self._cache[name]
        path = self.featdir / name
        if not path.exists():
            raise UserError(f"feature shard {path} is missing; re-run `mdr-graph extract` on {self.featdir}")
        data = torch_load(path, mmap=True)
        with self._lock:
            self._cache[name] = data
            while len(self._cache) > self.cache_shards:
                self._cache.popitem(last=False)
        return data

    def get(self, video_id: str) -> dict[str, Any]:
        """The features of one video, with the keys ``extract_video`` returns (copies, not views)."""
        vid = str(video_id)
        where = self._where.get(vid)
        if where is None:
            reason = self.error(vid)
            raise KeyError(f"video {vid} has no features" + (f": {reason}" if reason else " in this store"))
        name, offset = where
        shard = self._shard(name)
        item: dict[str, Any] = {"video_id": vid}
        for key in TENSOR_KEYS:
            if key in shard:
                item[key] = shard[key][offset].clone()
        if "transcript" in shard:
            item["transcript"] = shard["transcript"][offset]
            item["language"] = shard["language"][offset]
        item["has_audio"] = bool(shard["has_audio"][offset])
        item["n_frames_sampled"] = int(shard["n_frames_sampled"][offset])
        item["duration_s"] = float(shard["duration_s"][offset])
        return item
