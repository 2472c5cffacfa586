"""What every run does the same way: fix seeds, open TensorBoard, show progress."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run repeats exactly."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def tensorboard_writer(logdir: str | os.PathLike):
    from torch.utils.tensorboard import SummaryWriter

    Path(logdir).mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(logdir))


def progress(iterable=None, **kwargs):
    """tqdm with the project's defaults (no bar when disabled via MDR_GRAPH_NO_PROGRESS=1)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("disable", os.environ.get("MDR_GRAPH_NO_PROGRESS") == "1")
    return tqdm(iterable, **kwargs)


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
