"""A read-only or full disk is one line naming the path, exit 2, nothing half-written (§15).

Tests run as any user (root ignores permissions), so the file system's refusal is injected
where every output is renamed into place."""

from __future__ import annotations

import errno
import os

import pytest


@pytest.mark.parametrize("code, text", [(errno.ENOSPC, "No space left on device"),
                                        (errno.EACCES, "Permission denied")])
def test_write_failure_is_one_line_and_leaves_nothing(tmp_path, scrape, record, cli, one_line_error,
                                                       monkeypatch, code, text):
    src = scrape([record(i) for i in range(4)])
    real_replace = os.replace

    def failing_replace(a, b, *args, **kw):
        if str(b).endswith(".parquet"):
            raise OSError(code, os.strerror(code), str(b))
        return real_replace(a, b, *args, **kw)

    monkeypatch.setattr(os, "replace", failing_replace)
    out = tmp_path / "g"
    rc, err = cli("build-graph", src, "--out", out)
    line = one_line_error(err)
    assert rc == 2 and text in line and ".parquet" in line and str(tmp_path) in line
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no staging, no temp files
