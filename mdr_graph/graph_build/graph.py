"""The song-video graph as a PyG ``HeteroData``, and its save/load.

Node types ``song`` and ``video``; edge types ``(video, uses, song)`` and its reverse
``(song, rev_uses, video)``. Node ``i`` of type ``video`` is row ``i`` of
``videos.parquet``; node ``j`` of type ``song`` is row ``j`` of ``songs.parquet``.
The id mappings travel with the graph as ``data['video'].video_id`` and
``data['song'].song_id`` (lists of str), so ``graph.pt`` alone is enough to map
node ids back to TikTok ids.

``graph.pt`` is that ``HeteroData`` itself, saved with ``torch.save``. It loads with
``torch.load(path, weights_only=True)`` once this module is imported (it allowlists
PyG's storage classes, which PyG itself does not) -- or simply with :func:`load_graph`,
which also reads the format-1 files (a plain dict) that earlier versions wrote.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData
from torch_geometric.data.storage import BaseStorage, EdgeStorage, GlobalStorage, NodeStorage

from mdr_graph.errors import UserError
from mdr_graph.graph_build.features import SONG_FEATURES, VIDEO_FEATURES, song_features, video_features
from mdr_graph.graph_build.schema import REV_EDGE, VIDEO_EDGE
from mdr_graph.io import torch_load, torch_save

GRAPH_FILE = "graph.pt"
FORMAT_VERSION = 2  # 2: the HeteroData itself; 1: a plain dict of its tensors (still read)

# HeteroData is on torch's weights_only allowlist (PyG adds it); its storages are not.
# They hold only tensors, lists, str and numbers, so loading them runs no code.
torch.serialization.add_safe_globals([BaseStorage, NodeStorage, EdgeStorage, GlobalStorage])


def songs_table(videos: pd.DataFrame) -> pd.DataFrame:
    """One row per song in first-seen order, with its degree (number of videos) in ``videos``.

    Videos without a song (null ``song_id``) make no song row.
    """
    first = videos[videos["song_id"].notna()].drop_duplicates("song_id", keep="first")
    cols = [c for c in ("song_id", "song_title", "song_author", "song_original", "song_uses") if c in videos]
    songs = first[cols].reset_index(drop=True)
    deg = videos.groupby("song_id", sort=False).size()
    songs["degree"] = songs["song_id"].map(deg).astype("int64")
    return songs


def build_hetero(videos: pd.DataFrame, songs: pd.DataFrame) -> HeteroData:
    """Build the bipartite graph; features come only from pre-publication fields."""
    song_index = pd.Index(songs["song_id"])
    has_song = videos["song_id"].notna().to_numpy()
    dst = song_index.get_indexer(videos["song_id"])
    if (dst[has_song] < 0).any():
        missing = videos.loc[has_song & (dst < 0), "song_id"].iloc[0]
        raise ValueError(f"video references song {missing!r} that is not in the songs table")
    # A video without a song has no song edge (it is still a node, with its own features).
    src = np.flatnonzero(has_song).astype(np.int64)
    dst = dst[has_song]
    data = HeteroData()
    data["video"].x = torch.from_numpy(video_features(videos))
    data["video"].video_id = videos["video_id"].astype(str).tolist()
    data["video"].feature_names = list(VIDEO_FEATURES)
    data["song"].x = torch.from_numpy(song_features(songs))
    data["song"].song_id = songs["song_id"].astype(str).tolist()
    data["song"].feature_names = list(SONG_FEATURES)
    ei = torch.from_numpy(np.stack([src, dst.astype(np.int64)]))
    data[VIDEO_EDGE].edge_index = ei
    data[REV_EDGE].edge_index = ei.flip(0).contiguous()
    data.format_version = FORMAT_VERSION
    return data


def _unpack_ids(packed: str | list[str]) -> list[str]:
    """Format-1 files stored ids as one newline-joined string."""
    if isinstance(packed, list):
        return packed
    return packed.split("\n") if packed else []


def _clean(video_x, video_id, video_names, song_x, song_id, song_names, edge_index) -> HeteroData:
    """The graph exactly as saved: features, id mappings, feature names, both edge directions."""
    data = HeteroData()
    data["video"].x = video_x
    data["video"].video_id = [str(i) for i in video_id]
    data["video"].feature_names = [str(n) for n in video_names]
    data["song"].x = song_x
    data["song"].song_id = [str(i) for i in song_id]
    data["song"].feature_names = [str(n) for n in song_names]
    data[VIDEO_EDGE].edge_index = edge_index
    data[REV_EDGE].edge_index = edge_index.flip(0).contiguous()
    data.format_version = FORMAT_VERSION
    return data


def save_graph(data: HeteroData, graph_dir: str | Path) -> Path:
    """Write ``graph.pt`` atomically: the ``HeteroData`` itself (``weights_only``-loadable, see above)."""
    clean = _clean(data["video"].x, data["video"].video_id, data["video"].feature_names, data["song"].x,
                   data["song"].song_id, data["song"].feature_names, data[VIDEO_EDGE].edge_index)
    path = Path(graph_dir) / GRAPH_FILE
    torch_save(path, clean)
    return path


def load_graph(graph_dir: str | Path) -> HeteroData:
    """Load ``GRAPHDIR/graph.pt`` (or a direct path to it) as a ``HeteroData``."""
    path = Path(graph_dir)
    if path.is_dir():
        path = path / GRAPH_FILE
    if not path.exists():
        raise UserError(f"no graph at {path}; build one with `mdr-graph build-graph INPUT --out GRAPHDIR`")
    try:
        p = torch_load(path)
    except Exception as e:  # truncated, foreign or tampered file
        raise UserError(f"{path} is not a readable graph ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                        "rebuild it with `mdr-graph build-graph`") from None
    if isinstance(p, HeteroData):
        version = getattr(p, "format_version", None)
        if version != FORMAT_VERSION:
            raise UserError(f"{path} has graph format {version}, expected {FORMAT_VERSION}; rebuild it")
        if REV_EDGE not in p.edge_types:
            p[REV_EDGE].edge_index = p[VIDEO_EDGE].edge_index.flip(0).contiguous()
        return p
    if isinstance(p, dict) and p.get("format_version") == 1:
        return _clean(p["video_x"], _unpack_ids(p["video_id"]), p["video_feature_names"], p["song_x"],
                      _unpack_ids(p["song_id"]), p["song_feature_names"], p["edge_index"])
    version = p.get("format_version") if isinstance(p, dict) else None
    raise UserError(f"{path} has graph format {version}, expected {FORMAT_VERSION}; rebuild it")
