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

