"""The non-neural baselines: global, song and creator means, ridge on metadata, and LightGBM.

They answer "how much of the score is explained before any model looks at a frame?".
Each is fitted on the training split only, on the min-max-normalised target that the
neural runs also train on (the same :class:`~mdr_graph.train.dataset.Normalizer`, fitted
on the same training ids), and predicts every video of every split, so its
``predictions.csv`` and ``metrics.json`` line up row for row with a ``train`` run.

The fitting functions are pure (arrays in, arrays out); :func:`run_tabular_baseline`
does the I/O and writes a run directory in the ``train`` format (:mod:`mdr_graph.train.run_files`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.compare.plan import MODELS
from mdr_graph.encoders.meta import meta_features
from mdr_graph.io import read_json
from mdr_graph.train.config import TrainConfig
from mdr_graph.train.dataset import Normalizer
from mdr_graph.train.gbdt import gbdt_fit, gbdt_inputs
from mdr_graph.splits import SPLITS, SplitConfig, make_splits, split_hash
from mdr_graph.train.run_files import run_metrics, write_run_inputs, write_run_result

# Ridge penalties tried; the one with the best validation MSE is kept (the intercept is never penalised).
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


# ---------------------------------------------------------------- pure fitting functions

def global_mean(train_target: np.ndarray) -> float:
    """The mean training target: the best constant under squared error."""
    train_target = np.asarray(train_target, dtype=np.float64)
    return float(train_target.mean()) if len(train_target) else 0.0


def group_means(train_keys: np.ndarray, train_target: np.ndarray) -> dict[str, float]:
    """``{key: mean training target of its videos}`` over the training rows (a song, a creator).

    A missing key (null song or creator id) forms no group: its videos get the fallback.
    """
    keys = pd.Series(np.asarray(train_keys, dtype=object))
    y = pd.Series(np.asarray(train_target, np.float64))
    have = keys.notna().to_numpy()
    return y[have].groupby(keys[have].astype(str).to_numpy(), sort=False).mean().to_dict()


def predict_group_mean(keys: np.ndarray, means: dict[str, float], fallback: float) -> np.ndarray:
    """Each video's group mean; missing keys and keys with no training video get ``fallback``."""
    return np.array([fallback if pd.isna(k) else means.get(str(k), fallback) for k in keys], dtype=np.float64)


# The song-mean names, kept: tests and users call them.
song_means, predict_song_mean = group_means, predict_group_mean


