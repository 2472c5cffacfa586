"""CLI help shows each default from the command's dataclass (never retyped), choices from constants."""

from __future__ import annotations

import dataclasses

import pytest

from mdr_graph.cli import build_command_parser
from mdr_graph.config import field_default
from mdr_graph.demo import DemoSettings
from mdr_graph.pretrain.convlstm import VisualPretrainConfig
from mdr_graph.graph_build.build import BuildGraphConfig
from mdr_graph.media.extract_config import ExtractConfig
from mdr_graph.synth.config import SynthConfig


@pytest.mark.parametrize("command,cls", [("build-graph", BuildGraphConfig), ("extract", ExtractConfig),
                                         ("synth", SynthConfig), ("demo", DemoSettings),
                                         ("pretrain-visual", VisualPretrainConfig)])
def test_help_defaults_come_from_the_dataclass(command, cls, monkeypatch):
    parser, _ = build_command_parser(command)
    fields = {f.name for f in dataclasses.fields(cls)}
    shown = 0
    for action in parser._actions:
        if action.dest not in fields or action.default is not None or action.nargs == 0:
            continue
        value = field_default(cls, action.dest)
        if value in ("", None) or value in ([], {}):
            continue
        assert action.help.count("default") == 1, f"{command} {action.option_strings}: {action.help}"
        shown += 1
    assert shown >= 3
    # change a default in the dataclass: the help follows
    name = next(a.dest for a in parser._actions if a.dest in fields and a.type is int and a.default is None
                and isinstance(field_default(cls, a.dest), int) and not isinstance(field_default(cls, a.dest), bool))
    monkeypatch.setattr(cls.__dataclass_fields__[name], "default", 98765)
    parser, _ = build_command_parser(command)
    assert "98765" in next(a.help for a in parser._actions if a.dest == name)
