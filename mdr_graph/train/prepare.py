"""Prepare a run's inputs: split, fit normalisation on train, compute every modality's input per split.

``prepare`` is shared by ``train``, ``evaluate`` and ``compare`` so that all of them see
exactly the same inputs; ``evaluate`` passes the run's saved splits and normaliser back
in instead of refitting them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph import modalities as registry
from mdr_graph.encoders.meta import meta_features
from mdr_graph.errors import UserError
from mdr_graph.graph_build.tables import read_videos
from mdr_graph.modalities import Columns, Rows
from mdr_graph.train.config import TrainConfig
from mdr_graph.train.dataset import Normalizer, PopularityDataset, media_input_shapes
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
                       known_videos=None, train_rows: np.ndarray | None = None) -> pd.DataFrame:
    """Frozen GAT embeddings (``cfg.network_embedding``) of the graph's videos, or of ``new`` ones.

    Only ``known_videos``' links (the training split) shape the song, creator and hashtag
    embeddings and their degree inputs; every other video only reads from its entities.

    With ``train_rows`` (rows of ``videos``), the training videos' own embeddings are **out of
    fold**, by the rule of every label-derived input (:func:`mdr_graph.train.oof.oof_pairs`):
    a training video reads entities that only the *other* folds' videos write (under
    ``--split time``, only strictly older videos). Otherwise a training video's creator and
    songs carry the video itself (its features, one more link in the degree), a held-out
    video's never do, and the head learns a shift that does not exist at test time. On
    SMP-Video a ridge on the in-fold embeddings reached test Spearman 0.44-0.49, on the
    out-of-fold ones 0.60-0.66 (3 random splits).
    """
    registry.check_modality("network").require(cfg)
    if not Path(cfg.gat).exists():
        raise UserError(f"GAT checkpoint not found: {cfg.gat}")
    from mdr_graph.pretrain import embed

    mode = embed.check_mode(cfg.network_embedding)
    if new:
        return embed.embed_new(cfg.gat, cfg.graph, videos, mode=mode, known_videos=known_videos)
    views = ()
    if train_rows is not None:
        from mdr_graph.train.oof import oof_pairs

        ids = videos["video_id"].astype(str).to_numpy()
        views = [(ids[fit], ids[inside])
                 for fit, inside in oof_pairs(videos, train_rows, cfg.split, cfg.seed, cfg.oof_folds)]
    return embed.embed_graph(cfg.gat, cfg.graph, mode=mode, known_videos=known_videos, views=views)


def build_dataset(cfg: TrainConfig, videos: pd.DataFrame, targets: np.ndarray, normalizer: Normalizer,
                  emb: pd.DataFrame | None, media, input_shapes: dict[str, tuple] | None = None,
                  graph_rows: np.ndarray | None = None,
                  fitted: Fitted | None = None) -> tuple[PopularityDataset, dict[str, tuple]]:
    """A dataset over ``videos`` rows; ``media`` is a ``video_id -> features | None`` lookup;
    ``fitted`` holds the label-derived inputs of these same rows."""
    mods = list(cfg.modalities)
    rows = Rows(videos, cfg, normalizer, emb, fitted)
    tabular, per_item = {}, {}
    for spec in registry.specs(mods):
        if spec.kind == "tabular":
            got = spec.inputs(rows)
            (tabular if isinstance(got, Columns) else per_item)[spec.name] = got
    shapes = dict(input_shapes or {})
    if not input_shapes:
        shapes.update({m: (c.values.shape[1],) for m, c in tabular.items()})
        shapes.update({m: tuple(p.shape) for m, p in per_item.items()})
        media_mods = registry.media(mods)
        if media_mods:
            found = (media(v) for v in videos["video_id"].astype(str)) if media is not None else iter(())
            sample = next((f for f in found if f is not None), None)  # each video read once
            shapes.update(media_input_shapes(media_mods, sample))
    ds = PopularityDataset(videos["video_id"].astype(str).tolist(), targets, mods, shapes, tabular, per_item,
                           media=media, graph_rows=graph_rows if cfg.finetune_gat and "network" in mods else None)
    return ds, shapes


REFERENCE_FRAMES = (2, 3, 224, 224)  # the published setting: 2 frames at 224 px (`extract --size 224`)


def _check_reference_frames(cfg: TrainConfig, shapes: dict[str, tuple]) -> None:
    """``--preset reference`` on other frames still trains, but not the published model: say so."""
    frames = next((shapes[m] for m in shapes if registry.check_modality(m).store_key == "frames"), None)
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
    for spec in registry.specs(cfg.modalities):   # --gat, --convlstm: before any costly step
        spec.require(cfg)
    media_mods = registry.media(cfg.modalities)
    store = open_store(cfg.features) if registry.uses_store(cfg.modalities, bool(cfg.features)) else None
    if media_mods and store is None:
        raise UserError(f"modalities {','.join(media_mods)} need --features FEATDIR (from `mdr-graph extract`)")
    media = (lambda vid: store.get(vid) if vid in store else None) if store is not None else None
    from_gat = any(s.source == "gat" for s in registry.specs(cfg.modalities))
    emb = (network_embeddings(cfg, videos, known_videos=splits["train"], train_rows=rows["train"])
           if from_gat else None)
    target = normalizer.target(raw)
    reads_transcripts = any("transcript" in s.store_extras for s in registry.specs(cfg.modalities))
    transcripts = store_transcripts(store, ids) if reads_transcripts else {}
    fitted = fitted_inputs(cfg, videos, target, rows["train"], transcripts)
    datasets, shapes = {}, None
    for s in SPLITS:
        sub = videos.iloc[rows[s]].reset_index(drop=True)
        datasets[s], shapes = build_dataset(cfg, sub, target[rows[s]], normalizer, emb, media, shapes or None,
                                            graph_rows=rows[s], fitted=fitted.rows(rows[s]))
    missing = 0 if store is None else int((~ids.isin(set(store.ids))).sum())
    _check_reference_frames(cfg, shapes or {})
    return Prepared(videos, splits, normalizer, datasets, shapes, missing, media_mods, fitted)
