"""Frozen GAT embeddings of videos: what the ``network`` modality sees.

**What a video's network embedding is** (``--network-embedding``):

- ``neighbours`` (the default): the mean of the GAT embeddings of the video's songs,
  creators and hashtags, one block per relation, concatenated (zeros where the video has
  no entity of a relation; on a ``--nodes song`` graph just the song's embedding). Graph
  information only: the video's own features never enter it.
- ``song``: VAN's design, the embedding of the video's song (none for a video without one,
  which the fusion model then masks).
- ``video``: the video's own node output. It mixes in the video's own features (followers,
  hour, hashtag count, duration, caption length), the same inputs as the ``meta``
  modality, so network-vs-meta contributions and ablations are confounded. Kept for
  comparison with earlier runs.

**What the graph may hold** (``known`` videos): a forecaster knows the training videos,
not the held-out or later ones. Only known videos' links pass messages *into* entities
and count towards an entity's degree input; every other video (held out, or new) only
*reads* from its entities (entity -> video messages), so it never changes another
video's embedding. ``train`` passes its training split (under ``--split time`` the
oldest videos, so nothing later is counted); ``embed`` takes ``--known-videos`` (default:
every graph video, the transductive view for exploration). Scrape-time values in node
features (creator followers, a song's platform-wide use count) are measured when the
data was scraped, after the videos were posted: that is the data's own limitation and no
split can remove it.

Inductive (``--new-videos FILE.parquet``, rows in the videos.parquet schema): each new
video is added as a reading node linked to its song, creator and hashtags; an entity the
graph lacks is added as a new node (a song from the rows' song fields; a new creator or
hashtag with the pretraining graph's mean features, since its own features cannot be
built from a video row). Nothing is retrained.

The output parquet has one row per video: video_id, song_id, in_graph (the video is a
node of GRAPHDIR; false for added ones), new_song, embedding (list of float32).

example:
  mdr-graph embed --gat runs/gat/gat.pt --graph out/graph --out runs/gat/embeddings.parquet
  mdr-graph embed --gat runs/gat --graph G --out e.parquet --network-embedding song --known-videos RUN/splits.json
  mdr-graph embed --gat runs/gat --graph out/graph --out new.parquet --new-videos tomorrow/videos.parquet --only-new
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mdr_graph.errors import UserError
from mdr_graph.graph_build.entities import entity_keys
from mdr_graph.pretrain.config import DEFAULT_NETWORK_EMBEDDING, NETWORK_EMBEDDINGS

MODES = NETWORK_EMBEDDINGS
DEFAULT_MODE = DEFAULT_NETWORK_EMBEDDING
DEFAULT_BATCH_VIDEOS = 250_000
COLUMNS = ("video_id", "song_id", "in_graph", "new_song", "embedding")


# ----------------------------------------------------------------------------- loading

def _gat_file(path: str | Path) -> Path:
    from mdr_graph.pretrain.gat_file import GAT_FILE

    path = Path(path)
    if path.is_dir():
        path = path / GAT_FILE
    if not path.exists():
        raise UserError(f"no GAT checkpoint at {path}; train one with "
                        "`mdr-graph pretrain --graph GRAPHDIR --out RUNDIR`")
    return path


def load_gat(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The frozen encoder (eval mode, no gradients) and its metadata from ``gat.pt`` (or its run directory).

    ``meta`` holds ``config`` (a ``GATConfig``), ``embedding_dim``, ``feature_names`` and
    ``ids`` (per node type) of the pretraining graph, ``node_types``, ``relations``,
    ``epoch``, ``val`` metrics and ``decoders`` (the trained ``LinkDecoders``). For
    fine-tuning, call ``model.train()`` and ``requires_grad_(True)`` on the encoder.
    """
    from mdr_graph.io import torch_load
    from mdr_graph.pretrain.config import config_from_dict
    from mdr_graph.pretrain.model import build_model
    from mdr_graph.pretrain.gat_file import check_payload, unpack_ids

    path = _gat_file(path)
    p = check_payload(torch_load(path), path)  # a truncated or foreign file is a one-line UserError
    cfg = config_from_dict(p["config"])
    relations = [tuple(r) for r in p["relations"]]
    encoder, decoders = build_model(p["node_types"], relations, p["in_dims"], cfg)
    encoder.load_state_dict(p["encoder"])
    decoders.load_state_dict(p["decoder"])
    for m in (encoder, decoders):
        m.eval().requires_grad_(False)
    meta = {
        "path": str(path), "config": cfg, "embedding_dim": int(p["embedding_dim"]),
        "in_dims": dict(p["in_dims"]), "feature_names": p["feature_names"], "node_types": list(p["node_types"]),
        "relations": relations, "ids": {t: unpack_ids(v, p["num_nodes"][t]) for t, v in p["ids"].items()},
        "epoch": p.get("epoch"), "val": p.get("val", {}), "graph": p.get("graph", ""), "decoders": decoders,
    }
    return encoder, meta


