"""Which SMP-Video fields that mdr-graph does not read would move the `gbdt` baseline, and why one must not.

The smp-video reader leaves out `post_suggested_words`, `post_location`,
`post_text_language`, `video_height`/`video_width` and `music_duration` (docs/graph.md).
This script measures what each would add: the `gbdt` baseline's own matrix (metadata,
leak-free labels features, out-of-fold text ridge) plus the field's columns, one LightGBM
with the baseline's settings per split and seed, test Spearman. The fields are joined on
`pid` from the raw files; categorical ones become frequency ranks (no label is read).

    mdr-graph build-graph ../shared/data/smp-video --nodes song,creator,hashtag --out /tmp/smp/graph
    python bench/smp_fields.py --graph /tmp/smp/graph
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "smp-video").resolve()


def read_jsonl(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8") as f:
        return {r["pid"]: r for r in map(json.loads, filter(str.strip, f))}


def frequency_rank(values) -> np.ndarray:
    """Each value's rank by frequency over all rows (rare values, under 10 rows, share -1)."""
    s = pd.Series(list(values), dtype=object).fillna("?")
    counts = s.value_counts()
    rank = {v: (i if counts[v] >= 10 else -1) for i, v in enumerate(counts.index)}
    return s.map(rank).to_numpy(float)


def fields(ids: np.ndarray, data: Path) -> dict[str, np.ndarray]:
    """Each unread field's columns, one row per id."""
    posts, vids = read_jsonl(data / "posts_train.jsonl"), read_jsonl(data / "videos_train.jsonl")
    post = [posts.get(i, {}) for i in ids]
    vid = [vids.get(i, {}) for i in ids]
    num = lambda rows, key: np.array([np.nan if r.get(key) is None else r[key] for r in rows], float)  # noqa: E731
    h, w = num(vid, "video_height"), num(vid, "video_width")
    music, duration = num(vid, "music_duration"), num(vid, "video_duration")
    return {
        "suggested_words": np.array([len(p.get("post_suggested_words") or []) for p in post], float)[:, None],
        "location": frequency_rank(p.get("post_location") for p in post)[:, None],
        "language": frequency_rank(p.get("post_text_language") for p in post)[:, None],
        "video_size": np.stack([h, w, w / h], 1),
        "music_duration": np.stack([music, (music == duration).astype(float)], 1),
    }


def main(args) -> None:
    from scipy.stats import spearmanr

    from mdr_graph.train import gbdt
    from mdr_graph.train.config import TrainConfig
    from mdr_graph.train.prepare import prepare

    scores: dict[str, dict[str, list[float]]] = {}
    for split in args.splits.split(","):
        for seed in range(args.seeds):
            cfg = TrainConfig(graph=args.graph, modalities=["labels", "meta", "text"], split=split, seed=seed,
                              threads=1)
            prep = prepare(cfg)
            videos = prep.videos
            ids = videos["video_id"].astype(str).to_numpy()
            at = pd.Series(np.arange(len(ids)), index=ids)
            rows = {s: at.loc[[str(v) for v in prep.splits[s]]].to_numpy() for s in ("train", "val", "test")}
            target = prep.normalizer.target(videos["popularity_raw"].to_numpy(float))
            x, _ = gbdt.gbdt_inputs(cfg, videos, target, rows["train"])
            extra = fields(ids, Path(args.data))
            unread = np.concatenate([v for k, v in extra.items() if k != "suggested_words"], 1)
            variants = {"gbdt (as shipped)": x, **{f"+ {k}": np.concatenate([x, v], 1) for k, v in extra.items()},
                        "+ every field but suggested_words": np.concatenate([x, unread], 1)}
            for name, m in variants.items():
                pred = gbdt.gbdt_fit(m, target, rows, seed).predict(m[rows["test"]])
                got = float(spearmanr(pred, target[rows["test"]]).statistic)
                scores.setdefault(name, {}).setdefault(split, []).append(got)
                print(f"{split} seed {seed} {name}: {got:.4f}", flush=True)
    splits = args.splits.split(",")
    print(f"\n| inputs (test Spearman, {args.seeds} seeds) | " + " | ".join(splits) + " |")
    print("|---|" + "---|" * len(splits))
    for name, by in scores.items():
        print(f"| {name} | " + " | ".join(f"{np.mean(by[s]):.3f} ± {np.std(by[s]):.3f}" for s in splits) + " |")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", required=True, help="a build-graph output of smp-video")
    p.add_argument("--data", default=str(DATA), help="the smp-video directory (posts_train.jsonl, videos_train.jsonl)")
    p.add_argument("--splits", default="random,time")
    p.add_argument("--seeds", type=int, default=3)
    return p


if __name__ == "__main__":
    main(get_args_parser().parse_args())