@dataclasses.dataclass
class RidgeModel:
    """``y = x @ coef + intercept`` on standardised features."""

    coef: np.ndarray
    intercept: float
    alpha: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef + self.intercept


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> RidgeModel:
    """Closed-form ridge regression with an unpenalised intercept.

    Centring ``x`` and ``y`` first makes the intercept drop out of the penalty:
    ``coef = (XcᵀXc + αI)⁻¹ Xcᵀyc``, ``intercept = ȳ - x̄·coef``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0:
        return RidgeModel(np.zeros(x.shape[1]), 0.0, alpha)
    xm, ym = x.mean(axis=0), y.mean()
    xc, yc = x - xm, y - ym
    gram = xc.T @ xc + alpha * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, xc.T @ yc) if x.shape[1] else np.zeros(0)
    return RidgeModel(coef, float(ym - xm @ coef), float(alpha))


def ridge_select(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 alphas: tuple[float, ...] = RIDGE_ALPHAS) -> tuple[RidgeModel, dict[float, float]]:
    """Fit one ridge per ``alpha`` on train and keep the best on validation MSE.

    Returns the chosen model and ``{alpha: validation MSE}``. Without validation rows
    the middle of the grid is used.
    """
    scores: dict[float, float] = {}
    models = {a: ridge_fit(x_train, y_train, a) for a in alphas}
    if len(y_val) == 0:
        mid = alphas[len(alphas) // 2]
        return models[mid], scores
    for a, m in models.items():
        scores[a] = float(np.mean((m.predict(x_val) - np.asarray(y_val, np.float64)) ** 2))
    best = min(scores, key=lambda a: (scores[a], -a))  # ties: the stronger penalty
    return models[best], scores


# ---------------------------------------------------------------- the run directory

# What each tabular baseline reads, as declared in the model registry.
TABULAR_INPUTS = {name: info["inputs"] for name, info in MODELS.items() if info["kind"] == "tabular"}
# The group-mean baselines and the videos.parquet column each one groups by.
GROUP_COLUMNS = {"song-mean": "song_id", "creator-mean": "author_id"}


def fit_predict(name: str, videos: pd.DataFrame, rows: dict[str, np.ndarray], target: np.ndarray,
                meta: np.ndarray, cfg: TrainConfig | None = None) -> tuple[np.ndarray, dict]:
    """Fit baseline ``name`` on ``rows['train']``; predict all rows of ``videos``.

    ``target`` is the normalised target of every row, ``meta`` the standardised metadata
    matrix of every row, ``cfg`` the run's settings (split, seed, folds: the gbdt's
    out-of-fold inputs follow them). Returns the predictions and what was fitted (for metrics.json).
    """
    tr, va = rows["train"], rows["val"]
    mu = global_mean(target[tr])
    if name == "global-mean":
        return np.full(len(videos), mu), {"mean": mu, "params": 1}
    if name in GROUP_COLUMNS:
        keys = videos[GROUP_COLUMNS[name]].to_numpy(dtype=object)
        means = group_means(keys[tr], target[tr])
        pred = predict_group_mean(keys, means, mu)
        fell_back = np.array([pd.isna(k) or str(k) not in means for k in keys], dtype=bool)
        fallback = {s: int(fell_back[rows[s]].sum()) for s in SPLITS}
        what = "songs_fitted" if name == "song-mean" else "creators_fitted"
        return pred, {what: len(means), "global_mean": mu, "fallback_videos": fallback,
                      "params": len(means) + 1}
    if name == "meta-linear":
        model, scores = ridge_select(meta[tr], target[tr], meta[va], target[va])
        return model.predict(meta), {"alpha": model.alpha, "val_mse_by_alpha": {str(a): s for a, s in scores.items()},
                                     "coef": model.coef.tolist(), "intercept": model.intercept,
                                     "params": int(model.coef.size + 1)}
    if name == "text-ridge":   # exactly the text modality's input (text_features = "ridge")
        from mdr_graph.train.fitted import fit_label_inputs

        cfg = cfg or TrainConfig()
        fitted = fit_label_inputs(dataclasses.replace(cfg, modalities=["text"], text_features="ridge"), videos, target, tr)
        return fitted.text[:, 0].astype(np.float64), {"alpha": fitted.ridge.alpha,
                                                      "params": int(fitted.ridge.coef.size + 1)}
    if name == "gbdt":
        cfg = cfg or TrainConfig()
        x, names = gbdt_inputs(cfg, videos, target, tr, meta)
        model = gbdt_fit(x, target, rows, cfg.seed)
        gain = model.booster_.feature_importance("gain")
        top = sorted(zip(names, (gain / max(gain.sum(), 1e-12)).tolist()), key=lambda t: -t[1])[:10]
        return model.predict(x), {"trees": int(model.booster_.num_trees()), "features": names,
                                  "gain_share_top10": dict(top), "params": int(model.booster_.num_trees())}
    raise ValueError(f"unknown tabular baseline {name!r}; known: {', '.join(TABULAR_INPUTS)}")


def run_tabular_baseline(name: str, cfg: TrainConfig, out_dir: str | Path) -> dict:
    """Fit and evaluate one non-neural baseline; write ``out_dir`` in the ``train`` run format."""
    from mdr_graph.graph_build.tables import read_videos

    t0 = time.perf_counter()
    out = Path(out_dir)
    videos = read_videos(cfg.graph).reset_index(drop=True)
    splits = make_splits(videos, SplitConfig.of(cfg))
    row = pd.Series(np.arange(len(videos)), index=videos["video_id"].astype(str))
    rows = {s: row.loc[[str(v) for v in splits[s]]].to_numpy() for s in SPLITS}
    raw = videos["popularity_raw"].to_numpy(dtype=np.float64)
    meta_raw = meta_features(videos)
    norm = Normalizer.fit(raw[rows["train"]], meta_raw[rows["train"]])
    target = norm.target(raw)
    pred, fitted = fit_predict(name, videos, rows, target, norm.meta(meta_raw).astype(np.float64), cfg)
    secs = time.perf_counter() - t0

    frames = [pd.DataFrame({"video_id": videos["video_id"].astype(str).to_numpy()[rows[s]], "split": s,
                            "target": target[rows[s]], "prediction": pred[rows[s]]}) for s in SPLITS]
    preds = pd.concat(frames, ignore_index=True)
    metrics = run_metrics(preds, splits, cfg=cfg, model=name, modalities=TABULAR_INPUTS[name],
                          params=fitted.pop("params"), seconds_per_epoch=secs, seconds_total=secs, fitted=fitted)
    write_run_inputs(out, cfg, splits, dataclasses.asdict(norm))
    write_run_result(out, preds, metrics)
    return metrics


def run_ensemble(name: str, member_dirs: list[Path], cfg: TrainConfig, out_dir: str | Path) -> dict:
    """Average the members' predictions video by video; write ``out_dir`` in the ``train`` run format.

    The members' *normalised* predictions (the ``prediction`` column of their
    ``predictions.csv``) are averaged. All members of one seed share the same training
    split and hence the same :class:`Normalizer` (checked here), and the normaliser is
    affine, so this equals normalising the average of the de-normalised predictions.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    if len(member_dirs) < 2:
        raise ValueError(f"{name}: an average needs two or more member runs, got {len(member_dirs)}")
    first = Path(member_dirs[0])
    norm0 = read_json(first / "normalization.json")
    splits0 = read_json(first / "splits.json")
    base = pd.read_csv(first / "predictions.csv", dtype={"video_id": str})
    preds = [base["prediction"].to_numpy(np.float64)]
    for d in member_dirs[1:]:
        d = Path(d)
        norm = read_json(d / "normalization.json")
        if (norm["target_min"], norm["target_max"]) != (norm0["target_min"], norm0["target_max"]):
            raise ValueError(f"{d} was normalised differently from {first}; members must share one training split")
        if read_json(d / "splits.json") != splits0:
            raise ValueError(f"{d} used another split than {first}")
        p = pd.read_csv(d / "predictions.csv", dtype={"video_id": str}).set_index("video_id")
        preds.append(p.loc[base["video_id"], "prediction"].to_numpy(np.float64))
    table = base[["video_id", "split", "target"]].copy()
    table["prediction"] = np.mean(preds, axis=0)
    members = [read_json(Path(d) / "metrics.json") for d in member_dirs]
    secs = time.perf_counter() - t0
    metrics = run_metrics(
        table, splits0, cfg=cfg, model=name, params=sum(m.get("params", 0) for m in members),
        modalities=list(dict.fromkeys(x for m in members for x in m.get("modalities", []))),
        # training cost of an ensemble is the sum of its members' (they are reused, not retrained)
        seconds_per_epoch=sum(m.get("seconds_per_epoch", 0.0) for m in members),
        seconds_total=sum(m.get("seconds_total", 0.0) for m in members) + secs,
        members=[str(Path(d).parent.name) for d in member_dirs], averaged="normalised predictions")
    write_run_inputs(out, cfg, splits0, norm0)
    write_run_result(out, table, metrics)
    return metrics
