"""Shared by the benchmarks: write one section of docs/benchmarks.md, and describe the machine.

Each benchmark owns one section, delimited by ``<!-- bench:NAME -->`` markers, and
replaces only that section, under a file lock, so benchmarks can run in any order
(or at once) without clobbering each other's results.
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nEach section is written by the benchmark named in it; re-run that command to refresh it.\n"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return (f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM, no GPU used; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def write_section(name: str, body: str, command: str | None = None) -> None:
    """Replace (or append) section ``name`` of docs/benchmarks.md with ``body``."""
    command = command or "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    replace_block(DOC, "bench", name, f"{body.rstrip()}\n\nCommand: `{command}`  \nMachine: {machine()}  \n"
                                      f"Measured: {stamp}", HEADER)


def replace_block(doc: Path, tag: str, name: str, body: str, header: str) -> None:
    """Replace (or append) the ``<!-- TAG:NAME -->`` block of ``doc``, under a file lock, atomically."""
    block = f"<!-- {tag}:{name} -->\n{body.rstrip()}\n<!-- /{tag}:{name} -->"
    doc.parent.mkdir(parents=True, exist_ok=True)
    with open(doc.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = doc.read_text() if doc.exists() else header
        pat = re.compile(rf"<!-- {tag}:{re.escape(name)} -->.*?<!-- /{tag}:{re.escape(name)} -->", re.S)
        text = pat.sub(lambda _: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block + "\n"
        tmp = doc.with_suffix(".md.tmp")
        tmp.write_text(text)
        os.replace(tmp, doc)


def git_rev() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    except Exception:
        return "unknown"
