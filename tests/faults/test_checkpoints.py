"""Checkpoints: truncated or foreign files and changed settings give one line, never torch's advice
to pass weights_only=False (§11)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


class _Payload:
    def __reduce__(self):  # what a malicious pickle does: call something on load
        return (print, ("this must never run",))


def _foreign(path: Path) -> None:
    torch.save({"model": _Payload()}, path)


def _copy_run(small_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(small_run / "run", run)
    return run


def test_every_checkpoint_load_goes_through_the_one_safe_loader():
    """The class fix: torch.load is called in mdr_graph/io.py only (weights_only=True, one-line errors)."""
    calls = [str(p.relative_to(ROOT)) for p in (ROOT / "mdr_graph").rglob("*.py")
             if re.search(r"(?<!`)\btorch\.load\(", p.read_text(encoding="utf-8"))]  # not in docs
    assert calls == ["mdr_graph/io.py"]


def test_truncated_checkpoint_on_resume(small_run, tmp_path, cli, one_line_error):
    run = _copy_run(small_run, tmp_path)
    (run / "metrics.json").unlink()
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 3])
    rc, err = cli("train", "--graph", small_run / "graph", "--modalities", "meta", "--epochs", "1",
                  "--threads", "1", "--d-model", "16", "--out", run, "--resume")
    line = one_line_error(err)
    assert rc == 2 and "checkpoint.pt is not a toolkit checkpoint: it is truncated or damaged" in line


def test_truncated_pretrain_checkpoint_on_resume(tmp_path, cli, one_line_error, small_run):
    out = tmp_path / "gat"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"PK\x03\x04 cut short")
    (out / ".mdr-graph.lock").write_text('{"command": "pretrain"}')
    rc, err = cli("pretrain", "--graph", small_run / "graph", "--out", out, "--resume")
    assert rc == 2 and "is not a toolkit checkpoint: it is truncated or damaged" in one_line_error(err)


def test_foreign_pickles_are_refused_in_one_line(small_run, tmp_path, cli, one_line_error, capsys):
    run = _copy_run(small_run, tmp_path)
    _foreign(run / "model.pt")
    rc, err = cli("evaluate", "--run", run)
    line = one_line_error(err)
    assert rc == 2 and "model.pt is not a toolkit checkpoint" in line and "weights_only" not in err
    gat = tmp_path / "gat.pt"
    _foreign(gat)
    rc, err = cli("embed", "--gat", gat, "--graph", small_run / "graph", "--out", tmp_path / "e.parquet")
    assert rc == 2 and "gat.pt is not a toolkit checkpoint" in one_line_error(err) and "weights_only" not in err
    (run / "metrics.json").unlink()
    _foreign(run / "checkpoint.pt")
    rc, err = cli("train", "--graph", small_run / "graph", "--modalities", "meta", "--epochs", "1",
                  "--threads", "1", "--d-model", "16", "--out", run, "--resume")
    assert rc == 2 and "checkpoint.pt is not a toolkit checkpoint" in one_line_error(err)
    assert "this must never run" not in capsys.readouterr().out


def test_resume_with_changed_settings_names_them(small_run, tmp_path, cli, one_line_error):
    run = _copy_run(small_run, tmp_path)
    (run / "metrics.json").unlink()
    rc, err = cli("train", "--graph", small_run / "graph", "--modalities", "meta", "--epochs", "2",
                  "--threads", "1", "--d-model", "32", "--lr", "0.5", "--out", run, "--resume")
    line = one_line_error(err)
    assert rc == 2 and "started with other settings" in line and "d_model: 16 -> 32" in line and "lr:" in line