def mode_dim(mode: str, embedding_dim: int, relations: list) -> int:
    """Width of a video's network embedding under ``mode``."""
    check_mode(mode)
    return embedding_dim * len(relations) if mode == "neighbours" else embedding_dim


def embedding_dim(gat_path: str | Path, mode: str = "video") -> int:
    """Width of the network embedding a checkpoint produces under ``mode`` (reads only its metadata)."""
    from mdr_graph.io import torch_load

    p = torch_load(_gat_file(gat_path))
    return mode_dim(mode, int(p["embedding_dim"]), p.get("relations", [None]))


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UserError(f"unknown network embedding {mode!r}; choose from {', '.join(MODES)}")
    return mode


def _load_graph_checked(graph_dir: str | Path, meta: dict):
    from mdr_graph.graph_build.graph import load_graph
    from mdr_graph.pretrain.parts import graph_parts

    try:
        parts = graph_parts(load_graph(graph_dir))
    except ValueError as e:
        raise UserError(f"{graph_dir}: {e}") from None
    if parts.relations != list(meta["relations"]):
        raise UserError(f"{graph_dir} links videos by {[r[1] for r in parts.relations]} but the GAT was trained on "
                        f"{[r[1] for r in meta['relations']]}; use the graph the GAT was pretrained on")
    for t in parts.node_types:
        if parts.feature_names[t] != list(meta["feature_names"][t]):
            raise UserError(f"{graph_dir}: {t} features {parts.feature_names[t]} differ from the ones the GAT "
                            f"was trained on {list(meta['feature_names'][t])}; rebuild the graph with the same "
                            "mdr-graph version or retrain the GAT")
    return parts


# ----------------------------------------------------------------------------- the forecaster's view of the graph

@dataclass
class View:
    """The graph as the GAT runs on it for embedding: nodes, reading links and writing links.

    ``x`` holds every node (graph nodes first, then added videos and entities); ``reads``
    every video's links (forward direction, ``video -> entity``); ``writes`` the known
    videos' links only. Entities receive messages and count degree from ``writes`` alone.
    """

    x: dict[str, Tensor]
    reads: dict[tuple[str, str, str], Tensor]
    writes: dict[tuple[str, str, str], Tensor]

    def edge_dict(self) -> dict:
        from mdr_graph.pretrain.model import reverse

        out = {}
        for r in self.reads:
            out[r] = self.writes[r]          # video -> entity: only what a forecaster knew
            out[reverse(r)] = self.reads[r].flip(0)  # entity -> video: every video reads its entities
        return out


def known_mask(parts, known_videos: Iterable[str] | None) -> Tensor:
    """Which graph videos' links may shape the entities (``None``: all of them)."""
    V = parts.num_nodes["video"]
    if known_videos is None:
        return torch.ones(V, dtype=torch.bool)
    idx = pd.Index(parts.ids["video"]).get_indexer(pd.Index([str(v) for v in known_videos]))
    mask = torch.zeros(V, dtype=torch.bool)
    mask[torch.from_numpy(idx[idx >= 0]).long()] = True
    return mask


