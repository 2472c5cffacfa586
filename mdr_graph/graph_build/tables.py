"""Read the graph's tables back: the one reader of ``GRAPHDIR/videos.parquet`` and ``songs.parquet``.

Every later stage (extract, train, compare, predict, the demo) reads the videos table
through :func:`read_videos` and the songs table through :func:`read_songs`, so a missing,
unreadable or outdated table fails the same way everywhere: one
:class:`~mdr_graph.errors.UserError` naming the file and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mdr_graph.errors import UserError

VIDEOS_FILE = "videos.parquet"
SONGS_FILE = "songs.parquet"


def videos_path(graph_dir: str | Path) -> Path:
    return Path(graph_dir) / VIDEOS_FILE


def read_videos(graph_dir: str | Path, columns: Sequence[str] | None = None,
                optional: Sequence[str] = ()) -> pd.DataFrame:
    """``GRAPHDIR/videos.parquet``: every column, or only ``columns`` (plus those of
    ``optional`` the table has). ``video_id`` and ``columns`` are required.

    A missing file, a file that is not parquet, or a table without a required column
    is a ``UserError`` that says to (re)build the graph.
    """
    path = videos_path(graph_dir)
    if not path.is_file():
        raise UserError(f"{path} not found: pass --graph the directory written by `mdr-graph build-graph`")
    return _read_table(path, "video_id", columns, optional)


def read_songs(graph_dir: str | Path, columns: Sequence[str] | None = None,
               missing_ok: bool = False) -> pd.DataFrame | None:
    """``GRAPHDIR/songs.parquet`` (every column, or only ``columns``; ``song_id`` is required), the
    same way as :func:`read_videos`; ``None`` when the file is absent and ``missing_ok``."""
    path = Path(graph_dir) / SONGS_FILE
    if not path.is_file():
        if missing_ok:
            return None
        raise UserError(f"{path} not found: pass --graph the directory written by `mdr-graph build-graph`")
    return _read_table(path, "song_id", columns, ())


def _read_table(path: Path, key: str, columns: Sequence[str] | None, optional: Sequence[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path} is not a readable parquet file ({type(e).__name__}: {e}); "
                        "rebuild it with `mdr-graph build-graph`") from None
    want = list(columns) if columns is not None else []
    missing = [c for c in dict.fromkeys([key, *want]) if c not in names]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}; rebuild it with `mdr-graph build-graph`")
    if columns is None:
        return pd.read_parquet(path)
    return pd.read_parquet(path, columns=[*want, *(c for c in optional if c in names and c not in want)])
