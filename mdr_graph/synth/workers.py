"""Encode clips in worker subprocesses whose heap is deterministic, so the mp4 bytes repeat.

Why subprocesses even for one worker: libx264 (as bundled with PyAV) reads some
uninitialised heap memory, and about one encode in thirty came out different from
run to run (decoded pixels differed by up to 13 levels). Starting each worker with
glibc's ``malloc.perturb`` tunable fills every fresh allocation with a fixed byte, and
every repeated encode then gives the same bytes (checked over hundreds of encodes).
The tunable is read only when a process starts, hence ``python -m
mdr_graph.synth.workers`` children rather than threads or forked workers; this also
spares scripts that call :func:`mdr_graph.synth.generate_corpus` the
``if __name__ == "__main__"`` guard that multiprocessing's spawn would demand.
(On a C library other than glibc the tunable is ignored: files then decode the same
but may differ in a few bytes.)

Protocol: the parent writes a JSON list of specs on the child's stdin; the child
writes one line ``<index> <bytes>`` to stdout per finished clip.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
from typing import IO

from mdr_graph.runlog import progress

PERTURB_BYTE = 85


def worker_env() -> dict[str, str]:
    """The environment of a worker: the caller's, plus a fixed malloc perturbation byte."""
    env = dict(os.environ)
    tunable = f"glibc.malloc.perturb={PERTURB_BYTE}"
    old = env.get("GLIBC_TUNABLES", "")
    env["GLIBC_TUNABLES"] = f"{old}:{tunable}" if old else tunable
    env["MALLOC_PERTURB_"] = str(PERTURB_BYTE)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def render_all(specs: list[dict], workers: int, show_progress: bool = True) -> int:
    """Write every spec's clip using ``workers`` subprocesses; returns the total bytes written."""
    if not specs:
        return 0
    workers = max(1, min(int(workers), len(specs)))
    kw = {} if show_progress else {"disable": True}
    bar = progress(total=len(specs), desc="synth videos", unit="video", **kw)
    env = worker_env()
    procs: list[tuple[subprocess.Popen, IO[bytes]]] = []
    sel = selectors.DefaultSelector()
    total = 0
    try:
        for w in range(workers):
            err = tempfile.TemporaryFile(mode="w+b")
            p = subprocess.Popen([sys.executable, "-m", "mdr_graph.synth.workers"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=err, env=env)
            procs.append((p, err))
            p.stdin.write(json.dumps(specs[w::workers]).encode())
            p.stdin.close()
            sel.register(p.stdout, selectors.EVENT_READ)
        open_pipes = len(procs)
        while open_pipes:
            for key, _ in sel.select():
                line = key.fileobj.readline()
                if not line:
                    sel.unregister(key.fileobj)
                    open_pipes -= 1
                    continue
                total += int(line.split()[1])
                bar.update(1)
        for p, err in procs:
            if p.wait() == -signal.SIGINT:  # Ctrl-C reaches the whole process group; the child may see it first
                raise KeyboardInterrupt
            if p.returncode != 0:
                err.seek(0)
                tail = err.read().decode(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"synth worker exited with status {p.returncode}: " + " | ".join(tail))
    finally:
        for p, err in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            err.close()
        sel.close()
        bar.close()
    return total


def _serve() -> None:
    from mdr_graph.synth.media import write_video

    specs = json.loads(sys.stdin.buffer.read())
    for spec in specs:
        res = write_video(spec)
        sys.stdout.write(f"{res['index']} {res['bytes']}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
