"""Whisper offline: a tiny random checkpoint in the real format loads, embeds and transcribes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper

from mdr_graph.errors import UserError
from mdr_graph.media.decode import decode_video
from mdr_graph.media.extract import ExtractConfig, extract_video
from mdr_graph.testing.clips import write_clip
from mdr_graph.media.whisper_features import (TINY_TEST_DIMS, embed, load_whisper, transcribe, whisper_features,
                                              write_tiny_checkpoint)


@pytest.fixture(scope="module")
def model(tiny_whisper):
    return load_whisper(str(tiny_whisper))


def test_checkpoint_is_the_real_format(tiny_whisper):
    ck = torch.load(tiny_whisper, weights_only=True)
    assert set(ck) == {"dims", "model_state_dict"} and ck["dims"] == TINY_TEST_DIMS
    m = whisper.load_model(str(tiny_whisper), device="cpu")  # whisper's own loader, offline
    assert m.dims.n_audio_state == 64 and m.is_multilingual


def test_same_seed_same_weights(tmp_path, tiny_whisper):
    again = torch.load(write_tiny_checkpoint(tmp_path / "again.pt", seed=0), weights_only=True)
    first = torch.load(tiny_whisper, weights_only=True)
    key = "encoder.conv1.weight"
    assert torch.equal(again["model_state_dict"][key], first["model_state_dict"][key])


def test_embedding_shape_and_pooling(model):
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(16000 * 4)).astype(np.float32)
    e = embed(model, audio)
    assert e.shape == (64,) and e.dtype == torch.float32 and torch.isfinite(e).all()
    # pooling covers the sound only: the first 4 s = 200 encoder positions
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)), n_mels=80)
    with torch.no_grad():
        full = model.embed_audio(mel[None])[0]
    torch.testing.assert_close(e, full[:200].mean(0))


def test_transcribe_runs(model):
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000 * 3) / 16000)).astype(np.float32)
    text, lang = transcribe(model, audio, max_tokens=4)
    assert isinstance(text, str) and lang in whisper.tokenizer.LANGUAGES


def test_silent_clip_gets_no_transcript(model):
    out = whisper_features(model, np.zeros(0, np.float32), has_audio=False)
    assert out["whisper"].shape == (64,) and out["transcript"] == "" and out["language"] == ""


def test_extract_video_with_whisper(tmp_path, model):
    p = write_clip(tmp_path / "w.mp4", seconds=2.0, fps=10, tone_hz=330.0)
    cfg = ExtractConfig(whisper="unused-when-model-given", whisper_max_tokens=4)
    out = extract_video(p, cfg, whisper_model=model)
    assert out["whisper"].shape == (64,) and isinstance(out["transcript"], str) and out["language"]
    # the embedding sees up to 30 s of audio, independent of the MFCC clip length
    d = decode_video(p, frames=1, size=16, audio_seconds=30.0)
    torch.testing.assert_close(out["whisper"], embed(model, d.audio))


def test_missing_model_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(UserError, match=r"whisper/tiny\.pt.*never downloads"):
        load_whisper("tiny")
    with pytest.raises(UserError, match="checkpoint not found"):
        load_whisper(str(tmp_path / "nope" / "model.pt"))
    with pytest.raises(UserError, match="unknown Whisper model"):
        load_whisper("gigantic")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a loadable Whisper checkpoint"):
        load_whisper(str(junk))


def test_cached_model_name_with_bad_checksum_is_refused(tmp_path, monkeypatch, tiny_whisper):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "whisper").mkdir()
    (tmp_path / "whisper" / "tiny.pt").write_bytes(tiny_whisper.read_bytes())  # right name, wrong bytes
    with pytest.raises(UserError, match="SHA-256 mismatch"):
        load_whisper("tiny")


def test_run_extract_stores_whisper_features(tmp_path, tiny_whisper, corpus, make_graph):
    from mdr_graph.media.extract import run_extract
    from mdr_graph.media.store import FeatureStore

    rows = [r for r in corpus["rows"] if r["video_id"] in ("vid00", corpus["silent"])]
    g = make_graph(tmp_path / "g", rows)
    cfg = ExtractConfig(size=16, audio_seconds=1.0, whisper=str(tiny_whisper), whisper_max_tokens=2)
    assert run_extract(g, tmp_path / "f", cfg)["ok"] == 2
    fs = FeatureStore(tmp_path / "f")
    assert fs.config.whisper == str(tiny_whisper.resolve())
    talk, silent = fs.get("vid00"), fs.get(corpus["silent"])
    assert talk["whisper"].shape == silent["whisper"].shape == (64,)
    assert isinstance(talk["transcript"], str) and talk["language"] in whisper.tokenizer.LANGUAGES
    assert silent["transcript"] == "" and silent["language"] == "" and not silent["has_audio"]


def test_transcribe_backend_is_checked_before_any_work(tmp_path, tiny_whisper, corpus, make_graph):
    from mdr_graph.media.extract import run_extract, validate

    with pytest.raises(UserError, match="transcribe_backend='bogus': choose from openai, faster-whisper"):
        validate(ExtractConfig(transcribe_backend="bogus"))
    g = make_graph(tmp_path / "g", corpus["rows"][:1])
    cfg = ExtractConfig(whisper=str(tiny_whisper), transcribe_backend="faster-whisper")
    with pytest.raises(UserError, match="faster-whisper backend runs an installed model"):
        run_extract(g, tmp_path / "f", cfg)
    assert not (tmp_path / "f" / "index.parquet").exists()
