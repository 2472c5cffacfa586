"""Score new videos with a trained run, with each modality's contribution.

New videos need no engagement counts. Their media features are extracted with the
run's own extraction settings, and their network embedding comes from the frozen GAT
run inductively: a video whose song, creator or hashtags are in the graph reads their
embeddings; a new song, creator or hashtag becomes a new node. A known song's and
creator's fields that a --video row lacks (song originality and use count, the creator's
followers) are looked up in the run's graph, so the video gets the features training
saw for it rather than "missing". Nothing is retrained.

Examples:
  mdr-graph predict --run runs/r1 --video clip.mp4 --song-id 123 --author-id 42 --caption "so good #fyp"
  mdr-graph predict --run runs/r1 --graph-input new_scrape.json --media-root videos/ --out preds.csv
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.errors import UserError
from mdr_graph.graph_build.schema import VIDEO_COLUMNS
from mdr_graph.graph_build.tables import read_songs, read_videos, videos_path
from mdr_graph.io import write_text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="a run directory written by `mdr-graph train`")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--graph-input", help="scraped metadata of the new videos (any format build-graph reads)")
    src.add_argument("--video", action="append", help="a new video file (repeatable, with --song-id each)")
    p.add_argument("--format", default="auto", help="format of --graph-input, as in build-graph (default: %(default)s)")
    p.add_argument("--media-root", help="where --graph-input's videos are (DIR/<video_id>.mp4)")
    p.add_argument("--song-id", action="append", help="song id of each --video (known or new)")
    p.add_argument("--song-title", action="append")
    p.add_argument("--song-author", action="append")
    p.add_argument("--caption", action="append")
    p.add_argument("--hashtags", action="append", help="comma-separated, per --video")
    p.add_argument("--create-time", action="append",
                   help="time of posting, per --video: ISO 8601 or epoch seconds (default now)")
    p.add_argument("--author-id", action="append", help="creator id of each --video (known or new)")
    p.add_argument("--author-followers", action="append",
                   help="per --video, written as build-graph reads counts (1234, 12.3K, 1.4M); default: the "
                        "creator's value in the run's graph, when the creator is known")
    p.add_argument("--video-id", action="append", help="id for each --video (default: the file name)")
    p.add_argument("--out", help="write the scores as CSV here (default: print them)")
    p.add_argument("--timings", action="store_true",
                   help="print the wall seconds of each stage (import torch, other imports, model load, decode, "
                        "features, network, forward) on stderr, as one JSON line after 'timings: '")


class Stages:
    """Wall seconds per named stage of one prediction (``--timings``); a stage may be entered repeatedly."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def _nth(values, i, default=None):
    return values[i] if values and i < len(values) and values[i] is not None else default


