"""The ablations on real media: re-extracted frame counts, positional encoding, variants, skip reasons."""

from __future__ import annotations

import pytest

from mdr_graph.cli import main
from mdr_graph.io import read_json
from mdr_graph.media.store import FeatureStore


@pytest.mark.slow
def test_ablations_on_a_small_synthetic_corpus(tmp_path):
    corpus, graph, feats, out = tmp_path / "corpus", tmp_path / "graph", tmp_path / "feats", tmp_path / "cmp"
    assert main(["synth", "--out", str(corpus), "--videos", "24", "--songs", "6", "--seconds", "1",
                 "--workers", "1"]) == 0
    assert main(["build-graph", str(corpus / "metadata.json"), "--media-root", str(corpus / "videos"),
                 "--out", str(graph)]) == 0
    assert main(["extract", "--graph", str(graph), "--out", str(feats), "--audio-seconds", "1"]) == 0
    assert main(["compare", "--graph", str(graph), "--features", str(feats), "--out", str(out), "--seeds", "1",
                 "--models", "coattention", "--modalities", "meta,vit", "--ablate", "--ablate-frames", "1,3",
                 "--epochs", "1", "--d-model", "16", "--heads", "2", "--batch-size", "8"]) == 0
    summary = read_json(out / "compare.json")
    abl = {a["name"]: a for a in summary["ablations"]}
    assert set(abl) == {"drop-meta", "drop-vit", "positional-encoding-off", "fbank-instead-of-mfcc", "frames-1",
                        "frames-3", "guided"}
    assert "mfcc is not among" in abl["fbank-instead-of-mfcc"]["skip"]
    for name, a in abl.items():
        if not a["skip"]:
            assert a["runs"]["0"]["status"] == "done", (name, a["runs"])
    # the frames ablation re-extracted the frames with n per video and trained on them
    for n in (1, 3):
        store = FeatureStore(out / "ablations" / f"features-frames{n}")
        assert store.config.frames == n
        assert tuple(store.get(store.ids[0])["frames"].shape[:2]) == (n, 3)
        m = read_json(out / "ablations" / f"frames-{n}" / "seed0" / "metrics.json")
        assert m["split_hash"] == summary["splits"]["0"]["hash"]
    cfg = (out / "ablations" / "positional-encoding-off" / "seed0" / "config.toml").read_text()
    assert "positional_encoding = false" in cfg
    assert "| frames-3 |" in (out / "report.md").read_text()
