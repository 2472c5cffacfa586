"""--shard i/n: every video exactly once, and 3 merged shards equal one process, byte for byte."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from mdr_graph.errors import UserError
from mdr_graph.media import store
from mdr_graph.media.extract import ExtractConfig, merge, parse_shard, run_extract, shard_from_env, stable_shard
from mdr_graph.media.store import FeatureStore

CFG = ExtractConfig(size=32, audio_seconds=2.0, fbank=True, shard_size=2)


def test_stable_shard_is_fixed_and_balanced():
    import hashlib

    # A stored FEATDIR depends on this assignment, so it must never change between versions or
    # machines: blake2b (8 bytes, big-endian) of the UTF-8 id, modulo n. Python's hash() would not do.
    assert [stable_shard(v, 7) for v in ("a", "vid00", "6842059386932038917")] == [2, 0, 1]
    digest = hashlib.blake2b(b"6842059386932038917", digest_size=8).digest()
    assert stable_shard("6842059386932038917", 1000) == int.from_bytes(digest, "big") % 1000
    assert [stable_shard(f"{i}", 1) for i in range(5)] == [0] * 5
    counts = pd.Series([stable_shard(str(7 * 10**18 + i), 4) for i in range(4000)]).value_counts()
    assert set(counts.index) == {0, 1, 2, 3} and counts.min() > 900


def test_three_shards_cover_every_video_once_and_merge_equals_one_process(tmp_path, graph, corpus):
    single = tmp_path / "single"
    run_extract(graph, single, CFG)
    sharded = tmp_path / "sharded"
    summaries = [run_extract(graph, sharded, CFG, shard=(i, 3)) for i in range(3)]
    assert [s["merged"] for s in summaries] == [False, False, True]  # the last one to finish merges
    per_shard = [pd.read_parquet(sharded / f"index-{store.shard_tag(i, 3)}.parquet") for i in range(3)]
    ids = [v for idx in per_shard for v in idx["video_id"]]
    assert sorted(ids) == sorted(r["video_id"] for r in corpus["rows"])  # exactly once each
    for i, idx in enumerate(per_shard):
        assert all(stable_shard(v, 3) == i for v in idx["video_id"])
    assert sum(s["total"] for s in summaries) == len(corpus["rows"])

    a, b = pd.read_parquet(single / "index.parquet"), pd.read_parquet(sharded / "index.parquet")
    where = ["shard", "offset"]  # which file holds a video differs; nothing else may
    pd.testing.assert_frame_equal(a.drop(columns=where), b.drop(columns=where))
    assert (single / "errors.jsonl").read_bytes() == (sharded / "errors.jsonl").read_bytes()
    fa, fb = FeatureStore(single), FeatureStore(sharded)
    assert fa.ids == fb.ids and len(fa) == 9
    for vid in fa.ids:
        x, y = fa.get(vid), fb.get(vid)
        assert x.keys() == y.keys()
        for k, v in x.items():
            if isinstance(v, torch.Tensor):
                assert v.dtype == y[k].dtype and v.numpy().tobytes() == y[k].numpy().tobytes(), (vid, k)
            else:
                assert v == y[k]
    metrics = json.loads((sharded / "metrics.json").read_text())
    assert metrics["ok"] == 9 and len(metrics["shards"]) == 3


def test_merge_refuses_until_every_shard_is_done(tmp_path, graph):
    out = tmp_path / "f"
    run_extract(graph, out, CFG, shard=(0, 3))
    run_extract(graph, out, CFG, shard=(2, 3))
    assert not (out / "index.parquet").exists()
    with pytest.raises(UserError, match=r"no result yet.*s001of003"):
        merge(out)
    partial = merge(out, allow_partial=True)
    assert partial["missing"] > 0 and partial["total"] + partial["missing"] == 13
    run_extract(graph, out, CFG, shard=(1, 3))
    assert merge(out)["missing"] == 0


def test_resharding_reuses_finished_work(tmp_path, graph):
    out = tmp_path / "f"
    first = run_extract(graph, out, CFG, shard=(0, 2))
    s = run_extract(graph, out, CFG)  # one process finishes the job without redoing shard 0 of 2
    assert s["skipped"] == first["total"] and s["ok"] + s["errors"] == 13 - first["total"]


def test_shard_arguments():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "1-4", "-1/3", "a/b"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)


def test_torchrun_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    assert shard_from_env() == (2, 4)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert shard_from_env() is None
    monkeypatch.delenv("WORLD_SIZE")
    assert shard_from_env() is None


def test_two_processes_cannot_write_the_same_shard(tmp_path, graph):
    from mdr_graph.media.extract import _lock

    out = tmp_path / "f"
    out.mkdir()
    held = _lock(out, "s000of001")
    try:
        with pytest.raises(UserError, match="already writing shard s000of001"):
            run_extract(graph, out, CFG)
    finally:
        held.close()


def test_merge_without_the_graph_trusts_finished_shards(tmp_path, graph):
    import shutil

    out = tmp_path / "f"
    run_extract(graph, out, CFG, shard=(0, 2))
    run_extract(graph, out, CFG, shard=(1, 2))
    expected = pd.read_parquet(out / "index.parquet").sort_values("video_id").reset_index(drop=True)
    shutil.rmtree(graph)  # e.g. merging on a machine that does not mount the graph
    (out / "index.parquet").unlink()
    s = merge(out)
    assert s["missing"] is None and s["total"] == 13
    pd.testing.assert_frame_equal(pd.read_parquet(out / "index.parquet"), expected)  # by video id, then
    (out / "index-s001of002.parquet").unlink()  # as if shard 1 had not finished
    with pytest.raises(UserError, match=r"s001of002 of .* have not finished"):
        merge(out)
