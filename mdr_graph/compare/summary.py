"""Aggregate a model's runs over seeds, and format the numbers the way the report prints them.

Pure functions over ``metrics.json`` dicts. The spread is the sample standard deviation
over seeds (``ddof=1``); with a single seed it is undefined and printed as such rather
than as a misleading ``± 0``.
"""

from __future__ import annotations

import math

import numpy as np

METRIC_KEYS = ("test_spearman", "test_pearson", "test_mse", "test_mae", "val_spearman",
               "seconds_per_epoch", "seconds_total", "epochs")


def _mean_std(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    finite = v[np.isfinite(v)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    mean = float(finite.mean())
    std = float(finite.std(ddof=1)) if len(finite) >= 2 else float("nan")
    return mean, std


def aggregate(runs: list[dict]) -> dict:
    """``{"n_seeds", "seeds", "<key>_mean", "<key>_std" for METRIC_KEYS, "params", "contributions"}``.

    A metric that is undefined for a run (Spearman of a constant prediction) is left
    out of that metric's mean, and ``<key>_n`` says over how many seeds it was taken.
    """
    out: dict = {"n_seeds": len(runs), "seeds": [r.get("seed") for r in runs]}
    for k in METRIC_KEYS:
        vals = [r.get(k) for r in runs]
        out[f"{k}_mean"], out[f"{k}_std"] = _mean_std(vals)
        out[f"{k}_n"] = int(sum(v is not None and math.isfinite(float(v)) for v in vals))
    params = [r.get("params") for r in runs if r.get("params") is not None]
    out["params"] = int(params[0]) if params else None
    mods = [m for r in runs for m in (r.get("contributions") or {})]
    out["contributions"] = {}
    for m in dict.fromkeys(mods):
        mean, std = _mean_std([r["contributions"][m] for r in runs if m in (r.get("contributions") or {})])
        out["contributions"][m] = {"mean": mean, "std": std}
    return out


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def fmt_pm(mean: float | None, std: float | None, digits: int = 3) -> str:
    """``0.412 ± 0.031``; ``0.412`` when the spread is undefined (one seed); ``n/a`` when the mean is."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    if std is None or not math.isfinite(std):
        return fmt(mean, digits)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "n/a"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min"


def fmt_count(n: int | None) -> str:
    if n is None:
        return "n/a"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 10_000:
        return f"{n / 1e3:.1f}k"
    return str(n)
