"""Turn a graph's videos into stored features: settings, one video, and the resumable run.

``extract_video`` is the whole recipe for one file (decode, audio features, Whisper),
used by the run loop here and by ``predict`` on new videos, so both see exactly the same
features. ``run_extract`` walks ``GRAPHDIR/videos.parquet`` in order, skips what is
already done, fans the work out to a process pool and writes results, in order, in
chunks (see :mod:`mdr_graph.media.store` for the layout). ``--shard i/n`` keeps the
videos whose stable hash of ``video_id`` is ``i`` modulo ``n``, so ``n`` processes on
any machines split the corpus without talking to each other; ``merge`` joins their
work into one ``index.parquet`` (and runs by itself when the last shard finishes).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from mdr_graph.config import load_toml, save_toml
from mdr_graph.errors import UserError
from mdr_graph.graph_build.tables import videos_path
from mdr_graph.io import write_json, write_parquet, write_text
from mdr_graph.media import store
from mdr_graph.media.corpus import (graph_media_roots, is_missing_file, load_videos, parse_shard,  # noqa: F401
                                    resolve_video_path, shard_from_env, stable_shard)
from mdr_graph.media.decode import DecodeError, decode_video
from mdr_graph.media.extract_config import (CONFIG_FILE, OUTPUT_FIELDS, SECTION,  # noqa: F401
                                            WHISPER_SAMPLE_RATE, ExtractConfig, load_config, validate)

# ---------------------------------------------------------------------------- one video

class _AudioCache:
    """One AudioFeaturizer per setting, built on first use (transforms allocate filter banks)."""

    def __init__(self):
        self._by_key: dict[tuple, Any] = {}

    def get(self, cfg: ExtractConfig):
        from mdr_graph.media.audio_features import AudioFeaturizer

        key = (cfg.sample_rate, cfg.n_mfcc, cfg.n_mels, cfg.fbank)
        if key not in self._by_key:
            self._by_key[key] = AudioFeaturizer(cfg.sample_rate, cfg.n_mfcc, cfg.n_mels, cfg.fbank)
        return self._by_key[key]


_AUDIO = _AudioCache()


def _extract(path: str | Path, cfg: ExtractConfig, whisper_model=None, duration_hint_s: float | None = None,
             threads: int | None = None, timings: dict[str, float] | None = None) -> tuple[dict[str, Any], str]:
    import torch

    from mdr_graph.media.audio_features import fixed_length

    t0 = time.perf_counter()
    need_s = max(cfg.audio_seconds, 30.0 if whisper_model is not None else 0.0)
    dec = decode_video(path, frames=cfg.frames, size=cfg.size, fit=cfg.fit, position=cfg.position,
                       segments=cfg.segments, strategy=cfg.strategy, sample_rate=cfg.sample_rate,
                       audio_seconds=need_s, threads=cfg.decode_threads if threads is None else threads,
                       duration_hint_s=duration_hint_s)
    t1 = time.perf_counter()
    clip = fixed_length(dec.audio, int(round(cfg.audio_seconds * cfg.sample_rate)))
    out: dict[str, Any] = {"frames": torch.from_numpy(dec.frames),
                           "frame_times": torch.from_numpy(dec.frame_times)}
    out.update(_AUDIO.get(cfg)(clip))
    if whisper_model is not None:
        from mdr_graph.media.whisper_features import whisper_features

        from mdr_graph.media.whisper_features import faster_whisper_for

        faster = (faster_whisper_for(cfg.whisper) if cfg.transcribe and cfg.transcribe_backend == "faster-whisper"
                  else None)  # loaded once per process, on first use
        out.update(whisper_features(whisper_model, dec.audio, dec.has_audio, do_transcribe=cfg.transcribe,
                                    max_tokens=cfg.whisper_max_tokens, backend=cfg.transcribe_backend,
                                    faster_model=faster))
    out["has_audio"] = bool(dec.has_audio)
    out["n_frames_sampled"] = int(dec.n_distinct)
    out["duration_s"] = float(dec.duration_s)
    if timings is not None:
        timings["decode"] = timings.get("decode", 0.0) + t1 - t0
        timings["features"] = timings.get("features", 0.0) + time.perf_counter() - t1
    return out, dec.strategy


def extract_video(path: str | Path, cfg: ExtractConfig, whisper_model=None, *,
                  duration_hint_s: float | None = None, timings: dict[str, float] | None = None) -> dict[str, Any]:
    """All features of one video file.

    Returns ``frames`` uint8 ``[F, 3, S, S]``, ``frame_times`` float64 ``[F]`` (seconds),
    ``mfcc`` float32 ``[n_mfcc, T]``, ``fbank`` float32 ``[n_mels, T]`` (when
    ``cfg.fbank``), ``whisper`` float32 ``[d]`` with ``transcript`` and ``language``
    (when a Whisper model is given), ``has_audio``, ``n_frames_sampled`` (distinct
    decoded frames behind the F images) and ``duration_s``.
    Raises :class:`~mdr_graph.media.decode.DecodeError` for a file that cannot be decoded.
    ``timings``, when given, gains the wall seconds spent in ``decode`` (frames and sound)
    and ``features`` (MFCC, filter banks, Whisper).
    """
    return _extract(path, cfg, whisper_model, duration_hint_s, timings=timings)[0]


# ---------------------------------------------------------------------------- corpus

# ---------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(cfg_dict: dict, threads: int) -> None:
    import torch

    torch.set_num_threads(1)
    cfg = ExtractConfig(**cfg_dict)
    _WORKER["cfg"] = cfg
    _WORKER["threads"] = threads
    _WORKER["whisper"] = None
    if cfg.whisper:
        from mdr_graph.media.whisper_features import load_whisper

        _WORKER["whisper"] = load_whisper(cfg.whisper)


def _work(task: tuple[str, str | None, str | None, float | None]) -> dict[str, Any]:
    """Extract one video; any failure becomes the row's ``error``. Arrays travel as numpy."""
    vid, path, pre_error, hint = task
    row: dict[str, Any] = {"video_id": vid, "video_path": path, "error": pre_error, "strategy": None,
                           "seconds": None, "duration_s": hint}
    if pre_error is not None:
        return row
    t0 = time.perf_counter()
    try:
        feats, strategy = _extract(path, _WORKER["cfg"], _WORKER["whisper"], hint, _WORKER["threads"])
    except DecodeError as e:
        row["error"] = str(e)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # an unexpected failure on one file must not stop the corpus
        row["error"] = f"unexpected {type(e).__name__}: {e}"
    else:
        row.update({k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in feats.items()})
        row["strategy"] = strategy
    row["seconds"] = time.perf_counter() - t0
    return row


