"""Export the song-video graph through networkx (GraphML or GEXF) for Gephi and other tools.

Node ids are ``video:<video_id>`` and ``song:<song_id>`` so the two id spaces cannot
collide; each node has ``type`` (video/song), ``bipartite`` (0/1) and ``label``. Video
nodes carry their metadata, engagement counts and ``popularity_raw`` so a Gephi user
can size or colour by them: this file is for looking at the data, never a model input.
Null values are left out of a node's attributes (GraphML and GEXF have no null).
"""

from __future__ import annotations

import os

import networkx as nx
import numpy as np
import pandas as pd

VIDEO_ATTRS = ("author_id", "caption", "duration_s", "create_time", "plays", "likes", "shares", "comments",
               "saves", "popularity_raw", "video_path")
SONG_ATTRS = ("song_title", "song_author", "song_original", "song_uses", "degree")


def _plain(v):
    """A GraphML/GEXF-safe scalar, or None to leave the attribute out."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if np.isnan(v) else float(v)
    return str(v)


def to_networkx(videos: pd.DataFrame, songs: pd.DataFrame) -> nx.Graph:
    """An undirected bipartite ``nx.Graph`` of the canonical tables."""
    g = nx.Graph()
    s_cols = [c for c in SONG_ATTRS if c in songs]
    for row in zip(songs["song_id"], *(songs[c] for c in s_cols)):
        attrs = {"type": "song", "bipartite": 1, "label": _plain(row[1]) if s_cols else row[0]}
        attrs.update({c: x for c, x in zip(s_cols, map(_plain, row[1:])) if x is not None})
        if attrs["label"] is None:
            attrs["label"] = str(row[0])
        g.add_node(f"song:{row[0]}", **attrs)
    v_cols = [c for c in VIDEO_ATTRS if c in videos]
    for row in zip(videos["video_id"], videos["song_id"], *(videos[c] for c in v_cols)):
        attrs = {"type": "video", "bipartite": 0, "label": str(row[0])}
        attrs.update({c: x for c, x in zip(v_cols, map(_plain, row[2:])) if x is not None})
        g.add_node(f"video:{row[0]}", **attrs)
        if not pd.isna(row[1]):  # a video without a song has no song edge
            g.add_edge(f"video:{row[0]}", f"song:{row[1]}")
    return g


def write_networkx(videos: pd.DataFrame, songs: pd.DataFrame, path: str | os.PathLike, fmt: str) -> None:
    """Write ``graphml`` or ``gexf`` to ``path`` (atomically)."""
    from mdr_graph.io import atomic_path

    g = to_networkx(videos, songs)
    with atomic_path(path) as tmp:
        if fmt == "graphml":
            nx.write_graphml(g, tmp)
        elif fmt == "gexf":
            nx.write_gexf(g, tmp)
        else:
            raise ValueError(f"unknown export format {fmt!r}")
