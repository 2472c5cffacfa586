"""Write frozen GAT embeddings for every graph video, and for new videos and songs.

Transductive: every video of GRAPHDIR is embedded by the frozen GAT run on the whole
graph, every link passing messages (no link is scored and no label is used, so this
is not a leak; it is how the model will see tomorrow's graph).

Inductive (--new-videos FILE.parquet, rows in the videos.parquet schema): each new
video is added as a node with the same stateless features `build-graph` gives, linked
to its song; a song the graph lacks is added as a new node from the same rows. The
frozen GAT then runs on the affected components only (a song and its videos form a
component, so this is exact). Nothing is retrained.

The output parquet has one row per video: video_id, song_id, in_graph (the video is a
node of GRAPHDIR; false for added ones), new_song, embedding (list of float32).
Large graphs are embedded in batches of whole components and streamed to the file.

example:
  mdr-graph embed --gat runs/gat/gat.pt --graph out/graph --out runs/gat/embeddings.parquet
  mdr-graph embed --gat runs/gat --graph out/graph --out new.parquet --new-videos tomorrow/videos.parquet --only-new
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mdr_graph.errors import UserError

DEFAULT_BATCH_VIDEOS = 250_000
COLUMNS = ("video_id", "song_id", "in_graph", "new_song", "embedding")


# ----------------------------------------------------------------------------- loading

def _gat_file(path: str | Path) -> Path:
    from mdr_graph.pretrain.trainer import GAT_FILE

    path = Path(path)
    if path.is_dir():
        path = path / GAT_FILE
    if not path.exists():
        raise UserError(f"no GAT checkpoint at {path}; train one with "
                        "`mdr-graph pretrain --graph GRAPHDIR --out RUNDIR`")
    return path


def load_gat(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The frozen encoder (eval mode, no gradients) and its metadata from ``gat.pt`` (or its run directory).

    ``meta`` holds ``config`` (a ``GATConfig``), ``embedding_dim``, ``feature_names``,
    ``video_ids`` / ``song_ids`` of the pretraining graph, ``epoch``, ``val`` metrics and
    ``decoder`` (the trained ``LinkDecoder``, to score pairs). For fine-tuning, call
    ``model.train()`` and ``requires_grad_(True)`` on the returned encoder.
    """
    from mdr_graph.io import torch_load
    from mdr_graph.pretrain.model import build_model, config_from_dict
    from mdr_graph.pretrain.trainer import GAT_FORMAT, GAT_FORMAT_VERSION, unpack_ids

    path = _gat_file(path)
    p = torch_load(path)  # a truncated or foreign file is a one-line UserError
    if not isinstance(p, dict) or p.get("format") != GAT_FORMAT:
        raise UserError(f"{path} is not a GAT checkpoint written by `mdr-graph pretrain`")
    if p.get("format_version") != GAT_FORMAT_VERSION:
        raise UserError(f"{path} has GAT format {p.get('format_version')}, this version reads {GAT_FORMAT_VERSION}; "
                        "re-run `mdr-graph pretrain`")
    cfg = config_from_dict(p["config"])
    encoder, decoder = build_model(p["in_dims"], cfg)
    encoder.load_state_dict(p["encoder"])
    decoder.load_state_dict(p["decoder"])
    for m in (encoder, decoder):
        m.eval().requires_grad_(False)
    meta = {
        "path": str(path), "config": cfg, "embedding_dim": int(p["embedding_dim"]),
        "in_dims": dict(p["in_dims"]), "feature_names": p["feature_names"],
        "video_ids": unpack_ids(p["video_ids"], p["num_videos"]), "song_ids": unpack_ids(p["song_ids"], p["num_songs"]),
        "epoch": p.get("epoch"), "val": p.get("val", {}), "graph": p.get("graph", ""), "decoder": decoder,
    }
    return encoder, meta


def embedding_dim(gat_path: str | Path) -> int:
    """Width of the network embedding a checkpoint produces (reads only its metadata)."""
    from mdr_graph.io import torch_load

    return int(torch_load(_gat_file(gat_path))["embedding_dim"])


