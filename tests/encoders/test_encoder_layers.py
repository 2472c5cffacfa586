"""Attention, sinusoidal encoding and input standardisation shared by all encoders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mdr_graph.encoders.layers import (AttentionBlock, InputStandardizer, MultiHeadAttention, VectorEncoder,
                                       sinusoidal_encoding)


@pytest.mark.parametrize("d", [6, 7])
def test_sinusoidal_encoding_matches_the_transformer_formula(d):
    pe = sinusoidal_encoding(torch.tensor([0, 1, 5, 123]), d)
    assert pe.shape == (4, d)
    for r, pos in enumerate([0, 1, 5, 123]):
        for k in range(d):
            i = k // 2
            angle = pos / 10000 ** (2 * i / d)
            expected = math.sin(angle) if k % 2 == 0 else math.cos(angle)
            assert pe[r, k].item() == pytest.approx(expected, abs=1e-6)
    assert torch.equal(sinusoidal_encoding(3, d), sinusoidal_encoding(torch.arange(3), d))


def test_attention_fast_path_equals_explicit_path():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(3, 5, 16)
    fast, _ = mha(x, x, x)
    slow, w = mha(x, x, x, need_weights=True)
    assert torch.allclose(fast, slow, atol=1e-5)
    assert torch.allclose(w.sum(-1), torch.ones(3, 4, 5), atol=1e-6)


def test_masked_keys_get_no_weight_and_fully_masked_rows_stay_finite():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 4, 8, requires_grad=True)
    allowed = torch.tensor([[True, False, True, False], [False, False, False, False]])
    out, w = mha(x, x, x, allowed=allowed, need_weights=True)
    assert torch.all(w[0, :, :, 1] == 0) and torch.all(w[0, :, :, 3] == 0)
    assert torch.allclose(w[0].sum(-1), torch.ones(2, 4))
    assert torch.all(w[1] == 0)  # nothing to attend to: zero weights, not NaN
    # a fully masked row's attention output is the output projection's bias alone
    assert torch.allclose(out[1], mha.out_proj.bias.expand(4, 8))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_attention_block_is_fc_of_norm_of_attention_plus_residual():
    torch.manual_seed(0)
    blk = AttentionBlock(8, 2, ff_mult=0, dropout=0.0).eval()
    x = torch.randn(2, 3, 8)
    a, _ = blk.attn(x, x, x)
    expected = blk.fc(blk.norm(a + x))
    got, _ = blk(x)
    assert torch.allclose(got, expected, atol=1e-6)


def test_input_standardizer_is_identity_until_fitted_then_standardises_per_feature():
    s = InputStandardizer((3, 10), reduce_trailing=1)
    x = torch.randn(5, 3, 10) * torch.tensor([1.0, 10.0, 100.0])[:, None] + torch.tensor([0.0, -5.0, 50.0])[:, None]
    assert torch.equal(s(x), x)
    s.start()
    s.update(x[:2])
    s.update(x[2:])
    s.update(x[:0])  # empty batches are ignored
    assert s.finish()
    arr = x.double().numpy()
    assert np.allclose(s.mean.squeeze(-1).numpy(), arr.mean(axis=(0, 2)), rtol=1e-5)
    assert np.allclose(s.std.squeeze(-1).numpy(), arr.std(axis=(0, 2)), rtol=1e-4)
    y = s(x)
    assert torch.allclose(y.mean(dim=(0, 2)), torch.zeros(3), atol=1e-4)
    assert bool(s.fitted)
    # statistics travel in the state_dict
    s2 = InputStandardizer((3, 10), reduce_trailing=1)
    s2.load_state_dict(s.state_dict())
    assert torch.equal(s2(x), y)


def test_constant_features_are_centred_not_divided_by_zero():
    s = InputStandardizer((2,))
    s.start()
    s.update(torch.tensor([[1.0, 3.0], [1.0, 5.0]]))
    s.finish()
    assert s.std[0] == 1.0 and torch.isfinite(s(torch.tensor([[1.0, 4.0]]))).all()
    assert not InputStandardizer((2,)).finish()  # nothing seen: nothing fitted


def test_vector_encoder_gives_one_normalised_token():
    enc = VectorEncoder(5, 16, hidden=8)
    t = enc(torch.randn(4, 5))
    assert t.shape == (4, 1, 16)
    assert torch.allclose(t.mean(-1), torch.zeros(4, 1), atol=1e-5)