def graph_view(parts, known: Tensor) -> View:
    writes = {r: ei[:, known[ei[0]]] for r, ei in parts.edges.items()}
    return View(dict(parts.x), dict(parts.edges), writes)


def view_embeddings(encoder: torch.nn.Module, view: View, mode: str) -> tuple[Tensor, Tensor]:
    """``(embedding [V', d_mode], present [V'])`` of every video node of ``view`` (differentiable)."""
    from torch_geometric.utils import scatter

    z = encoder(view.x, view.edge_dict())
    V = view.x["video"].size(0)
    if mode == "video":
        return z["video"], torch.ones(V, dtype=torch.bool)
    if mode == "song":
        r = next((r for r in encoder.relations if r[2] == "song"), None)
        if r is None:
            raise UserError("--network-embedding song needs a graph with song nodes; use neighbours")
        ei = view.reads[r]
        out = z["song"].new_zeros(V, encoder.out_dim)
        out = out.index_copy(0, ei[0], z["song"][ei[1]])  # a video has at most one song
        present = torch.zeros(V, dtype=torch.bool)
        present[ei[0].cpu()] = True
        return out, present
    blocks, present = [], torch.zeros(V, dtype=torch.bool)
    for r in encoder.relations:
        ei = view.reads[r]
        blocks.append(scatter(z[r[2]][ei[1]], ei[0], dim=0, dim_size=V, reduce="mean"))
        present[ei[0].cpu()] = True
    return torch.cat(blocks, dim=1), present


def _song_of_video(parts) -> np.ndarray:
    """Song id of each graph video (None for a video without one)."""
    from mdr_graph.graph_build.schema import VIDEO_EDGE

    V = parts.num_nodes["video"]
    out = np.full(V, None, dtype=object)
    if VIDEO_EDGE in parts.edges:
        ei = parts.edges[VIDEO_EDGE]
        out[ei[0].numpy()] = np.asarray(parts.ids["song"], dtype=object)[ei[1].numpy()]
    return out


class Chunk(NamedTuple):
    """A batch of embedding rows, column by column (no per-row Python objects until a DataFrame is asked for)."""

    video_id: np.ndarray    # object array of str
    song_id: np.ndarray     # object array of str or None
    in_graph: np.ndarray    # bool
    new_song: np.ndarray    # bool
    embedding: np.ndarray   # float32 [n, d]


def _frame(c: Chunk) -> pd.DataFrame:
    return pd.DataFrame({"video_id": c.video_id.tolist(), "song_id": c.song_id.tolist(), "in_graph": c.in_graph,
                         "new_song": c.new_song, "embedding": list(c.embedding)})


# ----------------------------------------------------------------------------- transductive

@torch.no_grad()
def graph_chunks(encoder, parts, mode: str, known: Tensor, batch_videos: int = DEFAULT_BATCH_VIDEOS
                 ) -> Iterator[Chunk]:
    """Every graph video with an embedding under ``mode``, in graph order, ``batch_videos`` rows per chunk.

    One full-graph pass of the frozen GAT (no gradients) over the forecaster's view.
    """
    z, present = view_embeddings(encoder, graph_view(parts, known), check_mode(mode))
    vid_ids = np.asarray(parts.ids["video"], dtype=object)
    song_of = _song_of_video(parts)
    rows = torch.nonzero(present).flatten().numpy()
    for start in range(0, rows.size, max(batch_videos, 1)):
        r = rows[start:start + batch_videos]
        yield Chunk(vid_ids[r], song_of[r], np.ones(r.size, bool), np.zeros(r.size, bool), z[r].float().numpy())


