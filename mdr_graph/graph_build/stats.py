"""Print a built graph's summary, its top songs, the song degree distribution and the components.

Examples:
  mdr-graph graph-stats graphs/trending
  mdr-graph graph-stats graphs/trending --top 25
  mdr-graph graph-stats graphs/trending --json > stats.json

The degree distribution uses log2 bins (1, 2-3, 4-7, ...) because song popularity is
heavy-tailed: a few songs carry thousands of videos, most carry one. Connected
components are counted on the graph itself (graph.pt); in a song-video graph each song
with its videos is one component, so the largest component is the most used song.
With creator and hashtag nodes (``build-graph --nodes``), each node type also gets its
count, degree distribution, hubs (its top nodes by degree) and the components of the
video-type graph alone; the hub hashtags the build dropped are listed from summary.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mdr_graph.errors import UserError
from mdr_graph.graph_build.schema import EDGE_TYPES, ENTITY_TYPES, ID_ATTRS
from mdr_graph.graph_build.tables import read_songs


def degree_stats(deg: np.ndarray) -> dict[str, Any]:
    """min / max / mean / median / p90 / p99 of a degree array, and how many nodes have degree 1."""
    deg = np.asarray(deg)
    if not len(deg):
        return {"count": 0, "min": 0, "max": 0, "mean": 0.0, "median": 0.0, "p90": 0.0, "p99": 0.0, "ones": 0}
    return {
        "count": int(len(deg)),
        "min": int(deg.min()),
        "max": int(deg.max()),
        "mean": round(float(deg.mean()), 4),
        "median": float(np.median(deg)),
        "p90": float(np.percentile(deg, 90)),
        "p99": float(np.percentile(deg, 99)),
        "ones": int((deg == 1).sum()),
    }


def log_histogram(deg: np.ndarray) -> list[dict[str, int]]:
    """Degrees in log2 bins ``[2^k, 2^(k+1) - 1]``: how many nodes, and how many edges they hold."""
    deg = np.asarray(deg, dtype=np.int64)
    deg = deg[deg > 0]
    if not len(deg):
        return []
    k = np.floor(np.log2(deg)).astype(np.int64)
    out = []
    for b in range(int(k.max()) + 1):
        sel = k == b
        out.append({"min": 2**b, "max": 2 ** (b + 1) - 1, "nodes": int(sel.sum()), "edges": int(deg[sel].sum())})
    return out


def connected_components(edge_index: np.ndarray, n_src: int, n_dst: int) -> np.ndarray:
    """Sizes of the connected components (largest first) of a bipartite graph.

    Nodes are ``src`` 0..n_src-1 then ``dst`` 0..n_dst-1. Vectorised label propagation
    with pointer jumping: a few numpy passes even for millions of edges.
    """
    u = np.asarray(edge_index[0], dtype=np.int64)
    v = np.asarray(edge_index[1], dtype=np.int64) + n_src
    return component_sizes(u, v, n_src + n_dst)


def hetero_components(data) -> np.ndarray:
    """Component sizes (largest first) of a ``HeteroData`` over all its node and edge types."""
    from mdr_graph.graph_build.schema import EDGE_TYPES

    offset, n = {}, 0
    for t in data.node_types:
        offset[t] = n
        n += int(data[t].num_nodes)
    us, vs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for fwd, _ in EDGE_TYPES.values():
        if fwd in data.edge_types:
            ei = data[fwd].edge_index.numpy()
            us.append(ei[0].astype(np.int64) + offset[fwd[0]])
            vs.append(ei[1].astype(np.int64) + offset[fwd[2]])
    return component_sizes(np.concatenate(us), np.concatenate(vs), n)


def component_sizes(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Sizes of the connected components (largest first) of ``n`` nodes joined by edges ``u[i]-v[i]``."""
    if n == 0:
        return np.zeros(0, np.int64)
    label = np.arange(n, dtype=np.int64)
    while True:
        m = np.minimum(label[u], label[v])
        new = label.copy()
        np.minimum.at(new, u, m)
        np.minimum.at(new, v, m)
        while True:  # pointer jumping: every node points at its label's label
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            break
        label = new
    _, sizes = np.unique(label, return_counts=True)
    return np.sort(sizes)[::-1]