def videos_from_files(args: argparse.Namespace) -> pd.DataFrame:
    """Canonical rows for ``--video`` files described on the command line."""
    if not args.song_id or len(args.song_id) != len(args.video):
        raise UserError("give one --song-id per --video (a new song id is fine)")
    from mdr_graph.cli_values import count_option, time_option

    rows = []
    for i, path in enumerate(args.video):
        if not Path(path).exists():
            raise UserError(f"video file not found: {path}")
        tags = _nth(args.hashtags, i, "")
        rows.append({
            "video_id": _nth(args.video_id, i, Path(path).stem),
            "song_id": args.song_id[i], "song_title": _nth(args.song_title, i), "song_author": _nth(args.song_author, i),
            "caption": _nth(args.caption, i, ""),
            "hashtags": [t.strip().lstrip("#") for t in tags.split(",") if t.strip()],
            "create_time": pd.Timestamp(time_option("--create-time", _nth(args.create_time, i))
                                        or pd.Timestamp.now(tz="UTC").value, unit="ns", tz="UTC"),
            "author_id": _nth(args.author_id, i),
            "author_followers": count_option("--author-followers", _nth(args.author_followers, i)),
            "video_path": str(Path(path).resolve()),
        })
    return canonical(pd.DataFrame(rows))


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Add any missing canonical column as nulls, in the canonical order."""
    for col, dtype in VIDEO_COLUMNS.items():
        if col not in df:
            df[col] = pd.Series([None] * len(df), dtype="object")
    df = df[list(VIDEO_COLUMNS)].copy()
    df["create_time"] = pd.to_datetime(df["create_time"], utc=True)
    if df["duration_s"].isna().any() and df["video_path"].notna().any():
        df["duration_s"] = [d if pd.notna(d) or not isinstance(p, str) else _probe_duration(p)
                            for d, p in zip(df["duration_s"], df["video_path"])]
    return df


def _probe_duration(path: str) -> float | None:
    import av

    try:
        with av.open(path) as c:
            return float(c.duration / 1e6) if c.duration else None
    except Exception:
        return None


def videos_from_metadata(args: argparse.Namespace) -> pd.DataFrame:
    from mdr_graph.graph_build.ingest import ingest

    videos, rejects = ingest([args.graph_input], fmt=args.format, media_root=args.media_root, require_counts=False)
    for r in rejects:
        print(f"rejected {r.get('video_id')}: {r.get('reason')} {r.get('detail', '')}", file=sys.stderr)
    if videos.empty:
        raise UserError(f"no usable video records in {args.graph_input}")
    return canonical(videos)


def extract_media(videos: pd.DataFrame, features_dir: str, stages: Stages | None = None) -> dict[str, dict]:
    """Features of each new video's file, with the settings the run was trained on."""
    stages = stages or Stages()
    with stages("imports"):
        from mdr_graph.media.extract import extract_video, load_config
        from mdr_graph.runlog import progress

    # Only the settings: opening the whole FeatureStore would read its index for nothing.
    cfg = load_config(features_dir)
    whisper_model = None
    if getattr(cfg, "whisper", None):
        with stages("imports"):
            from mdr_graph.media.whisper_features import load_whisper
        with stages("model load"):
            whisper_model = load_whisper(cfg.whisper)
    out = {}
    timings: dict[str, float] = {}
    for vid, path in progress(list(zip(videos["video_id"], videos["video_path"])), desc="extract", unit="video"):
        if isinstance(path, str) and Path(path).exists():
            try:
                out[str(vid)] = extract_video(path, cfg, whisper_model=whisper_model, timings=timings)
            except Exception as e:  # a bad file loses its media modalities, not the prediction
                print(f"video {vid}: media not decodable ({e}); scoring without it", file=sys.stderr)
    for name, seconds in timings.items():
        stages.seconds[name] = stages.seconds.get(name, 0.0) + seconds
    return out


def new_label_inputs(run: str | Path, cfg, norm, videos: pd.DataFrame, media: dict[str, dict]):
    """The label-derived inputs of new videos: they see every training video of the run, and its text ridge."""
    from mdr_graph.encoders.text import video_texts
    from mdr_graph.io import read_json
    from mdr_graph.train.fitted import Fitted

    fitted = Fitted()
    if "labels" in cfg.modalities or "gbdt" in cfg.modalities:
        from mdr_graph.train.label_features import LabelFeatureConfig, label_features_new

        graph = read_videos(cfg.graph)
        train_ids = set(read_json(Path(run) / "splits.json")["train"])
        train = graph[graph["video_id"].astype(str).isin(train_ids)].reset_index(drop=True)
        if len(train) != len(train_ids):
            raise UserError(f"the graph {cfg.graph} no longer holds this run's training videos; "
                            "predict with the graph the run was trained on")
        target = norm.target(train["popularity_raw"].to_numpy(np.float64))
        fitted.labels = label_features_new(videos, train, target, LabelFeatureConfig.of(cfg))
    if ("text" in cfg.modalities and cfg.text_features == "ridge") or "gbdt" in cfg.modalities:
        from mdr_graph.train.text_ridge import TextRidge

        transcripts = {v: f["transcript"] for v, f in media.items() if f.get("transcript")}
        texts = video_texts(videos, transcripts)
        fitted.text = TextRidge.load(run).predict(texts)[:, None].astype(np.float32)
        fitted.text_present = np.array([bool(t.strip()) for t in texts])
    if "gbdt" in cfg.modalities:   # the run's final gbdt on the new rows' meta, labels and text inputs
        from mdr_graph.encoders.meta import meta_features
        from mdr_graph.train.gbdt import Stacked, gbdt_matrix

        x, _ = gbdt_matrix(meta_features(videos), fitted.labels, fitted.text)
        fitted.gbdt = Stacked.load(run).predict(x)[:, None].astype(np.float32)
    return fitted


SONG_FIELDS = ("song_title", "song_author", "song_original", "song_uses")