def embed_graph(gat_path: str | Path, graph_dir: str | Path, *, mode: str = DEFAULT_MODE,
                known_videos: Iterable[str] | None = None, batch_videos: int = DEFAULT_BATCH_VIDEOS,
                views: Iterable[tuple[Iterable[str], Iterable[str]]] = ()) -> pd.DataFrame:
    """Frozen embeddings of the graph's videos under ``mode``, in graph order.

    Only ``known_videos``' links shape the entities (default: every video's). Videos that
    have no embedding under ``mode`` (no song for ``song``, no link at all for
    ``neighbours``) have no row.

    ``views``: ``(known, videos)`` pairs; those videos' rows are taken instead from the view in
    which only ``known``'s links write. ``train`` passes its folds, so that a training video's
    entities never hold the video itself, exactly as a held-out video's do not (see
    :func:`mdr_graph.train.prepare.network_embeddings`).
    """
    encoder, meta = load_gat(gat_path)
    parts = _load_graph_checked(graph_dir, meta)
    frames = [_frame(c) for c in graph_chunks(encoder, parts, mode, known_mask(parts, known_videos), batch_videos)]
    if not frames:
        d = mode_dim(mode, meta["embedding_dim"], meta["relations"])
        return _frame(Chunk(*(np.empty(0, dtype=object),) * 2, np.empty(0, bool), np.empty(0, bool),
                            np.zeros((0, d), np.float32)))
    out = pd.concat(frames, ignore_index=True)
    views = list(views)
    if views:
        at, graph_ids = pd.Index(out["video_id"].astype(str)), pd.Index(parts.ids["video"])
        column = out["embedding"].to_list()
        for known, videos in views:
            with torch.no_grad():
                z, _ = view_embeddings(encoder, graph_view(parts, known_mask(parts, known)), check_mode(mode))
            videos = pd.Index([str(v) for v in videos])
            pos, node = at.get_indexer(videos), graph_ids.get_indexer(videos)
            ok = (pos >= 0) & (node >= 0)   # a video without an embedding has no row in any view
            z = z.float().numpy()
            for p, n in zip(pos[ok], node[ok]):
                column[p] = z[n]
        out["embedding"] = column
    return out


# ----------------------------------------------------------------------------- inductive

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
    for col in ("song_id", "author_id"):
        if col not in df:
            df[col] = pd.NA
        df[col] = df[col].astype("string")
    if "hashtags" not in df:
        df["hashtags"] = [[] for _ in range(len(df))]
    return df


def _new_entity_features(encoder, node_type: str, rows: pd.DataFrame, keys: list[str]) -> Tensor:
    """Features of entities the graph lacks: songs from the rows' song fields, others the graph's mean."""
    if not keys:
        return torch.zeros(0, encoder.in_dims[node_type])
    if node_type == "song":
        from mdr_graph.graph_build.features import song_features
        from mdr_graph.graph_build.graph import songs_table

        table = songs_table(rows[rows["song_id"].isin(keys)]).set_index("song_id").loc[keys].reset_index()
        return torch.from_numpy(song_features(table)).float()
    # A creator's or hashtag's features come from the whole scrape (its followers, its other
    # videos), which one new video row cannot supply; the mean is the GAT's "typical" entity.
    return getattr(encoder, f"{node_type}_mean").unsqueeze(0).expand(len(keys), -1).clone()


def new_view(encoder, parts, known: Tensor, rows: pd.DataFrame) -> tuple[View, np.ndarray]:
    """The graph view with ``rows`` added as reading video nodes (and entities the graph lacks).

    Returns the view and, per relation order, whether each row's song is new.
    """
    from mdr_graph.graph_build.features import video_features

    view = graph_view(parts, known)
    V = parts.num_nodes["video"]
    n = len(rows)
    x = dict(view.x)
    x["video"] = torch.cat([x["video"], torch.from_numpy(video_features(rows)).float()])
    new_song = np.zeros(n, dtype=bool)
    for r in encoder.relations:
        t = r[2]
        keys = entity_keys(rows, t)
        index = pd.Index(parts.ids[t])
        flat = [k for ks in keys for k in ks]
        owner = np.repeat(np.arange(n), [len(ks) for ks in keys])
        pos = index.get_indexer(pd.Index(flat)) if flat else np.zeros(0, dtype=np.int64)
        unknown = list(dict.fromkeys(k for k, p in zip(flat, pos) if p < 0))
        new_pos = pd.Index(unknown).get_indexer(pd.Index(flat)) if flat else np.zeros(0, dtype=np.int64)
        dst = np.where(pos >= 0, pos, parts.num_nodes[t] + new_pos)
        if t == "song":
            new_song[owner[pos < 0]] = True
        x[t] = torch.cat([x[t], _new_entity_features(encoder, t, rows, unknown)])
        ei = torch.from_numpy(np.stack([V + owner, dst]).astype(np.int64)).reshape(2, -1)
        view.reads[r] = torch.cat([view.reads[r], ei], dim=1)
    view.x = x
    return view, new_song


