"""Training settings that cannot work fail before training, and leave nothing behind (§10)."""

from __future__ import annotations


def test_song_split_with_empty_validation_fails_before_training(tmp_path, scrape, record, cli, one_line_error):
    recs = [record(i, **{"musicMeta.musicId": "900" if i < 7 else "901"}) for i in range(9)]
    assert cli("build-graph", scrape(recs), "--out", tmp_path / "g")[0] == 0
    rc, err = cli("train", "--graph", tmp_path / "g", "--modalities", "meta", "--split", "song",
                  "--out", tmp_path / "run")
    line = one_line_error(err)
    assert rc == 2 and "split" in line and "would be empty" in line and "--split random" in line
    assert "2 song(s)" in line and not (tmp_path / "run").exists()


def test_a_one_video_graph_names_the_empty_splits(tmp_path, scrape, record, cli, one_line_error):
    assert cli("build-graph", scrape([record(0)]), "--out", tmp_path / "g")[0] == 0
    rc, err = cli("train", "--graph", tmp_path / "g", "--modalities", "meta", "--out", tmp_path / "run")
    assert rc == 2 and "validation and test splits would be empty" in one_line_error(err)
    assert not (tmp_path / "run").exists()


def test_zero_epochs_is_refused_and_leaves_nothing(tmp_path, cli, one_line_error):
    rc, err = cli("train", "--graph", tmp_path / "g", "--epochs", "0", "--out", tmp_path / "run")
    assert rc == 2 and "--epochs 0: need at least 1" in one_line_error(err)
    assert not (tmp_path / "run").exists()


def test_test_split_is_predicted_once_at_the_end(small_run, tmp_path, monkeypatch):
    """Per-epoch contributions come from the validation split; test is scored once, after training."""
    import json

    from mdr_graph.train import inference, loop
    from mdr_graph.train.cli import add_arguments, resolve_config

    test_ids = set(json.loads((small_run / "run" / "splits.json").read_text())["test"])
    scored = []
    real = inference.predict

    def spy(model, dataset, *a, **k):
        scored.append("test" if set(dataset.video_ids) == test_ids else "other")
        return real(model, dataset, *a, **k)

    monkeypatch.setattr(inference, "predict", spy)
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--graph", str(small_run / "graph"), "--modalities", "meta", "--epochs", "3",
                         "--patience", "3", "--d-model", "8", "--threads", "1", "--out", str(tmp_path / "r")])
    m = loop.fit(resolve_config(args), tmp_path / "r")
    assert m["epochs"] == 3 and scored.count("test") == 1 and scored[-2:].count("test") == 1
    assert all(set(h["contributions"]) == {"meta"} for h in m["history"])