def _load_graph_checked(graph_dir: str | Path, meta: dict):
    from mdr_graph.graph_build.graph import load_graph
    from mdr_graph.pretrain.trainer import graph_parts

    parts = graph_parts(load_graph(graph_dir))
    for t in ("video", "song"):
        if parts["feature_names"][t] != list(meta["feature_names"][t]):
            raise UserError(f"{graph_dir}: {t} features {parts['feature_names'][t]} differ from the ones the GAT "
                            f"was trained on {list(meta['feature_names'][t])}; rebuild the graph with the same "
                            "mdr-graph version or retrain the GAT")
    return parts


# ----------------------------------------------------------------------------- transductive

@torch.no_grad()
def iter_graph_embeddings(encoder: torch.nn.Module, parts: dict, batch_videos: int = DEFAULT_BATCH_VIDEOS
                          ) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Yield ``(video_idx, z_video, song_idx, z_song)`` per batch of whole components, all links passing messages."""
    from mdr_graph.graph_build.schema import VIDEO_EDGE
    from mdr_graph.pretrain.components import pack_components

    x, E = parts["x"], parts["edge_index"]
    V, S = x["video"].size(0), x["song"].size(0)
    batches = pack_components(E, V, S, num_batches=max(1, math.ceil(V / max(batch_videos, 1))))
    for vids, songs, mp in zip(batches.videos, batches.songs, batches.split_edges(E)):
        xb = x if batches.is_full_batch else {"video": x["video"][vids], "song": x["song"][songs]}
        z = encoder(xb, {VIDEO_EDGE: mp})
        yield vids, z["video"], songs, z["song"]


def _song_of_video(E: Tensor, num_videos: int) -> Tensor:
    """Song index of each video (-1 for a video without one; the last link wins if several)."""
    song = torch.full((num_videos,), -1, dtype=torch.long)
    song[E[0]] = E[1]
    return song


class Chunk(NamedTuple):
    """A batch of embedding rows, column by column (no per-row Python objects until a DataFrame is asked for)."""

    video_id: np.ndarray    # object array of str
    song_id: np.ndarray     # object array of str or None
    in_graph: np.ndarray    # bool
    new_song: np.ndarray    # bool
    embedding: np.ndarray   # float32 [n, d]


def _chunk(video_ids, song_ids, in_graph, new_song, z: Tensor) -> Chunk:
    return Chunk(np.asarray([str(v) for v in video_ids], dtype=object),
                 np.asarray([None if s is None or s is pd.NA else str(s) for s in song_ids], dtype=object),
                 np.asarray(in_graph, dtype=bool), np.asarray(new_song, dtype=bool),
                 z.detach().float().cpu().numpy())


def _frame(c: Chunk) -> pd.DataFrame:
    return pd.DataFrame({"video_id": c.video_id.tolist(), "song_id": c.song_id.tolist(), "in_graph": c.in_graph,
                         "new_song": c.new_song, "embedding": list(c.embedding)})


def _graph_chunks(encoder, parts: dict, batch_videos: int) -> Iterator[Chunk]:
    ids = parts["ids"]
    vid_ids = np.asarray(ids["video"], dtype=object)
    song_ids = np.asarray(list(ids["song"]) + [None], dtype=object)  # index -1 -> None
    song_of = _song_of_video(parts["edge_index"], len(vid_ids))
    for vids, zv, _, _ in iter_graph_embeddings(encoder, parts, batch_videos):
        n = vids.numel()
        yield Chunk(vid_ids[vids.numpy()], song_ids[song_of[vids].numpy()], np.ones(n, bool), np.zeros(n, bool),
                    zv.float().numpy())


def embed_graph(gat_path: str | Path, graph_dir: str | Path, *, batch_videos: int = DEFAULT_BATCH_VIDEOS
                ) -> pd.DataFrame:
    """Frozen embeddings of every video of ``graph_dir`` (transductive), in graph order.

    Columns ``video_id``, ``song_id``, ``in_graph`` (all true), ``new_song`` (all false),
    ``embedding`` (float32 array of ``embedding_dim``). Every link of the graph passes
    messages; inference scores nothing, so no label is involved.
    """
    encoder, meta = load_gat(gat_path)
    parts = _load_graph_checked(graph_dir, meta)
    frames = [_frame(c) for c in _graph_chunks(encoder, parts, batch_videos)]
    if not frames:
        return _frame(_chunk([], [], [], [], torch.zeros(0, meta["embedding_dim"])))
    df = pd.concat(frames, ignore_index=True)
    order = pd.Index(parts["ids"]["video"]).get_indexer(df["video_id"])
    return df.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


# ----------------------------------------------------------------------------- inductive

def _component_subgraph(parts: dict, seed_songs: Tensor, seed_videos: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Global ``(video_idx, song_idx, local edges)`` of the components holding the seed nodes."""
    from mdr_graph.pretrain.components import connected_components

    x, E = parts["x"], parts["edge_index"]
    V, S = x["video"].size(0), x["song"].size(0)
    vc, sc = connected_components(E, V, S)
    comps = torch.cat([sc[seed_songs], vc[seed_videos]]).unique()
    vids = torch.nonzero(torch.isin(vc, comps)).flatten()
    songs = torch.nonzero(torch.isin(sc, comps)).flatten()
    vloc = torch.full((V,), -1, dtype=torch.long)
    vloc[vids] = torch.arange(vids.numel())
    sloc = torch.full((S,), -1, dtype=torch.long)
    sloc[songs] = torch.arange(songs.numel())
    keep = vloc[E[0]] >= 0
    return vids, songs, torch.stack([vloc[E[0][keep]], sloc[E[1][keep]]])


