"""The label-aware inputs (``labels`` modality, text ridge) are leak-free by construction, and they help.

Leak-freedom is checked the only way that proves it: change targets a row must not see, and
check that nothing it sees moved.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mdr_graph.cli import main as cli
from mdr_graph.graph_build.schema import VIDEO_COLUMNS
from mdr_graph.train.label_features import (LabelFeatureConfig, feature_names, label_features, label_features_new,
                                            visibility)
from mdr_graph.splits import SPLITS, SplitConfig, make_splits
from mdr_graph.train.text_ridge import TextRidge, text_ridge_scores

WORDS = ["dance", "cook", "cat", "prank", "gym", "makeup", "travel", "song", "funny", "news"]


def planted_videos(n: int = 240, creators: int = 30, seed: int = 0) -> pd.DataFrame:
    """A canonical videos table whose target is mostly the creator's effect, plus a hashtag and a word effect."""
    rng = np.random.default_rng(seed)
    creator = rng.integers(0, creators, n)
    effect = rng.normal(0, 1, creators)
    tags = [[WORDS[j] for j in rng.choice(len(WORDS), 2, replace=False)] for _ in range(n)]
    tag_effect = np.array([("dance" in t) * 0.8 - ("news" in t) * 0.8 for t in tags])
    word = rng.integers(0, len(WORDS), n)
    y = 1.5 * effect[creator] + tag_effect + 0.6 * (word % 2) + rng.normal(0, 0.3, n)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    df = pd.DataFrame({
        "video_id": [f"v{i}" for i in range(n)],
        "song_id": [f"s{i % 40}" for i in range(n)],
        "author_id": [f"c{c}" for c in creator],
        "author_followers": rng.integers(10, 10_000, n),
        "caption": [f"{WORDS[w]} clip #{t[0]} #{t[1]}" for w, t in zip(word, tags)],
        "hashtags": tags,
        "duration_s": rng.uniform(5, 60, n),
        "create_time": t0 + pd.to_timedelta(rng.uniform(0, 90, n), unit="D"),
        "scrape_time": t0 + pd.Timedelta(days=120),
        "plays": rng.integers(100, 10_000, n), "likes": 0, "shares": 0, "comments": 0, "saves": 0,
        "popularity_raw": y,
    })
    for col in VIDEO_COLUMNS:
        if col not in df:
            df[col] = None
    return df[list(VIDEO_COLUMNS)]


def rows_of(videos: pd.DataFrame, split: str, seed: int = 0) -> dict[str, np.ndarray]:
    sp = make_splits(videos, SplitConfig(split, seed))
    index = pd.Series(np.arange(len(videos)), index=videos["video_id"])
    return {s: index.loc[sp[s]].to_numpy() for s in SPLITS}


def texts_of(videos: pd.DataFrame) -> list[str]:
    return videos["caption"].tolist()


@pytest.mark.parametrize("split", ["random", "time", "song"])
def test_held_out_targets_never_reach_any_input(split):
    videos = planted_videos()
    rows = rows_of(videos, split)
    y = videos["popularity_raw"].to_numpy(float)
    held = np.concatenate([rows["val"], rows["test"]])
    y2 = y.copy()
    y2[held] = np.random.default_rng(1).normal(0, 10, len(held))   # scramble every held-out target
    a = label_features(videos, y, rows["train"], split, 0)
    b = label_features(videos, y2, rows["train"], split, 0)
    np.testing.assert_array_equal(a, b)
    ta, _ = text_ridge_scores(videos, texts_of(videos), y, rows["train"], split, 0, 5)
    tb, _ = text_ridge_scores(videos, texts_of(videos), y2, rows["train"], split, 0, 5)
    np.testing.assert_array_equal(ta, tb)


@pytest.mark.parametrize("split", ["random", "song"])
def test_a_training_row_never_sees_its_own_fold(split):
    videos = planted_videos()
    rows = rows_of(videos, split)
    y = videos["popularity_raw"].to_numpy(float)
    rule, group = visibility(videos, rows["train"], split, 0, 5)
    assert rule == "fold" and (group[rows["train"]] >= 0).all() and (group[rows["val"]] == -1).all()
    base = label_features(videos, y, rows["train"], split, 0)
    base_text, _ = text_ridge_scores(videos, texts_of(videos), y, rows["train"], split, 0, 5)
    fold0 = rows["train"][group[rows["train"]] == 0]
    y2 = y.copy()
    y2[fold0] += 5.0                       # move every target of fold 0
    moved = label_features(videos, y2, rows["train"], split, 0)
    moved_text, _ = text_ridge_scores(videos, texts_of(videos), y2, rows["train"], split, 0, 5)
    np.testing.assert_array_equal(moved[fold0], base[fold0])         # fold 0's inputs did not see fold 0
    np.testing.assert_array_equal(moved_text[fold0], base_text[fold0])
    others = rows["train"][group[rows["train"]] != 0]
    assert not np.allclose(moved[others], base[others])              # the other folds did see it
    if split == "song":   # whole songs per fold: no training row shares a song with its own fold's... none
        songs = videos["song_id"].to_numpy()
        for g in range(5):
            inside = set(songs[rows["train"][group[rows["train"]] == g]])
            outside = set(songs[rows["train"][group[rows["train"]] != g]])
            assert not inside & outside


