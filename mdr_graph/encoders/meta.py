"""The ``meta`` modality: what is known about a video before it is published, through an MLP.

Features (:data:`META_FEATURES`, built by :func:`meta_features` from a ``videos.parquet``
table): duration, hashtag count, caption length, posting hour and weekday (as sin/cos),
author followers, and the song's originality and platform use count, each with a missing
flag where the scrape may lack it. They are exactly the graph's video features beside
its song's features, computed by the same stateless transforms, so a new video gets the
features it would have had in training. This is the one definition: ``train``,
``predict`` and the ``meta-linear`` baseline all read it. Engagement counts of the video
(plays, likes, shares, comments, saves) are never read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdr_graph.encoders.layers import VectorEncoder
from mdr_graph.errors import UserError
from mdr_graph.graph_build.features import SONG_FEATURES, VIDEO_FEATURES, song_features, video_features

META_FEATURES = [*VIDEO_FEATURES, *SONG_FEATURES]


def meta_features(videos: pd.DataFrame) -> np.ndarray:
    """``float32 [n, len(META_FEATURES)]``, one row per row of ``videos`` (canonical columns)."""
    return np.concatenate([video_features(videos), song_features(videos)], axis=1).astype(np.float32)


class MetaEncoder(VectorEncoder):
    """``float [B, d_meta]`` to one token through a standardised two-layer MLP."""

    def __init__(self, input_shape: tuple[int, ...], d_model: int, hidden: int = 128, dropout: float = 0.0):
        if len(input_shape) != 1:
            raise UserError(f"meta expects a feature vector [d_meta] per sample, got {tuple(input_shape)}")
        super().__init__(input_shape[0], d_model, hidden=max(hidden, 1), dropout=dropout, standardize=True)
