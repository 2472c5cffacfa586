"""compare refuses, before it writes anything, a split no model could use: one with an empty split, or a
ConvLSTM pretrained under another seed's split."""

from __future__ import annotations

import pandas as pd
import pytest

from mdr_graph.compare.plan import Available
from mdr_graph.compare.runner import CompareConfig, Comparison
from mdr_graph.encoders.convlstm import ConvLSTMAutoencoder, save_convlstm
from mdr_graph.pretrain.convlstm import select_ids
from mdr_graph.errors import UserError
from mdr_graph.splits import SplitConfig
from mdr_graph.train.config import TrainConfig


def _pretrained(path, graph, seed):
    ids = pd.read_parquet(graph / "videos.parquet")["video_id"].tolist()
    record = select_ids(ids, graph, SplitConfig(seed=seed), 0.1)[3]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_convlstm(path, ConvLSTMAutoencoder(hidden=4, embed_dim=8, downsample=2), (2, 3, 16, 16), 1,
                  extra={"split": record})
    return path


def _comparison(toy_graph, tmp_path, convlstm):
    avail = Available(graph=str(toy_graph), features="f", convlstm=str(convlstm), feature_keys=frozenset({"frames"}),
                      frames=2)
    ccfg = CompareConfig(graph=str(toy_graph), convlstm=str(convlstm), seeds=[0, 1], models=["coattention"],
                         modalities=["meta", "convlstm"])
    return Comparison(ccfg, TrainConfig(), tmp_path / "cmp", avail=avail)


def test_one_convlstm_for_several_seeds_is_refused_before_anything_is_written(toy_graph, tmp_path):
    one = _pretrained(tmp_path / "cl" / "convlstm.pt", toy_graph, seed=0)
    comp = _comparison(toy_graph, tmp_path, one)
    with pytest.raises(UserError, match=r"seed 1: .*another split.*\{seed\}") as e:
        comp.run()
    assert "\n" not in str(e.value) and not (tmp_path / "cmp").exists()


def test_a_seed_template_gives_each_seed_its_own_convlstm(toy_graph, tmp_path):
    for seed in (0, 1):
        _pretrained(tmp_path / "cl" / f"seed{seed}" / "convlstm.pt", toy_graph, seed)
    comp = _comparison(toy_graph, tmp_path, tmp_path / "cl" / "seed{seed}" / "convlstm.pt")
    comp.check_convlstm()  # passes: each seed's own split
    from mdr_graph.compare.runner import run_config

    spec = next(s for s in comp.specs if s.name == "coattention")
    assert run_config(comp.template, spec, 1, comp.ccfg).convlstm == str(tmp_path / "cl" / "seed1" / "convlstm.pt")



def test_a_song_split_with_an_empty_validation_split_is_refused_before_anything_is_written(tmp_path):
    """One song holds most videos: --split song cuts nothing for validation (issue 10, section 4)."""
    from mdr_graph.io import write_parquet

    gdir = tmp_path / "graph"
    gdir.mkdir()
    n = 40
    videos = pd.DataFrame({"video_id": [f"v{i:02d}" for i in range(n)],
                           "song_id": ["hit" if i < 34 else f"s{i}" for i in range(n)],
                           "create_time": pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC"),
                           "popularity_raw": [float(i % 7) for i in range(n)]})
    write_parquet(gdir / "videos.parquet", videos)
    ccfg = CompareConfig(graph=str(gdir), seeds=[0], split="song", models=["song-mean"])
    comp = Comparison(ccfg, TrainConfig(), tmp_path / "cmp", avail=Available(graph=str(gdir)))
    with pytest.raises(UserError, match=r"validation split would be empty .*--split song cuts only between songs"):
        comp.run()
    assert not (tmp_path / "cmp").exists()
