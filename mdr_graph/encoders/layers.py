"""Building blocks shared by the encoders, the fusion model and the baselines.

- :func:`sinusoidal_encoding`: the Transformer paper's positional encoding.
- :class:`MultiHeadAttention`: attention that can return its raw query-key products
  (the modality-contribution analysis needs them) and that handles rows whose keys are
  all masked out (a sample with no other modality present) without producing NaN.
- :class:`AttentionBlock`: the issue's block ``FC(Norm(MSA(q, kv, kv) + q))`` (post-norm,
  no residual around the FC), used per modality and for co-attention.
- :class:`EncoderLayer`: a standard pre-norm Transformer encoder layer (ViT, the
  single-Transformer baseline), where depth matters more than matching a formula.
- :class:`InputStandardizer`: per-feature standardisation whose statistics are fitted on
  the training split and travel in the ``state_dict``; the identity until fitted.
- :class:`VectorEncoder`: one-vector inputs (Whisper, GAT, metadata, text) to one token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal_encoding(positions: Tensor | int, d_model: int) -> Tensor:
    """``[n, d_model]`` with ``PE(pos, 2i) = sin(pos / 10000^(2i/d))``, ``PE(pos, 2i+1) = cos(...)``.

    ``positions`` is a 1-d tensor of positions or an int ``n`` meaning ``0..n-1``.
    Computed in float64 and returned as float32, so large positions stay exact.
    """
    if isinstance(positions, int):
        positions = torch.arange(positions)
    pos = positions.to(torch.float64).reshape(-1, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), two_i / d_model)
    pe = torch.zeros(pos.shape[0], d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)[:, : d_model // 2]
    return pe.to(torch.float32)


class FeedForward(nn.Module):
    """The "FC" of the formulas: ``d -> mult*d -> d`` with GELU, or one ``Linear`` when ``mult == 0``."""

    def __init__(self, d_model: int, mult: int = 2, dropout: float = 0.0):
        super().__init__()
        if mult <= 0:
            self.net = nn.Sequential(nn.Linear(d_model, d_model), nn.Dropout(dropout))
        else:
            self.net = nn.Sequential(nn.Linear(d_model, mult * d_model), nn.GELU(), nn.Dropout(dropout),
                                     nn.Linear(mult * d_model, d_model), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with explicit ``W^Q, W^K, W^V, W^O``.

    Masks are boolean with ``True`` meaning "may attend". A query whose keys are all
    masked gets a zero attention output (not NaN), so a sample whose only modality is
    the query still flows through, and gradients stay finite.
    """

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.d_model, self.heads, self.d_head = d_model, heads, d_model // heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def _split(self, x: Tensor) -> Tensor:  # [B, L, d] -> [B, h, L, d_head]
        return x.unflatten(-1, (self.heads, self.d_head)).transpose(1, 2)

    def scores(self, query: Tensor, key: Tensor) -> Tensor:
        """Raw per-head products ``(W^Q q)(W^K k)^T`` (no 1/sqrt(d) scaling): ``[B, h, Lq, Lk]``."""
        return self._split(self.q_proj(query)) @ self._split(self.k_proj(key)).transpose(-1, -2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, allowed: Tensor | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """``allowed``: bool ``[B, Lk]`` (per key) or ``[B, Lq, Lk]``; returns ``(out, weights or None)``.

        Weights are ``[B, h, Lq, Lk]``, after masking and before dropout.
        """
        q, k, v = self._split(self.q_proj(query)), self._split(self.k_proj(key)), self._split(self.v_proj(value))
        p = self.dropout if self.training else 0.0
        if allowed is None and not need_weights:  # the fast, fused path (ViT, per-modality blocks)
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            return self.out_proj(out.transpose(1, 2).flatten(2)), None
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.d_head)
        if allowed is not None:
            mask = allowed[:, None, None, :] if allowed.dim() == 2 else allowed[:, None, :, :]
            # finfo.min instead of -inf: a fully masked row softmaxes to uniform (finite), then is zeroed.
            s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
            w = torch.softmax(s, dim=-1) * mask
        else:
            w = torch.softmax(s, dim=-1)
        out = F.dropout(w, p, self.training) @ v
        return self.out_proj(out.transpose(1, 2).flatten(2)), (w if need_weights else None)


