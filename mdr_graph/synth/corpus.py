"""Write a synthetic corpus directory: videos, metadata.json, truth.csv, config.toml, summary.json.

Layout of ``DIR``::

    config.toml      the resolved SynthConfig (written first; identifies the corpus for resume)
    videos/<id>.mp4  one clip per video (some without sound or deliberately broken, if asked)
    metadata.json    tiktok-scraper dump of every video (broken files included, as in a real scrape)
    truth.csv        the answer key: score, its components, noise, popularity_raw, raw latents
    summary.json     counts, degree statistics, oracle scores; written last = the corpus is complete

Re-running into the same directory with the same settings resumes: clips already on
disk are kept (each was written atomically, so an existing file is complete) and the
rest are rendered. A directory holding anything else is refused unless ``force=True``,
which overwrites synth's own files and leaves any other file alone.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.config import from_dict, load_toml, save_toml
from mdr_graph.errors import UserError
from mdr_graph.io import atomic_path, write_json
from mdr_graph.synth import media, signal
from mdr_graph.synth.workers import render_all
from mdr_graph.synth.config import GENERATOR_VERSION, SynthConfig, validate
from mdr_graph.synth.metadata import read_truth, scraper_dump, truth_table, video_file
from mdr_graph.synth.plan import CorpusPlan, plan_corpus

CONFIG_FILE = "config.toml"
METADATA_FILE = "metadata.json"
TRUTH_FILE = "truth.csv"
SUMMARY_FILE = "summary.json"
VIDEOS_DIR = "videos"
_VIDEO_NAME = re.compile(r"^\d+\.mp4$")
_PARTIAL_NAME = re.compile(r"^\.\d+\.mp4\..+\.tmp$")     # an atomic write a killed worker left behind


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _check_dir(out: Path, cfg: SynthConfig, force: bool) -> str:
    """``"new"``, ``"resume"`` (same corpus, partly written) or ``"overwrite"``; refuse otherwise."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory")
    if not out.exists() or not any(out.iterdir()):
        return "new"
    cfg_path = out / CONFIG_FILE
    if cfg_path.exists():
        saved = load_toml(cfg_path)
        if saved.get("synth") == cfg.resolved() and saved.get("generator", {}).get("version") == GENERATOR_VERSION:
            return "resume"
        if force:
            return "overwrite"
        old = saved.get("synth", {})
        raise UserError(f"{out} holds a different synthetic corpus (seed {old.get('seed')}, "
                        f"{old.get('n_videos')} videos, generator v{saved.get('generator', {}).get('version')}); "
                        "choose another --out, or pass --force to overwrite it")
    if force:
        return "overwrite"
    raise UserError(f"{out} is not empty and is not a synthetic corpus; choose an empty or new directory, "
                    "or pass --force (synth's own files are overwritten, other files are left alone)")


def _clear_previous(out: Path, plan: CorpusPlan) -> int:
    """Before overwriting: drop the old answer files and clips of another synthetic corpus."""
    for name in (SUMMARY_FILE, METADATA_FILE, TRUTH_FILE):
        (out / name).unlink(missing_ok=True)
    removed = 0
    vdir = out / VIDEOS_DIR
    if (out / CONFIG_FILE).exists() and vdir.is_dir():
        keep = {f"{v}.mp4" for v in plan.videos["video_id"]}
        for p in vdir.iterdir():
            if _VIDEO_NAME.match(p.name) and p.name not in keep:
                p.unlink()
                removed += 1
    return removed


def media_specs(plan: CorpusPlan, out: Path, codec: str) -> list[dict]:
    """One self-contained dict per video: everything :func:`media.write_video` needs."""
    cfg = plan.config
    songs = plan.songs.sort_values("song_index").to_dict("records")          # row i is song_index i
    cols = ["index", "video_id", "n_frames", "brightness", "hue", "motion", "x_start", "direction", "has_audio",
            "song_offset", "voice_hz", "loudness_db", "corrupt", "song_index"]
    specs = []
    for row in plan.videos[cols].to_dict("records"):
        s = songs[int(row.pop("song_index"))]
        row.update(
            path=str(out / video_file(row["video_id"])), seed=cfg.seed, codec=codec,
            width=cfg.width, height=cfg.height, fps=cfg.fps, sample_rate=cfg.sample_rate,
            song_bpm=float(s["song_bpm"]), song_melody=tuple(s["song_melody"]), song_base_hz=float(s["song_base_hz"]),
            song_h2=float(s["song_h2"]), song_h3=float(s["song_h3"]),
            index=int(row["index"]), n_frames=int(row["n_frames"]), direction=int(row["direction"]),
            has_audio=bool(row["has_audio"]),
        )
        specs.append(row)
    return specs


