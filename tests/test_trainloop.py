"""The shared training-loop skeleton: early stopping, the epoch loop, settings checks on resume."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from mdr_graph.errors import UserError
from mdr_graph.trainloop import (TrainState, changed_settings, check_same_settings, load_checkpoint, resume,
                                 rng_state, run_epochs, save_checkpoint)


@dataclass
class Settings:
    lr: float = 0.001
    epochs: int = 3


def test_the_best_score_is_kept_in_either_direction_and_nan_never_improves():
    up = TrainState(higher_is_better=True)
    assert not up.improve(math.nan, 1) and up.best_epoch == 0 and up.bad == 1
    assert up.improve(0.2, 2) and not up.improve(0.2, 3) and up.improve(0.3, 4)
    assert (up.best, up.best_epoch, up.bad) == (0.3, 4, 0)
    down = TrainState(higher_is_better=False)
    assert down.improve(0.5, 1) and not down.improve(0.6, 2) and not down.improve(math.nan, 3)
    assert (down.best, down.best_epoch, down.bad) == (0.5, 1, 2)
    assert down.stopped(2) and not down.stopped(3) and not down.stopped(0)  # 0 = never stop


def test_run_epochs_stops_after_patience_and_a_stopped_run_does_not_restart():
    scores = iter([0.1, 0.3, 0.2, 0.25, 0.9])
    ends = []
    state = run_epochs(lambda e: (next(scores), {"loss": float(e)}), lambda e, r, imp: ends.append((e, imp)),
                       TrainState(), epochs=5, patience=2, show=False)
    assert ends == [(1, True), (2, True), (3, False), (4, False)]
    assert state.epoch == 4 and state.best_epoch == 2 and state.history[2] == {"epoch": 3, "loss": 2.0}
    again = run_epochs(lambda e: pytest.fail("a run that stopped early trains no more"), lambda *a: None, state,
                       epochs=10, patience=2, show=False)
    assert again.epoch == 4


def test_a_resumed_loop_repeats_the_uninterrupted_one(tmp_path):
    def make():
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        return model, torch.optim.Adam(model.parameters(), lr=0.1)

    def body(model, opt):
        def step(epoch):
            x = torch.randn(8, 3)  # drawn from the global generator: resume must restore it
            loss = ((model(torch.nn.functional.dropout(x, 0.5)) - 1) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return -loss.item(), {"loss": loss.item()}
        return step

    model, opt = make()
    straight = run_epochs(body(model, opt), lambda *a: None, TrainState(), 4, 0, show=False)
    model, opt = make()
    state = TrainState()
    path = tmp_path / "checkpoint.pt"
    run_epochs(body(model, opt), lambda e, r, i: save_checkpoint(path, model, opt, Settings(), state, [rng_state()]),
               state, 2, 0, show=False)
    model, opt = make()
    torch.manual_seed(123)  # whatever happened since: resume restores the generators
    ck = load_checkpoint(path, "test")
    resumed = run_epochs(body(model, opt), lambda *a: None, resume(ck, model, opt, path), 4, 0, show=False)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]


def test_changed_settings_are_named_and_free_ones_may_change(tmp_path):
    saved = {"lr": 0.001, "epochs": 3, "dims": [1, 2], "name": None}
    assert changed_settings(saved, {"lr": 0.001, "epochs": 9, "dims": (1, 2), "name": None}, frozenset({"epochs"})) == []
    assert changed_settings({"x": 1.0}, {"x": 1}) == []  # TOML writes 1.0 for a float setting of 1
    assert changed_settings(saved, {"lr": 0.1, "epochs": 3, "dims": [1, 2], "name": None}) == ["lr: 0.001 -> 0.1"]
    check_same_settings({"settings": {"lr": 0.001, "epochs": 1}}, Settings(), frozenset({"epochs"}), tmp_path / "c.pt")
    with pytest.raises(UserError, match=r"started with other settings \(lr: 0.01 -> 0.001\); only epochs may change"):
        check_same_settings({"settings": {"lr": 0.01, "epochs": 3}}, Settings(), frozenset({"epochs"}), tmp_path / "c.pt")


def test_a_checkpoint_of_another_kind_is_refused_in_one_line(tmp_path):
    torch.save({"model": {}, "args": {}}, tmp_path / "checkpoint.pt")  # the keys of an earlier version
    with pytest.raises(UserError, match="is not a checkpoint of `mdr-graph train`"):
        load_checkpoint(tmp_path / "checkpoint.pt", "train")