class AttentionBlock(nn.Module):
    """``FC(Norm(MSA(q, kv, kv) + q))``: the issue's per-modality and co-attention block.

    Without ``context`` it is self-attention over ``query``; with it, cross-attention
    (the guided variant: one modality's token queries the others).
    """

    def __init__(self, d_model: int, heads: int, ff_mult: int = 2, dropout: float = 0.0):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.norm = nn.LayerNorm(d_model)
        self.fc = FeedForward(d_model, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, query: Tensor, context: Tensor | None = None, allowed: Tensor | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        kv = query if context is None else context
        a, w = self.attn(query, kv, kv, allowed=allowed, need_weights=need_weights)
        return self.fc(self.norm(self.drop(a) + query)), w


class EncoderLayer(nn.Module):
    """Pre-norm Transformer encoder layer: ``x + MSA(LN(x))``, then ``x + FFN(LN(x))``."""

    def __init__(self, d_model: int, heads: int, ff_mult: int = 2, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, max(ff_mult, 1), dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, allowed: Tensor | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        h = self.norm1(x)
        a, w = self.attn(h, h, h, allowed=allowed, need_weights=need_weights)
        x = x + self.drop(a)
        return x + self.ff(self.norm2(x)), w


class InputStandardizer(nn.Module):
    """``(x - mean) / std`` per feature, with statistics fitted on training data.

    Raw inputs differ wildly in scale (MFCC c0 is in the hundreds, log follower counts
    near ten, sin/cos near one), which slows and destabilises training. Fitting needs
    the training split, which only the training loop knows, so the statistics are
    buffers: the identity until :meth:`update`/:meth:`finish` fill them, and then saved
    with the model, so a trained model standardises new data exactly as in training.

    ``shape`` is the per-sample input shape; ``reduce_trailing`` trailing axes share one
    statistic (e.g. ``1`` for ``[n_mfcc, time]``: one mean per coefficient).
    """

    def __init__(self, shape: tuple[int, ...], reduce_trailing: int = 0, eps: float = 1e-6):
        super().__init__()
        keep = len(shape) - reduce_trailing
        stat_shape = tuple(shape[:keep]) + (1,) * reduce_trailing
        self.reduce_trailing, self.eps = reduce_trailing, eps
        self.register_buffer("mean", torch.zeros(stat_shape))
        self.register_buffer("std", torch.ones(stat_shape))
        self.register_buffer("fitted", torch.tensor(False))
        self._acc: tuple[Tensor, Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def start(self) -> None:
        """Begin a new fit (forgets partial sums, keeps current statistics until :meth:`finish`)."""
        self._acc = None

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Accumulate a batch ``[n, *shape]`` of training inputs (only present samples)."""
        if x.shape[0] == 0:
            return
        x = x.detach().to(torch.float64)
        dims = (0,) + tuple(range(x.dim() - self.reduce_trailing, x.dim()))
        n = torch.tensor(float(math.prod(x.shape[d] for d in dims)), dtype=torch.float64)
        s = x.sum(dim=dims, keepdim=True)[0]
        ss = (x * x).sum(dim=dims, keepdim=True)[0]
        self._acc = (n, s, ss) if self._acc is None else (self._acc[0] + n, self._acc[1] + s, self._acc[2] + ss)

    @torch.no_grad()
    def finish(self) -> bool:
        """Turn the accumulated sums into ``mean``/``std``; returns False if nothing was seen."""
        if self._acc is None:
            return False
        n, s, ss = self._acc
        mean = s / n
        var = (ss / n - mean * mean).clamp_min(0.0)
        std = var.sqrt()
        std = torch.where(std < self.eps, torch.ones_like(std), std)  # constant features pass through centred
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype))
        self.fitted.fill_(True)
        self._acc = None
        return True


class VectorEncoder(nn.Module):
    """A ``[B, d_in]`` vector to one token ``[B, 1, d_model]``.

    ``standardize`` -> ``Linear`` (``hidden == 0``) or ``Linear-GELU-Dropout-Linear`` ->
    ``LayerNorm``. The final norm keeps every modality's token on the same scale before
    fusion, whatever its input's scale.
    """

    def __init__(self, input_dim: int, d_model: int, hidden: int = 0, dropout: float = 0.0,
                 standardize: bool = True):
        super().__init__()
        self.input_dim = input_dim
        self.standardizer = InputStandardizer((input_dim,)) if standardize else None
        if hidden > 0:
            self.proj = nn.Sequential(nn.Linear(input_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, d_model))
        else:
            self.proj = nn.Linear(input_dim, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()
        if self.standardizer is not None:
            x = self.standardizer(x)
        return self.norm(self.proj(x)).unsqueeze(1)
