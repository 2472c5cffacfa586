"""The video graph as a PyG ``HeteroData``, and its save/load.

Node type ``video`` and, as chosen with ``build-graph --nodes``, ``song``, ``creator``
and ``hashtag``; each entity type is joined to videos by one edge type and its reverse
(``schema.EDGE_TYPES``: ``(video, uses, song)``, ``(video, posted_by, creator)``,
``(video, tagged, hashtag)``). Node ``i`` of type ``video`` is row ``i`` of
``videos.parquet``; node ``j`` of type ``song`` / ``creator`` / ``hashtag`` is row ``j``
of ``songs`` / ``creators`` / ``hashtags.parquet``. Every node type has ``x``,
``feature_names`` and its id list (``schema.ID_ATTRS``: ``data['video'].video_id``,
``data['song'].song_id``, ``data['creator'].creator_id``, ``data['hashtag'].hashtag``),
so ``graph.pt`` alone is enough to map node ids back to TikTok ids. With ``--nodes song``
the graph is exactly the song-video graph of earlier versions.

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
from mdr_graph.graph_build.features import (CREATOR_FEATURES, HASHTAG_FEATURES, SONG_FEATURES, VIDEO_FEATURES,
                                            creator_features, hashtag_features, song_features, video_features)
from mdr_graph.graph_build.schema import EDGE_TYPES, ENTITY_TYPES, ID_ATTRS
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


def build_hetero(videos: pd.DataFrame, songs: pd.DataFrame, *, nodes: tuple[str, ...] = ("song",),
                 creators: pd.DataFrame | None = None, creator_rows: np.ndarray | None = None,
                 hashtags=None) -> HeteroData:
    """Build the graph; features come only from pre-publication fields (and account counts).

    ``nodes``: the entity types to include, from ``ENTITY_TYPES``. ``creators`` /
    ``creator_rows`` come from ``entities.creators_table``, ``hashtags`` (a
    ``HashtagNodes``) from ``entities.hashtag_nodes``.
    """
    song_index = pd.Index(songs["song_id"])
    has_song = videos["song_id"].notna().to_numpy()
    dst = song_index.get_indexer(videos["song_id"])
    if (dst[has_song] < 0).any():
        missing = videos.loc[has_song & (dst < 0), "song_id"].iloc[0]
        raise ValueError(f"video references song {missing!r} that is not in the songs table")
    # A video without a song has no song edge (it is still a node, with its own features).
    src = np.flatnonzero(has_song).astype(np.int64)
    dst = dst[has_song]
    node_parts = {"video": (torch.from_numpy(video_features(videos)), videos["video_id"].astype(str).tolist(),
                            list(VIDEO_FEATURES))}
    edges = {}
    if "song" in nodes:
        node_parts["song"] = (torch.from_numpy(song_features(songs)), songs["song_id"].astype(str).tolist(),
                              list(SONG_FEATURES))
        edges["song"] = torch.from_numpy(np.stack([src, dst.astype(np.int64)]))
    if "creator" in nodes:
        if creators is None or creator_rows is None:
            raise ValueError("--nodes creator needs the creators table")
        node_parts["creator"] = (torch.from_numpy(creator_features(creators)),
                                 creators["creator_id"].astype(str).tolist(), list(CREATOR_FEATURES))
        has = creator_rows >= 0
        edges["creator"] = torch.from_numpy(np.stack([np.flatnonzero(has).astype(np.int64), creator_rows[has]]))
    if "hashtag" in nodes:
        if hashtags is None:
            raise ValueError("--nodes hashtag needs the hashtag nodes")
        node_parts["hashtag"] = (torch.from_numpy(hashtag_features(hashtags.table)),
                                 hashtags.table["hashtag"].astype(str).tolist(), list(HASHTAG_FEATURES))
        edges["hashtag"] = torch.from_numpy(np.ascontiguousarray(hashtags.edges))
    return _assemble(node_parts, edges)


def _assemble(node_parts: dict[str, tuple], edges: dict[str, torch.Tensor]) -> HeteroData:
    """A ``HeteroData`` in the canonical order: video, then entity types; each edge type, then its reverse.

    ``node_parts``: node type -> (x, ids, feature names); ``edges``: entity type -> its
    ``(video, ..., entity)`` edge_index. The order of stores is part of the format:
    ``--nodes song`` writes exactly what earlier versions wrote.
    """
    data = HeteroData()
    for t in ("video", *ENTITY_TYPES):
        if t in node_parts:
            x, ids, names = node_parts[t]
            data[t].x = x
            setattr(data[t], ID_ATTRS[t], [str(i) for i in ids])
            data[t].feature_names = [str(n) for n in names]
    for t in ENTITY_TYPES:
        if t in edges:
            fwd, rev = EDGE_TYPES[t]
            data[fwd].edge_index = edges[t]
            data[rev].edge_index = edges[t].flip(0).contiguous()
    data.format_version = FORMAT_VERSION
    return data


def node_types(data: HeteroData) -> list[str]:
    """The entity types (``song``, ``creator``, ``hashtag``) a graph holds, in canonical order."""
    return [t for t in ENTITY_TYPES if t in data.node_types]


def _unpack_ids(packed: str | list[str]) -> list[str]:
    """Format-1 files stored ids as one newline-joined string."""
    if isinstance(packed, list):
        return packed
    return packed.split("\n") if packed else []


def _clean(data: HeteroData) -> HeteroData:
    """The graph exactly as saved: features, id mappings, feature names, both edge directions."""
    present = [t for t in ("video", *ENTITY_TYPES) if t in data.node_types]
    node_parts = {t: (data[t].x, getattr(data[t], ID_ATTRS[t]), data[t].feature_names) for t in present}
    edges = {t: data[EDGE_TYPES[t][0]].edge_index for t in ENTITY_TYPES
             if t in data.node_types and EDGE_TYPES[t][0] in data.edge_types}
    return _assemble(node_parts, edges)


def save_graph(data: HeteroData, graph_dir: str | Path) -> Path:
    """Write ``graph.pt`` atomically: the ``HeteroData`` itself (``weights_only``-loadable, see above)."""
    clean = _clean(data)
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
        for fwd, rev in EDGE_TYPES.values():
            if fwd in p.edge_types and rev not in p.edge_types:
                p[rev].edge_index = p[fwd].edge_index.flip(0).contiguous()
        return p
    if isinstance(p, dict) and p.get("format_version") == 1:
        return _assemble({"video": (p["video_x"], _unpack_ids(p["video_id"]), p["video_feature_names"]),
                          "song": (p["song_x"], _unpack_ids(p["song_id"]), p["song_feature_names"])},
                         {"song": p["edge_index"]})
    version = p.get("format_version") if isinstance(p, dict) else None
    raise UserError(f"{path} has graph format {version}, expected {FORMAT_VERSION}; rebuild it")
