"""ViT over frames: hierarchical positional encoding, patching, shapes."""

from __future__ import annotations

import math

import pytest
import torch

from mdr_graph.encoders.vit import ViTEncoder, hierarchical_positional_encoding
from mdr_graph.errors import UserError


def _pe_sin(pos: int, d: int, k: int) -> float:
    angle = pos / 10000 ** (2 * (k // 2) / d)
    return math.sin(angle) if k % 2 == 0 else math.cos(angle)


def test_hierarchical_pe_is_frame_pe_plus_patch_pe():
    frames, patches, d = 3, 4, 8
    pe = hierarchical_positional_encoding(frames, patches, d)
    assert pe.shape == (frames * patches, d)
    for f in range(frames):
        for p in range(patches):
            for k in range(d):
                assert pe[f * patches + p, k].item() == pytest.approx(_pe_sin(f, d, k) + _pe_sin(p, d, k), abs=1e-6)


def test_vit_tokens_shape_and_patch_count():
    enc = ViTEncoder((2, 3, 64, 64), d_model=32, patch=16, heads=4, layers=1).eval()
    x = torch.randint(0, 256, (5, 2, 3, 64, 64), dtype=torch.uint8)
    out = enc(x)
    assert enc.n_patches == 16 and out.shape == (5, 32, 32)
    assert enc.pooled(x).shape == (5, 32)


def test_uint8_frames_are_scaled_to_unit_range():
    torch.manual_seed(0)
    enc = ViTEncoder((1, 3, 32, 32), d_model=16, patch=16, heads=2).eval()
    x = torch.randint(0, 256, (2, 1, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(enc(x), enc(x.float() / 255.0), atol=1e-5)


def test_positional_encoding_makes_frame_order_matter_and_can_be_switched_off():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (2, 2, 3, 32, 32), dtype=torch.uint8)
    swapped = x.flip(1)
    with_pe = ViTEncoder((2, 3, 32, 32), 16, patch=16, heads=2, dropout=0.0).eval()
    torch.manual_seed(0)
    no_pe = ViTEncoder((2, 3, 32, 32), 16, patch=16, heads=2, dropout=0.0, positional_encoding=False).eval()
    # without positions the Transformer sees a set of patches: frame order cannot change the pooled output
    assert torch.allclose(no_pe.pooled(x), no_pe.pooled(swapped), atol=1e-5)
    assert not torch.allclose(with_pe.pooled(x), with_pe.pooled(swapped), atol=1e-4)


def test_patch_must_divide_the_frame_size():
    with pytest.raises(UserError, match="patch size 24"):
        ViTEncoder((2, 3, 64, 64), 16, patch=24)
    with pytest.raises(UserError, match="frames, 3, S, S"):
        ViTEncoder((3, 64, 64), 16)


def test_vit_trains():
    torch.manual_seed(0)
    enc = ViTEncoder((2, 3, 32, 32), 16, patch=8, heads=2)
    x = torch.randint(0, 256, (4, 2, 3, 32, 32), dtype=torch.uint8)
    enc.pooled(x).sum().backward()
    assert enc.patch_embed.weight.grad is not None and torch.isfinite(enc.patch_embed.weight.grad).all()