def _check_new_videos(new_videos: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(new_videos, pd.DataFrame) or "video_id" not in new_videos:
        raise UserError("new videos need a 'video_id' column (rows in the videos.parquet schema)")
    df = new_videos.reset_index(drop=True).copy()
    if df["video_id"].isna().any():
        raise UserError(f"new videos: row {int(df['video_id'].isna().to_numpy().argmax())} has no video_id")
    df["video_id"] = df["video_id"].astype(str)
    dup = df["video_id"].duplicated()
    if dup.any():
        raise UserError(f"new videos: video_id {df.loc[dup, 'video_id'].iloc[0]!r} appears more than once")
    if "song_id" not in df:
        df["song_id"] = pd.NA
    df["song_id"] = df["song_id"].astype("string")
    return df


@torch.no_grad()
def embed_new_with(encoder: torch.nn.Module, parts: dict, new_videos: pd.DataFrame) -> pd.DataFrame:
    """``embed_new`` for an already loaded encoder and graph (see there)."""
    from mdr_graph.graph_build.features import song_features, video_features
    from mdr_graph.graph_build.graph import songs_table
    from mdr_graph.graph_build.schema import VIDEO_EDGE

    df = _check_new_videos(new_videos)
    x, E = parts["x"], parts["edge_index"]
    V, S = x["video"].size(0), x["song"].size(0)
    d = encoder.out_dim
    graph_video = pd.Index(parts["ids"]["video"]).get_indexer(df["video_id"])
    song_index = pd.Index(parts["ids"]["song"])
    out = torch.zeros(len(df), d)
    out_song = np.empty(len(df), dtype=object)
    new_song_flag = np.zeros(len(df), dtype=bool)

    # Rows already in the graph: their transductive embedding, from their component of the unchanged graph.
    known_rows = np.flatnonzero(graph_video >= 0)
    if known_rows.size:
        gv = torch.from_numpy(graph_video[known_rows]).long()
        vids, songs, local = _component_subgraph(parts, torch.empty(0, dtype=torch.long), gv)
        z = encoder({"video": x["video"][vids], "song": x["song"][songs]}, {VIDEO_EDGE: local})
        row_of = torch.full((V,), -1, dtype=torch.long)
        row_of[vids] = torch.arange(vids.numel())
        out[known_rows] = z["video"][row_of[gv]]
        song_of = _song_of_video(E, V)[gv]
        song_ids = np.asarray(parts["ids"]["song"] + [None], dtype=object)
        out_song[known_rows] = song_ids[song_of.numpy()]

    # New rows: add them (and songs the graph lacks) as nodes of their songs' components, then run the frozen GAT.
    new_rows = np.flatnonzero(graph_video < 0)
    if new_rows.size:
        rows = df.iloc[new_rows].reset_index(drop=True)
        has_song = rows["song_id"].notna().to_numpy()
        gsong = np.where(has_song, song_index.get_indexer(rows["song_id"].fillna("")), -1)
        unknown = has_song & (gsong < 0)
        new_songs = songs_table(rows[unknown]) if unknown.any() else pd.DataFrame({"song_id": []})
        new_song_pos = pd.Index(new_songs["song_id"].astype(str)).get_indexer(rows["song_id"].fillna("").astype(str))
        known_songs = torch.from_numpy(np.unique(gsong[gsong >= 0])).long()
        vids, songs, local = _component_subgraph(parts, known_songs, torch.empty(0, dtype=torch.long))
        sloc = torch.full((S,), -1, dtype=torch.long)
        sloc[songs] = torch.arange(songs.numel())
        n_old_v, n_old_s = vids.numel(), songs.numel()
        # Local song of each new video: a graph song, an added song, or none (isolated: features alone).
        song_local = np.full(len(rows), -1, dtype=np.int64)
        song_local[gsong >= 0] = sloc[torch.from_numpy(gsong[gsong >= 0])].numpy()
        song_local[unknown] = n_old_s + new_song_pos[unknown]
        linked = np.flatnonzero(song_local >= 0)
        new_edges = torch.from_numpy(np.stack([n_old_v + linked, song_local[linked]])).long()
        xv = torch.cat([x["video"][vids], torch.from_numpy(video_features(rows)).float()])
        xs = torch.cat([x["song"][songs], torch.from_numpy(song_features(new_songs)).float()
                        if len(new_songs) else torch.zeros(0, x["song"].size(1))])
        z = encoder({"video": xv, "song": xs}, {VIDEO_EDGE: torch.cat([local, new_edges], dim=1)})
        out[new_rows] = z["video"][n_old_v:]
        out_song[new_rows] = rows["song_id"].astype(object).where(has_song, None).to_numpy()
        new_song_flag[new_rows] = unknown
    return _frame(_chunk(df["video_id"], out_song, graph_video >= 0, new_song_flag, out))


def embed_new(gat_path: str | Path, graph_dir: str | Path, new_videos: pd.DataFrame) -> pd.DataFrame:
    """Frozen embeddings of ``new_videos`` (rows in the videos.parquet schema), in their row order.

    A row whose ``video_id`` is a node of the graph gets its transductive embedding
    (``in_graph`` true). Any other row is added as a new node linked to its song: a song
    of the graph (``new_song`` false), or one the graph lacks, added from the same rows'
    song fields (``new_song`` true). A row without a song is embedded from its own
    features through the skip path. The frozen GAT is never retrained.
    """
    encoder, meta = load_gat(gat_path)
    parts = _load_graph_checked(graph_dir, meta)
    return embed_new_with(encoder, parts, new_videos)


@torch.no_grad()
def embed_songs(gat_path: str | Path, graph_dir: str | Path, *, batch_videos: int = DEFAULT_BATCH_VIDEOS
                ) -> pd.DataFrame:
    """Frozen embeddings of every song of the graph: ``song_id``, ``degree``, ``embedding``."""
    encoder, meta = load_gat(gat_path)
    return _songs_frame(encoder, _load_graph_checked(graph_dir, meta), batch_videos)


@torch.no_grad()
def _songs_frame(encoder: torch.nn.Module, parts: dict, batch_videos: int) -> pd.DataFrame:
    S = parts["x"]["song"].size(0)
    z = torch.zeros(S, encoder.out_dim)
    for _, _, songs, zs in iter_graph_embeddings(encoder, parts, batch_videos):
        z[songs] = zs
    degree = torch.bincount(parts["edge_index"][1], minlength=S).numpy()
    return pd.DataFrame({"song_id": list(parts["ids"]["song"]), "degree": degree, "embedding": list(z.numpy())})


# ----------------------------------------------------------------------------- parquet streaming

def _arrow_schema():
    import pyarrow as pa

    return pa.schema([("video_id", pa.string()), ("song_id", pa.string()), ("in_graph", pa.bool_()),
                      ("new_song", pa.bool_()), ("embedding", pa.list_(pa.float32()))])


def _arrow_table(c: Chunk):
    import pyarrow as pa

    n, width = c.embedding.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width, pa.int32())  # fine below 8M rows per batch
    return pa.Table.from_arrays([
        pa.array(c.video_id, pa.string()), pa.array(c.song_id, pa.string()),
        pa.array(c.in_graph), pa.array(c.new_song),
        pa.ListArray.from_arrays(offsets, pa.array(c.embedding.reshape(-1), pa.float32())),
    ], schema=_arrow_schema())


