"""Decode every graph video into frames, MFCC (and optionally log filter banks and Whisper) features.

Frames are sampled uniformly by segment (one frame at the centre of each of --frames
equal segments), resized to a --size square (centre crop by default) and stored as
uint8; audio is mixed to mono, resampled to --sample-rate and padded or trimmed to
--audio-seconds. Results go to FEATDIR in shards with an index.parquet; files that
cannot be decoded are listed in FEATDIR/errors.jsonl and the run goes on.

Re-running the same command resumes: videos already done are skipped. --shard i/n
(or RANK/WORLD_SIZE under torchrun) processes only the videos whose stable hash is i
mod n, so n processes on one or many machines can share a FEATDIR on shared storage;
the last one to finish merges their indexes (or run --merge). See docs/extraction.md.

examples:
  mdr-graph extract --graph graph/ --out feats/
  mdr-graph extract --graph graph/ --out feats/ --frames 8 --size 224 --fbank --workers 2
  mdr-graph extract --graph graph/ --out feats/ --whisper ~/models/whisper-tiny.pt
  mdr-graph whisper-install && mdr-graph extract --graph graph/ --out feats/ --whisper base
  mdr-graph extract --graph graph/ --out feats/ --shard 0/4     # ... 1/4, 2/4, 3/4 elsewhere
  mdr-graph extract --merge --out feats/
"""

from __future__ import annotations

import argparse
import sys

from mdr_graph.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mdr_graph.config import show_defaults
    from mdr_graph.media.decode import FITS, POSITIONS, STRATEGIES
    from mdr_graph.media.extract_config import TRANSCRIBE_BACKENDS, ExtractConfig

    p.add_argument("--graph", metavar="GRAPHDIR", help="directory with videos.parquet (from `mdr-graph build-graph`)")
    p.add_argument("--out", metavar="FEATDIR", required=True, help="feature directory to write (or resume, or merge)")
    p.add_argument("--config", metavar="TOML", help="settings file; its [extract] section (e.g. FEATDIR/config.toml)")
    g = p.add_argument_group("frames")
    g.add_argument("--frames", type=int, default=None, metavar="N", help="frames per video, one per segment")
    g.add_argument("--segments", type=int, default=None, metavar="N",
                   help="split into this many segments and keep the first --frames (unset: = --frames; "
                        "the reference design used 15)")
    g.add_argument("--position", choices=POSITIONS, default=None, help="frame at each segment's centre or start")
    g.add_argument("--size", type=int, default=None, metavar="PX",
                   help="square side in pixels (224 for ViT)")
    g.add_argument("--fit", choices=FITS, default=None,
                   help="9:16 to square: centre crop, letterbox on black, or stretch")
    g.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="seek to each frame, decode one pass, or choose per video from the keyframe index "
                        "(auto); every strategy gives the same frames")
    g = p.add_argument_group("audio")
    g.add_argument("--sample-rate", dest="sample_rate", type=int, default=None, metavar="HZ", help="Hz")
    g.add_argument("--audio-seconds", dest="audio_seconds", type=float, default=None, metavar="S",
                   help="pad or trim the audio to this many seconds")
    g.add_argument("--mfcc", dest="n_mfcc", type=int, default=None, metavar="N", help="MFCC coefficients")
    g.add_argument("--n-mels", dest="n_mels", type=int, default=None, metavar="N", help="mel bands")
    g.add_argument("--fbank", action="store_const", const=True, default=None,
                   help="also store log mel filter banks")
    g.add_argument("--whisper", metavar="PATH_OR_NAME", default=None,
                   help="Whisper checkpoint file, or a model name: base after `mdr-graph whisper-install`, or one "
                        "already in ~/.cache/whisper (never downloads)")
    g.add_argument("--no-transcribe", dest="transcribe", action="store_const", const=False, default=None,
                   help="with --whisper: store the embedding only, skip the transcript and language")
    g.add_argument("--transcribe-backend", dest="transcribe_backend", choices=TRANSCRIBE_BACKENDS,
                   default=None, help="with --whisper: transcripts by openai-whisper or faster-whisper "
                                      "(same weights, int8, faster on CPU; needs an installed model such as base)")
    g.add_argument("--whisper-max-tokens", dest="whisper_max_tokens", type=int, default=None, metavar="N",
                   help="cap on tokens decoded per 30 s window")
    g = p.add_argument_group("run")
    g.add_argument("--workers", type=int, default=1, metavar="N", help="decoding processes (default %(default)s)")
    g.add_argument("--shard", metavar="i/n", default=None,
                   help="process only shard i of n (0-based) by a stable hash of video_id")
    g.add_argument("--shard-size", dest="shard_size", type=int, default=None, metavar="N",
                   help="videos per shard file")
    g.add_argument("--decode-threads", dest="decode_threads", type=int, default=None, metavar="N",
                   help="FFmpeg threads per process (0: cores / workers)")
    g.add_argument("--media-root", dest="media_root", default=None, metavar="DIR",
                   help="refuse any video file whose real path is outside this directory")
    g.add_argument("--retry-errors", action="store_true", help="retry videos that failed in an earlier run")
    g.add_argument("--merge", action="store_true", help="only join the shards' indexes into FEATDIR/index.parquet")
    g.add_argument("--allow-partial", action="store_true", help="with --merge: merge even if videos are missing")
    show_defaults(p, ExtractConfig)


def main(args: argparse.Namespace) -> int:
    from mdr_graph.config import resolve
    from mdr_graph.media.extract import (ExtractConfig, merge, parse_shard, print_summary, run_extract,
                                         shard_from_env)

    if args.merge:
        s = merge(args.out, graph_dir=args.graph, allow_partial=args.allow_partial)
        missing = "unknown (no graph)" if s["missing"] is None else s["missing"]
        print(f"merged {args.out}: ok {s['ok']}, errors {s['errors']}, missing {missing}, of {s['total']}")
        return 0
    if not args.graph:
        raise UserError("--graph GRAPHDIR is required (the directory with videos.parquet), unless --merge")
    cfg = resolve(ExtractConfig, args, "extract")
    shard = parse_shard(args.shard) if args.shard else shard_from_env()
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: need at least 1")
    summary = run_extract(args.graph, args.out, cfg, workers=args.workers, shard=shard,
                          retry_errors=args.retry_errors)
    print_summary(summary)
    if summary["errors"]:
        no_file = summary.get("no_file", 0)
        why = (f"{summary['errors'] - no_file} could not be decoded" if not no_file else
               f"{no_file} without a media file, {summary['errors'] - no_file} could not be decoded")
        print(f"{summary['errors']} video(s) have no features ({why}); reasons in {args.out}/errors.jsonl"
              + ("" if summary["merged"] else " (after --merge)"), file=sys.stderr)
    if summary.get("unexpected_errors"):
        print(f"{summary['unexpected_errors']} of those failed in an unexpected way (not a decoding error); "
              f"errors.jsonl has the exception of each", file=sys.stderr)
    if not summary["merged"]:
        print(f"shard {summary['shard']} done; the index is merged when every shard has finished "
              f"(or run `mdr-graph extract --merge --out {args.out}`)", file=sys.stderr)
    return 0
