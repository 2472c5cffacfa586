"""Node features built only from what is known before a video is published.

These are stateless transforms (no statistics are fitted), so a video or song that
arrives after pretraining gets exactly the features it would have had in the graph.
Engagement counts never appear here, and neither does a song's degree in this graph:
a feature made from the degree would hand the link-prediction evaluation its answer.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

VIDEO_FEATURES = [
    "log_duration_s", "duration_missing",
    "log_hashtag_count", "log_caption_chars",
    "hour_sin", "hour_cos", "weekday_sin", "weekday_cos",
    "log_author_followers", "followers_missing",
]
SONG_FEATURES = ["song_original", "original_missing", "log_song_uses", "uses_missing"]


def log1p_or_zero(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(log1p of the non-negative counts, 0 where missing; the missing flag)``."""
    v = pd.to_numeric(s, errors="coerce").astype("float64")
    missing = v.isna().to_numpy()
    return np.log1p(np.clip(v.fillna(0.0).to_numpy(), 0, None)), missing.astype(np.float32)


def video_features(videos: pd.DataFrame) -> np.ndarray:
    """``[n_videos, len(VIDEO_FEATURES)]`` float32 features, one row per ``videos`` row."""
    n = len(videos)
    dur, dur_missing = log1p_or_zero(videos["duration_s"]) if "duration_s" in videos else (np.zeros(n), np.ones(n))
    tags = videos["hashtags"] if "hashtags" in videos else pd.Series([None] * n)
    n_tags = np.array([len(t) if isinstance(t, (list, tuple, np.ndarray)) else 0 for t in tags], dtype=np.float64)
    caps = videos["caption"] if "caption" in videos else pd.Series([None] * n)
    n_chars = np.array([len(c) if isinstance(c, str) else 0 for c in caps], dtype=np.float64)
    t = pd.to_datetime(videos["create_time"], utc=True) if "create_time" in videos else pd.Series([pd.NaT] * n)
    hour = (t.dt.hour + t.dt.minute / 60.0).fillna(0.0).to_numpy()
    wday = t.dt.day_of_week.fillna(0).to_numpy().astype(np.float64)
    fol, fol_missing = (log1p_or_zero(videos["author_followers"]) if "author_followers" in videos
                        else (np.zeros(n), np.ones(n)))
    cols = [
        dur, dur_missing, np.log1p(n_tags), np.log1p(n_chars),
        np.sin(2 * math.pi * hour / 24), np.cos(2 * math.pi * hour / 24),
        np.sin(2 * math.pi * wday / 7), np.cos(2 * math.pi * wday / 7),
        fol, fol_missing,
    ]
    return np.stack(cols, axis=1).astype(np.float32) if n else np.zeros((0, len(VIDEO_FEATURES)), np.float32)


def song_features(songs: pd.DataFrame) -> np.ndarray:
    """``[n_songs, len(SONG_FEATURES)]`` float32 features, one row per ``songs`` row."""
    n = len(songs)
    orig = songs["song_original"] if "song_original" in songs else pd.Series([pd.NA] * n)
    orig_missing = orig.isna().to_numpy().astype(np.float32)
    orig_v = orig.astype("boolean").fillna(False).astype(np.float32).to_numpy()
    uses, uses_missing = (log1p_or_zero(songs["song_uses"]) if "song_uses" in songs
                          else (np.zeros(n), np.ones(n)))
    if not n:
        return np.zeros((0, len(SONG_FEATURES)), np.float32)
    return np.stack([orig_v, orig_missing, uses, uses_missing], axis=1).astype(np.float32)


# What the scrape knows about the account, never its videos' engagement here: ``hearts_other``
# leaves out the likes of the creator's videos in the data set (see entities.creators_table).
CREATOR_FEATURES = [
    "log_followers", "followers_missing", "log_following", "following_missing",
    "log_videos", "videos_missing", "log_hearts_other", "hearts_missing", "log_diggs", "diggs_missing",
]
# A tag's own text; how often it is used here is its degree, which link prediction must not see.
HASHTAG_FEATURES = ["log_chars", "non_ascii"]


def creator_features(creators: pd.DataFrame) -> np.ndarray:
    """``[n_creators, len(CREATOR_FEATURES)]`` float32 features, one row per ``creators`` row."""
    n = len(creators)
    if not n:
        return np.zeros((0, len(CREATOR_FEATURES)), np.float32)
    cols = []
    for name in ("followers", "following", "videos", "hearts_other", "diggs"):
        cols.extend(log1p_or_zero(creators[name]) if name in creators else (np.zeros(n), np.ones(n)))
    return np.stack(cols, axis=1).astype(np.float32)


def hashtag_features(hashtags: pd.DataFrame) -> np.ndarray:
    """``[n_hashtags, len(HASHTAG_FEATURES)]`` float32 features, one row per ``hashtags`` row."""
    tags = hashtags["hashtag"].astype(str).tolist()
    if not tags:
        return np.zeros((0, len(HASHTAG_FEATURES)), np.float32)
    chars = np.fromiter((len(t) for t in tags), dtype=np.float64, count=len(tags))
    non_ascii = np.fromiter((not t.isascii() for t in tags), dtype=np.float64, count=len(tags))
    return np.stack([np.log1p(chars), non_ascii], axis=1).astype(np.float32)
