"""Audio encoders: the Audio-MLP over MFCC (or log filter banks), and the Whisper projection.

The reference Audio-MLP flattens the whole ``[n_mfcc, time]`` matrix and projects it.
That keeps the exact timing of every coefficient, which a pooled feature would lose,
and it trains fast. Two options keep it sane at large sizes:

- ``hidden`` (default 256): when it is narrower than ``d_model``, flatten ->
  ``Linear(·, hidden)`` -> GELU -> ``Linear(hidden, d_model)``. A direct projection of
  40x1001 MFCC values to ``d_model = 1024`` would be 41M weights; the bottleneck cuts
  that fourfold. Otherwise (``hidden = 0``, or ``d_model <= hidden`` as in the small CPU
  models) it is the single linear projection of the reference design.
- ``chunks`` (default 1): cut time into ``chunks`` equal segments, each flattened and
  projected with shared weights into its own token (plus a sinusoidal position), so
  the fusion model's per-modality attention has a sequence to attend over.

Coefficients are standardised per coefficient (statistics fitted on the training
split, see :class:`~mdr_graph.encoders.layers.InputStandardizer`). The same class
serves ``mfcc`` and ``fbank`` (the filter-bank ablation).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from mdr_graph.encoders.layers import InputStandardizer, VectorEncoder, sinusoidal_encoding
from mdr_graph.errors import UserError
from mdr_graph.fusion_config import FusionConfig


class AudioMLPEncoder(nn.Module):
    """``float [B, n_coeff, T]`` to ``[B, chunks, d_model]``."""

    def __init__(self, input_shape: tuple[int, ...], d_model: int, hidden: int = FusionConfig.audio_hidden,
                 chunks: int = FusionConfig.audio_chunks, dropout: float = 0.0):
        super().__init__()
        if len(input_shape) != 2:
            raise UserError(f"audio encoder expects [coefficients, time] per sample, got {tuple(input_shape)}")
        n_coeff, n_time = input_shape
        if not 1 <= chunks <= n_time:
            raise UserError(f"audio_chunks must be between 1 and the {n_time} time steps, got {chunks}")
        self.input_shape = (n_coeff, n_time)
        self.chunks = chunks
        self.chunk_len = math.ceil(n_time / chunks)
        self.pad = self.chunk_len * chunks - n_time
        self.standardizer = InputStandardizer(self.input_shape, reduce_trailing=1)
        flat = n_coeff * self.chunk_len
        if 0 < hidden < d_model:
            self.proj = nn.Sequential(nn.Linear(flat, hidden), nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, d_model))
        else:
            self.proj = nn.Linear(flat, d_model)
        self.register_buffer("pos", sinusoidal_encoding(chunks, d_model), persistent=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        x = self.standardizer(x.float())
        if self.pad:
            x = F.pad(x, (0, self.pad))  # zeros after standardisation: the training mean
        b, c = x.shape[:2]
        x = x.view(b, c, self.chunks, self.chunk_len).permute(0, 2, 1, 3).flatten(2)  # [B, chunks, c*L]
        x = self.proj(x)
        if self.chunks > 1:
            x = x + self.pos
        return self.norm(x)


class WhisperProjection(VectorEncoder):
    """The mean-pooled Whisper encoder embedding ``[B, d_w]``, projected to one token."""

    def __init__(self, input_shape: tuple[int, ...], d_model: int, dropout: float = 0.0):
        if len(input_shape) != 1:
            raise UserError(f"whisper expects a pooled embedding [d_w] per sample, got {tuple(input_shape)}")
        super().__init__(input_shape[0], d_model, hidden=0, dropout=dropout, standardize=True)
