"""ViT over the sampled frames of a video, with a hierarchical (frame, patch) positional encoding.

Each frame is cut into ``P x P`` patches and each patch is projected linearly (a
stride-``P`` convolution is exactly that projection, computed in one call). A token's
position is two-level: which frame it came from and where in the frame it sits, so
its encoding is ``PE_sin(frame) + PE_sin(patch)``. Switching the encoding off is an
ablation: the Transformer then sees a bag of patches.

The encoder returns the token sequence ``[B, frames * patches, d_model]``; the fusion
model's per-modality block attends over it and pools. :meth:`ViTEncoder.pooled` gives
the ``[B, d_model]`` mean for standalone use.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mdr_graph.encoders.layers import EncoderLayer, sinusoidal_encoding
from mdr_graph.errors import UserError
from mdr_graph.fusion_config import FusionConfig

# ImageNet statistics: the usual choice for ViTs, and harmless for training from scratch.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def hierarchical_positional_encoding(frames: int, patches: int, d_model: int) -> Tensor:
    """``[frames * patches, d_model]``: row ``f * patches + p`` is ``PE_sin(f) + PE_sin(p)``."""
    pe_f = sinusoidal_encoding(frames, d_model)
    pe_p = sinusoidal_encoding(patches, d_model)
    return (pe_f[:, None, :] + pe_p[None, :, :]).reshape(frames * patches, d_model)


def frames_to_unit_float(frames: Tensor) -> Tensor:
    """uint8 frames to float in ``[0, 1]``; float frames are taken as already in ``[0, 1]``."""
    return frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()


class ViTEncoder(nn.Module):
    """Frames ``uint8 [B, F, 3, S, S]`` to tokens ``[B, F * (S/P)^2, d_model]``."""

    def __init__(self, input_shape: tuple[int, ...], d_model: int, patch: int = FusionConfig.patch,
                 heads: int = FusionConfig.heads, layers: int = FusionConfig.vit_layers,
                 ff_mult: int = FusionConfig.ff_mult, dropout: float = 0.0, positional_encoding: bool = True):
        super().__init__()
        if len(input_shape) != 4:
            raise UserError(f"vit expects frames shaped [frames, 3, S, S], got per-sample shape {tuple(input_shape)}")
        n_frames, channels, height, width = input_shape
        if height % patch or width % patch:
            raise UserError(f"vit patch size {patch} does not divide the {height}x{width} frames; "
                            f"choose a patch that divides the extracted frame size (e.g. {_divisor_hint(height)})")
        self.input_shape = tuple(input_shape)
        self.patch, self.n_frames = patch, n_frames
        self.n_patches = (height // patch) * (width // patch)
        self.positional_encoding = positional_encoding
        self.patch_embed = nn.Conv2d(channels, d_model, kernel_size=patch, stride=patch)
        self.register_buffer("pos", hierarchical_positional_encoding(n_frames, self.n_patches, d_model),
                             persistent=False)
        self.register_buffer("img_mean", torch.tensor(IMAGE_MEAN[:channels] if channels == 3 else [0.5] * channels)
                             .view(1, channels, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(IMAGE_STD[:channels] if channels == 3 else [0.5] * channels)
                             .view(1, channels, 1, 1), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, heads, ff_mult, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)

    @property
    def n_tokens(self) -> int:
        return self.n_frames * self.n_patches

    def forward(self, frames: Tensor) -> Tensor:
        b, f = frames.shape[:2]
        x = (frames_to_unit_float(frames).flatten(0, 1) - self.img_mean) / self.img_std
        x = self.patch_embed(x).flatten(2).transpose(1, 2)           # [B*F, N, d]
        x = x.reshape(b, f * self.n_patches, -1)
        if self.positional_encoding:
            x = x + self.pos
        x = self.drop(x)
        for layer in self.layers:
            x, _ = layer(x)
        return self.norm(x)

    def pooled(self, frames: Tensor) -> Tensor:
        """``[B, d_model]``: the mean of the output tokens."""
        return self.forward(frames).mean(dim=1)


def _divisor_hint(size: int) -> str:
    divs = [p for p in (32, 16, 8, 4) if size % p == 0]
    return ", ".join(map(str, divs)) or "a divisor of the frame size"
