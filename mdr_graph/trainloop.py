"""The one training-loop skeleton: early stopping, ``checkpoint.pt``, ``--resume`` and the epoch loop.

Every trainer (``train``, ``pretrain``, ``pretrain-visual``) runs the same loop::

    state = TrainState(higher_is_better=...)          # or: state = resume(ck, model, optimizer, ...)
    run_epochs(epoch_body, end_epoch, state, cfg.epochs, cfg.patience)

``epoch_body(epoch)`` trains one epoch and validates; it returns the validation score and
the epoch's history record. The skeleton keeps the early-stopping state and the history;
``end_epoch(epoch, record, improved)`` then writes the best model, ``checkpoint.pt`` and the
logs. A run resumed from its checkpoint repeats the uninterrupted run exactly: the
checkpoint holds every random generator the loop draws from.

``checkpoint.pt`` has the same keys in every trainer (loadable with ``weights_only=True``):

- ``model``: the state_dict of the module being trained; ``optimizer``: the optimizer's
- ``settings``: the run's settings dataclass as a dict (what ``--resume`` compares)
- ``state``: :class:`TrainState` as a dict (``epoch``, ``best``, ``best_epoch``, ``bad``,
  ``history``, ``higher_is_better``)
- ``rng``: one entry per rank: the torch, Python and NumPy generators and the trainer's own
- ``world_size``: the processes that trained it; plus a trainer's own keys (the GAT's
  ``split_fingerprint``)
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mdr_graph.errors import UserError
from mdr_graph.io import torch_load, torch_save
from mdr_graph.runlog import progress

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_KEYS = frozenset({"model", "optimizer", "settings", "state", "rng", "world_size"})


@dataclass
class TrainState:
    """Where a run stands: epochs done, the best validation score, epochs since it, the history."""

    higher_is_better: bool = True   # Spearman and AUC: higher; reconstruction MSE: lower
    epoch: int = 0                  # epochs finished
    best: float = math.nan          # the best validation score so far (NaN: none yet)
    best_epoch: int = 0
    bad: int = 0                    # epochs since the best one
    history: list[dict] = field(default_factory=list)

    def improve(self, score: float, epoch: int) -> bool:
        """Record epoch ``epoch``'s score; True when it is the best so far. A NaN score never is."""
        if math.isnan(self.best):
            better = not math.isnan(score)
        else:
            better = score > self.best if self.higher_is_better else score < self.best
        if better:
            self.best, self.best_epoch, self.bad = float(score), epoch, 0
        else:
            self.bad += 1
        return better

    def stopped(self, patience: int) -> bool:
        """Early stopping: ``patience`` epochs without a better score (0 = never stop)."""
        return patience > 0 and self.bad >= patience


def run_epochs(epoch_body: Callable[[int], tuple[float, dict]],
               end_epoch: Callable[[int, dict, bool], None],
               state: TrainState, epochs: int, patience: int, *, desc: str = "train", show: bool = True) -> TrainState:
    """Run epochs ``state.epoch + 1 .. epochs`` until early stopping; returns ``state``.

    ``epoch_body(epoch)`` (0-based) trains and validates, returning ``(score, record)``;
    the record is appended to ``state.history`` with its 1-based ``epoch``. Then
    ``end_epoch(epoch + 1, record, improved)`` writes what the epoch produced.
    """
    bar = progress(range(state.epoch, epochs), desc=desc, unit="epoch", initial=state.epoch, total=epochs,
                   disable=not show or None)
    try:
        for epoch in bar:
            if state.stopped(patience):  # also a run resumed after it had stopped early
                break
            score, record = epoch_body(epoch)
            improved = state.improve(score, epoch + 1)
            record = {"epoch": epoch + 1, **record}
            state.history.append(record)
            state.epoch = epoch + 1
            end_epoch(epoch + 1, record, improved)
            bar.set_postfix(score=f"{score:.4f}", best=state.best_epoch)
    finally:
        bar.close()
    return state


# ----------------------------------------------------------------------------- random generators

def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict:
    """The torch, Python and NumPy global generators and ``generators``, as weights_only-loadable data."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            **{name: g.get_state() for name, g in (generators or {}).items()}}


def restore_rng(saved: dict, generators: dict[str, torch.Generator] | None = None) -> None:
    torch.set_rng_state(saved["torch"])
    py = saved["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, *rest = saved["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    for key, g in (generators or {}).items():
        g.set_state(saved[key])


# ----------------------------------------------------------------------------- checkpoint.pt

def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, settings: Any,
                    state: TrainState, rng: list[dict], **extra) -> None:
    """Write ``checkpoint.pt`` atomically; ``rng`` holds one :func:`rng_state` per rank."""
    torch_save(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "settings": dataclasses.asdict(settings), "state": dataclasses.asdict(state),
                      "rng": rng, "world_size": len(rng), **extra})


def load_checkpoint(path: str | Path, command: str) -> dict:
    """``checkpoint.pt`` of ``mdr-graph COMMAND``, or a one-line error saying it is not one."""
    ck = torch_load(path)  # a truncated or foreign file is already a one-line UserError
    if not isinstance(ck, dict) or not CHECKPOINT_KEYS <= set(ck) or not isinstance(ck["settings"], dict):
        raise UserError(f"{path} is not a checkpoint of `mdr-graph {command}` (or one written by an earlier "
                        "version); start a new run with another --out")
    return ck


def _norm(v):
    """Compare settings as TOML stores them: 1.0 is 1, a list is a tuple, None is absent."""
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return "" if v is None else v


def changed_settings(saved: dict, now: dict, free: frozenset[str] = frozenset(),
                     fmt: str = "{k}: {a!r} -> {b!r}") -> list[str]:
    """``fmt`` of (name, saved, now) for every setting of ``now`` outside ``free`` that differs."""
    return [fmt.format(k=k, a=saved.get(k), b=now[k]) for k in now
            if k not in free and _norm(saved.get(k)) != _norm(now[k])]


def check_same_settings(ck: dict, settings: Any, free: frozenset[str], path: str | Path) -> None:
    """``--resume`` continues a run with the settings it started with; only ``free`` ones may change."""
    diff = changed_settings(ck["settings"], dataclasses.asdict(settings), free)
    if diff:
        raise UserError(f"cannot resume {Path(path).parent}: it was started with other settings "
                        f"({'; '.join(diff[:4])}); only {', '.join(sorted(free))} may change. Drop the changed "
                        "flags (or pass --config RUNDIR/config.toml), or start a new --out")


def resume(ck: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: str | Path, rank: int = 0,
           generators: dict[str, torch.Generator] | None = None) -> TrainState:
    """Load the weights, optimizer and this rank's generators from ``ck``; returns the saved state."""
    try:
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise UserError(f"--resume: {path} does not fit the model these settings build "
                        f"({str(e).splitlines()[0][:160]}); train into a new --out") from None
    restore_rng(ck["rng"][rank % len(ck["rng"])], generators)
    return TrainState(**ck["state"])
