"""A run's files must still belong together: a replaced graph (§12), a swapped model.pt (§14)."""

from __future__ import annotations

import shutil


def test_evaluate_after_the_graph_was_replaced(small_run, tmp_path, scrape, record, cli, one_line_error):
    graph = tmp_path / "graph"
    shutil.copytree(small_run / "graph", graph)
    assert cli("train", "--graph", graph, "--modalities", "meta", "--epochs", "1", "--threads", "1",
               "--d-model", "8", "--out", tmp_path / "run")[0] == 0
    assert cli("evaluate", "--run", tmp_path / "run")[0] == 0
    other = [record(100 + i) for i in range(12)]
    assert cli("build-graph", scrape(other, name="other.json"), "--out", graph)[0] == 0
    rc, err = cli("evaluate", "--run", tmp_path / "run")
    line = one_line_error(err)
    assert rc == 2 and "changed since" in line and "40 of the run's 40 videos are not in it" in line


def test_a_model_from_another_run(small_run, tmp_path, cli, one_line_error):
    assert cli("train", "--graph", small_run / "graph", "--modalities", "meta", "--epochs", "1", "--threads", "1",
               "--d-model", "8", "--out", tmp_path / "other")[0] == 0
    run = tmp_path / "run"
    shutil.copytree(small_run / "run", run)
    shutil.copy(tmp_path / "other" / "model.pt", run / "model.pt")
    for argv in (["evaluate", "--run", run],
                 ["predict", "--run", run, "--graph-input", small_run / "scrape.json"]):
        rc, err = cli(*argv)
        line = one_line_error(err)
        assert rc == 2 and "model.pt and the run in" in line
        assert "disagree (d_model: 8 in model.pt, 16 in config.toml)" in line
