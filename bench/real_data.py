"""Regenerate docs/real-data.md's tables on the real scrapes in ../shared/data, with one command.

For each dataset (trending-2020-12, SMP-Video) it builds the graph, pretrains the GAT, and
runs `mdr-graph compare` on the random and the time split with 3 seeds: the simple
baselines, `gbdt`, `gat-only`, the full co-attention model with its drop-one ablations,
and the co-attention model without any label-derived input (no `labels`, no `gbdt`).
Every table is written between ``<!-- real:NAME -->`` markers of docs/real-data.md, with
the commands that produced it; the prose around the tables is left alone. Finished runs
are reused (compare resumes), so an interrupted regeneration continues.

    python bench/real_data.py                       # everything (about an hour on 2 cores)
    python bench/real_data.py --datasets smp-video --splits random
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import replace_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data").resolve()
DOC = ROOT / "docs" / "real-data.md"
DATASETS = {
    "trending-2020-12": DATA / "tiktok-scraper" / "trending-2020-12.json",
    "smp-video": DATA / "smp-video",
}
MODELS = "global-mean,song-mean,creator-mean,meta-linear,gbdt,gat-only,coattention"
WITHOUT_LABELS = "network,meta,text"        # co-attention with no label-derived input but the text ridge
NODES = "song,creator,hashtag"            # every relation real videos share (docs/graph.md)


def sh(cmd: list[str], run: bool = True) -> str:
    """Run ``cmd`` (unless ``run`` is False: its output is already there) and return it for the page."""
    print("$" if run else "$ (reused)", " ".join(cmd), flush=True)
    if run:
        subprocess.run(cmd, check=True, env={**os.environ, "MDR_GRAPH_NO_PROGRESS": "1"})
    return " ".join(cmd)


def fmt(s: dict | None, key: str, digits: int = 3) -> str:
    if not s or s.get(f"{key}_mean") is None:
        return "–"
    mean, std = s[f"{key}_mean"], s.get(f"{key}_std") or 0.0
    if mean != mean:   # nan: a constant prediction has no rank correlation
        return "n/a (constant)"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def per_seed(full: dict, run_dir: Path) -> str:
    """The flagship against ``gbdt`` seed by seed, with what its residual kept (metrics.json's ``residual``)."""
    runs = {m["name"]: m["runs"] for m in full["models"] if m.get("runs")}
    if "coattention" not in runs or "gbdt" not in runs:
        return ""
    parts = []
    for seed, run in runs["coattention"].items():
        m = json.loads((run_dir / run["dir"] / "metrics.json").read_text())
        g = json.loads((run_dir / runs["gbdt"][seed]["dir"] / "metrics.json").read_text())
        r = m.get("residual")
        kept = (f"stacked score alone {r['test_spearman_of_gbdt']:.3f}, best epoch {m['best_epoch']}"
                + (" = no correction kept" if m["best_epoch"] == 0 else f", correction std {r['correction_std']:.2f}")
                ) if r else f"best epoch {m['best_epoch']}"
        parts.append(f"seed {seed}: {m['test_spearman']:.3f} ({kept}) against gbdt {g['test_spearman']:.3f}")
    return "Per seed, full co-attention: " + "; ".join(parts) + "."


def against_baseline(run_dir: Path) -> str:
    """The flagship against the strongest simple baseline, paired, as `compare`'s report judges it."""
    from mdr_graph.compare.paired import LEVEL, paired
    from mdr_graph.compare.report import collect, strongest_baseline

    _, entries = collect(run_dir)
    base, co = strongest_baseline(entries), next((e for e in entries if e.name == "coattention" and e.runs), None)
    p = paired(co, base) if base is not None and co is not None else None
    if p is None:
        return ""
    return (f"Strongest baseline: **{base.name}** ({fmt(base.summary, 'test_spearman')}); full co-attention "
            f"{fmt(co.summary, 'test_spearman')}: Δρ {p.delta_mean:+.3f} ± {p.delta_std:.3f} per seed, ahead on "
            f"{p.ahead} of {p.seeds} seeds; {LEVEL:.0%} interval over resampled test videos "
            f"[{p.low:+.3f}, {p.high:+.3f}]: **{p.verdict}** (docs/compare.md).")


def table(full: dict, nolabels: dict, run_dir: Path | None = None) -> str:
    lines = ["| model | inputs | Spearman | MAE | MSE |", "|---|---|---|---|---|"]
    for m in full["models"]:
        s = m["summary"]
        name = m["name"] if m["name"] != "coattention" else "**coattention (full)**"
        lines.append(f"| {name} | {', '.join(m['modalities']) or '–'} | {fmt(s, 'test_spearman')} | "
                     f"{fmt(s, 'test_mae', 4)} | {fmt(s, 'test_mse', 4)} |")
    nl = next((m for m in nolabels["models"] if m["name"] == "coattention"), None)
    if nl:
        lines.append(f"| coattention without labels and gbdt | {', '.join(nl['modalities'])} | "
                     f"{fmt(nl['summary'], 'test_spearman')} | {fmt(nl['summary'], 'test_mae', 4)} | "
                     f"{fmt(nl['summary'], 'test_mse', 4)} |")
    for a in full["ablations"]:
        if a["summary"]:
            lines.append(f"| ablation: {a['name']} | {', '.join(a['modalities'])} | {fmt(a['summary'], 'test_spearman')} | "
                         f"{fmt(a['summary'], 'test_mae', 4)} | {fmt(a['summary'], 'test_mse', 4)} |")
    verdict = against_baseline(run_dir) if run_dir is not None else ""
    if verdict:
        lines += ["", verdict]
    seeds = per_seed(full, run_dir) if run_dir is not None else ""
    if seeds:
        lines += ["", seeds]
    return "\n".join(lines)


def write_block(name: str, body: str) -> None:
    replace_block(DOC, "real", name, body, "# Results on real scrapes\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "real-data-runs"), help="where graphs and runs go (reused)")
    ap.add_argument("--out-label", default="real-data-runs", help="how the commands in the page name --out")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--splits", default="random,time")
    ap.add_argument("--seeds", default="3")
    ap.add_argument("--jobs", default="2")
    args = ap.parse_args()
    cli = str(Path(sys.executable).with_name("mdr-graph"))
    out = Path(args.out)
    for ds in args.datasets.split(","):
        src = DATASETS[ds]
        if not src.exists():
            sys.exit(f"{src} not found: this script needs ../shared/data beside the project root")
        g, gat = out / ds / "graph", out / ds / "gat"
        t0 = time.time()
        # Listed under the dataset's first table whether built now or reused from an earlier regeneration.
        cmds = [sh([cli, "build-graph", str(src), "--out", str(g), "--nodes", NODES],
                   run=not (g / "videos.parquet").exists()),
                sh([cli, "pretrain", "--graph", str(g), "--out", str(gat)], run=not (gat / "gat.pt").exists())]
        for split in args.splits.split(","):
            common = ["--graph", str(g), "--gat", str(gat / "gat.pt"), "--seeds", args.seeds, "--split", split,
                      "--jobs", args.jobs, "--threads", "1"]
            full_dir, nl_dir = out / ds / f"{split}", out / ds / f"{split}-without-labels"
            c1 = sh([cli, "compare", *common, "--models", MODELS, "--ablate", "--out", str(full_dir)])
            c2 = sh([cli, "compare", *common, "--models", "coattention", "--modalities", WITHOUT_LABELS,
                     "--out", str(nl_dir)])
            full = json.loads((full_dir / "compare.json").read_text())
            nolabels = json.loads((nl_dir / "compare.json").read_text())
            rel = lambda c: (c.replace(cli, "mdr-graph").replace(str(out), args.out_label)  # noqa: E731
                             .replace(str(ROOT) + "/", "").replace(str(DATA), "../shared/data"))
            ran = any(m.stat().st_mtime >= t0 for d in (full_dir, nl_dir) for m in d.glob("**/metrics.json"))
            when = (f"regenerated {time.strftime('%Y-%m-%d', time.gmtime())} in {(time.time() - t0) / 60:.0f} min"
                    if ran else f"rendered {time.strftime('%Y-%m-%d', time.gmtime())} from the finished runs of an "
                    "earlier regeneration")
            body = (table(full, nolabels, full_dir) + "\n\n```bash\n" + "\n".join(rel(c) for c in [*cmds, c1, c2])
                    + "\n```\n" + f"\n_{ds}, {split} split, seeds {full['config']['seeds']}; {when} by "
                    "`python bench/real_data.py`._")
            write_block(f"{ds}-{split}", body)
            cmds = []


if __name__ == "__main__":
    main()