def fill_from_graph(videos: pd.DataFrame, graph_dir: str | Path) -> pd.DataFrame:
    """Fill a known song's and creator's missing fields from the graph (given values win).

    The meta features of a new video include its song's originality and use count and its
    creator's followers. A ``--video`` row names only the ids; without this lookup a known
    song would get ``log_song_uses=0, uses_missing=1``, a combination training never saw.
    A creator's followers are taken from its most recent video in the graph.
    """
    out = videos.copy()
    songs = read_songs(graph_dir, missing_ok=True)
    if songs is not None:
        songs = songs.drop_duplicates("song_id").set_index("song_id")
        sid = out["song_id"].astype("string")
        for col in SONG_FIELDS:
            if col in songs:
                known = sid.map(songs[col].to_dict() if len(songs) else {})
                out[col] = out[col].astype(object).where(out[col].notna(), known.astype(object))
    if videos_path(graph_dir).exists() and "author_id" in out:
        g = read_videos(graph_dir, ["author_id", "author_followers", "create_time"])
        g = g[g["author_id"].notna() & g["author_followers"].notna()].sort_values("create_time")
        latest = g.drop_duplicates("author_id", keep="last").set_index("author_id")["author_followers"]
        known = out["author_id"].astype("string").map(latest.to_dict())
        out["author_followers"] = out["author_followers"].astype(object).where(out["author_followers"].notna(),
                                                                             known.astype(object))
    return canonical(out)


def predict_new(run: str | Path, videos: pd.DataFrame, stages: Stages | None = None) -> pd.DataFrame:
    """Scores and per-modality contributions for canonical ``videos`` rows.

    ``stages``, when given, gains the wall seconds of imports, model load, decode,
    features, network (the inductive GAT embedding) and forward.
    """
    stages = stages or Stages()
    with stages("import torch"):  # apart from the rest: the floor of any process that uses torch
        import torch
    with stages("imports"):
        from mdr_graph.modalities import uses_store
        from mdr_graph.train.evaluate import load_run
        from mdr_graph.train.prepare import build_dataset, network_embeddings
        from mdr_graph.train.inference import load_trained, predict

    with stages("model load"):
        from mdr_graph.train.runcheck import check_model_matches

        cfg, splits, norm = load_run(run)
        model, ck = load_trained(Path(run) / "model.pt")
        check_model_matches(ck, cfg, Path(run) / "model.pt")
        videos = fill_from_graph(videos, cfg.graph)
    needs_media = uses_store(cfg.modalities, bool(cfg.features))
    media = extract_media(videos, cfg.features, stages) if needs_media and cfg.features else {}
    emb = None
    if "network" in cfg.modalities:
        with stages("imports"):  # PyG, and with it torch._dynamo: the dearest import after torch (see bench_predict)
            from mdr_graph.pretrain import embed, model as _gat_model  # noqa: F401
            from mdr_graph.train.finetune import FinetunedGAT
        with stages("network"):
            if isinstance(model, FinetunedGAT):  # embed inductively with the fine-tuned GAT
                emb = embed.embed_new_with(model.gat, model.parts, videos, mode=model.mode,
                                             known=model.views.known[0])  # the held-out view: training videos write
            else:  # the graph as training saw it: only training videos shape the entities
                emb = network_embeddings(cfg, videos, new=True, known_videos=splits["train"])
    with stages("features"):
        fitted = new_label_inputs(run, cfg, norm, videos.reset_index(drop=True), media)
    with stages("forward"):
        shapes = {k: tuple(v) for k, v in ck["input_shapes"].items()}
        ds, _ = build_dataset(cfg, videos.reset_index(drop=True), np.zeros(len(videos)), norm, emb, media.get,
                              shapes, fitted=fitted)
        pred, contrib, present = predict(model, ds, cfg, torch.device("cpu"))
    graph_songs = set(read_songs(cfg.graph, ["song_id"])["song_id"].astype(str))
    out = pd.DataFrame({
        "video_id": videos["video_id"].astype(str).to_numpy(),
        "song_id": videos["song_id"].astype(str).to_numpy(),
        "song_in_graph": [s in graph_songs for s in videos["song_id"].astype(str)],
        "prediction": pred,
        "popularity_raw_estimate": norm.target_inverse(pred),
    })
    for j, m in enumerate(cfg.modalities):
        out[f"present_{m}"] = present[:, j]
        if contrib is not None:
            out[f"contribution_{m}"] = np.where(present[:, j], contrib[:, j], 0.0)
    return out


def main(args: argparse.Namespace) -> int:
    stages = Stages()
    videos = videos_from_files(args) if args.video else videos_from_metadata(args)
    scores = predict_new(args.run, videos, stages)
    if args.out:
        write_text(args.out, scores.to_csv(index=False))
        print(f"wrote {len(scores)} scores to {args.out}")
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print(scores.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.timings:
        print("timings: " + json.dumps({k: round(v, 4) for k, v in stages.seconds.items()}), file=sys.stderr)
    return 0
