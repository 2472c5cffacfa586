"""MFCC and log mel filter banks from a fixed-length mono waveform (torchaudio transforms).

Windows are 25 ms with a 10 ms hop (400 / 160 samples at 16 kHz), the usual speech
front end and the one Whisper uses. The MFCC is torchaudio's (DCT-II of the dB-scaled
mel spectrogram, as librosa does); the log filter banks are ``log(mel + 1e-6)`` of the
same mel spectrogram, computed once and shared, so asking for both costs one STFT.
The reference design compared the two and preferred MFCC, hence MFCC is always stored
and filter banks are an option.

Every clip is padded with silence or trimmed to the same length first, so all videos
give the same ``[coefficients, time]`` shape and can be batched without masks.
"""

from __future__ import annotations

import numpy as np
import torch

LOG_EPS = 1e-6


def window_samples(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop_length): 25 ms windows every 10 ms."""
    return int(round(0.025 * sample_rate)), int(round(0.010 * sample_rate))


def n_time_frames(seconds: float, sample_rate: int) -> int:
    """Time steps of the features of a ``seconds``-long clip (centred STFT)."""
    _, hop = window_samples(sample_rate)
    return int(round(seconds * sample_rate)) // hop + 1


def fixed_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """``wave`` trimmed, or padded with trailing silence, to exactly ``n_samples``."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if len(wave) >= n_samples:
        return wave[:n_samples]
    return np.concatenate([wave, np.zeros(n_samples - len(wave), np.float32)])


class AudioFeaturizer:
    """Build the transforms once; call on waveforms at ``sample_rate`` to get features.

    >>> feats = AudioFeaturizer(16000, n_mfcc=40, n_mels=64, fbank=True)(np.zeros(16000, np.float32))
    >>> feats["mfcc"].shape, feats["fbank"].shape
    (torch.Size([40, 101]), torch.Size([64, 101]))
    """

    def __init__(self, sample_rate: int = 16000, n_mfcc: int = 40, n_mels: int = 64, fbank: bool = False):
        import torchaudio

        if n_mfcc > n_mels:
            raise ValueError(f"n_mfcc ({n_mfcc}) cannot exceed n_mels ({n_mels})")
        n_fft, hop = window_samples(sample_rate)
        self.sample_rate = sample_rate
        self.fbank = fbank
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=sample_rate, n_mfcc=n_mfcc,
            melkwargs={"n_fft": n_fft, "hop_length": hop, "n_mels": n_mels, "f_min": 0.0,
                       "f_max": sample_rate / 2, "window_fn": torch.hann_window})

    @torch.no_grad()
    def __call__(self, wave: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"mfcc": [n_mfcc, T]}`` float32, plus ``"fbank": [n_mels, T]`` when enabled."""
        x = torch.as_tensor(np.asarray(wave, dtype=np.float32)).reshape(-1)
        mel = self.mfcc.MelSpectrogram(x)                       # [n_mels, T], power
        db = self.mfcc.amplitude_to_DB(mel)
        mfcc = torch.matmul(db.transpose(-1, -2), self.mfcc.dct_mat).transpose(-1, -2)
        out = {"mfcc": mfcc.contiguous().float()}
        if self.fbank:
            out["fbank"] = torch.log(mel + LOG_EPS).contiguous().float()
        return out
