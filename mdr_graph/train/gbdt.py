"""LightGBM on the tabular inputs: the ``gbdt`` baseline, and the stacked ``gbdt`` modality.

Its matrix is the metadata (:func:`~mdr_graph.encoders.meta.meta_features`), the leak-free
``labels`` features and the out-of-fold text ridge score: the same label-derived inputs the
fusion model gets, fitted on the training rows only (:func:`~mdr_graph.train.fitted.fit_label_inputs`).

**Stacking** (the ``gbdt`` modality): the fusion model may read the gbdt's score as one more
input. For a training row that score must come from a gbdt that never saw the row's target,
*and* whose own inputs never saw it: the labels features and the text ridge of the rows the
gbdt is fitted on are themselves fitted on targets. So :func:`gbdt_stack_scores` nests: for
each outer fold (or time block) it recomputes every label-derived input with only the other
folds as "training", fits the gbdt on those, and scores the fold. Held-out rows are scored by
a gbdt fitted on all training rows. No validation or test target is read at any level.

Since no validation target may choose the stacked gbdt's size, each fit is a small **bag**: every
member holds out a random :data:`STACK_HOLDOUT` of *its own* fitting rows, early-stops on them,
and the bag averages the members. The holdouts differ, so together the members see every row.
A fixed tree count (400 before) overfitted: on SMP-Video the stack scored 0.653 against the
early-stopped baseline's 0.657; the bag of 3 scores 0.657 (random split) and 0.621 against 0.611
(time split), 3 seeds each (docs/real-data.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdr_graph.train.config import TrainConfig

# LightGBM for a few thousand rows: shallow trees, row and column subsampling.
GBDT_PARAMS = dict(n_estimators=2000, learning_rate=0.03, num_leaves=15, min_child_samples=20, subsample=0.8,
                   subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0, n_jobs=1, verbose=-1, deterministic=True,
                   force_row_wise=True)
GBDT_EARLY_STOP = 100   # rounds without a better held-out MSE
STACK_BAG = 3           # stacked score: members per bag
STACK_HOLDOUT = 0.15    # ... each early-stopped on this share of its own fitting rows


def gbdt_inputs(cfg: TrainConfig, videos: pd.DataFrame, target: np.ndarray, train_rows: np.ndarray,
                meta: np.ndarray | None = None, transcripts: dict[str, str] | None = None,
                hashed=None) -> tuple[np.ndarray, list[str]]:
    """The gbdt's matrix over every row of ``videos``, treating ``train_rows`` as the training split:
    the labels features and the text ridge's out-of-fold score fitted on those rows, beside the metadata."""
    from mdr_graph.encoders.meta import meta_features
    from mdr_graph.encoders.text import video_texts
    from mdr_graph.train.label_features import LabelFeatureConfig, label_features
    from mdr_graph.train.text_ridge import text_ridge_scores

    labels = label_features(videos, target, train_rows, cfg.split, cfg.seed, LabelFeatureConfig.of(cfg))
    text, _ = text_ridge_scores(videos, video_texts(videos, transcripts), target, train_rows, cfg.split, cfg.seed,
                                cfg.oof_folds, hashed=hashed)
    meta = meta_features(videos) if meta is None else meta
    return gbdt_matrix(meta, labels, text.astype(np.float32))   # as the text modality holds it