@pytest.mark.parametrize("split", ["random", "time"])
def test_the_stacked_gbdt_score_is_nested_out_of_fold(split):
    """Held-out targets never reach it; a training fold's (block's) targets never reach that fold's score,
    not even through the labels features and text ridge the gbdt was fitted on."""
    from mdr_graph.train.config import TrainConfig
    from mdr_graph.train.gbdt import gbdt_stack_scores

    videos = planted_videos(n=160)
    rows = rows_of(videos, split)
    y = videos["popularity_raw"].to_numpy(float)
    cfg = TrainConfig(split=split, seed=0, oof_folds=3)
    base, _ = gbdt_stack_scores(cfg, videos, y, rows["train"])
    y2 = y.copy()
    held = np.concatenate([rows["val"], rows["test"]])
    y2[held] += np.random.default_rng(3).normal(0, 5, len(held))
    np.testing.assert_array_equal(gbdt_stack_scores(cfg, videos, y2, rows["train"])[0], base)
    if split == "random":
        _, group = visibility(videos, rows["train"], split, 0, 3)
        fold = rows["train"][group[rows["train"]] == 1]
    else:   # the latest block: its targets must not reach its own scores
        t = pd.to_datetime(videos["create_time"]).to_numpy()
        order = rows["train"][np.argsort(t[rows["train"]], kind="stable")]
        fold = np.array_split(order, 3)[-1]
    y3 = y.copy()
    y3[fold] += 4.0
    moved = gbdt_stack_scores(cfg, videos, y3, rows["train"])[0]
    np.testing.assert_array_equal(moved[fold], base[fold])
    assert not np.allclose(moved[held], base[held])     # held-out rows do see every training target


