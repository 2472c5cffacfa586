"""Build a graph directory from scraped metadata: ingest, tables, graph, summary.

``GRAPHDIR`` receives ``videos.parquet``, ``songs.parquet``, ``creators.parquet`` and
``hashtags.parquet`` (with those node types), ``graph.pt``, ``rejects.jsonl``,
``config.toml``, optional ``graph.graphml``/``graph.gexf``, and ``summary.json``.
Everything is first written into a staging directory beside
``GRAPHDIR``; a new ``GRAPHDIR`` is then renamed into place in one step, and an existing
one has its files replaced one by one with ``summary.json`` last, removed first, so a
directory with a ``summary.json`` is always a complete build. A failure (bad input,
Ctrl-C, a full disk, a build that accepts no video) leaves the previous ``GRAPHDIR`` as
it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from mdr_graph import __version__
from mdr_graph.errors import UserError
from mdr_graph.graph_build.ingest import REJECT_REASONS, Ingested, Rejects, ingest_files
from mdr_graph.graph_build.schema import (CREATOR_COLUMNS, DEFAULT_MAX_DF, DEFAULT_MIN_HUB_VIDEOS, DEFAULT_NODES,
                                          EDGE_TYPES, ENTITY_TYPES, HASHTAG_COLUMNS, SONG_COLUMNS, VIDEO_COLUMNS)
from mdr_graph.graph_build.stats import degree_stats, hetero_components, log_histogram
from mdr_graph.graph_build.tables import VIDEOS_FILE
from mdr_graph.io import atomic_path, write_json

SUMMARY_FILE = "summary.json"
REJECTS_FILE = "rejects.jsonl"
EXPORT_FORMATS = ("graphml", "gexf")
# Files a build owns in GRAPHDIR; summary.json is the completion marker and goes last.
OUTPUT_FILES = (VIDEOS_FILE, "songs.parquet", "creators.parquet", "hashtags.parquet", "graph.pt", REJECTS_FILE,
                "config.toml", *(f"graph.{e}" for e in EXPORT_FORMATS))


@dataclass
class BuildGraphConfig:
    """Settings of ``build-graph`` (section ``[build_graph]`` of a ``--config`` TOML)."""

    inputs: list[str] = field(default_factory=list)
    out: str = ""
    format: str = "auto"
    columns: dict[str, str] = field(default_factory=dict)   # canonical name -> CSV column
    media_root: str | None = None
    scrape_time: str | None = None                          # ISO text or epoch seconds
    export: list[str] = field(default_factory=list)         # graphml and/or gexf
    target_column: str | None = None                        # a given target instead of computing p
    nodes: list[str] = field(default_factory=lambda: list(DEFAULT_NODES))  # entity node types (ENTITY_TYPES)
    hashtag_max_df: float = DEFAULT_MAX_DF                  # hub rule: a tag on more than this share of videos
    hashtag_min_hub_videos: int = DEFAULT_MIN_HUB_VIDEOS    # ... and on at least this many is not a node


def arrow_schema(columns: dict[str, str]):
    """The parquet schema of a canonical table (list<string> hashtags, UTC timestamps)."""
    import pyarrow as pa

    types = {"string": pa.string(), "Int64": pa.int64(), "int64": pa.int64(), "boolean": pa.bool_(),
             "Float64": pa.float64(), "float64": pa.float64(), "object": pa.list_(pa.string()),
             "datetime64[ns, UTC]": pa.timestamp("ns", tz="UTC")}
    return pa.schema([(name, types[dtype]) for name, dtype in columns.items()])


def write_table(path: str | os.PathLike, df: pd.DataFrame, columns: dict[str, str]) -> None:
    """Write ``df`` as parquet with the contract's exact columns and types, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df[list(columns)], schema=arrow_schema(columns), preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _staging_dir(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{out.name}.staging-"
    for old in out.parent.glob(prefix + "*"):  # left by a killed build whose process is gone
        try:
            pid = int(old.name[len(prefix):].split("-", 1)[0])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:
            pass
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=out.parent))