def gbdt_matrix(meta: np.ndarray, labels: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Columns in the one order the gbdt is fitted and applied with."""
    from mdr_graph.encoders.meta import META_FEATURES
    from mdr_graph.train.label_features import feature_names

    x = np.concatenate([meta, labels, text.reshape(len(text), -1)], axis=1)
    return x, [*META_FEATURES, *feature_names(), "text_ridge"]


def gbdt_fit(x: np.ndarray, target: np.ndarray, rows: dict[str, np.ndarray], seed: int):
    """LightGBM on ``rows['train']``, early-stopped on ``rows['val']`` (the baseline, and each stack member)."""
    import lightgbm as lgb

    tr, va = rows["train"], rows["val"]
    model = lgb.LGBMRegressor(**GBDT_PARAMS, random_state=seed)
    return model.fit(x[tr], target[tr], eval_X=(x[va],), eval_y=(target[va],), eval_metric="l2",
                     callbacks=[lgb.early_stopping(GBDT_EARLY_STOP, verbose=False)])


def stack_fit(x: np.ndarray, target: np.ndarray, fit_rows: np.ndarray, seed: int) -> "Stacked":
    """A bag of :data:`STACK_BAG` gbdts on ``fit_rows`` alone: member ``b`` early-stops on its own random
    :data:`STACK_HOLDOUT` of them, so no row outside ``fit_rows`` (and no validation target) is read."""
    fit_rows = np.asarray(fit_rows)
    boosters = []
    for b in range(STACK_BAG):
        perm = np.random.default_rng([seed, b]).permutation(fit_rows)
        k = min(max(1, int(round(len(perm) * STACK_HOLDOUT))), len(perm) - 1)
        rows = {"train": perm[k:], "val": perm[:k]}
        boosters.append(gbdt_fit(x, target, rows, seed + b).booster_)
    return Stacked(boosters)


def gbdt_stack_scores(cfg: TrainConfig, videos: pd.DataFrame, target: np.ndarray,
                      train_rows: np.ndarray, transcripts: dict[str, str] | None = None, hashed=None, full=None):
    """Every row's gbdt score from a gbdt (and label-derived inputs) that never saw its target, and the
    gbdt fitted on all training rows (what ``predict`` applies to a new video).

    ``full``: the labels features and text ridge scores already fitted on ``train_rows`` (the final
    gbdt's inputs), when the caller has them."""
    from mdr_graph.encoders.text import video_texts
    from mdr_graph.train.label_features import NO_PRIOR
    from mdr_graph.train.oof import oof_predict
    from mdr_graph.train.text_ridge import hashed_ngrams

    if hashed is None:   # hash the texts once, not once per fold
        hashed = hashed_ngrams(video_texts(videos, transcripts))

    def fit_predict(fit_rows: np.ndarray, pred_rows: np.ndarray) -> np.ndarray:
        x, _ = gbdt_inputs(cfg, videos, target, fit_rows, transcripts=transcripts, hashed=hashed)   # refitted
        return stack_fit(x, target, fit_rows, cfg.seed).predict(x[pred_rows])

    scores = oof_predict(fit_predict, videos, train_rows, cfg.split, cfg.seed, cfg.oof_folds, NO_PRIOR,
                         held_out=False)
    if full is not None and full.labels is not None and full.text is not None:
        from mdr_graph.encoders.meta import meta_features

        x, _ = gbdt_matrix(meta_features(videos), full.labels, full.text)
    else:
        x, _ = gbdt_inputs(cfg, videos, target, train_rows, transcripts=transcripts, hashed=hashed)
    final = stack_fit(x, target, train_rows, cfg.seed)
    held = np.setdiff1d(np.arange(len(videos)), train_rows)
    if len(held):
        scores[held] = final.predict(x[held])
    return scores, final


class Stacked:
    """The final stacked gbdt: a bag of LightGBM boosters, each kept in LightGBM's own text format
    (no pickle), in one JSON file ``RUNDIR/gbdt_stack.json``."""

    FILE = "gbdt_stack.json"

    def __init__(self, boosters: list):
        self.boosters = boosters

    @classmethod
    def from_strings(cls, model_strs) -> "Stacked":
        import lightgbm as lgb

        return cls([lgb.Booster(model_str=str(m)) for m in model_strs])

    @property
    def model_strs(self) -> list[str]:
        return [b.model_to_string() for b in self.boosters]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.mean([b.predict(x) for b in self.boosters], axis=0)

    def save(self, run_dir) -> None:
        from pathlib import Path

        from mdr_graph.io import write_json

        write_json(Path(run_dir) / self.FILE, {"format": "lightgbm-text", "models": self.model_strs})

    @classmethod
    def load(cls, run_dir) -> "Stacked":
        from pathlib import Path

        from mdr_graph.errors import UserError
        from mdr_graph.io import read_json

        path = Path(run_dir) / cls.FILE
        if not path.exists():
            raise UserError(f"{path} is missing: the run has the gbdt modality but not its stacked model "
                            "(a run from before the bagged stack? train it again)")
        return cls.from_strings(read_json(path)["models"])