def _row_bytes(row: dict) -> int:
    return sum(v.nbytes for v in row.values() if isinstance(v, np.ndarray))


def _results(tasks: list, cfg: ExtractConfig, workers: int, threads: int) -> Iterator[dict]:
    """Rows in task order, from this process (workers=1) or a spawn pool."""
    cfg_dict = dataclasses.asdict(cfg)
    if workers <= 1:
        import torch

        before = torch.get_num_threads()
        _init_worker(cfg_dict, threads)  # one torch thread, as in a worker: the same bytes either way
        try:
            for t in tasks:
                yield _work(t)
        finally:
            torch.set_num_threads(before)
            _WORKER.clear()
        return
    import multiprocessing as mp

    pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(cfg_dict, threads))
    try:
        yield from pool.imap(_work, tasks, chunksize=1)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that no ``except Exception`` swallows it."""


def _on_sigterm(signum, frame):  # turn a polite kill into an orderly stop that saves the chunk in hand
    raise _Terminated()


# ---------------------------------------------------------------------------- run

def _check_same_settings(out: Path, cfg: ExtractConfig) -> None:
    path = out / CONFIG_FILE
    if not path.is_file():
        return
    old = load_config(out)
    diff = [f"{k}: {getattr(old, k)!r} there, {getattr(cfg, k)!r} now" for k in OUTPUT_FIELDS
            if getattr(old, k) != getattr(cfg, k)]
    if diff:
        raise UserError(f"{out} holds features extracted with other settings ({'; '.join(diff)}); "
                        f"use the same settings to resume, or a new --out")


def _lock(out: Path, tag: str):
    import fcntl

    f = open(out / f".lock-{tag}", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise UserError(f"another `mdr-graph extract` is already writing shard {tag} of {out}") from None
    return f


def _clean_unfinished(out: Path, tag: str) -> None:
    """Drop what a killed run of this tag left half done: shards without a part index, temp files."""
    d = out / store.SHARD_DIR
    if not d.is_dir():
        return
    for p in d.iterdir():
        if p.name.startswith(f".{tag}-") and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)
        elif p.name.startswith(f"{tag}-") and p.suffix == ".pt" and not p.with_suffix(".parquet").exists():
            p.unlink(missing_ok=True)


def _next_chunk(out: Path, tag: str) -> int:
    ks = [k for t, k, _ in store.list_parts(out) if t == tag]
    return max(ks) + 1 if ks else 0


def _check_same_graph(out: Path, graph_dir: Path) -> None:
    """A store is indexed by one graph's videos: re-indexing it for another would silently
    drop the first graph's features (``train`` on it then finds none)."""
    path = out / CONFIG_FILE
    if not path.is_file():
        return
    old = load_toml(path).get("source", {}).get("graph")
    new = str(graph_dir.resolve())
    if old and os.path.realpath(old) != new:
        raise UserError(f"{out} holds features of the graph {old}, not of {new}; extract {new} into a new --out "
                        f"(or give --graph {old} to resume)")


