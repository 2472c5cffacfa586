"""predict reads counts and times with build-graph's parsers (§7, §13)."""

from __future__ import annotations

import pytest

from mdr_graph.cli_values import count_option, time_option
from mdr_graph.errors import UserError


@pytest.mark.parametrize("flags, message", [
    (["--create-time", "yesterday-ish"], "--create-time 'yesterday-ish': cannot read"),
    (["--author-followers", "-5"], "a count cannot be negative"),
    (["--author-followers", "1e30"], "cannot read '1e30' as a count"),
    (["--author-followers", "99999999999999999999B"], "too large to be a count"),
])
def test_bad_values_are_one_line(small_run, tmp_path, cli, one_line_error, flags, message):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    rc, err = cli("predict", "--run", small_run / "run", "--video", clip, "--song-id", "900", *flags)
    assert rc == 2 and message in one_line_error(err)


def test_counts_as_build_graph_writes_them_are_accepted(small_run, tmp_path, cli):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    rc, _ = cli("predict", "--run", small_run / "run", "--video", clip, "--song-id", "900",
                "--author-followers", "12.3K", "--create-time", "2020-12-20T10:00Z", "--out", tmp_path / "p.csv")
    assert rc == 0 and (tmp_path / "p.csv").exists()
    assert count_option("--author-followers", "12.3K") == 12_300 and count_option("--x", None) is None
    assert time_option("--create-time", "1608000000") == 1_608_000_000 * 10**9
    with pytest.raises(UserError, match="negative"):
        count_option("--author-followers", "-5")


def test_overflowing_counts_in_graph_input_are_rejects_not_a_crash(small_run, tmp_path, scrape, record, cli):
    src = scrape([record(0, playCount=1e30), record(1, **{"authorMeta.fans": 1e30}), record(2)], name="new.json")
    rc, err = cli("predict", "--run", small_run / "run", "--graph-input", src, "--out", tmp_path / "p.csv")
    assert rc == 0 and err.count("bad_count") == 2
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 2   # header + the one good video
