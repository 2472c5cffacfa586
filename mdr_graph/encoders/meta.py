"""The ``meta`` modality: what is known about a video before it is published, through an MLP.

Features (:data:`META_FEATURES`, built by :func:`meta_features` from a ``videos.parquet``
table): duration, hashtag count, caption length, posting hour and weekday (as sin/cos),
author followers, the song's originality and platform use count, and the account's following,
video and given-likes counts (not its hearts, which include this video's likes), each with a
missing flag where the scrape may lack it. The first are exactly the graph's video features
beside its song's features; all are stateless per-row transforms, so a new video gets the
features it would have had in training. This is the one definition: ``train``,
``predict`` and the ``meta-linear`` baseline all read it. Engagement counts of the video
(plays, likes, shares, comments, saves) are never read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdr_graph.encoders.layers import VectorEncoder
from mdr_graph.errors import UserError
from mdr_graph.fusion_config import FusionConfig
from mdr_graph.graph_build.features import (SONG_FEATURES, VIDEO_FEATURES, log1p_or_zero, song_features,
                                           video_features)

# The account beside the video, as scraped (a scrape-time value: the data's own limitation). Not its
# hearts: they include the likes of the very video being predicted.
ACCOUNT_COLUMNS = {"following": "author_following", "author_videos": "author_videos", "diggs": "author_diggs"}
ACCOUNT_FEATURES = [f for name in ACCOUNT_COLUMNS for f in (f"log_{name}", f"{name}_missing")]
META_FEATURES = [*VIDEO_FEATURES, *SONG_FEATURES, *ACCOUNT_FEATURES]


def account_features(videos: pd.DataFrame) -> np.ndarray:
    """``[n, len(ACCOUNT_FEATURES)]``: log1p of each account count and its missing flag (stateless, per row)."""
    n = len(videos)
    cols = []
    for col in ACCOUNT_COLUMNS.values():
        cols.extend(log1p_or_zero(videos[col]) if col in videos else (np.zeros(n), np.ones(n)))
    return np.stack(cols, axis=1) if n else np.zeros((0, len(ACCOUNT_FEATURES)))


def meta_features(videos: pd.DataFrame) -> np.ndarray:
    """``float32 [n, len(META_FEATURES)]``, one row per row of ``videos`` (canonical columns)."""
    return np.concatenate([video_features(videos), song_features(videos), account_features(videos)],
                          axis=1).astype(np.float32)


class MetaEncoder(VectorEncoder):
    """``float [B, d_meta]`` to one token through a standardised two-layer MLP."""

    def __init__(self, input_shape: tuple[int, ...], d_model: int, hidden: int = FusionConfig.meta_hidden,
                 dropout: float = 0.0):
        if len(input_shape) != 1:
            raise UserError(f"meta expects a feature vector [d_meta] per sample, got {tuple(input_shape)}")
        super().__init__(input_shape[0], d_model, hidden=max(hidden, 1), dropout=dropout, standardize=True)
