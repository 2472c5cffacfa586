"""Tiny inputs for the fault tests, built inside each test, and the lock fault injector.

``record(i, **fields)`` is one tiktok-scraper record (nested keys as ``"outer.inner"``);
``scrape(records)`` writes a file of them; ``cli(*argv)`` runs ``mdr-graph`` in-process
and returns ``(exit code, stderr)``; ``hold_lock(dir, command)`` starts a second process
that takes a directory's output lock exactly as the CLI does and keeps it until the
test ends (or kills it with SIGKILL when asked).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

T0 = 1_608_000_000  # 2020-12-15T02:40:00Z


def make_record(i: int, **overrides) -> dict:
    rec = {
        "id": str(7_000_000 + i), "text": f"clip {i} #fyp", "createTime": T0 + 3_600 * i,
        "authorMeta": {"id": f"a{i % 5}", "name": f"user{i % 5}", "fans": 100 * (i + 1)},
        "musicMeta": {"musicId": str(900 + i % 6), "musicName": f"Song {i % 6}", "musicAuthor": "Band",
                      "musicOriginal": False},
        "videoMeta": {"duration": 10 + i % 7},
        "diggCount": 30 * i + 1, "shareCount": i % 9, "playCount": 1000 + 137 * i * (i % 5 + 1),
        "commentCount": i % 13, "hashtags": [{"name": "fyp"}],
    }
    for key, value in overrides.items():
        target = rec
        *outer, last = key.split(".")
        for p in outer:
            target = target.setdefault(p, {})
        target[last] = value
    return copy.deepcopy(rec)


@pytest.fixture
def record():
    return make_record


@pytest.fixture
def scrape(tmp_path):
    def write(records: list, name: str = "scrape.json", lines: bool = False) -> Path:
        path = tmp_path / name
        text = "".join(json.dumps(r) + "\n" for r in records) if lines else json.dumps({"collector": records})
        path.write_text(text, encoding="utf-8")
        return path
    return write


@pytest.fixture
def cli(capsys):
    from mdr_graph.cli import main

    def run(*argv) -> tuple[int, str]:
        capsys.readouterr()
        rc = main([str(a) for a in argv])
        err = capsys.readouterr().err
        return rc, err
    return run


def error_line(err: str) -> str:
    """The one ``mdr-graph CMD: error:`` line of ``err``; fails if there is no such line or a traceback."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def one_line_error():
    return error_line


@pytest.fixture
def hold_lock():
    """Fault injection: another process holds the output lock of ``target`` (a real lock, taken
    by :func:`mdr_graph.outdir.acquire` as the CLI takes it). Yields the process; ``kill=True``
    on exit sends SIGKILL, as a crash would."""
    procs = []

    @contextlib.contextmanager
    def hold(target: Path, command: str = "train", kind: str = "dir"):
        env = {k: v for k, v in os.environ.items() if k != "MDR_GRAPH_HELD_LOCKS"}
        code = ("import sys, time\nfrom mdr_graph.outdir import acquire\n"
                "acquire(*sys.argv[1:])\nprint('held', flush=True)\ntime.sleep(120)\n")
        p = subprocess.Popen([sys.executable, "-c", code, str(target), command, kind], stdout=subprocess.PIPE,
                             text=True, env=env)
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        try:
            yield p
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()

    yield hold
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """A graph of 40 tiny records and a 1-epoch metadata-only run on it (shared: training costs seconds)."""
    from mdr_graph.cli import main

    root = tmp_path_factory.mktemp("run")
    src = root / "scrape.json"
    src.write_text(json.dumps({"collector": [make_record(i) for i in range(40)]}), encoding="utf-8")
    assert main(["build-graph", str(src), "--out", str(root / "graph")]) == 0
    assert main(["train", "--graph", str(root / "graph"), "--modalities", "meta", "--epochs", "1",
                 "--threads", "1", "--d-model", "16", "--out", str(root / "run")]) == 0
    return root
