"""`mdr-graph extract` from the command line: flags, config file, errors without tracebacks."""

from __future__ import annotations

import json

import pandas as pd

from mdr_graph.cli import main
from mdr_graph.media.extract import load_config


def test_cli_run_resume_and_config(tmp_path, graph, capsys):
    out = tmp_path / "f"
    rc = main(["extract", "--graph", str(graph), "--out", str(out), "--frames", "3", "--size", "24",
               "--audio-seconds", "1.5", "--mfcc", "20", "--fbank", "--fit", "letterbox"])
    assert rc == 0
    printed = capsys.readouterr()
    assert "ok 9, errors 4, skipped (already done) 0" in printed.out and "errors.jsonl" in printed.err
    cfg = load_config(out)
    assert (cfg.frames, cfg.size, cfg.n_mfcc, cfg.fbank, cfg.fit, cfg.audio_seconds) == (3, 24, 20, True,
                                                                                         "letterbox", 1.5)
    # --config FEATDIR/config.toml reproduces the settings; the re-run skips what is done
    rc = main(["extract", "--graph", str(graph), "--out", str(out), "--config", str(out / "config.toml")])
    assert rc == 0 and "ok 0, errors 0, skipped (already done) 13" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["skipped"] == 13


def test_cli_shards_and_merge(tmp_path, graph, capsys):
    out = tmp_path / "f"
    common = ["extract", "--graph", str(graph), "--out", str(out), "--size", "16", "--audio-seconds", "1"]
    assert main(common + ["--shard", "0/2"]) == 0
    assert "merged when every shard has finished" in capsys.readouterr().err
    assert main(["extract", "--merge", "--out", str(out)]) == 2
    assert "no result yet" in capsys.readouterr().err
    assert main(common + ["--shard", "1/2"]) == 0
    assert main(["extract", "--merge", "--out", str(out)]) == 0
    assert "ok 9, errors 4, missing 0" in capsys.readouterr().out
    assert len(pd.read_parquet(out / "index.parquet")) == 13


def test_cli_user_errors_exit_2(tmp_path, graph, capsys):
    assert main(["extract", "--graph", str(tmp_path / "nope"), "--out", str(tmp_path / "f")]) == 2
    assert "videos.parquet not found" in capsys.readouterr().err
    assert main(["extract", "--graph", str(graph), "--out", str(tmp_path / "f"), "--shard", "3/3"]) == 2
    assert "--shard '3/3'" in capsys.readouterr().err
    assert main(["extract", "--graph", str(graph), "--out", str(tmp_path / "f"), "--size", "4"]) == 2
    assert "size=4" in capsys.readouterr().err
    assert main(["extract", "--graph", str(graph), "--out", str(tmp_path / "f"), "--whisper", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "never downloads" in err and "Traceback" not in err
