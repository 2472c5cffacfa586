"""The extract run: index and errors files, settings, resume after a kill, parallel workers."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from mdr_graph.errors import UserError
from mdr_graph.media import store
from mdr_graph.media.extract import (ExtractConfig, extract_video, load_config, resolve_video_path, run_extract,
                                     validate)
from mdr_graph.media.store import FeatureStore
from mdr_graph.testing.clips import decode_index, write_clip

FAST = dict(size=32, audio_seconds=2.0, shard_size=3)


def assert_same_features(a: FeatureStore, b: FeatureStore) -> None:
    assert a.ids == b.ids
    for vid in a.ids:
        x, y = a.get(vid), b.get(vid)
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], torch.Tensor):
                assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape
                assert x[k].numpy().tobytes() == y[k].numpy().tobytes(), (vid, k)
            else:
                assert x[k] == y[k], (vid, k)


def test_run_writes_index_errors_and_config(tmp_path, graph, corpus):
    out = tmp_path / "feats"
    s = run_extract(graph, out, ExtractConfig(fbank=True, **FAST))
    assert (s["ok"], s["errors"], s["skipped"], s["total"]) == (9, 4, 0, 13) and s["merged"]

    index = pd.read_parquet(out / "index.parquet")
    assert list(index.columns) == store.INDEX_COLUMNS
    assert index["video_id"].tolist() == [r["video_id"] for r in corpus["rows"]]  # graph order
    ok = index[index["error"].isna()]
    assert ok["shard"].str.startswith("shards/").all() and (ok["n_frames_sampled"] == 2).all()
    silent = index.set_index("video_id").loc[corpus["silent"]]
    assert not silent["has_audio"] and pd.isna(silent["error"])  # no audio track is not an error

    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {e["video_id"] for e in errors} == set(corpus["bad"])
    for e in errors:
        assert e["error"].startswith(corpus["bad"][e["video_id"]]), e
    assert load_config(out) == ExtractConfig(fbank=True, **FAST)
    assert json.loads((out / "metrics.json").read_text())["ok"] == 9

    fs = FeatureStore(out)
    item = fs.get("vid03")
    assert item["frames"].shape == (2, 3, 32, 32) and item["frames"].dtype == torch.uint8
    assert item["mfcc"].shape == (40, 201) and item["fbank"].shape == (64, 201)
    assert item["has_audio"] and item["duration_s"] == pytest.approx(3.5)
    # vid03: 3.5 s at 10 fps = 35 frames; segment centres at 0.875 s and 2.625 s
    assert [decode_index(x) for x in item["frames"]] == [8, 26]
    assert item["frame_times"].tolist() == pytest.approx([0.8, 2.6])
    assert fs.get(corpus["silent"])["has_audio"] is False


def test_store_matches_extract_video(tmp_path, graph, corpus):
    cfg = ExtractConfig(**FAST)
    run_extract(graph, tmp_path / "f", cfg)
    fs = FeatureStore(tmp_path / "f")
    row = next(r for r in corpus["rows"] if r["video_id"] == "vid06")
    direct = extract_video(row["video_path"], cfg)
    stored = fs.get("vid06")
    for k, v in direct.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, stored[k]), k
        else:
            assert v == stored[k], k


def test_rerun_skips_everything_done(tmp_path, graph):
    out = tmp_path / "feats"
    run_extract(graph, out, ExtractConfig(**FAST))
    before = (out / "index.parquet").read_bytes()
    s = run_extract(graph, out, ExtractConfig(**FAST))
    assert (s["ok"], s["errors"], s["skipped"]) == (0, 0, 13)
    assert pd.read_parquet(out / "index.parquet").equals(pd.read_parquet(pd.io.common.BytesIO(before)))


def test_retry_errors_picks_up_a_repaired_file(tmp_path, corpus, make_graph):
    rows = [dict(r) for r in corpus["rows"][:3]]
    repaired = tmp_path / "later.mp4"
    rows.append({"video_id": "later", "video_path": str(repaired), "duration_s": 2.0})
    g = make_graph(tmp_path / "g", rows)
    out = tmp_path / "f"
    assert run_extract(g, out, ExtractConfig(**FAST))["errors"] == 1
    write_clip(repaired, seconds=2.0, fps=10)
    assert run_extract(g, out, ExtractConfig(**FAST))["skipped"] == 4  # errors count as done...
    s = run_extract(g, out, ExtractConfig(**FAST), retry_errors=True)  # ...unless retried
    assert (s["ok"], s["skipped"]) == (1, 3)
    fs = FeatureStore(out)
    assert "later" in fs and not (out / "errors.jsonl").read_text().strip()


def test_other_settings_refuse_to_resume(tmp_path, graph):
    run_extract(graph, tmp_path / "f", ExtractConfig(**FAST))
    with pytest.raises(UserError, match="size: 32 there, 48 now"):
        run_extract(graph, tmp_path / "f", ExtractConfig(**{**FAST, "size": 48}))
    # how the frames are reached does not change them, so it may differ
    run_extract(graph, tmp_path / "f", ExtractConfig(**{**FAST, "strategy": "scan", "shard_size": 7}))


def test_invalid_settings_are_named():
    with pytest.raises(UserError, match="fit='square'"):
        validate(ExtractConfig(fit="square"))
    with pytest.raises(UserError, match="n_mfcc"):
        validate(ExtractConfig(n_mfcc=80, n_mels=64))
    with pytest.raises(UserError, match="Whisper needs 16000"):
        validate(ExtractConfig(whisper="tiny", sample_rate=8000))


def test_paths_never_leave_the_media_root(tmp_path, corpus):
    inside = corpus["rows"][0]["video_path"]
    root = str(Path(inside).parent)
    assert resolve_video_path(inside, tmp_path, media_root=root) == (os.path.realpath(inside), None)
    path, why = resolve_video_path(inside, tmp_path, media_root=str(tmp_path))
    assert path is None and "outside" in why
    path, why = resolve_video_path("../../etc/passwd", tmp_path / "graph")
    assert path is None and "outside" in why
    (tmp_path / "link.mp4").symlink_to(inside)  # a symlink out of the root is refused too
    path, why = resolve_video_path("link.mp4", tmp_path, media_root=str(tmp_path / "sub"))
    assert path is None
    assert resolve_video_path(None, tmp_path)[1].startswith("no media file")


def test_leftovers_of_a_killed_write_are_redone(tmp_path, graph):
    """A kill between a shard's tensors and its part index leaves an orphan shard and temp files."""
    cfg = ExtractConfig(**FAST)
    ref = tmp_path / "ref"
    run_extract(graph, ref, cfg)
    out = tmp_path / "f"
    run_extract(graph, out, cfg)
    parts = store.list_parts(out)
    tag, k, last = parts[-2]  # a chunk with features in it
    lost = set(pd.read_parquet(last)["video_id"])
    last.unlink()
    (out / "index.parquet").unlink()
    (out / store.SHARD_DIR / f".{tag}-{k + 7:05d}.pt.abc.tmp").write_bytes(b"half")
    s = run_extract(graph, out, cfg)
    assert s["ok"] + s["errors"] == len(lost) and s["skipped"] == 13 - len(lost)
    assert not list((out / store.SHARD_DIR).glob(".*.tmp"))
    assert not (out / store.SHARD_DIR / f"{tag}-{k:05d}.pt").exists()  # orphan removed, redone in a new chunk
    assert_same_features(FeatureStore(ref), FeatureStore(out))