def _open_permissions(staging: Path) -> None:
    """mkdtemp/mkstemp create owner-only files; a graph directory is shared like any output."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    for p in staging.iterdir():
        os.chmod(p, 0o666 & ~umask)


def _publish(staging: Path, out: Path) -> None:
    _open_permissions(staging)
    if not out.exists():
        os.rename(staging, out)
        return
    (out / SUMMARY_FILE).unlink(missing_ok=True)
    for name in OUTPUT_FILES:
        if (staging / name).exists():
            os.replace(staging / name, out / name)
        else:
            (out / name).unlink(missing_ok=True)  # e.g. an export of an earlier build
    os.replace(staging / SUMMARY_FILE, out / SUMMARY_FILE)
    shutil.rmtree(staging, ignore_errors=True)


def check_nodes(nodes: list[str] | tuple[str, ...] | str) -> list[str]:
    """``--nodes`` as a list in canonical order; a clear error for an unknown type."""
    if isinstance(nodes, str):
        nodes = [n.strip() for n in nodes.split(",") if n.strip()]
    bad = sorted(set(nodes) - set(ENTITY_TYPES))
    if bad or not nodes:
        raise UserError(f"--nodes {','.join(nodes)}: choose one or more of {','.join(ENTITY_TYPES)} "
                        "(e.g. --nodes song,creator,hashtag)")
    return [t for t in ENTITY_TYPES if t in nodes]


def _entity_summary(data, tables: dict[str, pd.DataFrame], hashtags) -> dict[str, Any]:
    """Per node type: count, degrees, and the edges of each relation; hashtag hubs and their rule."""
    out: dict[str, Any] = {"nodes": {"video": int(data["video"].num_nodes),
                                     **{t: int(data[t].num_nodes) for t in tables}},
                           "edges_by_type": {"__".join(EDGE_TYPES[t][0]): int(data[EDGE_TYPES[t][0]].num_edges)
                                             for t in tables}}
    for t in tables:
        if t != "song":  # song degrees keep their historical keys
            deg = tables[t]["degree"].to_numpy()
            out[f"{t}_degree"] = degree_stats(deg)
            out[f"{t}_degree_histogram"] = log_histogram(deg)
    if "creator" in tables:
        out["videos_without_creator"] = int(data["video"].num_nodes - data[EDGE_TYPES["creator"][0]].num_edges)
    if hashtags is not None:
        out["hashtag_rule"] = {"max_df": hashtags.max_df, "min_hub_videos": hashtags.min_hub_videos}
        out["hashtag_hubs"] = hashtags.hubs
    return out


def summarize(ing: Ingested, songs: pd.DataFrame, cfg: BuildGraphConfig, elapsed_s: float,
              data=None, tables: dict[str, pd.DataFrame] | None = None, hashtags=None) -> dict[str, Any]:
    """``summary.json``: counts (``videos + rejected == input_records``), degrees, formats, provenance."""
    videos = ing.videos
    deg = songs["degree"].to_numpy() if len(songs) else np.zeros(0, np.int64)
    formats = ing.formats
    ct = videos["create_time"]
    without_song = int(videos["song_id"].isna().sum())
    if data is not None:
        sizes = hetero_components(data)
        components, largest = int(len(sizes)), int(sizes[0]) if len(sizes) else 0
    else:
        components = int((deg > 0).sum()) + without_song
        largest = int(deg.max()) + 1 if len(deg) else int(without_song > 0)
    summary = {
        "input_records": ing.input_records,
        "videos": len(videos),
        "songs": len(songs),
        "edges": len(videos) - without_song,
        "videos_without_song": without_song,
        "song_identity": ing.song_identity,
        "target": ing.target,
        "rejected": ing.rejects.total,
        "rejects_by_reason": dict(sorted(ing.rejects.by_reason.items())),
        "format": formats[0] if len(formats) == 1 else ("mixed" if formats else "none"),
        "files": ing.files,
        "song_degree": degree_stats(deg),
        "song_degree_histogram": log_histogram(deg),
        "video_degree": degree_stats((videos["song_id"].notna()).to_numpy().astype(np.int64)),
        "components": components,
        "largest_component": largest,
        "create_time_range": [ct.min().isoformat(), ct.max().isoformat()] if len(videos) else None,
        "scrape_time_sources": ing.scrape_time_sources,
        "scrape_time_fallback": ing.scrape_time_fallback,
        "scrape_time_fallback_reason": ing.scrape_time_fallback_reason,
        "media_files": ing.media_files,
        "unreadable_values": ing.unreadable_values,
        "reject_reasons": REJECT_REASONS,
        "inputs": [str(p) for p in cfg.inputs],
        "media_root": str(Path(cfg.media_root).resolve()) if cfg.media_root else None,
        # Where media paths were checked to lie (extract checks them again: files change).
        "media_roots": media_roots(cfg.media_root, [f["path"] for f in ing.files]),
        "scrape_time_option": cfg.scrape_time,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed_s, 3),
        "mdr_graph_version": __version__,
    }
    if data is not None:
        summary["node_types"] = ["video", *[t for t in ENTITY_TYPES if t in (tables or {})]]
        summary.update(_entity_summary(data, tables or {}, hashtags))
    return summary


def media_roots(media_root: str | None, input_files: list[str]) -> list[str]:
    """The directories a build accepted media paths under: --media-root, else each input's directory."""
    if media_root:
        return [os.path.realpath(media_root)]
    return sorted({os.path.dirname(os.path.realpath(p)) for p in input_files})


def _nothing_accepted(ing: Ingested, out: Path) -> UserError:
    reasons = ", ".join(f"{code} {n:,}" for code, n in ing.rejects.by_reason.most_common())
    hints = "; ".join(f"{Path(f['path']).name}: {f['hint']}" for f in ing.files if f.get("hint"))
    kept = f"{out} was left as it was" if (out / SUMMARY_FILE).exists() else f"{out} was not written"
    return UserError(f"no video was accepted from {ing.input_records:,} record(s) ({reasons or 'no records'})"
                     + (f"; {hints}" if hints else "") + f"; {kept}")


