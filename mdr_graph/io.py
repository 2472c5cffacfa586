"""Atomic file writes and safe loads shared by every stage.

Every output is written to a temporary file in the same directory and renamed into
place, so a killed run never leaves a half-written file under its final name.
Checkpoints are loaded with ``weights_only=True``: a checkpoint is data, never code.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):  # torch tensors
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_parquet(path: str | os.PathLike, df) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def torch_save(path: str | os.PathLike, obj: Any) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def torch_load(path: str | os.PathLike, map_location: str = "cpu", mmap: bool = False) -> Any:
    """Load a checkpoint as data only (``weights_only=True``); every toolkit file is loaded here.

    A file that is not one (truncated, damaged, or a pickle holding objects other than
    tensors and plain data) raises :class:`UserError` in one line that says so. Torch's own
    message is not passed on: it advises ``weights_only=False``, which would run the
    file's code, and a toolkit file never needs it.
    """
    import pickle

    import torch

    from mdr_graph.errors import UserError

    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except pickle.UnpicklingError:
        raise UserError(f"{path} is not a toolkit checkpoint: it holds objects other than tensors and plain data "
                        "(toolkit files never do), so it was not loaded") from None
    except (PermissionError, IsADirectoryError):
        raise
    except Exception as e:  # torch reports a damaged zip/pickle as RuntimeError, EOFError, ValueError...
        raise UserError(f"{path} is not a toolkit checkpoint: it is truncated or damaged "
                        f"({type(e).__name__}); re-create it (e.g. re-run the command that wrote it)") from None
