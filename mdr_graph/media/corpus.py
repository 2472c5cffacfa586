"""Which videos a run extracts: the graph's table, safe file paths, and the stable shard split.

``stable_shard`` must give every machine, process and Python version the same answer
for a ``video_id``, since resumed and sharded runs rely on it: it is BLAKE2b of the
UTF-8 id, never Python's salted ``hash()``. Paths come from metadata and are untrusted:
relative ones may not leave their base directory, and with a media root no path may.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mdr_graph.errors import UserError
from mdr_graph.graph_build.tables import read_videos
from mdr_graph.media.decode import FILE_NOT_FOUND


def stable_shard(video_id: str, n: int) -> int:
    """Which of ``n`` shards a video belongs to: a hash that is the same on every machine and run."""
    digest = hashlib.blake2b(str(video_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    try:
        i_s, n_s = str(text).split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise UserError(f"--shard {text!r}: write it as i/n, e.g. 0/4 for the first of four shards") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


def shard_from_env() -> tuple[int, int] | None:
    """``(RANK, WORLD_SIZE)`` under ``torchrun`` (or any launcher that sets them), else None."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        return None
    return (rank, world) if world > 1 and 0 <= rank < world else None


def load_videos(graph_dir: str | Path) -> pd.DataFrame:
    """``video_id, video_path, duration_s`` of ``GRAPHDIR/videos.parquet``, one row per id, in graph order."""
    videos = read_videos(graph_dir, ["video_id", "video_path"], optional=["duration_s"])
    if "duration_s" not in videos.columns:
        videos["duration_s"] = np.nan
    videos = videos[["video_id", "video_path", "duration_s"]].copy()
    videos["video_id"] = videos["video_id"].astype(str)
    return videos.drop_duplicates("video_id", keep="first").reset_index(drop=True)


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


NO_FILE = "no media file"


def is_missing_file(reason: str | None) -> bool:
    """Whether an error reason says the video has no file (rather than a file that would not decode)."""
    return bool(reason) and str(reason).startswith((NO_FILE, FILE_NOT_FOUND))


def graph_media_roots(graph_dir: str | Path) -> list[str]:
    """The directories the graph's build accepted media paths under (``summary.json``), or []
    for a graph built before they were recorded."""
    path = Path(graph_dir) / "summary.json"
    try:
        import json

        s = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    roots = s.get("media_roots") or ([s["media_root"]] if s.get("media_root") else [])
    return [os.path.realpath(r) for r in roots if isinstance(r, str)]


def resolve_video_path(raw: Any, graph_dir: str | Path, media_root: str | None = None,
                       graph_roots: list[str] | None = None) -> tuple[str | None, str | None]:
    """(real path, None) or (None, reason). Relative paths resolve against the media root (or the
    graph directory) and may not leave it; with a media root, no path may leave it; without
    one, no path may leave the roots the graph was built with (``graph_roots``): a file
    swapped for a symlink after the build is caught here, when it is read."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or pd.isna(raw) or not str(raw).strip():
        return None, f"{NO_FILE}: video_path is empty in videos.parquet"
    raw = str(raw).strip()
    if "\0" in raw:
        return None, f"video_path {raw!r} holds a NUL character; refusing to read it"
    base = os.path.realpath(media_root) if media_root else os.path.realpath(graph_dir)
    candidate = raw if os.path.isabs(raw) else os.path.join(base, raw)
    real = os.path.realpath(candidate)
    if (media_root or not os.path.isabs(raw)) and not _inside(real, base):
        return None, f"video_path {raw!r} resolves to {real}, outside {base}; refusing to read it"
    if not media_root and graph_roots and not any(_inside(real, r) for r in graph_roots):
        return None, (f"video_path {raw!r} resolves to {real}, outside the media root the graph was built with "
                      f"({', '.join(graph_roots)}); refusing to read it")
    if not os.path.isfile(real):
        return None, f"{FILE_NOT_FOUND}: {real}"
    return real, None
