"""Run the whole pipeline end to end: synthesise, build the graph, pretrain, extract, train, compare.

A fresh machine's first command (`make demo`). With no data it synthesises a corpus of
real mp4s with a planted popularity signal; with --data it runs the same stages on your
own scrape (--media-root: where its videos are; without videos the media stages are
skipped and the models use the network, metadata and text modalities). A CSV names its
columns with --columns (as in build-graph); a scrape without song ids has no song links,
so the GAT stage is skipped and the models use metadata, text and media only.

Stages (each one is the named command, run in-process; the equivalent command line is
printed before it runs):
  1 synth            2 build-graph       3 pretrain (GAT)       4 extract
  5 pretrain-visual  6 train (co-attention, first seed)         7 compare (+ report)

Every stage resumes: re-running the same command skips finished stages and continues an
interrupted one. It ends with the comparison's headline table, the report path and the
TensorBoard command for all runs.

Examples:
  mdr-graph demo --out demo-run                     # ~300 synthetic videos, a few minutes
  mdr-graph demo --out demo-quick --quick           # the CI size
  mdr-graph demo --out mine --data scrape.json --media-root videos/
  mdr-graph demo --out real --data ../shared/data/tiktok-popularity/video-data.csv \
      --media-root ../shared/data/tiktok-popularity/videos --scrape-time 2025-05-04 \
      --columns video_id=id,plays=view_count,likes=like_count,shares=share_count,comments=comment_count,\
caption=video_description,author_id=username
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mdr_graph.config import show_defaults
from mdr_graph.errors import UserError
from mdr_graph.io import read_json, write_json


@dataclass
class DemoSettings:
    """Sizes of the demo, chosen so the default finishes in under 10 minutes on 2 CPU cores."""

    videos: int = 300
    songs: int | None = None            # synth default: videos // 4
    seed: int = 0                       # corpus seed
    seeds: int = 3                      # seeds of the comparison
    gat_epochs: int = 100               # early stopping on validation AUC usually ends it sooner
    gat_hidden: int = 64
    visual_epochs: int = 5
    visual_hidden: int = 16
    visual_embed: int = 64
    audio_seconds: float = 4.0          # synthetic clips last ~3 s; pad/trim their audio to this
    epochs: int = 30                    # fusion model and neural baselines (early stopping on val Spearman)
    patience: int = 8
    d_model: int = 64
    text_dim: int = 1024
    workers: int = 2                    # synth / extract processes
    jobs: int = 2                       # comparison runs trained at once (one torch thread each)
    models: list[str] = field(default_factory=lambda: ["all"])
    ablate: bool = False

    @classmethod
    def quick(cls) -> "DemoSettings":
        """The CI size: every stage runs, on a corpus small enough for a couple of minutes."""
        return cls(videos=60, songs=15, seeds=1, gat_epochs=8, visual_epochs=1, visual_hidden=8, visual_embed=32,
                   epochs=2, patience=2, d_model=32, text_dim=256, jobs=1)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo-run", help="demo directory (default %(default)s); resumed when it exists")
    p.add_argument("--data", help="your own scraped metadata (any format build-graph reads) instead of a "
                                  "synthetic corpus")
    p.add_argument("--media-root", dest="media_root", help="with --data: where the videos are (DIR/<id>.mp4)")
    p.add_argument("--columns", metavar="CANONICAL=SOURCE,...",
                   help="with --data: CSV column names for canonical fields, as in `build-graph --columns`")
    p.add_argument("--scrape-time", dest="scrape_time", metavar="ISO",
                   help="with --data: when the scrape was taken, as in `build-graph --scrape-time`")
    p.add_argument("--quick", action="store_true", help="the small CI size (about 60 videos, 1 seed, 2 epochs: "
                   "DemoSettings.quick) instead of the defaults below")
    p.add_argument("--videos", type=int, help="synthetic videos")
    p.add_argument("--songs", type=int, help="synthetic songs (default videos // 4)")
    p.add_argument("--seed", type=int, help="corpus seed")
    p.add_argument("--seeds", type=int, help="seeds of the comparison")
    p.add_argument("--epochs", type=int, help="max epochs of the fusion model and the neural baselines")
    p.add_argument("--gat-epochs", dest="gat_epochs", type=int, help="max GAT pretraining epochs")
    p.add_argument("--visual-epochs", dest="visual_epochs", type=int, help="ConvLSTM pretraining epochs")
    p.add_argument("--workers", type=int, help="processes for synthesis and extraction")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for training (default %(default)s: these small models gain nothing from "
                        "a second intra-op thread on 2 cores, and lose up to 10x when the cores are shared)")
    p.add_argument("--jobs", type=int, help="comparison runs trained at once")
    p.add_argument("--models", help="models to compare: all or a comma-separated list")
    p.add_argument("--ablate", action="store_const", const=True, help="also run the ablations (slower)")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--whisper", help="a Whisper checkpoint (path or cached name) for the whisper modality")
    w.add_argument("--tiny-whisper", dest="tiny_whisper", action="store_true",
                   help="build and use a tiny RANDOM-WEIGHT Whisper checkpoint (exercises the code path only; "
                        "its features carry no information)")
    show_defaults(p, DemoSettings)


def settings_from(args: argparse.Namespace) -> DemoSettings:
    s = DemoSettings.quick() if args.quick else DemoSettings()
    for name in ("videos", "songs", "seed", "seeds", "epochs", "gat_epochs", "visual_epochs", "workers", "jobs",
                 "ablate"):
        v = getattr(args, name, None)
        if v is not None:
            setattr(s, name, v)
    if args.models:
        s.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if s.videos < 20:
        raise UserError(f"--videos {s.videos}: the demo needs at least 20 videos to split into train/val/test")
    if min(s.seeds, s.epochs, s.jobs, s.workers) < 1:
        raise UserError("--seeds, --epochs, --jobs and --workers must be at least 1")
    return s


class Pipeline:
    """The seven stages over one output directory, each skipped when its result exists."""

    def __init__(self, out: Path, s: DemoSettings, data: str | None, media_root: str | None,
                 whisper: str | None, tiny_whisper: bool, threads: int = 1, columns: str | None = None,
                 scrape_time: str | None = None):
        self.out, self.s, self.threads = out, s, threads
        self.data, self.media_root = data, media_root
        self.columns, self.scrape_time = columns, scrape_time
        self.has_gat = True  # false when the graph has no song links to pretrain on
        self.whisper, self.tiny_whisper = whisper, tiny_whisper
        self.graph = out / "graph"
        self.gat = out / "gat"
        self.features = out / "features"
        self.convlstm = out / "convlstm"
        self.compare = out / "compare"
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self.n_stages = 7
        self.failures: list[str] = []

    # -- helpers
    def cli(self, argv: list[str]) -> None:
        """Run one ``mdr-graph`` command in-process; a failure stops the demo with a pointer to resume."""
        from mdr_graph.cli import main

        rc = main([str(a) for a in argv])
        if rc != 0:
            raise UserError(f"stage `mdr-graph {argv[0]}` failed (exit {rc}; its message is above). "
                            f"Fix the cause and re-run the demo with the same --out to resume")

    def stage(self, i: int, title: str, command: list[str] | None = None) -> None:
        line = f"\n[{i}/{self.n_stages}] {title}"
        if command:
            line += "\n      $ mdr-graph " + " ".join(str(c) for c in command)
        print(line, file=sys.stderr, flush=True)

    def timed(self, name: str, fn) -> None:
        t0 = time.perf_counter()
        fn()
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 2)

    def check_inputs(self) -> None:
        """Resume only a demo made from the same inputs; anything else would mix two corpora."""
        ident = {"data": str(Path(self.data).resolve()) if self.data else None,
                 "media_root": str(Path(self.media_root).resolve()) if self.media_root else None,
                 "columns": self.columns, "scrape_time": self.scrape_time,
                 "videos": None if self.data else self.s.videos, "songs": None if self.data else self.s.songs,
                 "seed": None if self.data else self.s.seed}
        path = self.out / "demo-inputs.json"
        if path.exists() and read_json(path) != ident:
            raise UserError(f"{self.out} holds a demo made from other inputs ({read_json(path)}); "
                            f"use a new --out, or delete {self.out} to start over")
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(path, ident)

    # -- stages
    def synth(self) -> tuple[Path, Path | None]:
        if self.data:
            self.stage(1, "synthesise a corpus: skipped, using your data " + self.data)
            return Path(self.data), Path(self.media_root) if self.media_root else None
        corpus = self.out / "corpus"
        cmd = ["synth", "--out", corpus, "--videos", self.s.videos, "--seed", self.s.seed,
               "--workers", self.s.workers]
        if self.s.songs:
            cmd += ["--songs", self.s.songs]
        self.stage(1, f"synthesise {self.s.videos} videos with real mp4s and a planted signal", cmd)
        self.timed("synth", lambda: self.cli(cmd))
        return corpus / "metadata.json", corpus / "videos"

    def build_graph(self, metadata: Path, media: Path | None) -> None:
        cmd = (["build-graph", metadata, "--out", self.graph] + (["--media-root", media] if media else [])
               + (["--columns", self.columns] if self.columns else [])
               + (["--scrape-time", self.scrape_time] if self.scrape_time else []))
        if (self.graph / "summary.json").exists() and (self.graph / "graph.pt").exists():
            self.stage(2, f"build the song-video graph: done already ({self.graph})")
            return
        self.stage(2, "build the song-video graph", cmd)
        self.timed("build-graph", lambda: self.cli(cmd))

    def pretrain_gat(self) -> None:
        cmd = ["pretrain", "--graph", self.graph, "--out", self.gat, "--epochs", self.s.gat_epochs,
               "--hidden", self.s.gat_hidden, "--patience", 10]
        if (self.gat / "gat.pt").exists() and (self.gat / "metrics.json").exists():
            self.stage(3, f"pretrain the GAT by link prediction: done already ({self.gat})")
            return
        edges = read_json(self.graph / "summary.json")["edges"]
        if edges == 0:  # e.g. a CSV without a song column: no link to predict, so no network modality
            self.has_gat = False
            self.stage(3, "pretrain the GAT by link prediction: skipped, the graph has no song links "
                          "(no video has a song id)")
            self.notes.append("no song links: no GAT, so no network modality and no gat-only baseline")
            return
        if (self.gat / "checkpoint.pt").exists():
            cmd.append("--resume")
        self.stage(3, "pretrain the GAT by link prediction", cmd)
        self.timed("pretrain", lambda: self.cli(cmd))

    def has_media(self) -> bool:
        from mdr_graph.graph_build.tables import read_videos

        paths = read_videos(self.graph, ["video_path"])["video_path"]
        return bool(paths.notna().any())

    def extract(self) -> bool:
        if not self.has_media():
            self.stage(4, "extract media features: skipped, the graph has no video files "
                          "(give --media-root to use frames and audio)")
            self.notes.append("no video files: the models use network, meta and text only")
            return False
        cmd = ["extract", "--graph", self.graph, "--out", self.features, "--workers", self.s.workers]
        if not self.data:
            cmd += ["--audio-seconds", self.s.audio_seconds]
        if self.s.ablate:
            cmd.append("--fbank")
        whisper = self.whisper
        if self.tiny_whisper:
            from mdr_graph.media.whisper_features import write_tiny_checkpoint

            whisper = self.out / "whisper-tiny-RANDOM-WEIGHTS.pt"
            if not whisper.exists():
                write_tiny_checkpoint(whisper)
            self.notes.append(f"whisper features come from {whisper.name}: random weights, no information")
        if whisper:
            cmd += ["--whisper", whisper, "--whisper-max-tokens", 8]
        self.stage(4, "extract frames and MFCC (resumable, sharded)", cmd)
        self.timed("extract", lambda: self.cli(cmd))
        return True

    def convlstm_path(self, seed: int | str) -> Path:
        """One ConvLSTM per comparison seed: each saw only its own seed's training split
        (train refuses a ConvLSTM pretrained under another split)."""
        return self.convlstm / f"seed{seed}" / "convlstm.pt"

    def pretrain_visual(self) -> bool:
        for seed in range(self.s.seeds):
            out = self.convlstm_path(seed).parent
            cmd = ["pretrain-visual", "--features", self.features, "--graph", self.graph, "--out", out,
                   "--seed", seed, "--epochs", self.s.visual_epochs, "--hidden", self.s.visual_hidden,
                   "--embed-dim", self.s.visual_embed]
            if (out / "convlstm.pt").exists() and (out / "metrics.json").exists():
                self.stage(5, f"pretrain the ConvLSTM autoencoder: done already ({out})")
                continue
            if (out / "checkpoint.pt").exists():
                cmd.append("--resume")
            self.stage(5, f"pretrain the ConvLSTM autoencoder on the training split's frames (seed {seed})", cmd)
            self.timed("pretrain-visual", lambda: self.cli(cmd))
        return True

    def comparison(self, models: list[str], seeds: list[int], media: bool):
        from mdr_graph.compare.runner import SEED_FIELD, CompareConfig, Comparison
        from mdr_graph.train.config import PRESETS, TrainConfig

        ccfg = CompareConfig(graph=str(self.graph), features=str(self.features) if media else "",
                             gat=str(self.gat / "gat.pt") if self.has_gat else "",
                             convlstm=str(self.convlstm_path(SEED_FIELD)) if media else "",
                             seeds=seeds, models=models, ablate=self.s.ablate and models != ["coattention"],
                             workers=self.s.workers)
        template = TrainConfig(**{**PRESETS["cpu"], "preset": "cpu", "epochs": self.s.epochs,
                                  "patience": self.s.patience, "d_model": self.s.d_model,
                                  "text_dim": self.s.text_dim})
        return Comparison(ccfg, template, self.compare, jobs=self.s.jobs if len(models) > 1 else 1,
                          threads=self.threads)

    def train(self, media: bool) -> None:
        comp = self.comparison(["coattention"], [0], media)
        run = self.compare / "coattention" / "seed0"
        cmd = ["train", "--graph", self.graph, *(["--gat", self.gat / "gat.pt"] if self.has_gat else []),
               "--modalities", ",".join(comp.mods),
               "--epochs", self.s.epochs, "--patience", self.s.patience, "--d-model", self.s.d_model,
               "--text-dim", self.s.text_dim, "--out", run] + (
            ["--features", self.features, "--convlstm", self.convlstm_path(0)] if media else [])
        self.stage(6, f"train the co-attention model over {', '.join(comp.mods)} (seed 0)", cmd)
        self.timed("train", comp.run)
        m = read_json(run / "metrics.json")
        print(f"      test Spearman {m['test_spearman']:.3f}, {m['epochs']} epochs, "
              f"{m['seconds_per_epoch']:.1f} s/epoch; contributions: "
              + ", ".join(f"{k} {v:.2f}" for k, v in m.get("contributions", {}).items()), file=sys.stderr)

    def compare_all(self, media: bool) -> None:
        from mdr_graph.compare.report import write_report
        from mdr_graph.compare.runner import SEED_FIELD

        comp = self.comparison(self.s.models, list(range(self.s.seeds)), media)
        self.stage(7, f"compare {len([s for s in comp.specs if s.runnable])} models on {self.s.seeds} seed(s), "
                      "same splits, and write the report",
                   ["compare", "--graph", self.graph, *(["--gat", self.gat / "gat.pt"] if self.has_gat else []),
                    "--out", self.compare,
                    "--seeds", self.s.seeds, "--epochs", self.s.epochs, "--patience", self.s.patience,
                    "--d-model", self.s.d_model, "--text-dim", self.s.text_dim, "--jobs", self.s.jobs,
                    "--threads", self.threads]
                   + (["--features", self.features, "--convlstm", f"'{self.convlstm_path(SEED_FIELD)}'"]
                      if media else [])
                   + (["--ablate"] if self.s.ablate else []))
        for spec in comp.specs:
            if spec.skip:
                print(f"      skipping {spec.name}: {spec.skip}", file=sys.stderr)

        def go():
            comp.run()
            write_report(self.compare)
        self.timed("compare", go)
        self.failures = comp.failures()

    def run(self) -> int:
        from mdr_graph.compare.report import headline_table

        t0 = time.perf_counter()
        self.check_inputs()
        metadata, media_root = self.synth()
        self.build_graph(metadata, media_root)
        self.pretrain_gat()
        media = self.extract()
        if media:
            self.pretrain_visual()
        else:
            self.stage(5, "pretrain the ConvLSTM autoencoder: skipped (no video files)")
        self.train(media)
        self.compare_all(media)
        total = time.perf_counter() - t0
        write_json(self.out / "demo.json", {"settings": asdict(self.s), "data": self.data,
                                            "media_root": self.media_root, "stage_seconds": self.timings,
                                            "total_seconds": round(total, 1), "notes": self.notes})
        print("\n" + headline_table(self.compare))
        for n in self.notes:
            print(f"note: {n}")
        print(f"\ndemo finished in {total / 60:.1f} min ("
              + ", ".join(f"{k} {v:.0f}s" for k, v in self.timings.items()) + ")")
        print(f"report: {self.compare / 'report.md'}  (and report.html)")
        print(f"tensorboard --logdir {self.out}")
        if self.failures:
            print("some runs failed:\n  " + "\n  ".join(self.failures), file=sys.stderr)
            return 1
        return 0


def main(args: argparse.Namespace) -> int:
    if args.media_root and not args.data:
        raise UserError("--media-root goes with --data (the synthetic corpus knows where its videos are)")
    for flag, value in (("--columns", args.columns), ("--scrape-time", args.scrape_time)):
        if value and not args.data:
            raise UserError(f"{flag} goes with --data (it describes your scrape)")
    if args.data and not Path(args.data).exists():
        raise UserError(f"--data {args.data}: file not found")
    if args.media_root and not Path(args.media_root).is_dir():
        raise UserError(f"--media-root {args.media_root}: not a directory")
    s = settings_from(args)
    if args.threads < 1:
        raise UserError(f"--threads {args.threads}: need at least 1")
    import torch

    torch.set_num_threads(args.threads)
    return Pipeline(Path(args.out), s, args.data, args.media_root, args.whisper, args.tiny_whisper,
                    args.threads, columns=args.columns, scrape_time=args.scrape_time).run()
