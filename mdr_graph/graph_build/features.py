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


def _log1p_or_zero(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    v = pd.to_numeric(s, errors="coerce").astype("float64")
    missing = v.isna().to_numpy()
    return np.log1p(np.clip(v.fillna(0.0).to_numpy(), 0, None)), missing.astype(np.float32)


def video_features(videos: pd.DataFrame) -> np.ndarray:
    """``[n_videos, len(VIDEO_FEATURES)]`` float32 features, one row per ``videos`` row."""
    n = len(videos)
    dur, dur_missing = _log1p_or_zero(videos["duration_s"]) if "duration_s" in videos else (np.zeros(n), np.ones(n))
    tags = videos["hashtags"] if "hashtags" in videos else pd.Series([None] * n)
    n_tags = np.array([len(t) if isinstance(t, (list, tuple, np.ndarray)) else 0 for t in tags], dtype=np.float64)
    caps = videos["caption"] if "caption" in videos else pd.Series([None] * n)
    n_chars = np.array([len(c) if isinstance(c, str) else 0 for c in caps], dtype=np.float64)
    t = pd.to_datetime(videos["create_time"], utc=True) if "create_time" in videos else pd.Series([pd.NaT] * n)
    hour = (t.dt.hour + t.dt.minute / 60.0).fillna(0.0).to_numpy()
    wday = t.dt.day_of_week.fillna(0).to_numpy().astype(np.float64)
    fol, fol_missing = (_log1p_or_zero(videos["author_followers"]) if "author_followers" in videos
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
    uses, uses_missing = (_log1p_or_zero(songs["song_uses"]) if "song_uses" in songs
                          else (np.zeros(n), np.ones(n)))
    if not n:
        return np.zeros((0, len(SONG_FEATURES)), np.float32)
    return np.stack([orig_v, orig_missing, uses, uses_missing], axis=1).astype(np.float32)
