"""Creator and hashtag nodes: their tables and their edges to videos (the rules are in docs/graph.md).

Creators are the videos' ``author_id``; a video without one has no creator edge. The
account counts are scrape-time values; ``hearts_other`` removes the likes of the
creator's videos in this data set from ``hearts``, so no video's own engagement reaches
a creator feature.

Hashtags are case-folded, NFKC-normalised and stripped of ``#``, so "#FYP", "fyp" and
"ｆｙｐ" are one node. A *hub* tag (one that tags more than ``max_df`` of the videos and at
least ``min_hub_videos`` of them) is not a node: see :func:`hashtag_nodes` for why.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd

from mdr_graph.graph_build.schema import CREATOR_COLUMNS, DEFAULT_MAX_DF, DEFAULT_MIN_HUB_VIDEOS, HASHTAG_COLUMNS


def normalise_hashtag(tag: str) -> str | None:
    """The node name of a scraped tag: NFKC, case-folded, '#' and spaces stripped; None if empty."""
    t = unicodedata.normalize("NFKC", tag).casefold().strip().lstrip("#").strip()
    return t or None


# videos.parquet column of each entity type's key(s)
ENTITY_COLUMNS = {"song": "song_id", "creator": "author_id", "hashtag": "hashtags"}


def entity_keys(videos: pd.DataFrame, node_type: str) -> list[list[str]]:
    """Each row's entity ids of ``node_type``, by the graph's id rules: ``[]`` (none), one song or creator
    id, or the row's distinct normalised hashtags. New videos (``embed``, ``predict``) and the label-aware
    features use this, so they name exactly the graph's nodes."""
    col = ENTITY_COLUMNS[node_type]
    if col not in videos:
        return [[] for _ in range(len(videos))]
    if node_type != "hashtag":
        return [[] if pd.isna(k) or str(k) == "" else [str(k)] for k in videos[col]]
    out = []
    for tags in videos[col]:
        tags = tags if isinstance(tags, (list, tuple, np.ndarray)) else []
        keys = (normalise_hashtag(str(t)) for t in tags if t is not None)
        out.append(list(dict.fromkeys(k for k in keys if k)))
    return out


# ---------------------------------------------------------------- creators

