"""The non-neural baselines, checked by hand on tables small enough to do the arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mdr_graph.compare.tabular import (fit_predict, global_mean, predict_song_mean, ridge_fit, ridge_select,
                                       run_ensemble, run_tabular_baseline, song_means)
from mdr_graph.io import read_json
from mdr_graph.encoders.meta import meta_features
from mdr_graph.train.config import TrainConfig
from mdr_graph.splits import SplitConfig, make_splits, split_hash
from mdr_graph.train.dataset import Normalizer


def test_song_mean_on_a_toy_table():
    songs = np.array(["a", "a", "b", "a"])
    y = np.array([1.0, 3.0, 5.0, 5.0])
    means = song_means(songs, y)
    assert means == {"a": 3.0, "b": 5.0}
    mu = global_mean(y)
    assert mu == 3.5
    # an unseen song falls back to the global mean
    assert predict_song_mean(np.array(["b", "c", "a"]), means, mu).tolist() == [5.0, 3.5, 3.0]


def test_fit_predict_uses_training_rows_only():
    videos = pd.DataFrame({"song_id": ["a", "a", "b", "b", "c"]})
    target = np.array([0.0, 1.0, 0.5, 0.7, 0.9])
    rows = {"train": np.array([0, 1, 2]), "val": np.array([3]), "test": np.array([4])}
    pred, fitted = fit_predict("song-mean", videos, rows, target, np.zeros((5, 1)))
    # a: mean(0, 1); b: only the training video 2 counts (0.5), not the validation one; c: unseen -> mean(0, 1, .5)
    assert pred.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.5])
    assert fitted["fallback_videos"] == {"train": 0, "val": 0, "test": 1}
    pred, _ = fit_predict("global-mean", videos, rows, target, np.zeros((5, 1)))
    assert pred.tolist() == pytest.approx([0.5] * 5)


def test_ridge_one_feature_by_hand():
    x = np.array([[0.0], [1.0], [2.0]])
    y = np.array([1.0, 3.0, 5.0])           # y = 2x + 1 exactly
    m = ridge_fit(x, y, alpha=0.0)
    assert m.coef[0] == pytest.approx(2.0) and m.intercept == pytest.approx(1.0)
    # centred: Sxy = 4, Sxx = 2, so coef = 4 / (2 + alpha); the intercept is not penalised
    m = ridge_fit(x, y, alpha=2.0)
    assert m.coef[0] == pytest.approx(1.0)
    assert m.intercept == pytest.approx(3.0 - 1.0 * 1.0)
    assert m.predict(np.array([[4.0]]))[0] == pytest.approx(6.0)


def test_ridge_selection_prefers_the_alpha_that_generalises():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 + rng.normal(0, 0.01, 200)
    model, scores = ridge_select(x[:150], y[:150], x[150:], y[150:])
    assert min(scores, key=scores.get) == model.alpha
    assert model.alpha <= 1.0  # clean linear data: heavy shrinkage only hurts
    assert model.coef == pytest.approx([1.0, -2.0, 0.5], abs=0.05)


def test_tabular_run_matches_hand_computation(toy_graph, tmp_path):
    cfg = TrainConfig(graph=str(toy_graph), split="random", seed=3, modalities=[])
    m = run_tabular_baseline("song-mean", cfg, tmp_path / "run")
    videos = pd.read_parquet(toy_graph / "videos.parquet")
    splits = make_splits(videos, SplitConfig("random", 3))
    train = videos[videos["video_id"].isin(splits["train"])]
    norm = Normalizer.fit(train["popularity_raw"].to_numpy(), meta_features(train))
    y = pd.Series(norm.target(videos["popularity_raw"].to_numpy()), index=videos["video_id"])
    expect = y[train["video_id"]].groupby(train["song_id"].to_numpy()).mean()
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"video_id": str})
    assert len(preds) == len(videos) and set(preds["split"]) == {"train", "val", "test"}
    song_of = dict(zip(videos["video_id"], videos["song_id"]))
    for vid, p, t in zip(preds["video_id"], preds["prediction"], preds["target"]):
        s = song_of[vid]
        assert p == pytest.approx(expect.get(s, y[train["video_id"]].mean()))
        assert t == pytest.approx(y[vid])
    # same split, same normaliser, same metrics.json keys as a `train` run
    assert read_json(tmp_path / "run" / "splits.json") == {k: list(v) for k, v in splits.items()}
    assert read_json(tmp_path / "run" / "normalization.json")["target_min"] == pytest.approx(norm.target_min)
    assert m["split_hash"] == split_hash(splits)
    for key in ("val_spearman", "test_spearman", "test_pearson", "test_mse", "test_mae", "contributions", "params",
                "seconds_per_epoch", "seconds_total", "epochs", "best_epoch", "seed", "history"):
        assert key in m


def test_song_split_makes_song_mean_fall_back_on_every_test_video(toy_graph, tmp_path):
    cfg = TrainConfig(graph=str(toy_graph), split="song", seed=0, modalities=[])
    m = run_tabular_baseline("song-mean", cfg, tmp_path / "run")
    assert m["fitted"]["fallback_videos"]["test"] == m["split_sizes"]["test"] > 0
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert preds.loc[preds["split"] == "test", "prediction"].nunique() == 1


def test_meta_linear_never_sees_engagement(toy_graph, tmp_path):
    """Scaling plays/likes/... must not change the metadata model's predictions."""
    cfg = TrainConfig(graph=str(toy_graph), modalities=["meta"])
    run_tabular_baseline("meta-linear", cfg, tmp_path / "a")
    v = pd.read_parquet(toy_graph / "videos.parquet")
    for c in ("plays", "likes", "shares", "comments", "saves"):
        v[c] = v[c] * 7 + 3
    v.to_parquet(toy_graph / "videos.parquet", index=False)
    run_tabular_baseline("meta-linear", cfg, tmp_path / "b")
    a = pd.read_csv(tmp_path / "a" / "predictions.csv")
    b = pd.read_csv(tmp_path / "b" / "predictions.csv")
    assert np.allclose(a["prediction"], b["prediction"])


