"""The report regenerates from the run files alone, and its numbers are the runs' numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mdr_graph.cli import main
from mdr_graph.compare.report import PLOTS, collect, headline_table, write_report
from mdr_graph.compare.summary import aggregate, fmt_pm
from mdr_graph.io import read_json

FAST = ["--epochs", "2", "--d-model", "16", "--heads", "2", "--text-dim", "64", "--batch-size", "16"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory, make_toy_graph) -> Path:
    root = tmp_path_factory.mktemp("rep")
    g = make_toy_graph(root, n_videos=50)
    out = root / "cmp"
    assert main(["compare", "--graph", str(g), "--out", str(out), "--seeds", "2", "--ablate",
                 "--models", "coattention,global-mean,song-mean,meta-linear", "--modalities", "meta,text",
                 *FAST]) == 0
    return out


def test_report_has_every_part(compared):
    md = (compared / "report.md").read_text()
    for part in ("## Models", "## Ablations", "## Plots", "Same splits for every model", "coattention",
                 "song-mean", "drop-meta", "drop-text", "guided", "Against the strongest simple baseline"):
        assert part in md, part
    for png in PLOTS:
        assert (compared / "plots" / png).stat().st_size > 1000, png
        assert f"plots/{png}" in md
    html = (compared / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "<table>" in html and "plots/scatter_best.png" in html
    # ablations that cannot apply here say why
    assert "positional-encoding-off" in md and "vit is not used" in md


def test_table_numbers_come_from_metrics_json(compared):
    runs = [read_json(compared / "song-mean" / f"seed{s}" / "metrics.json") for s in (0, 1)]
    rho = [r["test_spearman"] for r in runs]
    expect = fmt_pm(float(np.mean(rho)), float(np.std(rho, ddof=1)))
    row = next(line for line in headline_table(compared).splitlines() if line.startswith("| song-mean "))
    assert expect in row
    s = aggregate(runs)
    assert s["test_mse_mean"] == pytest.approx(np.mean([r["test_mse"] for r in runs]))


def test_report_regenerates_from_the_run_files_alone(compared, tmp_path):
    original = (compared / "report.md").read_text()
    copy = tmp_path / "copy"
    shutil.copytree(compared, copy)
    for f in ("report.md", "report.html"):
        (copy / f).unlink()
    shutil.rmtree(copy / "plots")
    assert main(["compare", "--report-only", "--out", str(copy)]) == 0
    assert (copy / "report.md").read_text() == original
    assert all((copy / "plots" / p).exists() for p in PLOTS)


def test_report_without_compare_json_rediscovers_the_runs(compared, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(compared, copy)
    (copy / "compare.json").unlink()
    write_report(copy)
    _, entries = collect(copy)
    names = {e.name for e in entries}
    assert {"coattention", "song-mean", "drop-meta"} <= names
    original_rows = [r for r in headline_table(compared).splitlines() if r.startswith("| song-mean ")]
    assert original_rows[0] in headline_table(copy)


def test_report_only_on_an_empty_directory_is_a_user_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare", "--report-only", "--out", str(tmp_path / "empty")]) == 2
    assert "no comparison" in capsys.readouterr().err
