"""Build the datasets of a run: split, fit normalisation on train, align every modality.

``prepare`` is shared by ``train``, ``evaluate`` and ``compare`` so that all of them see
exactly the same inputs; ``evaluate`` passes the run's saved splits and normaliser back
in instead of refitting them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.encoders.meta import meta_features
from mdr_graph.encoders.text import video_texts
from mdr_graph.errors import UserError
from mdr_graph.graph_build.tables import read_videos
from mdr_graph.train.config import TrainConfig
from mdr_graph.train.data import (MEDIA_MODALITIES, Normalizer, PopularityDataset, media_input_shapes,
                                  network_matrix)
from mdr_graph.train.fitted import Fitted, fitted_inputs, store_transcripts
from mdr_graph.splits import SPLITS, SplitConfig, make_splits


@dataclass
class Prepared:
    videos: pd.DataFrame
    splits: dict[str, np.ndarray]
    normalizer: Normalizer
    datasets: dict[str, PopularityDataset]
    input_shapes: dict[str, tuple]
    missing_media: int            # videos with no extracted features at all (media masked)
    media_modalities: list[str]
    fitted: Fitted | None = None   # the label-derived inputs (labels, text ridge)


def open_store(features: str):
    if not features:
        return None
    from mdr_graph.media.store import FeatureStore

    if not (Path(features) / "index.parquet").exists():
        raise UserError(f"no feature index at {features}/index.parquet; run `mdr-graph extract` first")
    return FeatureStore(features)


def network_embeddings(cfg: TrainConfig, videos: pd.DataFrame, new: bool = False,
                       known_videos=None) -> pd.DataFrame:
    """Frozen GAT embeddings (``cfg.network_embedding``) of the graph's videos, or of ``new`` ones.

    Only ``known_videos``' links (the training split) shape the song, creator and hashtag
    embeddings and their degree inputs; every other video only reads from its entities.
    """
    if not cfg.gat:
        raise UserError("modality 'network' needs --gat RUNDIR/gat.pt (from `mdr-graph pretrain`)")
    if not Path(cfg.gat).exists():
        raise UserError(f"GAT checkpoint not found: {cfg.gat}")
    from mdr_graph.pretrain import embed

    mode = embed.check_mode(cfg.network_embedding)
    if new:
        return embed.embed_new(cfg.gat, cfg.graph, videos, mode=mode, known_videos=known_videos)
    return embed.embed_graph(cfg.gat, cfg.graph, mode=mode, known_videos=known_videos)


def build_dataset(cfg: TrainConfig, videos: pd.DataFrame, targets: np.ndarray, normalizer: Normalizer,
                  emb: pd.DataFrame | None, media, input_shapes: dict[str, tuple] | None = None,
                  graph_rows: np.ndarray | None = None,
                  fitted: Fitted | None = None) -> tuple[PopularityDataset, dict[str, tuple]]:
    """A dataset over ``videos`` rows; ``media`` is a ``video_id -> features | None`` lookup;
    ``fitted`` holds the label-derived inputs of these same rows."""
    mods = list(cfg.modalities)
    tabular, present = {}, {}
    if "meta" in mods:
        tabular["meta"] = normalizer.meta(meta_features(videos))
        present["meta"] = np.ones(len(videos), dtype=bool)
    if "network" in mods:
        tabular["network"], present["network"] = network_matrix(videos, emb)
    if "labels" in mods:
        tabular["labels"] = fitted.labels
        present["labels"] = np.ones(len(videos), dtype=bool)   # "no neighbour" is itself information
    if "text" in mods and cfg.text_features == "ridge":
        tabular["text"], present["text"] = fitted.text, fitted.text_present
    if "gbdt" in mods:
        tabular["gbdt"], present["gbdt"] = fitted.gbdt, np.ones(len(videos), dtype=bool)
    texts = video_texts(videos) if "text" in mods and "text" not in tabular else None
    shapes = dict(input_shapes or {})
    if not input_shapes:
        for m in ("meta", "network", "labels", "text", "gbdt"):
            if m in tabular:
                shapes[m] = (tabular[m].shape[1],)
        if "text" in mods and "text" not in tabular:
            shapes["text"] = (cfg.text_dim,)
        media_mods = [m for m in mods if m in MEDIA_MODALITIES]
        if media_mods:
            found = (media(v) for v in videos["video_id"].astype(str)) if media is not None else iter(())
            sample = next((f for f in found if f is not None), None)  # each video read once
            shapes.update(media_input_shapes(media_mods, sample))
    ds = PopularityDataset(videos["video_id"].astype(str).tolist(), targets, mods, shapes, tabular, present,
                           texts=texts, text_dim=cfg.text_dim, media=media,
                           graph_rows=graph_rows if cfg.finetune_gat and "network" in mods else None)
    return ds, shapes


REFERENCE_FRAMES = (2, 3, 224, 224)  # the published setting: 2 frames at 224 px (`extract --size 224`)


def _check_reference_frames(cfg: TrainConfig, shapes: dict[str, tuple]) -> None:
    """``--preset reference`` on other frames still trains, but not the published model: say so."""
    frames = next((shapes[m] for m in ("vit", "convlstm") if m in shapes), None)
    if cfg.preset == "reference" and frames is not None and tuple(frames) != REFERENCE_FRAMES:
        print(f"note: --preset reference expects frames {list(REFERENCE_FRAMES)} (`mdr-graph extract --size 224 "
              f"--frames 2`), but {cfg.features} holds {list(frames)}: this trains a different model than the "
              "reference design")


def prepare(cfg: TrainConfig, splits: dict[str, np.ndarray] | None = None,
            normalizer: Normalizer | None = None) -> Prepared:
    videos = read_videos(cfg.graph)
    if splits is None:
        splits = make_splits(videos, SplitConfig.of(cfg))
    ids = videos["video_id"].astype(str)
    row = pd.Series(np.arange(len(videos)), index=ids)
    rows = {s: row.loc[[str(v) for v in splits[s]]].to_numpy() for s in SPLITS}
    if len(rows["train"]) == 0:
        raise UserError(f"the training split is empty ({len(videos)} videos in {cfg.graph})")
    raw = videos["popularity_raw"].to_numpy(dtype=np.float64)
    if normalizer is None:
        normalizer = Normalizer.fit(raw[rows["train"]], meta_features(videos.iloc[rows["train"]]))
    media_mods = [m for m in cfg.modalities if m in MEDIA_MODALITIES]
    store = open_store(cfg.features) if (media_mods or ("text" in cfg.modalities and cfg.features)) else None
    if media_mods and store is None:
        raise UserError(f"modalities {','.join(media_mods)} need --features FEATDIR (from `mdr-graph extract`)")
    media = (lambda vid: store.get(vid) if vid in store else None) if store is not None else None
    emb = network_embeddings(cfg, videos, known_videos=splits["train"]) if "network" in cfg.modalities else None
    target = normalizer.target(raw)
    transcripts = store_transcripts(store, ids) if "text" in cfg.modalities else {}
    fitted = fitted_inputs(cfg, videos, target, rows["train"], transcripts)
    datasets, shapes = {}, None
    for s in SPLITS:
        sub = videos.iloc[rows[s]].reset_index(drop=True)
        datasets[s], shapes = build_dataset(cfg, sub, target[rows[s]], normalizer, emb, media, shapes or None,
                                            graph_rows=rows[s], fitted=fitted.rows(rows[s]))
    missing = 0 if store is None else int((~ids.isin(set(store.ids))).sum())
    _check_reference_frames(cfg, shapes or {})
    return Prepared(videos, splits, normalizer, datasets, shapes, missing, media_mods, fitted)
