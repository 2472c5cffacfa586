"""The comparison report: ``DIR/report.md``, ``DIR/report.html`` and ``DIR/plots/*.png``.

Every number comes from files inside ``DIR``: each run's ``metrics.json`` and
``predictions.csv``, ``DIR/data/*.csv`` (the graph columns that are plotted) and
``DIR/compare.json`` (the plan: order, descriptions, skip reasons, expected split
fingerprints). Aggregates over seeds are recomputed from the runs' ``metrics.json``, so
``mdr-graph compare --report-only --out DIR`` regenerates the same report from the run
files alone; without ``compare.json`` the runs are discovered from the directory layout.

The report is built once as a list of blocks and rendered twice (Markdown and HTML).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.compare.paired import HEADER as PAIRED_HEADER
from mdr_graph.compare.paired import N_BOOT, against_baseline_rows, is_baseline
from mdr_graph.compare.summary import aggregate, fmt, fmt_count, fmt_pm, fmt_seconds
from mdr_graph.errors import UserError
from mdr_graph.io import read_json, write_text

PLOTS = ("scatter_best.png", "learning_curves.png", "contributions.png", "popularity.png", "song_degree.png")


# ---------------------------------------------------------------- collecting the run files

@dataclass
class Entry:
    """One model or ablation with its finished runs (``seed -> metrics``)."""

    name: str
    group: str = "model"
    description: str = ""
    change: str = ""
    modalities: list[str] = field(default_factory=list)
    skip: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    runs: dict[int, dict] = field(default_factory=dict)
    dirs: dict[int, Path] = field(default_factory=dict)

    @cached_property
    def summary(self) -> dict:
        return aggregate([self.runs[s] for s in sorted(self.runs)])


def _scan_runs(base: Path) -> tuple[dict[int, dict], dict[int, Path]]:
    runs, dirs = {}, {}
    for p in sorted(base.glob("seed*/metrics.json")):
        try:
            seed = int(p.parent.name[4:])
        except ValueError:
            continue
        runs[seed], dirs[seed] = read_json(p), p.parent
    return runs, dirs


def collect(out: str | Path) -> tuple[dict, list[Entry]]:
    """``(compare.json or {}, entries)`` with every finished run found under ``out``."""
    out = Path(out)
    meta = read_json(out / "compare.json") if (out / "compare.json").exists() else {}
    entries: list[Entry] = []
    if meta:
        for e in meta.get("models", []) + meta.get("ablations", []):
            errors = {k: r.get("error", "") for k, r in e.get("runs", {}).items() if r.get("status") == "failed"}
            entries.append(Entry(e["name"], e.get("group", "model"), e.get("description", ""), e.get("change", ""),
                                 list(e.get("modalities", [])), e.get("skip"), errors))
    else:  # discover from the layout alone
        for base, group in ((out, "model"), (out / "ablations", "ablation")):
            for d in sorted(p for p in base.iterdir() if p.is_dir()) if base.exists() else []:
                if any(d.glob("seed*/metrics.json")):
                    entries.append(Entry(d.name, group))
    if not entries:
        raise UserError(f"{out} holds no comparison: no compare.json and no <model>/seed<k>/metrics.json runs; "
                        f"run `mdr-graph compare --graph ... --out {out}` first")
    for e in entries:
        base = out / "ablations" / e.name if e.group == "ablation" else out / e.name
        e.runs, e.dirs = _scan_runs(base)
        # a run that has finished since a failure was recorded is no longer failed
        e.errors = {k: v for k, v in e.errors.items() if int(k) not in e.runs}
        if not e.modalities and e.runs:
            e.modalities = list(next(iter(e.runs.values())).get("modalities", []))
    return meta, entries


# ---------------------------------------------------------------- tables

def _mods(e: Entry) -> str:
    return ", ".join(e.modalities) if e.modalities else "–"


def model_rows(entries: list[Entry]) -> list[list[str]]:
    """The headline table, in the shape of Table 4.2 of the reference design."""
    rows = []
    for e in entries:
        if e.group != "model" or not e.runs:
            continue
        s = e.summary
        rho = fmt_pm(s["test_spearman_mean"], s["test_spearman_std"])
        if s["test_spearman_n"] == 0:
            rho = "n/a (constant)"
        rows.append([e.name, _mods(e), rho, fmt_pm(s["test_mse_mean"], s["test_mse_std"], 4),
                     fmt_pm(s["test_mae_mean"], s["test_mae_std"], 4), fmt_seconds(s["seconds_per_epoch_mean"]),
                     fmt_seconds(s["seconds_total_mean"]), fmt_count(s["params"]), str(s["n_seeds"])])
    return rows


MODEL_HEADER = ["Model", "Modalities", "Spearman ρ (test)", "MSE", "MAE", "s / epoch", "Training time", "Params",
                "Seeds"]


def _paired_delta(e: Entry, ref: Entry | None) -> tuple[float, float, int]:
    """Mean and std over seeds of ``ρ(e) - ρ(ref)`` on the seeds both have."""
    if ref is None:
        return float("nan"), float("nan"), 0
    d = [e.runs[s]["test_spearman"] - ref.runs[s]["test_spearman"] for s in sorted(set(e.runs) & set(ref.runs))]
    d = [x for x in d if x is not None and math.isfinite(x)]
    if not d:
        return float("nan"), float("nan"), 0
    return float(np.mean(d)), float(np.std(d, ddof=1)) if len(d) > 1 else float("nan"), len(d)


def ablation_rows(entries: list[Entry], ref: Entry | None) -> list[list[str]]:
    rows = []
    if ref is not None and ref.runs:
        s = ref.summary
        rows.append(["full model", "–", _mods(ref), fmt_pm(s["test_spearman_mean"], s["test_spearman_std"]), "–",
                     fmt(s["test_mse_mean"], 4), fmt(s["test_mae_mean"], 4), str(s["n_seeds"])])
    for e in entries:
        if e.group != "ablation" or not e.runs:
            continue
        s = e.summary
        dm, ds, _ = _paired_delta(e, ref)
        delta = "n/a" if not math.isfinite(dm) else (f"{dm:+.3f}" + (f" ± {ds:.3f}" if math.isfinite(ds) else ""))
        rows.append([e.name, e.change, _mods(e), fmt_pm(s["test_spearman_mean"], s["test_spearman_std"]), delta,
                     fmt(s["test_mse_mean"], 4), fmt(s["test_mae_mean"], 4), str(s["n_seeds"])])
    return rows


ABLATION_HEADER = ["Variant", "Change", "Modalities", "Spearman ρ (test)", "Δρ vs full (paired)", "MSE", "MAE",
                   "Seeds"]


def split_rows(meta: dict, entries: list[Entry]) -> list[list[str]]:
    """Per seed: the expected split fingerprint, its sizes, and how many runs carry it."""
    expected = meta.get("splits", {})
    seeds = sorted({s for e in entries for s in e.runs} | {int(k) for k in expected})
    rows = []
    for seed in seeds:
        hashes = [e.runs[seed].get("split_hash") for e in entries if seed in e.runs]
        want = expected.get(str(seed), {}).get("hash") or (max(set(hashes), key=hashes.count) if hashes else "")
        sizes = expected.get(str(seed), {}).get("sizes") or next(
            (e.runs[seed].get("split_sizes") for e in entries if seed in e.runs), {})
        same = sum(h == want for h in hashes)
        rows.append([str(seed), f"`{want}`", f"{sizes.get('train', '?')} / {sizes.get('val', '?')} / "
                     f"{sizes.get('test', '?')}", f"{same} of {len(hashes)}"])
    return rows


# ---------------------------------------------------------------- plots

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def best_model(entries: list[Entry]) -> Entry | None:
    cands = [e for e in entries if e.group == "model" and e.runs
             and math.isfinite(e.summary["test_spearman_mean"])]
    return max(cands, key=lambda e: e.summary["test_spearman_mean"]) if cands else None


def strongest_baseline(entries: list[Entry]) -> Entry | None:
    """The simple baseline (:func:`~mdr_graph.compare.paired.is_baseline`) with the best mean test Spearman."""
    return best_model([e for e in entries if is_baseline(e.name)])


def plot_scatter(e: Entry, path: Path) -> str:
    plt = _plt()
    seed = min(e.runs)
    p = pd.read_csv(e.dirs[seed] / "predictions.csv")
    t = p[p["split"] == "test"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(t["target"], t["prediction"], s=8, alpha=0.6)
    lo = float(min(t["target"].min(), t["prediction"].min())) if len(t) else 0.0
    hi = float(max(t["target"].max(), t["prediction"].max())) if len(t) else 1.0
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
    rho = e.runs[seed].get("test_spearman")
    ax.set_title(f"{e.name}, seed {seed}: test ρ = {fmt(rho)}")
    ax.set_xlabel("true popularity (normalised)")
    ax.set_ylabel("predicted")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"Predicted vs true popularity on the test split (n = {len(t)}) for the best model, {e.name} (seed {seed})."


def plot_learning_curves(entries: list[Entry], path: Path) -> str | None:
    curves = [(e, e.runs[min(e.runs)]) for e in entries if e.group == "model" and e.runs
              and e.runs[min(e.runs)].get("history")]
    if not curves:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for e, m in curves:
        h = m["history"]
        ep = [x["epoch"] for x in h]
        a1.plot(ep, [x["train_loss"] for x in h], label=e.name)
        a2.plot(ep, [x["val_spearman"] for x in h], label=e.name)
    a1.set_xlabel("epoch"), a1.set_ylabel("training loss"), a1.set_yscale("log")
    a2.set_xlabel("epoch"), a2.set_ylabel("validation Spearman ρ")
    a2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "Learning curves of the neural models (first seed): training loss and validation Spearman per epoch."


def plot_contributions(entries: list[Entry], path: Path) -> str | None:
    e = next((x for x in entries if x.name == "coattention" and x.runs), None) or next(
        (x for x in entries if x.group == "model" and x.runs and x.summary["contributions"]), None)
    if e is None or not e.summary["contributions"]:
        return None
    c = e.summary["contributions"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(c) + 2), 3.5))
    names = list(c)
    ax.bar(names, [c[m]["mean"] for m in names],
           yerr=[c[m]["std"] if math.isfinite(c[m]["std"]) else 0 for m in names], capsize=4, color="tab:blue")
    ax.axhline(1 / len(names), color="k", ls="--", lw=0.8, label="uniform")
    ax.set_ylabel("mean contribution (test)")
    ax.set_title(f"{e.name}: modality contributions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return (f"Mean modality contributions of {e.name} on the test split, over {e.summary['n_seeds']} seed(s) "
            f"(error bars: std over seeds; dashed: uniform 1/M).")


def plot_popularity(out: Path, path: Path) -> str | None:
    f = out / "data" / "videos.csv"
    if not f.exists():
        return None
    v = pd.read_csv(f)["popularity_raw"].dropna()
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(v, bins=min(60, max(10, len(v) // 10)), color="tab:orange")
    ax.set_xlabel("popularity p = log((plays+shares+comments+1)/age_days)")
    ax.set_ylabel("videos")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return (f"Popularity of the {len(v)} videos: mean {v.mean():.2f}, std {v.std():.2f}, "
            f"range {v.min():.2f} to {v.max():.2f}.")


def plot_song_degree(out: Path, path: Path) -> str | None:
    f = out / "data" / "songs.csv"
    if not f.exists():
        return None
    deg = pd.read_csv(f)["degree"].to_numpy()
    if len(deg) == 0:
        return None
    plt = _plt()
    vals, counts = np.unique(deg, return_counts=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.loglog(vals, counts, "o", ms=4)
    a1.set_xlabel("song degree (videos using the song)"), a1.set_ylabel("songs")
    ccdf = 1.0 - np.cumsum(counts) / counts.sum() + counts / counts.sum()
    a2.loglog(vals, ccdf, "-o", ms=3)
    a2.set_xlabel("degree d"), a2.set_ylabel("P(degree ≥ d)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    single = float((deg == 1).mean())
    return (f"Song-degree distribution of the graph: {len(deg)} songs, median degree {np.median(deg):.0f}, "
            f"max {deg.max()}, {single:.0%} of songs used by a single video.")


# ---------------------------------------------------------------- the document

def _table_md(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(lines)


def _table_html(header: list[str], rows: list[list[str]]) -> str:
    def cell(c: str) -> str:
        c = html.escape(c)
        return c.replace("`", "") if c.count("`") == 2 else c
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Doc:
    """Blocks rendered to Markdown and to a self-contained-but-for-images HTML page."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header, rows):
        self.blocks.append(("table", header, rows))

    def img(self, src: str, caption: str):
        self.blocks.append(("img", src, caption))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                out.append(_table_md(b[1], b[2]))
            else:
                out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        import re

        def inline(t: str) -> str:
            t = html.escape(t)
            t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
            return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
        parts = []
        for b in self.blocks:
            if b[0] == "h":
                parts.append(f"<h{b[1]}>{inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                parts.append(f"<p>{inline(b[1])}</p>")
            elif b[0] == "table":
                parts.append(_table_html(b[1], b[2]))
            else:
                parts.append(f'<figure><img src="{html.escape(b[1])}" alt="{html.escape(b[2])}">'
                             f"<figcaption>{inline(b[2])}</figcaption></figure>")
        css = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
               "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
               "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}"
               "img{max-width:100%}figcaption{font-size:13px;color:#555}code{background:#f3f3f3;padding:0 3px}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{css}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def headline_table(out: str | Path) -> str:
    """The headline table (Markdown) of the comparison in ``out``."""
    _, entries = collect(out)
    return _table_md(MODEL_HEADER, model_rows(entries))


def build_report(out: str | Path) -> Doc:
    """Collect the run files under ``out``, draw the plots into ``out/plots`` and lay out the report."""
    out = Path(out)
    meta, entries = collect(out)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    cfg = meta.get("config", {})
    tmpl = meta.get("train_template", {})
    seeds = sorted({s for e in entries for s in e.runs})
    doc = Doc()
    doc.h(1, "Popularity models compared")
    setting = []
    if cfg:
        setting.append(f"Split **{cfg.get('split')}**"
                       + (f" ({'/'.join(str(x) for x in tmpl.get('split_fractions', []))})" if tmpl else "")
                       + f", seeds {', '.join(map(str, seeds))}.")
        if meta.get("fusion_modalities"):
            setting.append(f"Full model: co-attention ({cfg.get('fusion')}) over "
                           f"{', '.join(meta['fusion_modalities'])}.")
        if tmpl:
            setting.append(f"Training: preset {tmpl.get('preset')}, d_model {tmpl.get('d_model')}, "
                           f"{tmpl.get('heads')} heads, lr {tmpl.get('lr')}, batch {tmpl.get('batch_size')}, "
                           f"up to {tmpl.get('epochs')} epochs with patience {tmpl.get('patience')} on validation "
                           f"Spearman, loss {tmpl.get('loss')}.")
    doc.p(" ".join(setting) or f"Runs found under {out.name}/ (no compare.json).")
    doc.h(2, "Models")
    doc.table(MODEL_HEADER, model_rows(entries))
    doc.p("Spearman, MSE and MAE are on the test split, mean ± sample std over seeds; MSE and MAE are on the "
          "min-max-normalised target (fitted on each seed's training split). Seconds per epoch and training time "
          "are per run, averaged over seeds (non-neural baselines: one fit; unimodal-average: the sum of its "
          "members). Params counts trainable parameters (non-neural: fitted values).")
    best = best_model(entries)
    if best is not None:
        doc.p(f"Best model by mean test Spearman: **{best.name}** "
              f"({fmt_pm(best.summary['test_spearman_mean'], best.summary['test_spearman_std'])}).")
    baseline = strongest_baseline(entries)
    rows = against_baseline_rows(entries, baseline) if baseline is not None else []
    if rows:
        doc.h(3, "Against the strongest simple baseline")
        doc.p(f"The strongest simple baseline on this split is **{baseline.name}** "
              f"({fmt_pm(baseline.summary['test_spearman_mean'], baseline.summary['test_spearman_std'])}). "
              "Δρ is each seed's test Spearman minus the baseline's on the same test videos (mean ± std over "
              "seeds). The interval bounds that mean against which videos happened to be tested: the test videos "
              f"are resampled {N_BOOT} times, the same draw for both models; the verdict is *ahead* or *behind* only "
              "when it excludes 0 (mdr_graph/compare/paired.py).")
        doc.table(PAIRED_HEADER, rows)
    skipped = [[e.name, e.skip] for e in entries if e.group == "model" and e.skip]
    if skipped:
        doc.h(3, "Skipped")
        doc.table(["Model", "Reason"], skipped)
    failed = [[e.name, k, v] for e in entries for k, v in sorted(e.errors.items())]
    if failed:
        doc.h(3, "Failed runs")
        doc.table(["Model", "Seed", "Error (see the run's error.log)"], failed)
    if any(e.group == "ablation" for e in entries):
        ref = next((e for e in entries if e.name == "coattention"), None)
        doc.h(2, "Ablations")
        doc.table(ABLATION_HEADER, ablation_rows(entries, ref))
        doc.p("Each variant is the full model with one change, on the same splits and seeds. Δρ is the mean over "
              "seeds of the per-seed difference to the full model: negative means the variant is worse, so what it "
              "removes or changes was helping.")
        sk = [[e.name, e.skip] for e in entries if e.group == "ablation" and e.skip]
        if sk:
            doc.table(["Ablation", "Skipped because"], sk)
    doc.h(2, "Plots")
    captions = [
        ("scatter_best.png", plot_scatter(best, plots / "scatter_best.png") if best else None),
        ("learning_curves.png", plot_learning_curves(entries, plots / "learning_curves.png")),
        ("contributions.png", plot_contributions(entries, plots / "contributions.png")),
        ("popularity.png", plot_popularity(out, plots / "popularity.png")),
        ("song_degree.png", plot_song_degree(out, plots / "song_degree.png")),
    ]
    for name, cap in captions:
        if cap:
            doc.img(f"plots/{name}", cap)
        elif (plots / name).exists():
            (plots / name).unlink()  # a stale plot from an earlier run must not be shown
    doc.h(2, "Same splits for every model")
    doc.table(["Seed", "Split fingerprint", "Train / val / test", "Runs on this split"], split_rows(meta, entries))
    doc.p("The fingerprint is a hash of the sorted video ids of each split (`splits.json` of every run); every "
          "model of a seed must carry the same one.")
    return doc


def write_report(out: str | Path) -> Path:
    """Write ``out/report.md``, ``out/report.html`` and ``out/plots/``; return the Markdown path."""
    out = Path(out)
    doc = build_report(out)
    write_text(out / "report.md", doc.markdown())
    write_text(out / "report.html", doc.html(f"mdr-graph comparison: {out.name}"))
    return out / "report.md"