def test_time_split_sees_only_strictly_earlier_training_videos():
    videos = planted_videos()
    rows = rows_of(videos, "time")
    y = videos["popularity_raw"].to_numpy(float)
    t = pd.to_datetime(videos["create_time"]).to_numpy()
    base = label_features(videos, y, rows["train"], "time", 0)
    base_text, _ = text_ridge_scores(videos, texts_of(videos), y, rows["train"], "time", 0, 5)
    pivot = rows["train"][len(rows["train"]) // 2]
    y2 = y.copy()
    y2[pivot] += 7.0
    moved = label_features(videos, y2, rows["train"], "time", 0)
    moved_text, _ = text_ridge_scores(videos, texts_of(videos), y2, rows["train"], "time", 0, 5)
    not_after = t <= t[pivot]                 # the pivot itself and everything posted no later
    np.testing.assert_array_equal(moved[not_after], base[not_after])
    np.testing.assert_array_equal(moved_text[not_after], base_text[not_after])
    assert not np.allclose(moved[~not_after], base[~not_after])


def test_features_measure_what_they_say():
    videos = planted_videos(n=60)
    rows = rows_of(videos, "random")
    y = videos["popularity_raw"].to_numpy(float)
    cfg = LabelFeatureConfig(smoothing=0.0)
    feats = label_features(videos, y, rows["train"], "random", 0, cfg)
    names = feature_names()
    q = rows["test"][0]
    same = [j for j in rows["train"] if videos["author_id"].iloc[j] == videos["author_id"].iloc[q]]
    if same:   # a test row sees every training video of its creator
        assert feats[q, names.index("creator_mean")] == pytest.approx(y[same].mean())
        assert feats[q, names.index("creator_max")] == pytest.approx(y[same].max())
        assert feats[q, names.index("creator_log_count")] == pytest.approx(np.log1p(len(same)))
    assert feats[q, names.index("prior")] == pytest.approx(y[rows["train"]].mean())


def test_a_new_video_of_a_known_creator_sees_all_that_creators_training_videos():
    videos = planted_videos(n=80)
    rows = rows_of(videos, "random")
    train = videos.iloc[rows["train"]].reset_index(drop=True)
    y = train["popularity_raw"].to_numpy(float)
    creator = train["author_id"].iloc[0]
    new = train.iloc[[0, 0]].reset_index(drop=True)
    new["video_id"] = ["new-known", "new-unknown"]
    new.loc[new.index[1], "author_id"] = "someone-new"
    feats = label_features_new(new, train, y, LabelFeatureConfig(smoothing=0.0))
    names = feature_names()
    mine = y[(train["author_id"] == creator).to_numpy()]
    assert feats[0, names.index("creator_mean")] == pytest.approx(mine.mean())
    assert feats[0, names.index("creator_log_count")] == pytest.approx(np.log1p(len(mine)))
    assert feats[1, names.index("creator_log_count")] == 0.0
    assert feats[1, names.index("creator_mean")] == pytest.approx(y.mean())   # no creator history: the prior


def test_text_ridge_saved_for_predict_reproduces_held_out_scores(tmp_path):
    videos = planted_videos()
    rows = rows_of(videos, "random")
    y = videos["popularity_raw"].to_numpy(float)
    scores, ridge = text_ridge_scores(videos, texts_of(videos), y, rows["train"], "random", 0, 5)
    ridge.save(tmp_path)
    again = TextRidge.load(tmp_path).predict([texts_of(videos)[i] for i in rows["test"]])
    np.testing.assert_allclose(again, scores[rows["test"]], atol=1e-9)


# ------------------------------------------------------------------ through the CLI

TINY = ["--epochs", "40", "--patience", "10", "--d-model", "32", "--heads", "2", "--batch-size", "32",
        "--threads", "1"]


def write_graph(path, videos: pd.DataFrame) -> str:
    """The two tables of a graph directory (no graph.pt: the labels, meta and text modalities need none)."""
    from mdr_graph.graph_build.graph import songs_table

    path.mkdir(parents=True, exist_ok=True)
    videos.to_parquet(path / "videos.parquet", index=False)
    songs_table(videos).to_parquet(path / "songs.parquet", index=False)
    return str(path)


@pytest.fixture(scope="module")
def planted_graph(tmp_path_factory):
    return write_graph(tmp_path_factory.mktemp("planted") / "graph", planted_videos(n=400))


def test_changing_test_targets_leaves_every_test_prediction_unchanged(planted_graph, tmp_path):
    """The whole run, end to end: test targets are scored, never read."""
    base = ["train", "--modalities", "labels,meta,text", *TINY, "--epochs", "5"]
    assert cli([*base, "--graph", planted_graph, "--out", str(tmp_path / "a")]) == 0
    videos = pd.read_parquet(f"{planted_graph}/videos.parquet")
    test_ids = set(pd.read_csv(tmp_path / "a" / "predictions.csv").query("split == 'test'")["video_id"])
    scrambled = videos.copy()
    hit = scrambled["video_id"].isin(test_ids)
    scrambled.loc[hit, "popularity_raw"] = np.random.default_rng(5).normal(0, 3, hit.sum())
    g2 = write_graph(tmp_path / "g2", scrambled)
    assert cli([*base, "--graph", g2, "--out", str(tmp_path / "b")]) == 0
    pa = pd.read_csv(tmp_path / "a" / "predictions.csv").set_index("video_id")
    pb = pd.read_csv(tmp_path / "b" / "predictions.csv").set_index("video_id")
    np.testing.assert_array_equal(pa.loc[sorted(test_ids), "prediction"], pb.loc[sorted(test_ids), "prediction"])


@pytest.mark.slow
def test_the_labels_modality_raises_spearman_on_a_planted_creator_effect(planted_graph, tmp_path):
    import json

    for name, mods in (("with", "labels,meta,text"), ("without", "meta,text")):
        assert cli(["train", "--graph", planted_graph, "--modalities", mods, *TINY, "--out", str(tmp_path / name)]) == 0
    with_ = json.loads((tmp_path / "with" / "metrics.json").read_text())["test_spearman"]
    without = json.loads((tmp_path / "without" / "metrics.json").read_text())["test_spearman"]
    assert with_ > without + 0.15, (with_, without)


def test_gbdt_runs_and_never_sees_an_engagement_count(planted_graph, tmp_path):
    """Moving every engagement count, with the target held, moves no gbdt prediction."""
    import json

    from mdr_graph.graph_build.schema import ENGAGEMENT_COLUMNS

    args = ["compare", "--models", "gbdt,creator-mean", "--seeds", "1"]
    assert cli([*args, "--graph", planted_graph, "--out", str(tmp_path / "a")]) == 0
    metrics = json.loads((tmp_path / "a" / "gbdt" / "seed0" / "metrics.json").read_text())
    assert not set(metrics["fitted"]["features"]) & set(ENGAGEMENT_COLUMNS)
    creator = json.loads((tmp_path / "a" / "creator-mean" / "seed0" / "metrics.json").read_text())
    assert metrics["test_spearman"] > creator["test_spearman"] - 0.05   # it uses more than the creator mean
    videos = pd.read_parquet(f"{planted_graph}/videos.parquet")
    for c in ENGAGEMENT_COLUMNS:
        videos[c] = np.random.default_rng(2).integers(0, 10**9, len(videos))
    g2 = write_graph(tmp_path / "g2", videos)
    assert cli([*args, "--graph", g2, "--out", str(tmp_path / "b")]) == 0
    pa = pd.read_csv(tmp_path / "a" / "gbdt" / "seed0" / "predictions.csv")
    pb = pd.read_csv(tmp_path / "b" / "gbdt" / "seed0" / "predictions.csv")
    np.testing.assert_array_equal(pa["prediction"], pb["prediction"])


def test_predict_scores_a_new_video_from_its_creators_training_videos(planted_graph, tmp_path):
    from mdr_graph.train.predict import canonical, predict_new

    assert cli(["train", "--graph", planted_graph, "--modalities", "labels,meta,text,gbdt", *TINY, "--epochs", "3",
                "--out", str(tmp_path / "run")]) == 0
    assert cli(["evaluate", "--run", str(tmp_path / "run")]) == 0     # evaluate reproduces train (refits nothing new)
    videos = pd.read_parquet(f"{planted_graph}/videos.parquet")
    means = videos.groupby("author_id")["popularity_raw"].mean().sort_values()
    rows = []
    for creator in (means.index[0], means.index[-1]):   # the least and the most popular creator
        rows.append({"video_id": f"new-{creator}", "author_id": creator, "caption": "clip", "hashtags": [],
                     "create_time": pd.Timestamp("2024-02-01", tz="UTC"), "author_followers": 100})
    scores = predict_new(tmp_path / "run", canonical(pd.DataFrame(rows)))
    assert scores["present_labels"].all() and scores["present_gbdt"].all()
    assert scores["prediction"].iloc[1] > scores["prediction"].iloc[0]


def test_a_residual_model_starts_at_the_stacked_score_and_keeps_it_unless_a_correction_helps(planted_graph,
                                                                                             tmp_path):
    """With ``gbdt`` among the modalities the model corrects the stacked score (the default residual).
    Its untrained start *is* that score, and it is an early-stopping candidate: with nothing learned
    (lr 0) the run keeps epoch 0 and predicts exactly the stacked gbdt's score."""
    import json

    from mdr_graph.config import load_toml
    from mdr_graph.train.config import TrainConfig
    from mdr_graph.train.prepare import prepare

    out = tmp_path / "run"
    assert cli(["train", "--graph", planted_graph, "--modalities", "labels,meta,text,gbdt", *TINY, "--epochs", "3",
                "--lr", "0", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] == 0 and metrics["epochs"] == 3
    assert metrics["residual"]["modality"] == "gbdt" and metrics["residual"]["correction_std"] < 1e-4
    # the stacked score, rebuilt independently from the run's saved settings and splits
    cfg = TrainConfig(**load_toml(out / "config.toml")["train"])
    splits = {s: np.asarray(v, dtype=object) for s, v in json.loads((out / "splits.json").read_text()).items()}
    test = prepare(cfg, splits=splits).datasets["test"]
    stacked = np.clip(test.tabular["gbdt"].values[:, 0], 1e-3, 1 - 1e-3)
    pred = pd.read_csv(out / "predictions.csv").query("split == 'test'").set_index("video_id").loc[test.video_ids]
    np.testing.assert_allclose(pred["prediction"].to_numpy(), stacked, atol=1e-5)
    assert metrics["test_spearman"] == pytest.approx(metrics["residual"]["test_spearman_of_gbdt"], abs=1e-6)
    # '' turns the residual off: a model from scratch does not start at the score
    assert cli(["train", "--graph", planted_graph, "--modalities", "labels,meta,text,gbdt", *TINY, "--epochs", "3",
                "--lr", "0", "--residual", "", "--out", str(tmp_path / "scratch")]) == 0
    scratch = json.loads((tmp_path / "scratch" / "metrics.json").read_text())
    assert "residual" not in scratch and scratch["best_epoch"] >= 1
