"""MFCC and log filter banks: shapes, agreement with torchaudio's own MFCC, fixed length."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio

from mdr_graph.media.audio_features import AudioFeaturizer, fixed_length, n_time_frames, window_samples


def tone(seconds: float, hz: float, rate: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_shapes_and_dtypes():
    feats = AudioFeaturizer(16000, n_mfcc=40, n_mels=64, fbank=True)(tone(10.0, 440.0))
    assert feats["mfcc"].shape == (40, n_time_frames(10.0, 16000)) == (40, 1001)
    assert feats["fbank"].shape == (64, 1001)
    assert feats["mfcc"].dtype == torch.float32 and feats["fbank"].dtype == torch.float32
    assert "fbank" not in AudioFeaturizer(16000, 13, 40)(tone(1.0, 440.0))
    assert window_samples(16000) == (400, 160)


def test_mfcc_equals_torchaudio_transform():
    wave = tone(2.0, 700.0) + 0.05 * np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    ours = AudioFeaturizer(16000, n_mfcc=20, n_mels=40)(wave)["mfcc"]
    ref = torchaudio.transforms.MFCC(sample_rate=16000, n_mfcc=20,
                                     melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 40})(torch.from_numpy(wave))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-3)


def test_fbank_peaks_at_the_tone_band():
    fb = AudioFeaturizer(16000, n_mfcc=13, n_mels=64, fbank=True)
    low = fb(tone(1.0, 300.0))["fbank"].mean(dim=1).argmax().item()
    high = fb(tone(1.0, 3000.0))["fbank"].mean(dim=1).argmax().item()
    assert low < high


def test_silence_gives_finite_features():
    feats = AudioFeaturizer(16000, 40, 64, fbank=True)(np.zeros(16000, np.float32))
    assert torch.isfinite(feats["mfcc"]).all() and torch.isfinite(feats["fbank"]).all()


def test_fixed_length_pads_and_trims():
    assert fixed_length(np.ones(5, np.float32), 8).tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert len(fixed_length(np.ones(20, np.float32), 8)) == 8
    assert fixed_length(np.zeros(0, np.float32), 3).dtype == np.float32


def test_more_mfcc_than_mels_is_refused():
    with pytest.raises(ValueError, match="n_mfcc"):
        AudioFeaturizer(16000, n_mfcc=80, n_mels=40)
