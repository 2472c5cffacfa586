"""The song-video graph as a PyG ``HeteroData``, and its save/load.

Node types ``song`` and ``video``; edge types ``(video, uses, song)`` and its reverse
``(song, rev_uses, video)``. Node ``i`` of type ``video`` is row ``i`` of
``videos.parquet``; node ``j`` of type ``song`` is row ``j`` of ``songs.parquet``.
The id mappings travel with the graph as ``data['video'].video_id`` and
``data['song'].song_id`` (lists of str), so ``graph.pt`` alone is enough to map
node ids back to TikTok ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from mdr_graph.errors import UserError
from mdr_graph.graph_build.features import SONG_FEATURES, VIDEO_FEATURES, song_features, video_features
from mdr_graph.graph_build.schema import REV_EDGE, VIDEO_EDGE
from mdr_graph.io import torch_load, torch_save

GRAPH_FILE = "graph.pt"
FORMAT_VERSION = 1


def songs_table(videos: pd.DataFrame) -> pd.DataFrame:
    """One row per song in first-seen order, with its degree (number of videos) in ``videos``."""
    first = videos.drop_duplicates("song_id", keep="first")
    cols = [c for c in ("song_id", "song_title", "song_author", "song_original", "song_uses") if c in videos]
    songs = first[cols].reset_index(drop=True)
    deg = videos.groupby("song_id", sort=False).size()
    songs["degree"] = songs["song_id"].map(deg).astype("int64")
    return songs


def build_hetero(videos: pd.DataFrame, songs: pd.DataFrame) -> HeteroData:
    """Build the bipartite graph; features come only from pre-publication fields."""
    song_index = pd.Index(songs["song_id"])
    dst = song_index.get_indexer(videos["song_id"])
    if (dst < 0).any():
        missing = videos.loc[dst < 0, "song_id"].iloc[0]
        raise ValueError(f"video references song {missing!r} that is not in the songs table")
    src = np.arange(len(videos), dtype=np.int64)
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


def _pack_ids(ids: list[str]) -> str | list[str]:
    """One newline-joined string: a list of a million str is slow to unpickle with weights_only."""
    ids = [str(i) for i in ids]
    return ids if any("\n" in i for i in ids) else "\n".join(ids)


def _unpack_ids(packed: str | list[str]) -> list[str]:
    if isinstance(packed, list):
        return packed
    return packed.split("\n") if packed else []


def save_graph(data: HeteroData, graph_dir: str | Path) -> Path:
    """Write ``graph.pt`` atomically as a plain dict of tensors and lists (``weights_only``-loadable)."""
    payload = {
        "format_version": FORMAT_VERSION,
        "video_x": data["video"].x,
        "video_id": _pack_ids(data["video"].video_id),
        "video_feature_names": list(data["video"].feature_names),
        "song_x": data["song"].x,
        "song_id": _pack_ids(data["song"].song_id),
        "song_feature_names": list(data["song"].feature_names),
        "edge_index": data[VIDEO_EDGE].edge_index,
    }
    path = Path(graph_dir) / GRAPH_FILE
    torch_save(path, payload)
    return path


def load_graph(graph_dir: str | Path) -> HeteroData:
    """Load ``GRAPHDIR/graph.pt`` (or a direct path to it) as a ``HeteroData``."""
    path = Path(graph_dir)
    if path.is_dir():
        path = path / GRAPH_FILE
    if not path.exists():
        raise UserError(f"no graph at {path}; build one with `mdr-graph build-graph INPUT --out GRAPHDIR`")
    p = torch_load(path)
    if p.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} has graph format {p.get('format_version')}, expected {FORMAT_VERSION}; rebuild it")
    data = HeteroData()
    data["video"].x = p["video_x"]
    data["video"].video_id = _unpack_ids(p["video_id"])
    data["video"].feature_names = p["video_feature_names"]
    data["song"].x = p["song_x"]
    data["song"].song_id = _unpack_ids(p["song_id"])
    data["song"].feature_names = p["song_feature_names"]
    data[VIDEO_EDGE].edge_index = p["edge_index"]
    data[REV_EDGE].edge_index = p["edge_index"].flip(0).contiguous()
    data.format_version = FORMAT_VERSION
    return data
