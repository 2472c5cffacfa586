"""How long `mdr-graph compare` takes on 10,000 metadata-only videos, and where the time goes.

Writes a tiktok-scraper JSON of ``--videos`` synthetic records shaped like a real scrape
(creators and hashtags Zipf-distributed with hub tags, most songs used once, a planted
creator, hashtag and song effect), builds its graph, pretrains the GAT (timed apart: it is
its own stage), then runs ``compare --models all --seeds 1`` and reads each run's own
timings from its metrics.json. The target is the whole comparison in at most 3 minutes.

    python bench/bench_compare.py                 # 10,000 videos, writes docs/benchmarks.md
    python bench/bench_compare.py --videos 2000 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section  # noqa: E402

T0 = 1_600_000_000   # 2020-09-13


def scrape(n: int, seed: int = 0) -> list[dict]:
    """Synthetic tiktok-scraper records; popularity = creator + hashtag + song effects + noise."""
    rng = np.random.default_rng(seed)
    n_creators, n_tags, n_songs = max(n // 3, 1), max(n // 5, 10), max(int(n * 0.8), 1)
    creator = np.minimum(rng.zipf(1.6, n), n_creators) - 1
    creator_effect = rng.normal(0, 1, n_creators)
    fans = np.exp(rng.normal(9, 2, n_creators)).astype(np.int64)
    tag_effect = rng.normal(0, 0.5, n_tags)
    song = np.where(rng.random(n) < 0.3, np.minimum(rng.zipf(1.8, n), 200) - 1, rng.integers(0, n_songs, n))
    song_effect = rng.normal(0, 0.5, n_songs)
    records = []
    for i in range(n):
        k = rng.integers(0, 5)
        tags = {int(t) for t in np.minimum(rng.zipf(1.5, k), n_tags) - 1}
        if rng.random() < 0.12:
            tags.add(0)                                   # the hub: "#fyp" on 12% of videos
        score = (creator_effect[creator[i]] + sum(tag_effect[t] for t in tags) + song_effect[song[i]]
                 + 0.3 * np.log1p(fans[creator[i]]) / 10 + rng.normal(0, 0.7))
        created = T0 + int(rng.uniform(0, 60 * 86400))
        age_days = max((T0 + 61 * 86400 - created) / 86400, 1)
        plays = int(np.exp(8 + score) * age_days)
        names = [("fyp" if t == 0 else f"tag{t}") for t in sorted(tags)]
        records.append({
            "id": str(10**18 + i), "text": f"clip {i % 97} " + " ".join(f"#{t}" for t in names),
            "createTime": created,
            "authorMeta": {"id": str(creator[i]), "name": f"user{creator[i]}", "fans": int(fans[creator[i]])},
            "musicMeta": {"musicId": str(song[i]), "musicName": f"song {song[i]}", "musicAuthor": "a",
                          "musicOriginal": bool(song[i] >= 200)},
            "videoMeta": {"duration": int(rng.integers(5, 60))},
            "hashtags": [{"name": t} for t in names],
            "playCount": plays, "diggCount": plays // 10, "shareCount": plays // 100, "commentCount": plays // 200,
        })
    return records


def run(cmd: list[str], env=None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--models", default="all")
    ap.add_argument("--dir", help="work directory (default: a temporary one)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch docs/benchmarks.md")
    args = ap.parse_args()
    cli = [str(Path(sys.executable).with_name("mdr-graph"))]
    env = {**os.environ, "MDR_GRAPH_NO_PROGRESS": "1"}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(args.dir or tmp)
        d.mkdir(parents=True, exist_ok=True)
        (d / "scrape.json").write_text(json.dumps(scrape(args.videos)))
        t_build = run([*cli, "build-graph", str(d / "scrape.json"), "--out", str(d / "g"),
                       "--scrape-time", "2020-11-13"], env)
        t_pre = run([*cli, "pretrain", "--graph", str(d / "g"), "--out", str(d / "gat")], env)
        t_cmp = run([*cli, "compare", "--graph", str(d / "g"), "--gat", str(d / "gat" / "gat.pt"), "--out",
                     str(d / "cmp"), "--seeds", "1", "--models", args.models, "--jobs", str(args.jobs),
                     "--threads", "1"], env)
        summary = json.loads((d / "cmp" / "compare.json").read_text())
        rows = []
        for m in summary["models"]:
            for r in m["runs"].values():
                if r["status"] != "done":
                    continue
                met = json.loads((d / "cmp" / r["dir"] / "metrics.json").read_text())
                rows.append((m["name"], met["test_spearman"], met["seconds_total"], met["epochs"],
                             met["seconds_per_epoch"]))
    load_after = os.getloadavg()[0]
    lines = [f"### `compare` on {args.videos:,} metadata-only videos, every model, 1 seed, --jobs {args.jobs}", "",
             f"- build-graph {t_build:.1f} s; pretrain (GAT, its own stage) {t_pre:.1f} s",
             f"- **compare, whole command: {t_cmp:.1f} s** (target: at most 180 s)",
             f"- load average {load_before:.1f} before, {load_after:.1f} after", "",
             "| model | test Spearman | run seconds | epochs | s / epoch |", "|---|---|---|---|---|"]
    for name, rho, secs, ep, spe in rows:
        lines.append(f"| {name} | {rho:.3f} | {secs:.1f} | {ep} | {spe:.2f} |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("compare", body)


if __name__ == "__main__":
    main()
