"""The paired comparison against the strongest simple baseline, on run files written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from mdr_graph.compare.paired import _row_spearman, against_baseline_rows, paired
from mdr_graph.compare.report import Entry, strongest_baseline


def _entry(root, name, preds_by_seed, target, ids):
    e = Entry(name)
    for seed, pred in preds_by_seed.items():
        d = root / name / f"seed{seed}"
        d.mkdir(parents=True)
        pd.DataFrame({"video_id": ids, "split": "test", "target": target, "prediction": pred}).to_csv(
            d / "predictions.csv", index=False)
        e.runs[seed] = {"test_spearman": float(spearmanr(pred, target).statistic)}
        e.dirs[seed] = d
    return e


def test_row_spearman_is_scipys_spearman_with_ties():
    rng = np.random.default_rng(0)
    pred, target = rng.integers(0, 5, (4, 50)).astype(float), rng.normal(size=(4, 50))
    expect = [spearmanr(p, t).statistic for p, t in zip(pred, target)]
    np.testing.assert_allclose(_row_spearman(pred, target), expect, atol=1e-12)


def test_a_clearly_better_model_is_ahead_and_an_equal_one_within_noise(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    ids = [f"v{i}" for i in range(n)]
    target = rng.normal(size=n)
    noisy = {s: target + rng.normal(scale=2.0, size=n) for s in (0, 1, 2)}
    good = {s: target + rng.normal(scale=0.5, size=n) for s in (0, 1, 2)}
    base = _entry(tmp_path, "gbdt", noisy, target, ids)
    weak = _entry(tmp_path, "global-mean", {s: rng.normal(size=n) for s in (0, 1, 2)}, target, ids)
    model = _entry(tmp_path, "coattention", good, target, ids)
    same = _entry(tmp_path, "concat-mlp", {s: noisy[s] + 1.0 for s in (0, 1, 2)}, target, ids)  # same ranks
    assert strongest_baseline([weak, base, model, same]) is base   # the best *tabular* model, not the best model
    p = paired(model, base)
    assert p.verdict == "ahead" and p.ahead == 3 and p.low > 0
    expect = np.mean([model.runs[s]["test_spearman"] - base.runs[s]["test_spearman"] for s in (0, 1, 2)])
    assert p.delta_mean == pytest.approx(expect)
    q = paired(same, base)
    assert q.delta_mean == pytest.approx(0.0, abs=1e-12) and q.verdict == "within noise" and q.ahead == 0
    assert paired(base, model).verdict == "behind"
    rows = {r[0]: r for r in against_baseline_rows([weak, base, model, same], base)}
    assert set(rows) == {"coattention", "concat-mlp"} and rows["coattention"][-1] == "ahead"
    assert rows["coattention"][2] == "3 of 3"
