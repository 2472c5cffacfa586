"""Ingest scraped TikTok metadata and build the video graph (songs; optionally creators, hashtags).

Reads tiktok-scraper JSON, TikTok-Api items (a list or JSON lines), yt-dlp .info.json
files (or a directory of them), CSV, and SMP-Video's relational JSON lines (a directory
or its posts_<split>.jsonl). Counts written as TikTok shows them ("541.2K",
"1.4M", "1,234"), epoch or ISO times, "mm:ss" durations and text booleans are parsed.

Writes to GRAPHDIR: videos.parquet (one row per accepted video), songs.parquet (one row
per song, with its degree), with --nodes creator/hashtag creators.parquet and
hashtags.parquet, graph.pt (the PyG HeteroData), rejects.jsonl (one line per
rejected record: source, position, reason, detail), config.toml and summary.json.
Every input record is either a video or a reject: videos + rejected == input_records.
Reject reasons: missing_video_id, missing_counts, bad_count,
negative_count, bad_timestamp, created_after_scrape, duplicate_exact (a later identical
copy of a kept video), duplicate_conflicting (a later copy that differs),
path_escapes_root, not_a_record, not_a_video, bad_json (a JSON-lines line),
malformed_row (a CSV row), missing_target / bad_target (--target-column), bad_text (an
id or media path with a NUL or an unpaired surrogate; captions and titles are cleaned
instead: NULs dropped, unpaired surrogates become U+FFFD). Records created after their
input file was last written are created_after_scrape when no scrape time is known. A
video without a song is kept, without a song edge (summary: videos_without_song). A file
that is not JSON/CSV at all, or a build that accepts no video, stops the build, and
GRAPHDIR is left as it was. When nearly every record of a file fails the same way, the
format it looks like is named. Song identity, creator features and the hashtag hub rule:
docs/graph.md.

Examples:
  mdr-graph build-graph trending.json --out graphs/trending
  mdr-graph build-graph scrape/*.json --out graphs/all --media-root videos/ --scrape-time 2020-12-21T12:00Z
  mdr-graph build-graph downloads/ --format yt-dlp --out graphs/ytdlp --export graphml
  mdr-graph build-graph export.csv --columns video_id=id,song_id=music,plays=views --out graphs/csv
  mdr-graph build-graph trending.json --nodes song,creator,hashtag --out graphs/all
  mdr-graph build-graph smp-video/ --target-column popularity --out graphs/smp
"""

from __future__ import annotations

import argparse
import sys

from mdr_graph.config import show_defaults
from mdr_graph.errors import UserError
from mdr_graph.graph_build.formats import FORMATS, RAW_FIELDS, check_column_map, parse_column_map
from mdr_graph.graph_build.schema import ENTITY_TYPES


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mdr_graph.graph_build.build import EXPORT_FORMATS, BuildGraphConfig

    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="metadata files or directories (searched for .json/.jsonl/.ndjson/.csv/.tsv)")
    p.add_argument("--out", default=None, metavar="GRAPHDIR", help="the graph directory to write")
    p.add_argument("--format", default=None, choices=("auto", *FORMATS),
                   help="input format (auto: detected per file, and reported)")
    p.add_argument("--columns", default=None, metavar="CANONICAL=SOURCE,...",
                   help="CSV column names for canonical fields, e.g. video_id=id,plays=views; "
                        f"canonical names: {', '.join(RAW_FIELDS)}")
    p.add_argument("--media-root", default=None, metavar="DIR",
                   help="where the videos are: DIR/<video_id>.mp4 unless a record names its own path "
                        "(paths resolving outside DIR are rejected)")
    p.add_argument("--scrape-time", default=None, metavar="ISO",
                   help="when the scrape was taken, for records that do not say (default: the latest create "
                        "time in the input, after records created after their file was written are rejected); "
                        "ISO 8601 or epoch seconds")
    p.add_argument("--target-column", default=None, metavar="NAME",
                   help="take the target from this field (a CSV column, a record key; smp-video: a field of "
                        "popularity_S.jsonl, default popularity) instead of computing it from the counts; "
                        "it is stored as popularity_raw and summary.json says which target was used")
    p.add_argument("--nodes", default=None, metavar="TYPES",
                   help=f"node types besides video, comma-separated from {','.join(ENTITY_TYPES)} (song alone is "
                        "VAN's song-video graph); each is joined to videos in both directions")
    p.add_argument("--hashtag-max-df", type=float, default=None, metavar="SHARE",
                   help="hub rule: a hashtag on more than this share of the videos (and on at least "
                        "--hashtag-min-hub-videos of them) is not a node; summary.json lists the dropped hubs "
                        "(1 keeps every tag)")
    p.add_argument("--hashtag-min-hub-videos", type=int, default=None, metavar="N",
                   help="a hashtag on fewer videos than this is never a hub")
    p.add_argument("--export", action="append", default=None, choices=EXPORT_FORMATS,
                   help="also write graph.graphml / graph.gexf through networkx (repeatable)")
    p.add_argument("--config", default=None,
                   help="a TOML file with a [build_graph] section (e.g. GRAPHDIR/config.toml)")
    show_defaults(p, BuildGraphConfig)


