"""Train the full co-attention model and the baselines on the same splits and seeds; write a report.

Examples:
  mdr-graph compare --graph G --features F --gat P/gat.pt --convlstm V/convlstm.pt --out cmp
  mdr-graph compare --graph G --gat P/gat.pt --out cmp-meta           # metadata only: network,meta,text
  mdr-graph compare --graph G --features F --gat P/gat.pt --out cmp --ablate --seeds 3 --jobs 2
  mdr-graph compare --report-only --out cmp                           # regenerate the report from the files

Models: see --models. A model whose inputs are missing is skipped, with the reason in
compare.json and the report.

Writes DIR/<model>/seed<k>/ (each a `train`-format run), DIR/ablations/<variant>/seed<k>/,
DIR/compare.json, DIR/report.md, DIR/report.html, DIR/plots/. Re-running skips finished
runs and resumes interrupted ones. Settings: defaults < --preset < --config ([compare]
and [train] sections) < flags. TensorBoard: tensorboard --logdir DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from mdr_graph.compare.plan import MODELS
from mdr_graph.compare.runner import CompareConfig
from mdr_graph.config import from_dict, load_toml, show_defaults
from mdr_graph.errors import UserError
from mdr_graph.fusion_config import FUSIONS
from mdr_graph.modalities import names, parse_modalities
from mdr_graph.splits import add_split_arguments
from mdr_graph.train.cli import add_training_arguments
from mdr_graph.train.config import PRESETS, TrainConfig

# TrainConfig fields that a comparison sets per run; they cannot come from the [train] template.
PER_RUN_FIELDS = ("graph", "features", "gat", "convlstm", "modalities", "model", "fusion", "split", "seed")


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def _seeds(text: str) -> list[int]:
    """``3`` means seeds 0, 1, 2; ``0,5,9`` lists them."""
    vals = _ints(text)
    if "," not in str(text) and len(vals) == 1:
        if vals[0] < 1:
            raise argparse.ArgumentTypeError("--seeds N needs N >= 1")
        return list(range(vals[0]))
    return vals


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inputs")
    g.add_argument("--graph", help="GRAPHDIR from `mdr-graph build-graph`")
    g.add_argument("--features", help="FEATDIR from `mdr-graph extract` (audio, visual and late-fusion models)")
    g.add_argument("--gat", help="RUNDIR/gat.pt from `mdr-graph pretrain` (network modality, gat-only)")
    g.add_argument("--convlstm", help="RUNDIR/convlstm.pt from `mdr-graph pretrain-visual` (convlstm modality)")
    p.add_argument("--out", required=True, help="comparison directory (resumed when it exists)")
    p.add_argument("--config", help="TOML with [compare] and/or [train] sections (e.g. a previous DIR/config.toml)")
    w = p.add_argument_group("what to compare")
    w.add_argument("--seeds", type=_seeds, help="number of seeds (3 = 0,1,2) or a list such as 0,5,9")
    add_split_arguments(w, seed=False)
    w.add_argument("--models", help="all or a comma-separated list of: " + ",".join(MODELS))
    w.add_argument("--modalities", help="the full model's modalities, from: " + ",".join(names())
                   + " (default: every usable one)")
    w.add_argument("--fusion", choices=FUSIONS, help="the full model's co-attention variant")
    w.add_argument("--ablate", action="store_const", const=True, help="also run the ablations")
    w.add_argument("--ablate-frames", dest="ablate_frames", type=_ints,
                   help="frame counts for the frames ablation (default: half and double the stored count)")
    w.add_argument("--workers", type=int, help="extraction workers for the frames ablation")
    w.add_argument("--jobs", type=int, default=1,
                   help="runs trained at once, each in its own process with one torch thread (default: %(default)s); "
                        "2 uses both cores of a 2-core machine")
    w.add_argument("--threads", type=int, default=None,
                   help="torch threads (0 = as many as torch picks); 1 is fastest for the small `cpu` preset "
                        "models on a shared machine")
    w.add_argument("--report-only", action="store_true", help="only regenerate DIR/report.* from DIR's files")
    t = p.add_argument_group("training (shared by every neural model)")
    t.add_argument("--preset", choices=sorted(PRESETS), help="see `mdr-graph train --help`")
    add_training_arguments(t)
    show_defaults(p, CompareConfig, TrainConfig)


def resolve(args: argparse.Namespace) -> tuple[CompareConfig, TrainConfig]:
    """``(CompareConfig, TrainConfig template)`` from defaults < preset < --config < flags."""
    toml = load_toml(args.config) if args.config else {}
    cvals = dict(toml.get("compare", {}))
    for f in dataclasses.fields(CompareConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            cvals[f.name] = v
    for k in ("models", "modalities"):
        if isinstance(cvals.get(k), str):
            cvals[k] = [x.strip() for x in cvals[k].split(",") if x.strip()]
    ccfg = from_dict(CompareConfig, cvals, source=str(args.config or "flags"))
    if not ccfg.graph:
        raise UserError("--graph GRAPHDIR is required (or a --config with compare.graph)")
    if not ccfg.seeds:
        raise UserError("--seeds: give at least one seed")
    if ccfg.modalities:
        ccfg.modalities = parse_modalities(ccfg.modalities)
    ttoml = {k: v for k, v in toml.get("train", {}).items() if k not in PER_RUN_FIELDS}
    preset = args.preset or ttoml.get("preset") or TrainConfig.preset
    tvals = {**PRESETS[preset], **ttoml, "preset": preset}
    for f in dataclasses.fields(TrainConfig):
        if f.name not in PER_RUN_FIELDS and getattr(args, f.name, None) is not None and f.name != "preset":
            tvals[f.name] = getattr(args, f.name)
    template = from_dict(TrainConfig, tvals, source=str(args.config or "flags"))
    template.split = ccfg.split
    return ccfg, template


def main(args: argparse.Namespace) -> int:
    from mdr_graph.compare.report import headline_table, write_report

    out = Path(args.out)
    if args.report_only:
        path = write_report(out)
        print(headline_table(out))
        print(f"report: {path}")
        return 0
    from mdr_graph.compare.runner import Comparison

    ccfg, template = resolve(args)
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads {args.threads}: need at least 1")
        import torch

        torch.set_num_threads(args.threads)
    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: need at least 1")
    comp = Comparison(ccfg, template, out, jobs=args.jobs, threads=args.threads)
    for spec in comp.specs:
        if spec.skip:
            print(f"compare: skipping {spec.name}: {spec.skip}", file=sys.stderr)
    comp.run()
    path = write_report(out)
    print(headline_table(out))
    print(f"\nreport: {path}  (and {path.with_suffix('.html')})")
    print(f"tensorboard --logdir {out}")
    fails = comp.failures()
    if fails:
        print(f"compare: {len(fails)} run(s) failed:\n  " + "\n  ".join(fails), file=sys.stderr)
        return 1
    return 0
