"""Is a model ahead of the strongest simple baseline, or within noise?

Every model result is judged against the strongest simple baseline on the same split: the
tabular model (``plan.MODELS`` kind ``tabular``: the means, ``meta-linear``, ``gbdt``, ...) with
the best mean test Spearman. Both ran on the same splits and seeds, so the comparison is
paired twice over:

- per seed, ``Δρ = ρ(model) - ρ(baseline)`` on the same test videos; the report gives their
  mean, spread and on how many seeds the model is ahead;
- within the test split, a paired bootstrap: the test videos are resampled (the same draw for
  both models), each seed's Δρ recomputed, and the seeds' mean taken, :data:`N_BOOT` times.
  Its 2.5 and 97.5 % quantiles bound the mean Δρ against the luck of which videos were
  tested. The verdict is ``ahead`` or ``behind`` when that interval excludes 0, else
  ``within noise``.

The bootstrap keeps the fitted models fixed: it does not cover the spread across training
seeds, which the per-seed column shows. Nothing here reads anything but the runs'
``predictions.csv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

N_BOOT = 1000
LEVEL = 0.95
BOOT_CELLS = 2_000_000   # resampled predictions held at once


@dataclass
class Paired:
    seeds: int
    delta_mean: float        # mean over seeds of the per-seed Δρ
    delta_std: float         # sample std over seeds (nan for one seed)
    ahead: int               # seeds on which the model's ρ is higher
    low: float               # bootstrap interval of delta_mean
    high: float

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "ahead"
        if self.high < 0:
            return "behind"
        return "within noise"


def is_baseline(name: str) -> bool:
    """A simple baseline: a ``tabular`` model of ``plan.MODELS``."""
    from mdr_graph.compare.plan import MODELS

    return MODELS.get(name, {}).get("kind") == "tabular"


def test_predictions(run_dir) -> pd.DataFrame:
    """``video_id`` -> ``target``, ``prediction`` of one run's test split."""
    p = pd.read_csv(run_dir / "predictions.csv", dtype={"video_id": str})
    return p.loc[p["split"] == "test", ["video_id", "target", "prediction"]].set_index("video_id")


def _row_spearman(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Spearman of each row of ``pred`` with the same row of ``target`` (``[B, n]`` each; ties averaged)."""
    from scipy.stats import rankdata

    a, b = rankdata(pred, axis=1), rankdata(target, axis=1)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(1) / den, np.nan)


def paired(model, baseline, n_boot: int = N_BOOT, seed: int = 0) -> Paired | None:
    """``model`` against ``baseline`` (report entries) on the seeds both finished."""
    seeds = sorted(s for s in set(model.runs) & set(baseline.runs) if s in model.dirs and s in baseline.dirs)
    deltas, boot = [], np.zeros(n_boot)
    rng = np.random.default_rng(seed)
    for s in seeds:
        a, b = test_predictions(model.dirs[s]), test_predictions(baseline.dirs[s])
        both = a.join(b["prediction"].rename("baseline"), how="inner")
        if len(both) < 3:
            return None
        t, pa, pb = (both[c].to_numpy(float) for c in ("target", "prediction", "baseline"))
        deltas.append(_row_spearman(pa[None], t[None])[0] - _row_spearman(pb[None], t[None])[0])
        step = max(1, BOOT_CELLS // len(t))   # resamples per block: bounded memory on large test splits
        for start in range(0, n_boot, step):
            idx = rng.integers(0, len(t), (min(step, n_boot - start), len(t)))
            boot[start:start + len(idx)] += (_row_spearman(pa[idx], t[idx]) - _row_spearman(pb[idx], t[idx])) / len(seeds)
    deltas = [d for d in deltas if math.isfinite(d)]
    if not deltas or len(deltas) < len(seeds):
        return None
    boot = boot[np.isfinite(boot)]
    low, high = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]) if len(boot) else (math.nan, math.nan)
    return Paired(len(deltas), float(np.mean(deltas)), float(np.std(deltas, ddof=1)) if len(deltas) > 1 else math.nan,
                  int(sum(d > 0 for d in deltas)), float(low), float(high))


def against_baseline_rows(entries, baseline) -> list[list[str]]:
    """One row per learned model (every model that is not a tabular baseline)."""
    rows = []
    for e in entries:
        if e.group != "model" or not e.runs or e is baseline or is_baseline(e.name):
            continue
        p = paired(e, baseline)
        if p is None:
            rows.append([e.name, "n/a", "n/a", "n/a", "n/a"])
            continue
        spread = f" ± {p.delta_std:.3f}" if math.isfinite(p.delta_std) else ""
        rows.append([e.name, f"{p.delta_mean:+.3f}{spread}", f"{p.ahead} of {p.seeds}",
                     f"[{p.low:+.3f}, {p.high:+.3f}]", p.verdict])
    return rows


HEADER = ["Model", "Δρ vs baseline (per seed)", "Seeds ahead", f"{LEVEL:.0%} interval (test videos resampled)",
          "Verdict"]
