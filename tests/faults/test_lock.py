"""One writer per output directory (issue 14 §1)."""

from __future__ import annotations

import os

from mdr_graph import outdir


def test_second_writer_is_refused_naming_the_holder(tmp_path, scrape, record, cli, hold_lock, one_line_error):
    src = scrape([record(i) for i in range(5)])
    out = tmp_path / "g"
    with hold_lock(out, "build-graph") as holder:
        rc, err = cli("build-graph", src, "--out", out)
        line = one_line_error(err)
        assert rc == 2 and f"pid {holder.pid}" in line and "`mdr-graph build-graph`" in line
        assert not (out / "summary.json").exists()  # the refused run wrote nothing
    # killed with SIGKILL above: the kernel dropped the lock, so the next run proceeds
    assert cli("build-graph", src, "--out", out)[0] == 0 and (out / "summary.json").exists()


def test_every_writing_command_takes_the_lock(tmp_path, cli, hold_lock):
    """train, compare, pretrain, extract and the rest are refused before doing any work."""
    from mdr_graph.cli import OUTPUTS

    argv = {"synth": ["--videos", "2"], "build-graph": ["x.json"], "pretrain": ["--graph", "g"],
            "embed": ["--gat", "g.pt", "--graph", "g"], "extract": ["--graph", "g"],
            "pretrain-visual": ["--features", "f", "--graph", "g"], "train": ["--graph", "g"],
            "compare": ["--graph", "g"], "demo": []}
    assert set(argv) == set(OUTPUTS)
    for name, extra in argv.items():
        target = tmp_path / name / ("out.parquet" if OUTPUTS[name].kind == "file" else "out")
        with hold_lock(target, name, OUTPUTS[name].kind) as holder:
            rc, err = cli(name, *extra, "--out", target)
        assert rc == 2 and f"is being written by `mdr-graph {name}` (pid {holder.pid})" in err, (name, err)


def test_an_output_named_only_in_the_config_file_is_locked_too(tmp_path, scrape, record, cli, hold_lock):
    """build-graph may take --out from --config's [build_graph] section: that directory is locked the same."""
    src = scrape([record(i) for i in range(5)])
    out = tmp_path / "g"
    config = tmp_path / "build.toml"
    config.write_text(f'[build_graph]\nout = "{out}"\n')
    with hold_lock(out, "build-graph") as holder:
        rc, err = cli("build-graph", src, "--config", config)
        assert rc == 2 and f"is being written by `mdr-graph build-graph` (pid {holder.pid})" in err, err
        assert not (out / "summary.json").exists()
    assert cli("build-graph", src, "--config", config)[0] == 0 and (out / "summary.json").exists()


def test_a_missing_or_broken_config_is_one_line_before_any_lock(tmp_path, scrape, record, cli, one_line_error):
    """The lock now reads --config first (for its out): a bad file is still one line and exit 2."""
    src = scrape([record(i) for i in range(2)])
    rc, err = cli("build-graph", src, "--config", tmp_path / "absent.toml")
    assert rc == 2 and "config file not found" in one_line_error(err)
    (tmp_path / "bad.toml").write_text("bad = [")
    rc, err = cli("build-graph", src, "--config", tmp_path / "bad.toml")
    assert rc == 2 and "is not valid TOML" in one_line_error(err)


def test_nested_stages_do_not_deadlock(tmp_path):
    """compare and demo run stages in-process and in workers on DIR/sub while holding DIR."""
    top = outdir.acquire(tmp_path / "demo", "demo")
    try:
        sub = outdir.acquire(tmp_path / "demo" / "graph", "build-graph")  # another file: no conflict
        assert sub is not None
        assert outdir.acquire(tmp_path / "demo", "demo") is None       # re-entrant in one process
        env_held = os.environ["MDR_GRAPH_HELD_LOCKS"]
        assert str(top.path) in env_held                                 # inherited by worker processes
        outdir.release(sub)
    finally:
        outdir.release(top)
    assert "MDR_GRAPH_HELD_LOCKS" not in os.environ or str(top.path) not in os.environ["MDR_GRAPH_HELD_LOCKS"]
