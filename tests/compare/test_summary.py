"""Aggregation over seeds and the report's number formats."""

from __future__ import annotations

import math

import pytest

from mdr_graph.compare.summary import aggregate, fmt_count, fmt_pm, fmt_seconds


def run(rho, mse=0.1, contrib=None, seed=0):
    return {"test_spearman": rho, "test_pearson": 0.0, "test_mse": mse, "test_mae": 0.2, "val_spearman": 0.0,
            "seconds_per_epoch": 1.0, "seconds_total": 10.0, "epochs": 10, "params": 42, "seed": seed,
            "contributions": contrib or {}}


def test_mean_and_sample_std_over_seeds():
    s = aggregate([run(0.5, 0.1, {"a": 0.25, "b": 0.75}, 0), run(0.7, 0.3, {"a": 0.75, "b": 0.25}, 1)])
    assert s["test_spearman_mean"] == pytest.approx(0.6)
    assert s["test_spearman_std"] == pytest.approx(math.sqrt(0.02))   # ddof=1
    assert s["test_mse_mean"] == pytest.approx(0.2)
    assert s["contributions"]["a"]["mean"] == pytest.approx(0.5)
    assert s["n_seeds"] == 2 and s["seeds"] == [0, 1] and s["params"] == 42


def test_undefined_values_are_left_out_and_printed_as_such():
    s = aggregate([run(float("nan")), run(float("nan"), seed=1)])
    assert s["test_spearman_n"] == 0 and fmt_pm(s["test_spearman_mean"], s["test_spearman_std"]) == "n/a"
    one = aggregate([run(0.4)])
    assert math.isnan(one["test_spearman_std"])
    assert fmt_pm(one["test_spearman_mean"], one["test_spearman_std"]) == "0.400"   # no misleading ± 0


def test_formats():
    assert fmt_pm(0.41234, 0.0311) == "0.412 ± 0.031"
    assert fmt_seconds(0.0123) == "12 ms" and fmt_seconds(12.34) == "12.3 s" and fmt_seconds(600) == "10.0 min"
    assert fmt_count(9999) == "9999" and fmt_count(17_000) == "17.0k" and fmt_count(1_480_000) == "1.48M"
