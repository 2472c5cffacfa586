"""FeatureStore: cheap to open, lazy, bounded memory, safe in DataLoader workers."""

from __future__ import annotations

import pickle

import pytest
import torch

from mdr_graph.errors import UserError
from mdr_graph.media.extract import ExtractConfig, run_extract
from mdr_graph.media.store import FeatureStore


@pytest.fixture(scope="module")
def feats(tmp_path_factory, corpus, make_graph):
    root = tmp_path_factory.mktemp("store")
    g = make_graph(root / "graph", corpus["rows"])
    run_extract(g, root / "feats", ExtractConfig(size=16, audio_seconds=1.0, shard_size=2))
    return root / "feats"


def test_open_is_lazy_and_lookup_works(feats, corpus):
    fs = FeatureStore(feats, cache_shards=2)
    assert len(fs._cache) == 0  # nothing loaded until asked
    assert len(fs) == 9 and fs.ids == corpus["good"]
    assert "vid00" in fs and "corrupt" not in fs and "never-seen" not in fs
    assert fs.config.size == 16 and fs.config.shard_size == 2
    assert fs.error("corrupt").startswith("cannot open container") and fs.error("vid00") is None
    with pytest.raises(KeyError, match="corrupt has no features: cannot open"):
        fs.get("corrupt")
    assert fs[0]["video_id"] == fs.ids[0] and fs["vid05"]["video_id"] == "vid05"


def test_cache_holds_a_few_shards_and_items_are_copies(feats):
    fs = FeatureStore(feats, cache_shards=2)
    for vid in fs.ids:
        fs.get(vid)
    assert len(fs._cache) == 2
    a = fs.get("vid00")["frames"]
    a.zero_()
    assert fs.get("vid00")["frames"].sum() > 0  # the caller's tensor is its own


def test_pickles_without_its_cache(feats):
    fs = FeatureStore(feats)
    fs.get("vid01")
    clone = pickle.loads(pickle.dumps(fs))
    assert len(clone._cache) == 0 and torch.equal(clone.get("vid01")["mfcc"], fs.get("vid01")["mfcc"])


def test_dataloader_workers(feats):
    fs = FeatureStore(feats)
    fs.get("vid00")  # a warm parent cache must not leak into the workers
    loader = torch.utils.data.DataLoader(fs, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["video_id"]) for b in batches) == 9
    assert batches[0]["frames"].shape == (3, 2, 3, 16, 16) and batches[0]["frames"].dtype == torch.uint8
    assert torch.equal(batches[0]["mfcc"][0], fs.get(fs.ids[0])["mfcc"])


def test_missing_index_explains_what_to_do(tmp_path):
    with pytest.raises(UserError, match="run `mdr-graph extract"):
        FeatureStore(tmp_path)
    (tmp_path / "index-s000of002.parquet").write_bytes(b"")
    with pytest.raises(UserError, match="--merge"):
        FeatureStore(tmp_path)
