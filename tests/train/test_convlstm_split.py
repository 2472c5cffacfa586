"""`train` refuses a ConvLSTM whose pretraining split is not the run's (the pretrain-visual leak)."""

from __future__ import annotations

import pandas as pd
import pytest

from mdr_graph.encoders.convlstm import ConvLSTMAutoencoder, save_convlstm
from mdr_graph.pretrain.convlstm import select_ids
from mdr_graph.errors import UserError
from mdr_graph.splits import SplitConfig
from mdr_graph.train.config import TrainConfig
from mdr_graph.train.runcheck import check_convlstm_split


def _graph(root, n=40, offset=0):
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"video_id": [f"v{i + offset:03d}" for i in range(n)], "song_id": [f"s{i % 7}" for i in range(n)],
                  "create_time": pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC")}
                 ).to_parquet(root / "videos.parquet")
    return root


def _convlstm(path, graph, split: SplitConfig | None):
    ids = pd.read_parquet(graph / "videos.parquet")["video_id"].tolist()
    record = select_ids(ids, graph if split else None, split or SplitConfig(), 0.1)[3]
    save_convlstm(path, ConvLSTMAutoencoder(hidden=4, embed_dim=8, downsample=2), (2, 3, 16, 16), 1,
                  extra={"split": record})
    return str(path)


def _cfg(graph, convlstm, **split):
    return TrainConfig(graph=str(graph), convlstm=convlstm, modalities=["meta", "convlstm"], **split)


def test_the_same_split_passes_and_any_other_is_refused(tmp_path):
    g = _graph(tmp_path / "g")
    ck = _convlstm(tmp_path / "c.pt", g, SplitConfig("song", 2, (0.6, 0.2, 0.2)))
    same = dict(split="song", seed=2, split_fractions=[0.6, 0.2, 0.2])
    check_convlstm_split(_cfg(g, ck, **same))
    for change in ({"split": "random"}, {"seed": 0}, {"split_fractions": [0.7, 0.1, 0.2]}):
        with pytest.raises(UserError, match="pretrained under another split") as e:
            check_convlstm_split(_cfg(g, ck, **{**same, **change}))
        assert "\n" not in str(e.value) and "--split song --seed 2 --split-fractions 0.6,0.2,0.2" in str(e.value)


def test_another_graph_or_no_graph_is_refused(tmp_path):
    g, other = _graph(tmp_path / "g"), _graph(tmp_path / "other", offset=5)
    with pytest.raises(UserError, match="another graph's split"):
        check_convlstm_split(_cfg(g, _convlstm(tmp_path / "o.pt", other, SplitConfig())))
    with pytest.raises(UserError, match="records no graph split"):
        check_convlstm_split(_cfg(g, _convlstm(tmp_path / "n.pt", g, None)))


def test_without_the_convlstm_modality_nothing_is_checked(tmp_path):
    check_convlstm_split(TrainConfig(graph=str(tmp_path), convlstm=str(tmp_path / "missing.pt"), modalities=["meta"]))