def graph_stats(graph_dir: str | Path, top: int = 10) -> dict[str, Any]:
    """Everything ``graph-stats`` prints, as a dict."""
    import warnings

    with warnings.catch_warnings():  # torch_geometric's import warns about torch.jit; not ours to fix
        warnings.filterwarnings("ignore", category=FutureWarning)
        from mdr_graph.graph_build.graph import load_graph
    from mdr_graph.io import read_json

    graph_dir = Path(graph_dir)
    summary_path = graph_dir / "summary.json"
    if not summary_path.exists():
        raise UserError(f"{graph_dir} is not a complete graph directory (no summary.json); "
                        f"build it with `mdr-graph build-graph INPUT --out {graph_dir}`")
    summary = read_json(summary_path)
    songs = read_songs(graph_dir)
    order = np.argsort(-songs["degree"].to_numpy(), kind="stable")[:top]
    top_songs = [{"song_id": str(r.song_id), "title": _s(r.song_title), "author": _s(r.song_author),
                  "degree": int(r.degree), "song_uses": None if pd.isna(r.song_uses) else int(r.song_uses)}
                 for r in songs.iloc[order].itertuples()]
    data = load_graph(graph_dir)
    n_nodes = sum(int(data[t].num_nodes) for t in data.node_types)
    sizes = hetero_components(data)
    deg = songs["degree"].to_numpy()
    return {
        "summary": summary,
        "top_songs": top_songs,
        "song_degree": degree_stats(deg),
        "song_degree_histogram": log_histogram(deg),
        "components": _components(sizes, n_nodes),
        "node_types": {t: node_type_stats(data, t, top) for t in ENTITY_TYPES if t in data.node_types},
    }


def _components(sizes: np.ndarray, n_nodes: int) -> dict[str, Any]:
    return {"count": int(len(sizes)), "largest": int(sizes[0]) if len(sizes) else 0,
            "largest_share": round(float(sizes[0]) / n_nodes, 4) if len(sizes) else 0.0,
            "isolated_nodes": int((sizes == 1).sum()), "size_histogram": log_histogram(sizes)}


def node_type_stats(data, node_type: str, top: int = 10) -> dict[str, Any]:
    """One entity type: count, degree distribution, its hubs (top nodes by degree), and the
    components of the video-``node_type`` graph alone (which videos this relation joins)."""
    fwd = EDGE_TYPES[node_type][0]
    ei = data[fwd].edge_index.numpy() if fwd in data.edge_types else np.zeros((2, 0), np.int64)
    n, n_video = int(data[node_type].num_nodes), int(data["video"].num_nodes)
    deg = np.bincount(ei[1], minlength=n) if n else np.zeros(0, np.int64)
    ids = getattr(data[node_type], ID_ATTRS[node_type])
    order = np.argsort(-deg, kind="stable")[:top]
    sizes = connected_components(ei, n_video, n)
    linked_videos = int(len(np.unique(ei[0]))) if ei.shape[1] else 0
    return {"count": n, "edges": int(ei.shape[1]), "videos_linked": linked_videos,
            "degree": degree_stats(deg), "degree_histogram": log_histogram(deg),
            "hubs": [{"id": str(ids[i]), "degree": int(deg[i])} for i in order],
            "components": _components(sizes, n_video + n)}


def _s(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)


def _cut(s: str | None, n: int) -> str:
    s = s or ""
    return s if len(s) <= n else s[: n - 1] + "…"