def _config(args: argparse.Namespace):
    from mdr_graph.config import resolve
    from mdr_graph.graph_build.build import BuildGraphConfig

    ns = argparse.Namespace(**vars(args))
    ns.inputs = args.inputs or None
    ns.columns = parse_column_map(args.columns) if args.columns else None
    ns.nodes = [n.strip() for n in args.nodes.split(",") if n.strip()] if args.nodes else None
    cfg = resolve(BuildGraphConfig, ns, "build_graph")
    if not cfg.inputs:
        raise UserError("give at least one INPUT file or directory")
    if not cfg.out:
        raise UserError("give --out GRAPHDIR, the directory to write the graph to")
    check_column_map(cfg.columns)
    return cfg


def _print_summary(s: dict, out: str) -> None:
    lines = [
        f"built {out} in {s['elapsed_s']:.1f} s (format: {s['format']})",
        f"  input records {s['input_records']:>12,}",
        f"  videos        {s['videos']:>12,}",
        f"  songs         {s['songs']:>12,}",
        f"  edges         {s['edges']:>12,}",
        f"  no song       {s['videos_without_song']:>12,}",
        f"  rejected      {s['rejected']:>12,}" + (f"  (see {out}/rejects.jsonl)" if s["rejected"] else ""),
    ]
    for code, n in s["rejects_by_reason"].items():
        lines.append(f"    {code:<24}{n:>10,}")
    for t, n in s.get("nodes", {}).items():
        if t not in ("video", "song"):
            lines.append(f"  {t + 's':<14}{n:>12,}")
    for name, n in s.get("edges_by_type", {}).items():
        if not name.endswith("uses__song"):
            lines.append(f"  {name.replace('__', ' '):<26}{n:>12,} edges")
    if s.get("hashtag_hubs"):
        lines.append("  hub hashtags dropped: " + ", ".join(f"#{h['hashtag']} ({100 * h['share']:.1f}%)"
                                                          for h in s["hashtag_hubs"][:10]))
    d = s["song_degree"]
    if s["songs"]:
        lines.append(f"  song degree: max {d['max']:,}, mean {d['mean']:.2f}, median {d['median']:g}; "
                     f"{d['ones']:,} songs have one video")
    t = s["target"]
    lines.append(f"  target: {'given, ' + t['column'] if t.get('kind') == 'given' else 'computed, ' + t['formula']}")
    src = s["scrape_time_sources"]
    if src.get("latest_create_time"):
        lines.append(f"  scrape time: {s['scrape_time_fallback']}: {s['scrape_time_fallback_reason']} "
                     "(set it with --scrape-time)")
    if s["media_root"] or s["media_files"].get("found"):
        lines.append(f"  media files: {s['media_files']['found']:,} found, {s['media_files']['missing']:,} missing")
    for name, n in s["unreadable_values"].items():
        lines.append(f"  note: {n:,} unreadable {name} value(s) were set to null")
    print("\n".join(lines))


def main(args: argparse.Namespace) -> int:
    from mdr_graph.graph_build.build import build_graph

    cfg = _config(args)
    summary = build_graph(cfg.inputs, cfg.out, fmt=cfg.format, columns=cfg.columns, media_root=cfg.media_root,
                          scrape_time=cfg.scrape_time, export=cfg.export, show_progress=True,
                          target_column=cfg.target_column, nodes=cfg.nodes, hashtag_max_df=cfg.hashtag_max_df,
                          hashtag_min_hub_videos=cfg.hashtag_min_hub_videos,
                          echo=lambda m: print(m, file=sys.stderr))
    _print_summary(summary, cfg.out)  # a build that accepts no video raises instead (GRAPHDIR is kept)
    return 0