def test_ensemble_averages_member_predictions(toy_graph, tmp_path):
    cfg = TrainConfig(graph=str(toy_graph), seed=1, modalities=[])
    run_tabular_baseline("song-mean", cfg, tmp_path / "song-mean" / "seed1")
    run_tabular_baseline("meta-linear", cfg, tmp_path / "meta-linear" / "seed1")
    m = run_ensemble("unimodal-average", [tmp_path / "song-mean" / "seed1", tmp_path / "meta-linear" / "seed1"],
                     cfg, tmp_path / "avg" / "seed1")
    a = pd.read_csv(tmp_path / "song-mean" / "seed1" / "predictions.csv")
    b = pd.read_csv(tmp_path / "meta-linear" / "seed1" / "predictions.csv")
    c = pd.read_csv(tmp_path / "avg" / "seed1" / "predictions.csv")
    assert np.allclose(c["prediction"], (a["prediction"] + b["prediction"]) / 2)
    assert m["members"] == ["song-mean", "meta-linear"]
    # members trained on another split cannot be averaged
    run_tabular_baseline("song-mean", TrainConfig(graph=str(toy_graph), seed=2), tmp_path / "other")
    with pytest.raises(ValueError, match="normalised differently|another split"):
        run_ensemble("x", [tmp_path / "song-mean" / "seed1", tmp_path / "other"], cfg, tmp_path / "bad")


def test_creator_mean_uses_training_rows_only_and_null_creators_fall_back():
    videos = pd.DataFrame({"author_id": pd.array(["u1", "u1", "u2", None, "u2", "u3"], dtype="string")})
    target = np.array([0.2, 0.4, 0.9, 0.0, 0.1, 0.7])
    rows = {"train": np.array([0, 1, 2, 3]), "val": np.array([4]), "test": np.array([5])}
    pred, fitted = fit_predict("creator-mean", videos, rows, target, np.zeros((6, 1)))
    mu = target[:4].mean()
    # u1: mean(.2, .4); u2: the training video only (.9), never the validation one (.1);
    # the null creator forms no group; u3 has no training video -> the global training mean
    assert pred.tolist() == pytest.approx([0.3, 0.3, 0.9, mu, 0.9, mu])
    assert fitted["creators_fitted"] == 2
    assert fitted["fallback_videos"] == {"train": 1, "val": 0, "test": 1}
    # a held-out target never moves a prediction
    target2 = target.copy()
    target2[[4, 5]] = [0.99, 0.01]
    assert fit_predict("creator-mean", videos, rows, target2, np.zeros((6, 1)))[0].tolist() == pytest.approx(pred.tolist())