def format_stats(st: dict[str, Any]) -> str:
    """The one-screen text report."""
    s = st["summary"]
    lines = [
        f"graph built {s.get('built_at', '?')} from {s.get('format', '?')} "
        f"({len(s.get('files', []))} file{'s' * (len(s.get('files', [])) != 1)})",
        f"  input records {s['input_records']:>12,}",
        f"  videos        {s['videos']:>12,}",
        f"  songs         {s['songs']:>12,}",
        f"  edges         {s['edges']:>12,}",
        f"  rejected      {s['rejected']:>12,}",
    ]
    for code, n in (s.get("rejects_by_reason") or {}).items():
        lines.append(f"    {code:<24}{n:>10,}")
    if s.get("scrape_time_fallback"):
        lines.append(f"  scrape time: latest create time {s['scrape_time_fallback']} for "
                     f"{s['scrape_time_sources'].get('latest_create_time', 0):,} videos")
    media = s.get("media_files") or {}
    if media:
        lines.append(f"  media files: {media.get('found', 0):,} found, {media.get('missing', 0):,} missing")
    d = st["song_degree"]
    lines += ["", f"song degree: max {d['max']:,}, mean {d['mean']:.2f}, median {d['median']:g}, "
                  f"p90 {d['p90']:g}, p99 {d['p99']:g}; {d['ones']:,} songs have one video"]
    lines.append(f"{'degree':>14} {'songs':>10} {'videos':>10}")
    for b in st["song_degree_histogram"]:
        rng = f"{b['min']}" if b["min"] == b["max"] else f"{b['min']}-{b['max']}"
        lines.append(f"{rng:>14} {b['nodes']:>10,} {b['edges']:>10,}")
    lines += ["", f"top {len(st['top_songs'])} songs by degree:"]
    for i, t in enumerate(st["top_songs"], 1):
        uses = f"  ({t['song_uses']:,} uses on the platform)" if t["song_uses"] is not None else ""
        lines.append(f"{i:>4}. {t['degree']:>7,}  {_cut(t['title'], 40)} — {_cut(t['author'], 24)}"
                     f"  [{t['song_id']}]{uses}")
    c = st["components"]
    lines += ["", f"connected components: {c['count']:,}; largest {c['largest']:,} nodes "
                  f"({100 * c['largest_share']:.2f}% of the graph); {c['isolated_nodes']:,} isolated nodes"]
    for t, nt in st.get("node_types", {}).items():
        d, c = nt["degree"], nt["components"]
        lines += ["", f"{t}: {nt['count']:,} nodes, {nt['edges']:,} edges to {nt['videos_linked']:,} videos; "
                      f"degree max {d['max']:,}, mean {d['mean']:.2f}, median {d['median']:g}, p99 {d['p99']:g}; "
                      f"{d['ones']:,} with one video",
                  f"  video-{t} components: {c['count']:,}; largest {c['largest']:,} nodes "
                  f"({100 * c['largest_share']:.2f}%)",
                  f"  {'degree':>12} {'nodes':>10} {'edges':>10}"]
        for b in nt["degree_histogram"]:
            rng = f"{b['min']}" if b["min"] == b["max"] else f"{b['min']}-{b['max']}"
            lines.append(f"  {rng:>12} {b['nodes']:>10,} {b['edges']:>10,}")
        if nt["hubs"]:
            lines.append("  hubs: " + ", ".join(f"{_cut(h['id'], 24)} ({h['degree']:,})" for h in nt["hubs"]))
    hubs = s.get("hashtag_hubs")
    if hubs:
        rule = s.get("hashtag_rule", {})
        lines.append(f"  dropped hub hashtags (on more than {100 * rule.get('max_df', 0):g}% of videos): "
                     + ", ".join(f"#{h['hashtag']} ({100 * h['share']:.1f}%)" for h in hubs[:20])
                     + (f", and {len(hubs) - 20} more" if len(hubs) > 20 else ""))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("graph_dir", metavar="GRAPHDIR", help="a directory written by `mdr-graph build-graph`")
    p.add_argument("--top", type=int, default=10, help="how many songs to list (default 10)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON instead of text")


def main(args: argparse.Namespace) -> int:
    if args.top < 0:
        raise UserError("--top must be 0 or more")
    st = graph_stats(args.graph_dir, top=args.top)
    print(json.dumps(st, indent=2, ensure_ascii=False) if args.json else format_stats(st))
    return 0
