"""``mdr-graph synth``: arguments and entry point (the help text is the package docstring)."""

from __future__ import annotations

import argparse

from mdr_graph.config import resolve, show_defaults
from mdr_graph.synth import signal
from mdr_graph.synth.config import CODECS, SynthConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="corpus directory (created; resumed if partial)")
    p.add_argument("--config", metavar="TOML", help="settings file; DIR/config.toml of a corpus reproduces it")
    g = p.add_argument_group("corpus")
    g.add_argument("--videos", dest="n_videos", type=int, default=None, metavar="N", help="number of videos")
    g.add_argument("--songs", dest="n_songs", type=int, default=None, metavar="S",
                   help="number of songs, 1..N; every song gets at least one video (default N//4)")
    g.add_argument("--seed", type=int, default=None, metavar="K", help="corpus seed")
    g.add_argument("--zipf", dest="zipf_exponent", type=float, default=None, metavar="A",
                   help="song popularity exponent: P(rank r) ~ r^-A, 0 spreads videos evenly")
    g.add_argument("--creators", dest="n_creators", type=int, default=None, metavar="C",
                   help="number of creators, 1..N; every creator posts at least one video (default N//4)")
    g.add_argument("--creator-zipf", dest="creator_zipf", type=float, default=None, metavar="A",
                   help="creator activity exponent: P(rank r) ~ r^-A")
    g.add_argument("--days", type=int, default=None, help="posting dates spread over this many days")
    g.add_argument("--end-date", dest="end_date", default=None, metavar="YYYY-MM-DD",
                   help="UTC day of the newest video, whose createTime is the scrape time")
    m = p.add_argument_group("media")
    m.add_argument("--seconds", type=float, default=None, help="mean clip length; each is 0.8-1.2x this")
    m.add_argument("--width", type=int, default=None, help="picture width, 9:16 with --height")
    m.add_argument("--height", type=int, default=None, help="picture height")
    m.add_argument("--fps", type=int, default=None, help="frames per second")
    m.add_argument("--sample-rate", dest="sample_rate", type=int, default=None, help="AAC sample rate, Hz")
    m.add_argument("--codec", choices=CODECS, default=None, help="video encoder; auto: libx264, else mpeg4")
    m.add_argument("--no-audio-fraction", dest="no_audio_fraction", type=float, default=None, metavar="F",
                   help="share of videos written without an audio track")
    m.add_argument("--corrupt", type=int, default=None, metavar="N",
                   help="write N broken files (truncated, empty, garbage in turn), flagged in truth.csv")
    s = p.add_argument_group("planted signal (see docs/synthetic-corpus.md)")
    s.add_argument("--intercept", type=float, default=None, help="mean log popularity per day")
    for c in ("song", "visual", "audio", "meta", "creator", "hashtag"):
        s.add_argument(f"--w-{c}", dest=f"w_{c}", type=float, default=None, metavar="W",
                       help=f"weight of the {c} component")
    s.add_argument("--noise", dest="noise_sd", type=float, default=None, metavar="SD",
                   help="standard deviation of the unexplainable noise")
    r = p.add_argument_group("run")
    r.add_argument("--workers", type=int, default=None,
                   help="encoding processes (default min(2, cores)); output is identical")
    r.add_argument("--force", action="store_true",
                   help="overwrite a non-empty DIR that is not this corpus (only synth's own files are replaced)")
    show_defaults(p, SynthConfig)


def main(args: argparse.Namespace) -> int:
    from mdr_graph.synth.corpus import write_corpus

    cfg = resolve(SynthConfig, args, "synth")
    s = write_corpus(cfg, args.out, workers=args.workers, force=args.force)
    deg = s["song_degree"]
    sig = s["signal"]
    print(f"synth: {s['videos']} videos ({s['written']} written, {s['skipped_existing']} already there), "
          f"{s['songs']} songs, {s['authors']} authors in {s['seconds']:.1f} s with {s['workers']} worker(s), "
          f"codec {s['codec']}+aac")
    print(f"  song degree: max {deg['max']}, median {deg['median']:g}, {deg['songs_with_one_video']} songs "
          f"with one video; without audio: {s['without_audio']}; corrupt: {sum(s['corrupt'].values())}")
    def _fmt(x):  # None: a constant component (e.g. one creator in a tiny corpus)
        return "n/a" if x is None else f"{x:.2f}"
    print("  oracle Spearman vs popularity_raw: " + ", ".join(
        f"{c} {_fmt(sig[c]['oracle_spearman'])}" for c in signal.COMPONENTS)
        + f", all {_fmt(sig['all']['oracle_spearman'])}")
    print(f"  wrote {s['metadata']}, {s['truth']}, {s['videos_dir']}/")
    print(f"  next: {s['build_graph']}")
    return 0