@torch.no_grad()
def embed_new_with(encoder: torch.nn.Module, parts, new_videos: pd.DataFrame, *, mode: str = DEFAULT_MODE,
                   known: Tensor | None = None) -> pd.DataFrame:
    """``embed_new`` for an already loaded encoder and graph (see there)."""
    df = _check_new_videos(new_videos)
    check_mode(mode)
    known = known if known is not None else torch.ones(parts.num_nodes["video"], dtype=torch.bool)
    graph_video = pd.Index(parts.ids["video"]).get_indexer(df["video_id"])
    in_graph = graph_video >= 0
    rows = df[~in_graph].reset_index(drop=True)
    view, new_song = new_view(encoder, parts, known, rows)
    z, present = view_embeddings(encoder, view, mode)
    V = parts.num_nodes["video"]
    at = np.where(in_graph, graph_video, V + np.cumsum(~in_graph) - 1)
    d = z.size(1)
    emb = torch.zeros(len(df), d)
    has = present[torch.from_numpy(at)].numpy()
    emb[torch.from_numpy(np.flatnonzero(has))] = z[torch.from_numpy(at[has])]
    song_of = _song_of_video(parts)
    song_ids = np.where(in_graph, song_of[np.where(in_graph, graph_video, 0)],
                        df["song_id"].astype(object).where(df["song_id"].notna(), None).to_numpy())
    new_flag = np.zeros(len(df), dtype=bool)
    new_flag[~in_graph] = new_song
    keep = has  # a video without an embedding under `mode` gets no row (the fusion model masks it)
    return _frame(Chunk(df["video_id"].to_numpy(dtype=object)[keep], np.asarray(song_ids, dtype=object)[keep],
                        in_graph[keep], new_flag[keep], emb[torch.from_numpy(keep)].numpy()))


def embed_new(gat_path: str | Path, graph_dir: str | Path, new_videos: pd.DataFrame, *, mode: str = DEFAULT_MODE,
              known_videos: Iterable[str] | None = None) -> pd.DataFrame:
    """Frozen embeddings of ``new_videos`` (rows in the videos.parquet schema), in their row order.

    A row whose ``video_id`` is a node of the graph gets its graph embedding (``in_graph``
    true). Any other row is added as a reading node linked to its song, creator and
    hashtags: entities of the graph, or ones the graph lacks, added as new nodes
    (``new_song`` true for a new song). A row that has no embedding under ``mode`` (no
    song for ``song``; no entity at all for ``neighbours``) is left out. Only
    ``known_videos``' links shape the entities. The frozen GAT is never retrained.
    """
    encoder, meta = load_gat(gat_path)
    parts = _load_graph_checked(graph_dir, meta)
    return embed_new_with(encoder, parts, new_videos, mode=mode, known=known_mask(parts, known_videos))