def _save_config(out: Path, cfg: ExtractConfig, graph_dir: Path) -> None:
    if not (out / CONFIG_FILE).is_file():
        save_toml(out / CONFIG_FILE, {SECTION: cfg, "source": {"graph": str(graph_dir.resolve())}})


def run_extract(graph_dir: str | Path, out_dir: str | Path, cfg: ExtractConfig, workers: int = 1,
                shard: tuple[int, int] | None = None, retry_errors: bool = False) -> dict[str, Any]:
    """Extract every video of ``graph_dir`` (or this shard's share) into ``out_dir``; resumable.

    Returns the summary ``{ok, errors, skipped, total, shard, seconds, videos_per_s, merged}``
    (``skipped`` = already done by an earlier run) and writes it as ``metrics.json``
    (``metrics-<tag>.json`` for one shard of several).
    """
    validate(cfg)
    graph_dir, out = Path(graph_dir), Path(out_dir)
    if cfg.whisper:
        from mdr_graph.media.whisper_features import resolve_whisper

        file, name = resolve_whisper(cfg.whisper)
        cfg = dataclasses.replace(cfg, whisper=name or file)
    if cfg.media_root:
        if not Path(cfg.media_root).is_dir():
            raise UserError(f"media root {cfg.media_root} is not a directory")
        cfg = dataclasses.replace(cfg, media_root=str(Path(cfg.media_root).resolve()))
    workers = max(1, int(workers))
    i, n = shard or (0, 1)
    if n < 1 or not 0 <= i < n:
        raise UserError(f"shard {i}/{n}: need 0 <= i < n")
    tag = store.shard_tag(i, n)
    videos = load_videos(graph_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_same_settings(out, cfg)
    _check_same_graph(out, graph_dir)
    if cfg.whisper:  # fail now, with the reason, rather than in every worker
        from mdr_graph.media.whisper_features import faster_model_dir, load_whisper

        load_whisper(cfg.whisper)
        if cfg.transcribe and cfg.transcribe_backend == "faster-whisper":
            faster_model_dir(cfg.whisper)
    _save_config(out, cfg, graph_dir)
    lock = _lock(out, tag)
    old_handler = None
    if threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run_locked(graph_dir, out, cfg, videos, workers, i, n, tag, retry_errors)
    except _Terminated:  # before the loop: nothing to save
        raise KeyboardInterrupt from None
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
        lock.close()


def _run_locked(graph_dir: Path, out: Path, cfg: ExtractConfig, videos: pd.DataFrame, workers: int,
                i: int, n: int, tag: str, retry_errors: bool) -> dict[str, Any]:
    from mdr_graph.runlog import progress

    _clean_unfinished(out, tag)
    mine = videos if n == 1 else videos[[stable_shard(v, n) == i for v in videos["video_id"]]]
    done = store.dedupe(store.read_parts(out))
    done_ids = set(done["video_id"].astype(str)) if not done.empty else set()
    if retry_errors and not done.empty:
        done_ids -= set(done.loc[done["error"].notna(), "video_id"].astype(str))
    todo = mine[~mine["video_id"].isin(done_ids)]
    skipped = len(mine) - len(todo)
    tasks = []
    roots = graph_media_roots(graph_dir)
    for vid, raw, dur in zip(todo["video_id"], todo["video_path"], todo["duration_s"]):
        path, why = resolve_video_path(raw, graph_dir, cfg.media_root, roots)
        tasks.append((vid, path, why, None if pd.isna(dur) else float(dur)))
    threads = cfg.decode_threads or (max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0)

    counts = {"ok": 0, "errors": 0, "unexpected": 0, "no_file": 0}
    strategies: dict[str, int] = {}
    buffer: list[dict] = []
    buffered = 0
    k = _next_chunk(out, tag)

    def flush() -> None:
        nonlocal buffer, buffered, k
        if buffer:
            store.write_chunk(out, tag, k, buffer)
            k += 1
            buffer, buffered = [], 0

    t0 = time.perf_counter()
    bar = progress(total=len(tasks), unit="video", desc=f"extract {i}/{n}" if n > 1 else "extract",
                   smoothing=0.1)
    results = _results(tasks, cfg, workers, threads)
    try:
        for row in results:
            if row["error"] is None:
                counts["ok"] += 1
                strategies[row["strategy"]] = strategies.get(row["strategy"], 0) + 1
            else:
                counts["errors"] += 1
                counts["unexpected"] += str(row["error"]).startswith("unexpected ")
                counts["no_file"] += is_missing_file(row["error"])
            buffer.append(row)
            buffered += _row_bytes(row)
            bar.update(1)
            bar.set_postfix(ok=counts["ok"], errors=counts["errors"], skipped=skipped, refresh=False)
            if len(buffer) >= cfg.shard_size or buffered >= cfg.shard_mb * 1_000_000:
                flush()
        flush()
    except (KeyboardInterrupt, _Terminated):
        flush()  # everything finished so far is kept; the re-run starts after it
        raise KeyboardInterrupt from None
    finally:
        results.close()  # stops the pool now, not at garbage collection
        bar.close()
    elapsed = time.perf_counter() - t0

    # This shard's index: its videos, from whichever chunks hold them (earlier runs included).
    parts = store.dedupe(store.read_parts(out))
    own = parts[parts["video_id"].isin(set(mine["video_id"]))]
    own = _in_order(own, mine["video_id"])
    write_parquet(out / f"index-{tag}.parquet", own[store.INDEX_COLUMNS].reset_index(drop=True))
    summary: dict[str, Any] = {
        "ok": counts["ok"], "errors": counts["errors"], "skipped": skipped, "total": len(mine),
        "unexpected_errors": counts["unexpected"], "no_file": counts["no_file"], "shard": f"{i}/{n}",
        "workers": workers,
        "seconds": round(elapsed, 3), "videos_per_s": round(len(tasks) / elapsed, 3) if elapsed > 0 else None,
        "strategies": strategies, "featdir": str(out),
    }
    covered = set(parts["video_id"].astype(str)) >= set(videos["video_id"])
    summary["merged"] = covered
    if n > 1:  # written first, so that a merge run by the last shard includes it
        write_json(out / f"metrics-{tag}.json", summary)
    if covered:
        merge(out, graph_dir=graph_dir)
    if n == 1:
        write_json(out / "metrics.json", summary)
    return summary


def _in_order(df: pd.DataFrame, order: Iterable[str]) -> pd.DataFrame:
    rank = {v: j for j, v in enumerate(order)}
    key = df["video_id"].astype(str).map(rank)
    return df.assign(_rank=key.fillna(len(rank)).astype(int)).sort_values(["_rank", "video_id"],
                                                                          kind="stable").drop(columns="_rank")


def _graph_ids(out: Path, graph_dir: str | Path | None) -> list[str] | None:
    candidates = [graph_dir] if graph_dir else []
    try:
        src = load_toml(out / CONFIG_FILE).get("source", {}).get("graph")
        if src:
            candidates.append(src)
    except UserError:
        pass
    for g in candidates:
        if videos_path(g).is_file():
            return load_videos(g)["video_id"].tolist()
    return None


def merge(out_dir: str | Path, graph_dir: str | Path | None = None, allow_partial: bool = False) -> dict[str, Any]:
    """Join every shard's work in ``out_dir`` into ``index.parquet`` and ``errors.jsonl``.

    Rows are in the graph's video order (``graph_dir``, or the graph recorded in
    ``config.toml``). Refuses, naming what is missing, while some graph video has no
    result yet, unless ``allow_partial``. Without a readable graph it relies on every
    shard having finished. Returns ``{ok, errors, total, missing}`` (``missing`` is None
    when there was no graph to count against).
    """
    out = Path(out_dir)
    if not (out / CONFIG_FILE).is_file():
        raise UserError(f"{out} is not a feature directory (no {CONFIG_FILE}); run `mdr-graph extract` first")
    parts = store.dedupe(store.read_parts(out))
    if graph_dir:
        _check_same_graph(out, Path(graph_dir))
    ids = _graph_ids(out, graph_dir)
    unfinished = _unfinished_shards(out)
    hint = f" (unfinished shards: {', '.join(unfinished)})" if unfinished else ""
    missing: int | None = None
    if ids is not None:  # the graph says what "complete" means
        have = set(parts["video_id"].astype(str)) if not parts.empty else set()
        absent = [v for v in ids if v not in have]
        missing = len(absent)
        if absent and not allow_partial:
            raise UserError(f"{len(absent)} video(s) of the graph have no result yet, e.g. {absent[0]}{hint}; "
                            f"finish every `--shard i/n` run, or merge anyway with --allow-partial")
        parts = _in_order(parts[parts["video_id"].astype(str).isin(set(ids))], ids) if not parts.empty else parts
    else:  # graph not readable here: trust the shards' own completion marks
        if unfinished and not allow_partial:
            raise UserError(f"shards {', '.join(unfinished)} of {out} have not finished (and no graph to check "
                            f"against: pass --graph GRAPHDIR); finish them, or merge anyway with --allow-partial")
        parts = parts.sort_values("video_id", kind="stable") if not parts.empty else parts
    index = parts.reset_index(drop=True)
    write_parquet(out / store.INDEX_FILE, index[store.INDEX_COLUMNS] if not index.empty else
                  pd.DataFrame({c: pd.Series(dtype="object") for c in store.INDEX_COLUMNS}))
    errs = store.errors_records(index) if not index.empty else []
    write_text(out / store.ERRORS_FILE, "".join(json.dumps(e) + "\n" for e in errs))
    n_ok = int(index["error"].isna().sum()) if not index.empty else 0
    summary = {"ok": n_ok, "errors": len(errs), "total": len(index), "missing": missing}
    shards = {p.stem.removeprefix("metrics-"): json.loads(p.read_text())
              for p in sorted(out.glob("metrics-s*.json"))}
    if shards:  # a single-process run writes its own metrics.json
        write_json(out / "metrics.json", {**summary, "shards": shards})
    return summary


def _unfinished_shards(out: Path) -> list[str]:
    """Tags that wrote chunks but no final ``index-<tag>.parquet``, and absent members of each shard set."""
    finished = {p.stem.removeprefix("index-") for p in out.glob("index-s*.parquet")}
    tags = {t for t, _, _ in store.list_parts(out)} | finished
    expected = set()
    for t in tags:
        try:
            n = int(t.split("of")[1])
        except (IndexError, ValueError):
            continue
        expected |= {store.shard_tag(j, n) for j in range(n)}
    return sorted((tags | expected) - finished)


def print_summary(summary: dict[str, Any], file=None) -> None:
    """One line: ``ok, errors, skipped (already done)`` and the rate."""
    rate = summary.get("videos_per_s")
    shard = summary.get("shard", "0/1")
    print(f"extract{'' if shard == '0/1' else ' shard ' + shard}: ok {summary['ok']}, errors {summary['errors']}, "
          f"skipped (already done) {summary.get('skipped', 0)}, of {summary.get('total', 0)}"
          + (f"; {rate:.2f} videos/s" if rate else ""), file=file or sys.stdout)
