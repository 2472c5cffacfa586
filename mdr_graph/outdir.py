"""One writer per output directory, and no writing into a directory that is not ours.

Every command that writes a directory (or a file) takes an exclusive lock on it for the
whole command, from :func:`mdr_graph.cli.main`. The lock is an ``fcntl`` lock on
``DIR/.mdr-graph.lock`` (``.NAME.mdr-graph.lock`` beside a file output); the file holds
the holder's pid and command, so a second process is refused with a message naming
them. The kernel drops the lock when the holder exits, ``kill -9`` included, so a stale
lock file never blocks anything.

The lock file doubles as the directory's owner mark: a non-empty directory is written
into only when an earlier run of the same command left its lock file there (or, for
directories made before lock files existed, one of the command's own files), unless
``--force``. That is the one rule every command follows (``synth`` had it first).

Locks are per process and re-entrant: ``demo`` and ``compare`` run other stages
in-process on sub-directories, whose locks are other files, and a stage re-locking a
directory its own process already holds is a no-op. Child processes inherit the list of
held directories (``MDR_GRAPH_HELD_LOCKS``), so workers writing into their parent's
directory are not refused by their own parent.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from mdr_graph.errors import UserError

LOCK_NAME = ".mdr-graph.lock"
_HELD_ENV = "MDR_GRAPH_HELD_LOCKS"
_held: dict[str, object] = {}   # real lock path -> open file object (keeps the lock)


@dataclass(frozen=True)
class Output:
    """Which argument of a command names what it writes.

    ``arg``: the argparse dest (``out``). ``kind``: ``dir`` or ``file``. ``signature``:
    files only this command writes, which mark a directory made before lock files
    existed as this command's. ``shard_arg``: an argument that narrows the lock to one
    shard (``extract --shard i/n``: shards of one FEATDIR are written at once by design).
    ``config_section``: the ``--config`` TOML section that may name ``arg`` instead of the
    command line (``build-graph``), so that an output named only there is locked too.
    """

    arg: str = "out"
    kind: str = "dir"
    signature: tuple[str, ...] = ()
    shard_arg: str | None = None
    config_section: str | None = None


def lock_path(target: Path, kind: str, shard: str | None = None) -> Path:
    suffix = f".shard-{shard.replace('/', '-')}" if shard else ""
    if kind == "file":
        return target.parent / f".{target.name}{suffix}.mdr-graph.lock"
    return target / (LOCK_NAME[:-5] + suffix + ".lock")


def _owner(lock_file: Path) -> dict:
    try:
        return json.loads(lock_file.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _our_locks(d: Path) -> list[Path]:
    return [p for p in d.iterdir() if p.name.startswith(LOCK_NAME[:-5]) and p.name.endswith(".lock")]


def is_empty(d: Path) -> bool:
    """No entries but lock files (the lock is taken before the command looks at its directory)."""
    return not d.is_dir() or all(p in _our_locks(d) for p in d.iterdir())


def check_owned(d: Path, command: str, signature: tuple[str, ...], force: bool) -> None:
    """Refuse a non-empty directory that another command, or a user, filled (unless ``force``)."""
    if d.exists() and not d.is_dir():
        raise UserError(f"--out {d} is a file; give a directory")
    if force or not d.is_dir():
        return
    locks = _our_locks(d)
    others = [p for p in d.iterdir() if p not in locks]
    if not others:
        return
    owners = {_owner(p).get("command") for p in locks}
    if command in owners or any((d / s).exists() for s in signature):
        return
    by = f" (written by `mdr-graph {', '.join(sorted(o for o in owners if o))}`)" if any(owners) else ""
    raise UserError(f"{d} is not empty and was not written by `mdr-graph {command}`{by}; choose an empty or new "
                    f"directory, or pass --force to write into it anyway")


def _held_by_parent(path: Path) -> bool:
    return str(path) in os.environ.get(_HELD_ENV, "").split(os.pathsep)


@dataclass(frozen=True)
class Held:
    path: Path
    created: bool   # the directory did not exist before the lock made it


def acquire(target: str | os.PathLike, command: str, kind: str = "dir", shard: str | None = None) -> Held | None:
    """Lock ``target`` for this process until it exits; refuse if another process holds it.

    Returns ``None`` when this process (or its parent) already holds the lock.
    """
    import fcntl

    target = Path(os.path.abspath(target))
    d = target if kind == "dir" else target.parent
    created = not d.exists()
    d.mkdir(parents=True, exist_ok=True)
    path = Path(os.path.realpath(lock_path(target, kind, shard)))
    if str(path) in _held or _held_by_parent(path):
        return None
    f = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        f.close()
        if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        who = _owner(path)
        pid = who.get("pid", "unknown")
        what = f"`mdr-graph {who['command']}`" if who.get("command") else "another mdr-graph process"
        host = f" on {who['host']}" if who.get("host") and who.get("host") != socket.gethostname() else ""
        raise UserError(f"{target} is being written by {what} (pid {pid}{host}); wait for it to finish, "
                        f"or choose another --out") from None
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"pid": os.getpid(), "command": command, "host": socket.gethostname()}) + "\n")
    f.flush()
    _held[str(path)] = f
    os.environ[_HELD_ENV] = os.pathsep.join(filter(None, [os.environ.get(_HELD_ENV), str(path)]))
    return Held(path, created and kind == "dir")


def release(held: Held | None, failed: bool = False) -> None:
    """Drop a lock taken by :func:`acquire`. After a ``failed`` command, a directory the
    lock itself created and that holds nothing but the lock file is removed: nothing is
    left behind."""
    if held is None:
        return
    path = held.path
    f = _held.pop(str(path), None)
    others = [p for p in os.environ.get(_HELD_ENV, "").split(os.pathsep) if p and p != str(path)]
    os.environ[_HELD_ENV] = os.pathsep.join(others)
    if failed and held.created:
        try:
            d = path.parent
            if [p.name for p in d.iterdir()] == [path.name]:
                path.unlink()
                d.rmdir()
        except OSError:  # a file appeared meanwhile, or it cannot be removed: then it is not ours to remove
            pass
    if f is not None:
        f.close()
