"""A non-empty directory that is not ours is refused without --force, by every writing command (§4)."""

from __future__ import annotations

import pytest

from mdr_graph.cli import OUTPUTS

ARGS = {"synth": ["--videos", "2"], "build-graph": ["x.json"], "pretrain": ["--graph", "g"],
        "extract": ["--graph", "g"], "pretrain-visual": ["--features", "f", "--graph", "g"],
        "train": ["--graph", "g"], "compare": ["--graph", "g"], "demo": []}


@pytest.mark.parametrize("command", [c for c, o in OUTPUTS.items() if o.kind == "dir"])
def test_user_directory_is_refused_and_left_alone(tmp_path, cli, one_line_error, command):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "config.toml").write_text("my = 'settings'\n")
    (user / "rejects.jsonl").write_text("my notes\n")
    rc, err = cli(command, *ARGS[command], "--out", user)
    assert rc == 2 and "is not empty and was not written by" in one_line_error(err) and "--force" in err
    assert (user / "config.toml").read_text() == "my = 'settings'\n"
    assert (user / "rejects.jsonl").read_text() == "my notes\n"


def test_force_and_our_own_directory_are_accepted(tmp_path, scrape, record, cli):
    src = scrape([record(i) for i in range(4)])
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    assert cli("build-graph", src, "--out", user, "--force")[0] == 0
    assert (user / "notes.txt").read_text() == "keep me" and (user / "summary.json").exists()
    assert cli("build-graph", src, "--out", user)[0] == 0        # ours now: rebuilt without --force
    rc, err = cli("train", "--graph", user, "--out", user)        # but another command's
    assert rc == 2 and "written by `mdr-graph build-graph`" in err