def _as_chunk(item: Chunk | pd.DataFrame) -> Chunk:
    if isinstance(item, Chunk):
        return item
    emb = (np.stack(item["embedding"].to_list()).astype(np.float32) if len(item)
           else np.zeros((0, 0), np.float32))
    return Chunk(item["video_id"].astype(str).to_numpy(dtype=object),
                 np.asarray([None if pd.isna(s) else str(s) for s in item["song_id"]], dtype=object),
                 item["in_graph"].to_numpy(bool), item["new_song"].to_numpy(bool), emb)


def write_embeddings(path: str | Path, items: Iterable[Chunk | pd.DataFrame]) -> int:
    """Stream embedding batches (``Chunk``s or DataFrames with the embed columns) into one parquet file.

    Written atomically: a killed export leaves no partial file under ``path``. Returns the row count.
    """
    import pyarrow.parquet as pq

    from mdr_graph.io import atomic_path

    n = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, _arrow_schema()) as writer:
            for item in items:
                c = _as_chunk(item)
                if len(c.video_id):
                    writer.write_table(_arrow_table(c))
                    n += len(c.video_id)
    return n


def export_graph_embeddings(gat_path: str | Path, graph_dir: str | Path, out: str | Path, *,
                            batch_videos: int = DEFAULT_BATCH_VIDEOS, new_videos: pd.DataFrame | None = None,
                            only_new: bool = False) -> int:
    """Stream every graph video's embedding (then ``new_videos``' rows) into the parquet ``out``; returns rows written.

    Memory is bounded by one batch of whole components (about ``batch_videos`` videos)
    plus the graph, so millions of videos export without holding all embeddings.
    """
    from mdr_graph.runlog import progress

    encoder, meta = load_gat(gat_path)
    parts = _load_graph_checked(graph_dir, meta)
    V = parts["x"]["video"].size(0)

    def frames():
        if not only_new:
            yield from progress(_graph_chunks(encoder, parts, batch_videos), total=max(1, math.ceil(V / batch_videos)),
                                desc="embed", unit="batch")
        if new_videos is not None:
            df = embed_new_with(encoder, parts, new_videos)
            yield df if only_new else df[~df["in_graph"]]

    return write_embeddings(out, frames())


