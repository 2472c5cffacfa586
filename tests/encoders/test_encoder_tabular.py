"""Audio-MLP, Whisper, network, metadata and text encoders, built through the modality registry."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zlib

import numpy as np
import pandas as pd
import pytest
import torch

from mdr_graph.encoders.audio import AudioMLPEncoder
from mdr_graph.encoders.convlstm import ConvLSTMAutoencoder, save_convlstm
from mdr_graph.encoders.meta import META_FEATURES, meta_features
from mdr_graph.encoders.text import hash_bag_of_words, tokenize, video_texts
from mdr_graph.errors import UserError
from mdr_graph.modalities import build_encoder, check_modality

SHAPES = {"vit": (2, 3, 32, 32), "convlstm": (2, 3, 32, 32), "mfcc": (8, 21), "fbank": (6, 21), "whisper": (24,),
          "network": (10,), "meta": (12,), "text": (64,)}


def _batch(name, shape, b):
    if check_modality(name).dtype == torch.uint8:
        return torch.randint(0, 256, (b, *shape), dtype=torch.uint8)
    return torch.randn(b, *shape)


def test_every_registered_encoder_gives_tokens(tmp_path):
    save_convlstm(tmp_path / "c.pt", ConvLSTMAutoencoder(hidden=8, embed_dim=16, downsample=2), (2, 3, 32, 32), 1)

    class Cfg:
        patch, heads, text_dim, convlstm_path, dropout, text_features = 16, 2, 64, tmp_path / "c.pt", 0.0, "hashed"

    for name, shape in SHAPES.items():
        enc = build_encoder(name, shape, 16, Cfg()).eval()
        out = enc(_batch(name, shape, 3))
        assert out.dim() == 3 and out.shape[0] == 3 and out.shape[2] == 16, name
        assert torch.isfinite(out).all(), name
    assert build_encoder("vit", SHAPES["vit"], 16, Cfg())(_batch("vit", SHAPES["vit"], 1)).shape[1] == 2 * 4


def test_registry_rejects_unknown_modalities_and_wrong_ranks():
    with pytest.raises(UserError, match="unknown modality 'video'"):
        build_encoder("video", (3,), 8)
    with pytest.raises(UserError, match="2-d per-sample input"):
        build_encoder("mfcc", (40,), 8)
    with pytest.raises(UserError, match="text_dim is 32"):
        build_encoder("text", (64,), 8, type("C", (), {"text_dim": 32, "text_features": "hashed"})())


def test_missing_knobs_take_the_fusion_config_defaults():
    """An encoder built without a config reads FusionConfig's defaults (the one default per knob)."""
    from mdr_graph.fusion_config import FusionConfig

    enc = build_encoder("vit", (1, 3, 32, 32), 16, type("C", (), {"heads": 2})())
    assert enc.patch == FusionConfig.patch
    assert type(build_encoder("text", (1,), 8)).__name__ == "VectorEncoder"   # text_features "ridge"


@pytest.mark.parametrize("chunks,hidden", [(1, 0), (1, 8), (4, 8), (1, 32)])
def test_audio_mlp_tokens(chunks, hidden):
    enc = AudioMLPEncoder((8, 21), 16, hidden=hidden, chunks=chunks)
    out = enc(torch.randn(5, 8, 21))
    assert out.shape == (5, chunks, 16)
    direct = not 0 < hidden < 16  # a bottleneck only when it is narrower than d_model
    assert isinstance(enc.proj, torch.nn.Linear) == direct
    first = enc.proj if direct else enc.proj[0]
    assert first.in_features == 8 * math.ceil(21 / chunks) and first.out_features == (16 if direct else hidden)


def test_audio_mlp_uses_the_timing_of_every_coefficient():
    torch.manual_seed(0)
    enc = AudioMLPEncoder((4, 10), 8, chunks=1).eval()
    x = torch.randn(1, 4, 10)
    assert not torch.allclose(enc(x), enc(x.flip(-1)))  # a flattening MLP, not a pooled feature
    with pytest.raises(UserError, match="audio_chunks"):
        AudioMLPEncoder((4, 10), 8, chunks=11)


def test_tokenize_keeps_hashtags_apart_from_words():
    assert tokenize("Dance #FYP dance, fyp!  Ça va") == ["dance", "#fyp", "dance", "fyp", "ça", "va"]
    assert tokenize(None) == []


def test_hash_bag_of_words_counts_log1p_in_crc32_buckets():
    dim = 1000
    x = hash_bag_of_words(["a b a #a", ""], dim)
    assert x.shape == (2, dim) and x.dtype == torch.float32
    bucket = {t: zlib.crc32(t.encode()) % dim for t in ("a", "b", "#a")}
    assert len(set(bucket.values())) == 3
    assert x[0, bucket["a"]].item() == pytest.approx(math.log1p(2))
    assert x[0, bucket["b"]].item() == pytest.approx(math.log1p(1))
    assert x[0, bucket["#a"]].item() == pytest.approx(math.log1p(1))
    assert x[0].count_nonzero() == 3 and x[1].count_nonzero() == 0


def test_hashing_is_stable_across_processes():
    # another process with another string-hash seed must put the tokens in the same buckets
    code = ("from mdr_graph.encoders.text import hash_bag_of_words as h;"
            "print(h(['viral dance #fyp tiktok'], 97)[0].nonzero().flatten().tolist())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    here = hash_bag_of_words(["viral dance #fyp tiktok"], 97)[0].nonzero().flatten().tolist()
    assert out.strip() == str(here) and len(here) == 4


def test_video_texts_adds_missing_hashtags_and_transcripts_once():
    videos = pd.DataFrame({"video_id": ["1", "2"], "caption": ["so fun #fyp", None],
                           "hashtags": [["fyp", "dance"], None]})
    texts = video_texts(videos, transcripts={"2": "hello there"})
    assert texts == ["so fun #fyp #dance", "hello there"]


def test_meta_features_use_no_engagement_counts():
    base = pd.DataFrame({
        "video_id": ["1", "2"], "duration_s": [10.0, None], "hashtags": [["a", "b"], []], "caption": ["hi", ""],
        "create_time": pd.to_datetime(["2020-12-01T18:30:00Z", "2020-12-02T03:00:00Z"]),
        "author_followers": [1000, None], "song_original": pd.array([True, None], dtype="boolean"),
        "plays": [10, 20], "likes": [1, 2], "shares": [0, 1], "comments": [3, 4], "saves": [0, 0]})
    m = meta_features(base)
    assert m.shape == (2, len(META_FEATURES)) and m.dtype == np.float32
    assert m[0, META_FEATURES.index("song_original")] == 1 and m[1, META_FEATURES.index("original_missing")] == 1
    assert m[0, META_FEATURES.index("log_hashtag_count")] == pytest.approx(math.log1p(2))
    changed = base.assign(plays=[10**9, 5], likes=[7, 7], shares=[99, 99], comments=[0, 0], saves=[5, 5])
    assert np.array_equal(meta_features(changed), m)
    assert meta_features(base.iloc[:0]).shape == (0, len(META_FEATURES))