def creators_table(videos: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per creator in first-seen order (``CREATOR_COLUMNS``), and each video's creator row (-1: none)."""
    ids = videos["author_id"]
    has = ids.notna().to_numpy()
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)  # first-seen order
    out = pd.DataFrame({"creator_id": pd.array(np.asarray(uniques, dtype=object), dtype="string")})
    n = len(uniques)
    out["degree"] = np.bincount(codes[has], minlength=n).astype(np.int64)
    # The account as last scraped: per column, the value of the latest-scraped video that has one.
    order = np.argsort(videos["scrape_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[has], kind="stable")
    sub = pd.DataFrame({"c": codes[has][order]})
    for col, src in (("followers", "author_followers"), ("following", "author_following"),
                     ("videos", "author_videos"), ("hearts", "author_hearts"), ("diggs", "author_diggs")):
        if src in videos:
            sub[col] = videos[src].to_numpy(dtype="float64", na_value=np.nan)[has][order]
        else:
            sub[col] = np.nan
    last = sub.groupby("c", sort=True).last()
    for col in ("followers", "following", "videos", "hearts", "diggs"):
        out[col] = pd.array(np.full(n, np.nan), dtype="Float64")
        out.loc[last.index.to_numpy(), col] = last[col].to_numpy()
        out[col] = out[col].round().astype("Int64")
    # hearts minus the likes of its videos here: only when every one of those likes is known
    likes = videos["likes"].to_numpy(dtype="float64", na_value=np.nan)[has] if "likes" in videos else \
        np.full(int(has.sum()), np.nan)
    like_sum = np.bincount(codes[has], weights=np.nan_to_num(likes), minlength=n)
    unknown = np.bincount(codes[has], weights=np.isnan(likes).astype(np.float64), minlength=n) > 0
    hearts = out["hearts"].to_numpy(dtype="float64", na_value=np.nan)
    other = np.where(unknown | np.isnan(hearts), np.nan, np.maximum(hearts - like_sum, 0.0))
    out["hearts_other"] = pd.array(other, dtype="Float64").round().astype("Int64")
    return out[list(CREATOR_COLUMNS)], codes.astype(np.int64)


# ---------------------------------------------------------------- hashtags

@dataclass
class HashtagNodes:
    table: pd.DataFrame          # HASHTAG_COLUMNS, row i = node i
    edges: np.ndarray            # [2, E] (video row, hashtag node), sorted by video
    hubs: list[dict]             # the dropped hub tags: hashtag, videos, share (largest first)
    max_df: float
    min_hub_videos: int


def hashtag_nodes(videos: pd.DataFrame, max_df: float = DEFAULT_MAX_DF,
                  min_hub_videos: int = DEFAULT_MIN_HUB_VIDEOS) -> HashtagNodes:
    """Hashtag nodes and video-hashtag edges, hubs left out (one edge per video and tag).

    Why a maximum document frequency rather than down-weighting: a tag on one video in
    ten (#fyp tags 41% of trending-2020-12) says almost nothing about which videos are
    alike, yet as a node it joins a tenth of the graph into one neighbourhood whose
    average is the same for everyone, it is the trivially "predictable" link that a
    degree heuristic already wins, and at a million videos it is a node with a hundred
    thousand edges. Dropping it is a graph-construction rule every model sees the same
    way; down-weighting would need edge weights in every model. The hubs are listed in
    summary.json, and ``max_df=1`` keeps every tag.
    """
    tags = videos["hashtags"].to_numpy(dtype=object)
    lengths = np.fromiter((len(t) if t is not None and not isinstance(t, float) else 0 for t in tags),
                          dtype=np.int64, count=len(tags))
    flat = list(chain.from_iterable(t for t, n in zip(tags, lengths) if n))
    rows = np.repeat(np.arange(len(tags), dtype=np.int64), lengths)
    cache: dict[str, str | None] = {}
    norm = [cache[t] if t in cache else cache.setdefault(t, normalise_hashtag(t)) for t in flat]
    del flat
    keep = np.fromiter((t is not None for t in norm), dtype=bool, count=len(norm))
    codes, uniques = pd.factorize(pd.Series(norm, dtype=object)[keep].to_numpy(), use_na_sentinel=True)
    del norm
    rows = rows[keep]
    # one edge per (video, tag): "#FYP #fyp" is one tag
    key = np.unique(rows * max(len(uniques), 1) + codes)
    rows, codes = key // max(len(uniques), 1), key % max(len(uniques), 1)
    df = np.bincount(codes, minlength=len(uniques))
    n_videos = len(videos)
    hub = (df > max_df * n_videos) & (df >= min_hub_videos)
    hub_idx = np.flatnonzero(hub)
    hubs = [{"hashtag": str(uniques[i]), "videos": int(df[i]), "share": round(float(df[i]) / n_videos, 4)}
            for i in hub_idx[np.argsort(-df[hub_idx], kind="stable")]]
    # node order: first seen among kept tags (factorize order), hubs removed
    new_id = np.full(len(uniques), -1, dtype=np.int64)
    kept = np.flatnonzero(~hub)
    new_id[kept] = np.arange(len(kept))
    sel = ~hub[codes]
    edges = np.stack([rows[sel], new_id[codes[sel]]]) if len(rows) else np.zeros((2, 0), np.int64)
    table = pd.DataFrame({"hashtag": pd.array(np.asarray(uniques, dtype=object)[kept], dtype="string"),
                          "degree": df[kept].astype(np.int64)})
    return HashtagNodes(table[list(HASHTAG_COLUMNS)], edges.astype(np.int64), hubs, max_df, min_hub_videos)