# ----------------------------------------------------------------------------- CLI

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gat", required=True, help="RUNDIR/gat.pt from `mdr-graph pretrain` (or RUNDIR)")
    p.add_argument("--graph", required=True, help="graph directory holding graph.pt")
    p.add_argument("--out", required=True, help="output parquet, one row per video")
    p.add_argument("--new-videos",
                   help="parquet of videos not in the graph (videos.parquet schema) to embed inductively")
    p.add_argument("--only-new", action="store_true", help="write only the --new-videos rows, not the graph's videos")
    p.add_argument("--songs-out", help="also write every graph song's embedding to this parquet")
    p.add_argument("--batch-videos", type=int, default=DEFAULT_BATCH_VIDEOS,
                   help=f"videos per batch of whole components (default {DEFAULT_BATCH_VIDEOS}); "
                        "lower it to save memory")


def main(args: argparse.Namespace) -> int:
    from mdr_graph.io import write_parquet

    if args.batch_videos < 1:
        raise UserError(f"--batch-videos must be at least 1, got {args.batch_videos}")
    if args.only_new and not args.new_videos:
        raise UserError("--only-new needs --new-videos FILE.parquet")
    new = None
    if args.new_videos:
        try:
            new = pd.read_parquet(args.new_videos)
        except FileNotFoundError:
            raise UserError(f"--new-videos file not found: {args.new_videos}") from None
        except Exception as e:
            raise UserError(f"--new-videos {args.new_videos} is not a readable parquet file ({e})") from None
    n = export_graph_embeddings(args.gat, args.graph, args.out, batch_videos=args.batch_videos, new_videos=new,
                                only_new=args.only_new)
    print(f"wrote {n} video embeddings (dim {embedding_dim(args.gat)}) to {args.out}")
    if args.songs_out:
        songs = embed_songs(args.gat, args.graph, batch_videos=args.batch_videos)
        write_parquet(args.songs_out, songs)
        print(f"wrote {len(songs)} song embeddings to {args.songs_out}")
    return 0
