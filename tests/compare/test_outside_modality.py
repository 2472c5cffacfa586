"""A modality registered from outside the package trains through `mdr-graph train` and `compare`'s
drop-one ablation, with no package file edited (issue 10, section 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mdr_graph import modalities
from mdr_graph.cli import main as cli
from mdr_graph.modalities import Columns, ModalitySpec

TINY = ["--epochs", "2", "--patience", "5", "--d-model", "8", "--heads", "2", "--batch-size", "16", "--threads", "1"]


class CountEncoder(nn.Module):
    """``[B, d_in]`` counts to one token ``[B, 1, d_model]``."""

    def __init__(self, shape, d_model, cfg):
        super().__init__()
        self.proj = nn.Linear(shape[0], d_model)

    def forward(self, x):
        return self.proj(x).unsqueeze(1)


def hashtag_table(rows: modalities.Rows) -> Columns:
    """Two columns of the graph's videos table: the hashtag count and the caption length (log1p)."""
    tags = np.array([len(t) if t is not None else 0 for t in rows.videos["hashtags"]], dtype=np.float32)
    chars = rows.videos["caption"].fillna("").str.len().to_numpy(dtype=np.float32)
    return Columns(np.log1p(np.stack([tags, chars], axis=1)), np.ones(len(rows.videos), dtype=bool))


@pytest.fixture
def hashtags():
    spec = modalities.register(ModalitySpec(
        "hashtags", "tabular", "graph", CountEncoder, 1, "hashtag count and caption length", order=35,
        table=hashtag_table))
    yield spec
    modalities.unregister("hashtags")


def test_the_registered_modality_takes_its_place_everywhere(hashtags):
    assert modalities.default_order().index("hashtags") == modalities.default_order().index("meta") + 1
    assert modalities.parse_modalities("meta,hashtags") == ["meta", "hashtags"]
    from mdr_graph.compare.plan import Available

    assert Available(graph="g").missing("hashtags") is None


def test_outside_modality_trains_through_the_train_cli(hashtags, toy_graph, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["train", "--graph", str(toy_graph), "--modalities", "meta,hashtags", "--out", str(run), *TINY]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["modalities"] == ["meta", "hashtags"] and set(metrics["contributions"]) == {"meta", "hashtags"}
    ck = torch.load(run / "model.pt", weights_only=True)
    assert ck["input_shapes"]["hashtags"] == [2]
    assert any(k.startswith("encoders.hashtags.") for k in ck["model"])
    capsys.readouterr()
    assert cli(["evaluate", "--run", str(run), "--split", "all"]) == 0
    assert '"matches_metrics_json": true' in capsys.readouterr().out


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_outside_modality_is_dropped_by_the_compare_ablation(hashtags, toy_graph, tmp_path, jobs):
    """With --jobs 2 the runs train in spawned processes, which start from the built-in modalities."""
    out = tmp_path / "cmp"
    assert cli(["compare", "--graph", str(toy_graph), "--models", "coattention", "--modalities", "meta,hashtags",
                "--ablate", "--seeds", "1", "--jobs", jobs, "--out", str(out), *TINY]) == 0
    runs = {r["name"]: r for r in json.loads((out / "compare.json").read_text())["ablations"]}
    assert runs["drop-hashtags"]["modalities"] == ["meta"] and runs["drop-hashtags"]["skip"] is None
    assert runs["drop-meta"]["modalities"] == ["hashtags"]
    dropped = json.loads((out / "ablations" / "drop-hashtags" / "seed0" / "metrics.json").read_text())
    kept = json.loads((out / "ablations" / "drop-meta" / "seed0" / "metrics.json").read_text())
    assert dropped["modalities"] == ["meta"] and kept["modalities"] == ["hashtags"]
    assert np.isfinite(kept["test_spearman"])


def test_an_outside_modality_a_worker_cannot_import_is_a_one_line_error(toy_graph, tmp_path, capsys):
    modalities.register(ModalitySpec("local", "tabular", "graph", CountEncoder, 1, "a lambda table", order=36,
                                     table=lambda rows: hashtag_table(rows)))
    try:
        rc = cli(["compare", "--graph", str(toy_graph), "--models", "coattention", "--modalities", "meta,local",
                  "--seeds", "1", "--jobs", "2", "--out", str(tmp_path / "cmp"), *TINY])
    finally:
        modalities.unregister("local")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "modality 'local' cannot be sent to a worker process" in err[0]
