"""One default per knob: FusionConfig() is what `mdr-graph train` builds with no flags; every knob is settable
from TOML; the CLI help shows the dataclass defaults (issue 10, section 3)."""

from __future__ import annotations

import dataclasses

import pytest

from mdr_graph.cli import build_command_parser
from mdr_graph.config import field_default
from mdr_graph.fusion_config import KNOBS, FusionConfig, fusion_config
from mdr_graph.train.cli import resolve_config
from mdr_graph.train.config import TrainConfig


def _train_config(*flags: str) -> TrainConfig:
    parser, _ = build_command_parser("train")
    return resolve_config(parser.parse_args(["--graph", "g", "--out", "r", *flags]))


def test_the_default_fusion_config_is_the_model_train_builds_without_flags():
    assert fusion_config(_train_config()) == FusionConfig()


@pytest.mark.parametrize("name", KNOBS)
def test_every_fusion_knob_is_settable_from_toml(name, tmp_path):
    default = field_default(FusionConfig, name)
    other = {"modalities": ["meta", "text"], "fusion": "guided", "text_features": "hashed", "residual": "gbdt"}
    if name in other:
        value = other[name]
    else:
        value = not default if isinstance(default, bool) else default / 2 if isinstance(default, float) \
            else default + 2
    (tmp_path / "c.toml").write_text(f"[train]\n{name} = {value!r}\n".replace("True", "true")
                                     .replace("False", "false").replace("'", '"'))
    assert getattr(fusion_config(_train_config("--config", str(tmp_path / "c.toml"))), name) == value


@pytest.mark.parametrize("command", ["train", "compare"])
def test_help_shows_each_default_from_the_dataclass(command):
    from mdr_graph.compare.runner import CompareConfig

    parser, _ = build_command_parser(command)
    classes = (TrainConfig,) if command == "train" else (CompareConfig, TrainConfig)
    shown = 0
    for action in parser._actions:
        cls = next((c for c in classes if action.dest in {f.name for f in dataclasses.fields(c)}), None)
        if cls is None or action.nargs == 0 or action.default is not None:
            continue
        value = field_default(cls, action.dest)
        if value in ("", None) or value == []:
            continue
        assert action.help.count("default") == 1, (action.dest, action.help)
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value).lower() \
            if isinstance(value, bool) else str(value)
        assert action.help.endswith(f"(default: {text})"), (action.dest, action.help)
        shown += 1
    assert shown >= 15
