import numpy as np
import pandas as pd
import pytest

from mdr_graph.errors import UserError
from mdr_graph.splits import SplitConfig, make_splits


def _videos(n=200, seed=0):
    rng = np.random.default_rng(seed)
    songs = rng.zipf(1.6, size=n) % 40
    return pd.DataFrame({
        "video_id": [f"v{i:04d}" for i in range(n)],
        "song_id": [f"s{s}" for s in songs],
        "create_time": pd.to_datetime(1_600_000_000 + rng.permutation(n) * 3600, unit="s", utc=True),
    })


@pytest.mark.parametrize("kind", ["random", "time", "song"])
def test_splits_partition_the_videos_and_repeat_for_a_seed(kind):
    v = _videos()
    s = make_splits(v, SplitConfig(kind, seed=3))
    all_ids = np.concatenate([s["train"], s["val"], s["test"]])
    assert sorted(all_ids) == sorted(v["video_id"])
    assert len(set(all_ids)) == len(v)
    again = make_splits(v, SplitConfig(kind, seed=3))
    assert all((s[k] == again[k]).all() for k in s)
    assert abs(len(s["train"]) / len(v) - 0.7) < 0.15


def test_random_split_depends_on_seed():
    v = _videos()
    assert not (make_splits(v, SplitConfig("random", 0))["test"] == make_splits(v, SplitConfig("random", 1))["test"]).all()


def test_time_split_tests_on_the_newest():
    v = _videos()
    s = make_splits(v, SplitConfig("time"))
    t = v.set_index("video_id")["create_time"]
    assert t[s["train"]].max() <= t[s["val"]].min() <= t[s["val"]].max() <= t[s["test"]].min()


def test_song_split_is_song_disjoint():
    v = _videos()
    s = make_splits(v, SplitConfig("song", seed=5))
    song = v.set_index("video_id")["song_id"]
    tr, va, te = (set(song[s[k]]) for k in ("train", "val", "test"))
    assert not (tr & te) and not (tr & va) and not (va & te)
    assert len(s["test"]) > 0


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError):
        SplitConfig("weekly")
    with pytest.raises(UserError):
        SplitConfig("random", fractions=(0.5, 0.5, 0.5))



def test_one_split_config_read_from_any_stage_config():
    from mdr_graph.pretrain.convlstm import VisualPretrainConfig
    from mdr_graph.train.config import TrainConfig

    assert SplitConfig.of(TrainConfig()) == SplitConfig.of(VisualPretrainConfig()) == SplitConfig()
    s = SplitConfig.of(TrainConfig(split="song", seed=4, split_fractions=[0.6, 0.2, 0.2]))
    assert s == SplitConfig("song", 4, (0.6, 0.2, 0.2))
    assert s.as_dict() == {"kind": "song", "seed": 4, "fractions": [0.6, 0.2, 0.2]}
    assert SplitConfig(**{**s.as_dict(), "fractions": tuple(s.as_dict()["fractions"])}) == s


def test_split_fraction_flags_are_checked_before_any_work(tmp_path, capsys):
    from mdr_graph.cli import main

    assert main(["train", "--graph", str(tmp_path), "--split-fractions", "0.5,0.5,0.5", "--out",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "split fractions must be three non-negative numbers" in err[0]
    assert not (tmp_path / "run").exists()