def _degree_stats(plan: CorpusPlan) -> dict:
    deg = np.sort(plan.songs["song_degree"].to_numpy())[::-1]
    return {"max": int(deg[0]), "median": float(np.median(deg)), "mean": float(deg.mean()),
            "top5": [int(d) for d in deg[:5]], "songs_with_one_video": int((deg == 1).sum()),
            "share_of_videos_on_top_song": float(deg[0] / deg.sum())}


def write_corpus(cfg: SynthConfig, out_dir: str | os.PathLike, workers: int | None = None, force: bool = False,
                 show_progress: bool = True) -> dict:
    """Write the corpus described by ``cfg`` into ``out_dir`` (resuming a partial one); return the summary."""
    t0 = time.perf_counter()
    validate(cfg)
    out = Path(out_dir)
    mode = _check_dir(out, cfg, force)
    plan = plan_corpus(cfg)
    codec = media.available_codec(cfg.codec)
    removed = _clear_previous(out, plan) if mode == "overwrite" else 0
    (out / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
    for p in (out / VIDEOS_DIR).iterdir():
        if _PARTIAL_NAME.match(p.name):
            p.unlink()
    save_toml(out / CONFIG_FILE, {"synth": cfg.resolved(), "generator": {"version": GENERATOR_VERSION}})

    specs = media_specs(plan, out, codec)
    todo = [s for s in specs if not (mode == "resume" and Path(s["path"]).exists())]
    workers = default_workers() if workers is None else max(1, int(workers))
    written_bytes = render_all(todo, workers, show_progress)

    truth = truth_table(plan)
    with atomic_path(out / TRUTH_FILE) as tmp:
        truth.to_csv(tmp, index=False)
    write_json(out / METADATA_FILE, scraper_dump(plan))
    summary = {
        "out_dir": str(out.resolve()),
        "metadata": str((out / METADATA_FILE).resolve()),
        "truth": str((out / TRUTH_FILE).resolve()),
        "videos_dir": str((out / VIDEOS_DIR).resolve()),
        "videos": len(plan.videos), "songs": len(plan.songs),
        "authors": int(plan.videos["author_id"].nunique()),
        "creator_degree": {"max": int(plan.authors["author_degree"].max()),
                           "median": float(plan.authors["author_degree"].median()),
                           "with_one_video": int((plan.authors["author_degree"] == 1).sum())},
        "topic_hashtags": int(len(plan.topics)),
        "without_audio": int((~plan.videos["has_audio"]).sum()),
        "corrupt": {k: int(n) for k, n in plan.videos.loc[plan.videos["corrupt"] != "", "corrupt"].value_counts()
                    .sort_index().items()},
        "written": len(todo), "skipped_existing": len(specs) - len(todo), "stale_removed": removed,
        "bytes_written": written_bytes, "codec": codec, "audio_codec": "aac",
        "scrape_time": datetime.fromtimestamp(plan.scrape_time, timezone.utc).isoformat(),
        "song_degree": _degree_stats(plan),
        "signal": signal.oracle_report(truth),
        "seconds": round(time.perf_counter() - t0, 3),
        "workers": workers,
        "build_graph": f"mdr-graph build-graph {out / METADATA_FILE} --media-root {out / VIDEOS_DIR} --out GRAPHDIR",
        "config": cfg.resolved(),
    }
    write_json(out / SUMMARY_FILE, summary)
    for name in (CONFIG_FILE, TRUTH_FILE, METADATA_FILE, SUMMARY_FILE):
        os.chmod(out / name, 0o666 & ~media._umask())   # atomic writes start private (mkstemp)
    return summary


def generate_corpus(out_dir: str | os.PathLike, n_videos: int = 200, n_songs: int | None = None, seed: int = 0,
                    *, workers: int | None = None, force: bool = False, show_progress: bool = True,
                    **options) -> dict:
    """Write a synthetic corpus and return its summary (paths, counts, degree and signal statistics).

    ``options`` are :class:`SynthConfig` fields (``seconds``, ``width``, ``height``, ``fps``,
    ``no_audio_fraction``, ``corrupt``, ``noise_sd``, ``w_song``...). Small corpora are
    quick: 30 videos of 2 s take a few seconds.
    """
    cfg = from_dict(SynthConfig, {"n_videos": n_videos, "n_songs": n_songs, "seed": seed, **options},
                    source="generate_corpus")
    return write_corpus(cfg, out_dir, workers=workers, force=force, show_progress=show_progress)


def load_truth(corpus_dir: str | os.PathLike) -> pd.DataFrame:
    """``truth.csv`` of a corpus, ids as strings."""
    path = Path(corpus_dir) / TRUTH_FILE
    if not path.exists():
        raise UserError(f"no {TRUTH_FILE} in {corpus_dir}; generate a corpus with `mdr-graph synth --out DIR`")
    return read_truth(path)
