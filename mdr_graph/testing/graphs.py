"""Synthetic song-video graphs with a known structure, for tests, benchmarks and sanity checks.

Each song gets a random latent vector (its features) and a popularity weight; each video
picks one song with probability proportional to the weights (Zipf-like when
``zipf_exponent > 0``, so a few songs take most videos, as on TikTok). A video's
features are a noisy linear image of its song's latent vector scaled by ``signal``:
with ``signal > 0`` links follow node features and a GAT can learn them, with
``signal = 0`` only song popularity carries information.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mdr_graph.graph_build.features import SONG_FEATURES, VIDEO_FEATURES
from mdr_graph.graph_build.schema import REV_EDGE, VIDEO_EDGE


def synthetic_graph(num_videos: int, num_songs: int, *, signal: float = 1.0, zipf_exponent: float = 1.0,
                    noise: float = 0.5, seed: int = 0, with_ids: bool = True) -> HeteroData:
    """A bipartite graph shaped like ``load_graph``'s output (same feature widths and edge types)."""
    rng = np.random.default_rng(seed)
    d_song, d_video = len(SONG_FEATURES), len(VIDEO_FEATURES)
    song_x = rng.standard_normal((num_songs, d_song)).astype(np.float32)
    weights = (1.0 / np.arange(1, num_songs + 1) ** zipf_exponent)
    weights = rng.permutation(weights)
    # Every song gets at least one video when there are enough videos; the rest follow the weights.
    first = np.arange(num_songs) if num_videos >= num_songs else rng.choice(num_songs, num_videos, replace=False)
    rest = rng.choice(num_songs, num_videos - first.size, p=weights / weights.sum())
    video_song = rng.permutation(np.concatenate([first, rest])).astype(np.int64)
    mix = rng.standard_normal((d_song, d_video)).astype(np.float32) / np.sqrt(d_song)
    video_x = signal * song_x[video_song] @ mix + noise * rng.standard_normal((num_videos, d_video)).astype(np.float32)
    data = HeteroData()
    data["video"].x = torch.from_numpy(video_x.astype(np.float32))
    data["song"].x = torch.from_numpy(song_x)
    if with_ids:
        data["video"].video_id = [f"v{i}" for i in range(num_videos)]
        data["song"].song_id = [f"s{j}" for j in range(num_songs)]
    data["video"].feature_names = list(VIDEO_FEATURES)
    data["song"].feature_names = list(SONG_FEATURES)
    ei = torch.from_numpy(np.stack([np.arange(num_videos, dtype=np.int64), video_song]))
    data[VIDEO_EDGE].edge_index = ei
    data[REV_EDGE].edge_index = ei.flip(0).contiguous()
    return data