N_MANY = 48
MANY_CFG = ExtractConfig(size=32, audio_seconds=2.0, shard_size=1)


@pytest.fixture
def many_graph(tmp_path, corpus, make_graph):
    """48 videos (ids over the nine good clips, reused): a run of a few seconds, so a kill lands mid-run."""
    good = [r for r in corpus["rows"] if r["video_id"] in corpus["good"]]
    rows = [{**good[i % len(good)], "video_id": f"many{i:02d}"} for i in range(N_MANY)]
    return make_graph(tmp_path / "many", rows)


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, many_graph):
    out = tmp_path / "f"
    cmd = [sys.executable, "-m", "mdr_graph.cli", "extract", "--graph", str(many_graph), "--out", str(out),
           "--size", "32", "--audio-seconds", "2", "--shard-size", "1"]
    proc = subprocess.Popen(cmd, env={**os.environ, "MDR_GRAPH_NO_PROGRESS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(store.list_parts(out)) < 3:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(store.dedupe(store.read_parts(out)))
    assert 3 <= done_before < N_MANY, "the kill should land mid-run"
    assert not (out / "index.parquet").exists()
    s = run_extract(many_graph, out, MANY_CFG)
    assert s["skipped"] == done_before and s["ok"] == N_MANY - done_before
    idx = pd.read_parquet(out / "index.parquet")
    assert idx["video_id"].tolist() == [f"many{i:02d}" for i in range(N_MANY)] and idx["error"].isna().all()
    ref = tmp_path / "ref"
    run_extract(many_graph, ref, MANY_CFG)
    assert_same_features(FeatureStore(ref), FeatureStore(out))


def test_sigterm_saves_finished_videos(tmp_path, many_graph, monkeypatch):
    """A polite kill (SIGTERM) mid-run keeps every finished video, even in an unflushed chunk."""
    from mdr_graph.media import extract as extract_mod

    cfg = dataclasses.replace(MANY_CFG, shard_size=1000)  # nothing would reach disk before the end...
    real_work, calls = extract_mod._work, []

    def work_then_term(task):  # the real signal, delivered to this process as the 17th video starts
        calls.append(task[0])
        if len(calls) == 17:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_work(task)

    monkeypatch.setattr(extract_mod, "_work", work_then_term)
    out = tmp_path / "f"
    with pytest.raises(KeyboardInterrupt):
        run_extract(many_graph, out, cfg)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored
    done = len(store.read_parts(out))  # ...but a polite kill writes what was finished
    assert done == 16
    monkeypatch.setattr(extract_mod, "_work", real_work)
    s = run_extract(many_graph, out, cfg)
    assert s["skipped"] == done and s["ok"] == N_MANY - done


@pytest.mark.slow
def test_two_workers_give_the_same_features(tmp_path, graph):
    run_extract(graph, tmp_path / "one", ExtractConfig(**FAST), workers=1)
    s = run_extract(graph, tmp_path / "two", ExtractConfig(**FAST), workers=2)
    assert (s["ok"], s["errors"], s["workers"]) == (9, 4, 2)
    assert_same_features(FeatureStore(tmp_path / "one"), FeatureStore(tmp_path / "two"))
    a = pd.read_parquet(tmp_path / "one" / "index.parquet")
    b = pd.read_parquet(tmp_path / "two" / "index.parquet")
    pd.testing.assert_frame_equal(a, b)


# Real encodes (needs ../shared/data): one small file that decodes, one whose garbled copy fails mid-decode.
REAL_OK, REAL_GARBLED = "7348942217689451806", "7340853821226175787"


def garble_middle(src: Path, dst: Path, seed: int = 0) -> Path:
    """A copy with bytes 40-60 % replaced by noise: the header and index are intact, the decoder fails midway."""
    import numpy as np

    data = bytearray(src.read_bytes())
    lo, hi = int(len(data) * 0.4), int(len(data) * 0.6)
    data[lo:hi] = np.random.default_rng(seed).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.needs_shared
def test_a_real_file_failing_midway_loses_nothing(tmp_path, corpus, make_graph, real_videos, monkeypatch):
    """The SIGTERM test above with real encodes in the run: a real mp4 whose middle is garbled fails while
    decoding and is reported with its reason, a kill as the next real file starts keeps every finished
    video (the failed one included), and the re-run does only the rest, with the same bytes as one run."""
    from mdr_graph.media import extract as extract_mod

    garbled = garble_middle(real_videos / f"{REAL_GARBLED}.mp4", tmp_path / "garbled.mp4")
    synth = [r for r in corpus["rows"] if r["video_id"] in corpus["good"]][:4]
    rows = synth[:2] + [
        {"video_id": "real-ok", "video_path": str(real_videos / f"{REAL_OK}.mp4")},
        {"video_id": "real-garbled", "video_path": str(garbled)},
        {"video_id": "real-again", "video_path": str(real_videos / f"{REAL_OK}.mp4")},
    ] + synth[2:]
    ids = [r["video_id"] for r in rows]
    graph = make_graph(tmp_path / "g", rows)
    cfg = ExtractConfig(size=32, audio_seconds=2.0, shard_size=1000)  # nothing flushed before the end...
    real_work, calls = extract_mod._work, []

    def work_then_term(task):  # the real signal, as the fifth video (the second real file) starts
        calls.append(task[0])
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_work(task)

    monkeypatch.setattr(extract_mod, "_work", work_then_term)
    out = tmp_path / "f"
    with pytest.raises(KeyboardInterrupt):
        run_extract(graph, out, cfg)
    parts = store.read_parts(out)  # ...but the kill wrote the four finished ones
    assert parts["video_id"].tolist() == ids[:4]
    failed = parts.set_index("video_id")["error"]
    assert failed.drop("real-garbled").isna().all()
    assert failed["real-garbled"].startswith("video decoding failed")
    monkeypatch.setattr(extract_mod, "_work", real_work)
    s = run_extract(graph, out, cfg)
    assert (s["skipped"], s["ok"], s["errors"]) == (4, 3, 0)
    errors = [json.loads(line) for line in (out / store.ERRORS_FILE).read_text().splitlines()]
    assert [e["video_id"] for e in errors] == ["real-garbled"]
    assert errors[0]["error"].startswith("video decoding failed")
    ref = tmp_path / "ref"
    run_extract(graph, ref, cfg)
    assert_same_features(FeatureStore(ref), FeatureStore(out))
    real = FeatureStore(out).get("real-ok")
    assert real["has_audio"] and real["frames"].shape == (2, 3, 32, 32) and real["frames"].float().std() > 10
