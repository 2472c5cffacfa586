"""The modality registry: one spec per modality, from which every list is derived."""

from __future__ import annotations

import pytest
import torch

from mdr_graph import modalities
from mdr_graph.compare.plan import Available
from mdr_graph.errors import UserError
from mdr_graph.modalities import ModalitySpec


def test_builtin_order_and_default_order():
    assert modalities.names() == ["network", "labels", "meta", "text", "gbdt", "mfcc", "fbank", "whisper", "vit",
                                  "convlstm"]
    assert "fbank" not in modalities.default_order()   # the filter-bank ablation is asked for, never assumed
    assert modalities.media(modalities.names()) == ["mfcc", "fbank", "whisper", "vit", "convlstm"]
    assert modalities.store_keys() == ["fbank", "frames", "mfcc", "whisper"]


def test_a_spec_says_where_its_input_comes_from():
    with pytest.raises(ValueError, match="store_key"):
        ModalitySpec("x", "media", "store", lambda s, d, c: torch.nn.Identity(), 1, "", 1)
    with pytest.raises(ValueError, match="kind must be"):
        ModalitySpec("x", "image", "store", lambda s, d, c: torch.nn.Identity(), 1, "", 1, store_key="k")
    with pytest.raises(ValueError, match="already registered"):
        modalities.register(modalities.check_modality("meta"))


def test_missing_inputs_are_explained_from_the_spec():
    avail = Available(graph="g", features="f", feature_keys=frozenset({"frames", "mfcc"}))
    assert avail.missing("network") == "no --gat (RUNDIR/gat.pt from `mdr-graph pretrain`)"
    assert avail.missing("fbank") == "the feature store has no 'fbank' (re-run `mdr-graph extract --fbank`)"
    assert avail.missing("whisper") == "the feature store has no 'whisper' (re-run `mdr-graph extract --whisper PATH`)"
    assert avail.missing("vit") is None and avail.missing("meta") is None
    assert Available(graph="g").missing("mfcc") == "no --features (needs 'mfcc' from `mdr-graph extract`)"
    with pytest.raises(UserError, match="needs --convlstm RUNDIR/convlstm.pt"):
        modalities.check_modality("convlstm").require(type("S", (), {"convlstm": ""})())


def test_parse_modalities_names_the_choices():
    with pytest.raises(UserError, match="choose from network, labels"):
        modalities.parse_modalities("meta,video")
    with pytest.raises(UserError, match="listed twice"):
        modalities.parse_modalities("meta,meta")


def test_a_table_of_the_wrong_shape_is_a_clear_error():
    import numpy as np
    import pandas as pd

    spec = ModalitySpec("flat", "tabular", "graph", lambda s, d, c: torch.nn.Identity(), 1, "", 1,
                        table=lambda rows: modalities.Columns(np.zeros(3), np.ones(3, bool)))
    rows = modalities.Rows(pd.DataFrame({"video_id": ["a", "b", "c"]}), None, None, None, None)
    with pytest.raises(UserError, match="modality 'flat': its table gave values \\(3,\\)"):
        spec.inputs(rows)