def build_graph(inputs: list[str | os.PathLike] | str | os.PathLike, out: str | os.PathLike, fmt: str = "auto",
                columns: dict[str, str] | None = None, media_root: str | os.PathLike | None = None,
                scrape_time: Any = None, export: list[str] | tuple[str, ...] = (), show_progress: bool = False,
                echo: Callable[[str], None] | None = None, target_column: str | None = None,
                nodes: list[str] | tuple[str, ...] | str = DEFAULT_NODES, hashtag_max_df: float = DEFAULT_MAX_DF,
                hashtag_min_hub_videos: int = DEFAULT_MIN_HUB_VIDEOS) -> dict[str, Any]:
    """Ingest ``inputs`` and write a complete graph directory ``out``; return its summary.

    See :func:`mdr_graph.graph_build.ingest.ingest_files` for the arguments it shares.
    ``export`` adds ``graph.graphml`` / ``graph.gexf`` for Gephi and other tools.
    ``target_column`` stores a given target in ``popularity_raw`` instead of computing it.
    ``nodes``: the entity node types besides ``video`` (``song``, ``creator``, ``hashtag``);
    ``hashtag_max_df`` / ``hashtag_min_hub_videos``: the hub rule (see ``entities``).
    """
    t0 = time.perf_counter()
    from mdr_graph.config import save_toml

    with warnings.catch_warnings():  # torch_geometric's import warns about torch.jit; not ours to fix
        warnings.filterwarnings("ignore", category=FutureWarning)
        from mdr_graph.graph_build.entities import creators_table, hashtag_nodes
        from mdr_graph.graph_build.graph import build_hetero, save_graph, songs_table

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory for the graph")
    nodes = check_nodes(nodes)
    if not 0 < hashtag_max_df <= 1:
        raise UserError(f"--hashtag-max-df {hashtag_max_df}: give a share of the videos, above 0 and at most 1")
    bad = sorted(set(export) - set(EXPORT_FORMATS))
    if bad:
        raise UserError(f"--export {', '.join(bad)}: choose from {', '.join(EXPORT_FORMATS)}")
    cfg = BuildGraphConfig(inputs=[os.path.abspath(p) for p in inputs], out=str(out), format=fmt,
                           columns=dict(columns or {}),
                           media_root=os.path.abspath(media_root) if media_root is not None else None,
                           scrape_time=str(scrape_time) if scrape_time is not None else None, export=list(export),
                           target_column=target_column, nodes=nodes, hashtag_max_df=hashtag_max_df,
                           hashtag_min_hub_videos=int(hashtag_min_hub_videos))
    staging = _staging_dir(out)
    try:
        # backslashreplace: a reject's raw text may hold an unpaired surrogate, which UTF-8 cannot encode
        with open(staging / REJECTS_FILE, "w", encoding="utf-8", errors="backslashreplace") as rej:
            ing = ingest_files(inputs, fmt=fmt, columns=columns, media_root=media_root, scrape_time=scrape_time,
                               rejects=Rejects(keep=False, stream=rej), show_progress=show_progress, echo=echo,
                               exclude=[out], target_column=target_column)
        if len(ing.videos) == 0:  # a graph of nothing must not replace a good one
            raise _nothing_accepted(ing, out)
        videos = ing.videos
        songs = songs_table(videos)
        write_table(staging / VIDEOS_FILE, videos, VIDEO_COLUMNS)
        write_table(staging / "songs.parquet", songs, SONG_COLUMNS)
        tables: dict[str, pd.DataFrame] = {"song": songs} if "song" in nodes else {}
        creators = creator_rows = hashtags = None
        if "creator" in nodes:
            creators, creator_rows = creators_table(videos)
            write_table(staging / "creators.parquet", creators, CREATOR_COLUMNS)
            tables["creator"] = creators
        if "hashtag" in nodes:
            hashtags = hashtag_nodes(videos, hashtag_max_df, hashtag_min_hub_videos)
            write_table(staging / "hashtags.parquet", hashtags.table, HASHTAG_COLUMNS)
            tables["hashtag"] = hashtags.table
        data = build_hetero(videos, songs, nodes=tuple(nodes), creators=creators, creator_rows=creator_rows,
                            hashtags=hashtags)
        save_graph(data, staging)
        for fmt_name in dict.fromkeys(export):
            from mdr_graph.graph_build.export import write_networkx

            write_networkx(videos, songs, staging / f"graph.{fmt_name}", fmt_name, data=data)
        save_toml(staging / "config.toml", {"build_graph": cfg})
        summary = summarize(ing, songs, cfg, time.perf_counter() - t0, data=data, tables=tables, hashtags=hashtags)
        write_json(staging / SUMMARY_FILE, summary)
        _publish(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return summary