@torch.no_grad()
def embed_songs(gat_path: str | Path, graph_dir: str | Path, *, known_videos: Iterable[str] | None = None
                ) -> pd.DataFrame:
    """Frozen embeddings of every song of the graph: ``song_id``, ``degree`` (known links), ``embedding``."""
    from mdr_graph.graph_build.schema import VIDEO_EDGE

    encoder, meta = load_gat(gat_path)
    parts = _load_graph_checked(graph_dir, meta)
    if "song" not in parts.node_types:
        raise UserError(f"{graph_dir} has no song nodes")
    view = graph_view(parts, known_mask(parts, known_videos))
    z = encoder(view.x, view.edge_dict())["song"]
    degree = torch.bincount(view.writes[VIDEO_EDGE][1], minlength=parts.num_nodes["song"]).numpy()
    return pd.DataFrame({"song_id": list(parts.ids["song"]), "degree": degree, "embedding": list(z.numpy())})


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
                            mode: str = DEFAULT_MODE, known_videos: Iterable[str] | None = None,
                            batch_videos: int = DEFAULT_BATCH_VIDEOS, new_videos: pd.DataFrame | None = None,
                            only_new: bool = False) -> int:
    """Stream every graph video's embedding (then ``new_videos``' rows) into the parquet ``out``; returns rows written."""
    from mdr_graph.runlog import progress

    encoder, meta = load_gat(gat_path)
    parts = _load_graph_checked(graph_dir, meta)
    known = known_mask(parts, known_videos)

    def frames():
        if not only_new:
            yield from progress(graph_chunks(encoder, parts, mode, known, batch_videos), desc="embed", unit="batch")
        if new_videos is not None:
            df = embed_new_with(encoder, parts, new_videos, mode=mode, known=known)
            yield df if only_new else df[~df["in_graph"]]

    return write_embeddings(out, frames())


def read_known_videos(path: str) -> list[str]:
    """Video ids from a run's ``splits.json`` (its training split) or a text file with one id per line."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"--known-videos file not found: {path}")
    if p.suffix == ".json":
        try:
            data = json.loads(p.read_text())
            return [str(v) for v in data["train"]]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path} is not a run's splits.json (a JSON object with a 'train' list)") from None
    return [line.strip() for line in p.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------- CLI

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gat", required=True, help="RUNDIR/gat.pt from `mdr-graph pretrain` (or RUNDIR)")
    p.add_argument("--graph", required=True, help="graph directory holding graph.pt")
    p.add_argument("--out", required=True, help="output parquet, one row per video")
    p.add_argument("--network-embedding", choices=MODES, default=DEFAULT_MODE,
                   help="neighbours (default): mean embedding of the video's song, creator and hashtags per "
                        "relation, concatenated; song: its song's embedding (VAN); video: its own node output "
                        "(mixes in its own metadata)")
    p.add_argument("--known-videos", help="a run's splits.json (its training split) or a file of video ids, one "
                                          "per line: only their links shape the entities (default: every video)")
    p.add_argument("--new-videos",
                   help="parquet of videos not in the graph (videos.parquet schema) to embed inductively")
    p.add_argument("--only-new", action="store_true", help="write only the --new-videos rows, not the graph's videos")
    p.add_argument("--songs-out", help="also write every graph song's embedding to this parquet")
    p.add_argument("--batch-videos", type=int, default=DEFAULT_BATCH_VIDEOS,
                   help=f"rows per parquet row group (default {DEFAULT_BATCH_VIDEOS})")


def main(args: argparse.Namespace) -> int:
    from mdr_graph.io import write_parquet

    if args.batch_videos < 1:
        raise UserError(f"--batch-videos must be at least 1, got {args.batch_videos}")
    if args.only_new and not args.new_videos:
        raise UserError("--only-new needs --new-videos FILE.parquet")
    known = read_known_videos(args.known_videos) if args.known_videos else None
    new = None
    if args.new_videos:
        try:
            new = pd.read_parquet(args.new_videos)
        except FileNotFoundError:
            raise UserError(f"--new-videos file not found: {args.new_videos}") from None
        except Exception as e:
            raise UserError(f"--new-videos {args.new_videos} is not a readable parquet file ({e})") from None
    n = export_graph_embeddings(args.gat, args.graph, args.out, mode=args.network_embedding, known_videos=known,
                                batch_videos=args.batch_videos, new_videos=new, only_new=args.only_new)
    print(f"wrote {n} video embeddings ({args.network_embedding}, dim "
          f"{embedding_dim(args.gat, args.network_embedding)}) to {args.out}")
    if args.songs_out:
        songs = embed_songs(args.gat, args.graph, known_videos=known)
        write_parquet(args.songs_out, songs)
        print(f"wrote {len(songs)} song embeddings to {args.songs_out}")
    return 0
