"""ConvLSTM autoencoder over the sampled frames, and its frozen bottleneck as a visual embedding.

Design (Shi et al. 2015 cells in a Srivastava et al. 2015 sequence autoencoder):

- Encoder: a strided-convolution stem shrinks each frame by ``2**downsample`` (64x64 ->
  8x8 by default, which keeps the recurrent convolutions cheap on a CPU), a
  :class:`ConvLSTMCell` reads the frames in order, and its final ``(h, c)`` is pooled to
  a ``grid x grid`` map and projected to the bottleneck vector ``[B, embed_dim]``.
- Decoder: the bottleneck alone initialises a second ConvLSTM, which is unrolled once
  per frame (its input is its previous hidden state, so it cannot copy the input) and a
  transposed-convolution head draws each frame. Frames are reconstructed in their
  original order, into ``[0, 1]`` through a sigmoid.

Because the decoder sees only the bottleneck, the bottleneck must summarise the clip:
that is what makes it a visual embedding once frozen. The model is size-agnostic: any
frame count, any frame size divisible by ``2**downsample``.

Checkpoint (``convlstm.pt``, written by ``mdr-graph pretrain-visual``; all plain data):
``{"config": architecture kwargs, "input_shape": [F, 3, S, S], "encoder": state_dict,
"model": state_dict, "epoch": int, ...}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdr_graph.encoders.vit import frames_to_unit_float
from mdr_graph.errors import UserError
from mdr_graph.io import torch_load, torch_save

CHECKPOINT_FORMAT = 1


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: the LSTM gates computed by a convolution over ``[x, h]``.

    ``i, f, o = sigmoid(.)``, ``g = tanh(.)``, ``c' = f*c + i*g``, ``h' = o*tanh(c')``.
    No peephole terms (as in most implementations); the forget gate's bias starts at 1
    so early training remembers rather than forgets.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"ConvLSTM kernel size must be odd to keep the map size, got {kernel_size}")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.conv = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                              padding=kernel_size // 2)
        with torch.no_grad():
            self.conv.bias.zero_()
            self.conv.bias[hidden_channels:2 * hidden_channels].fill_(1.0)

    def init_state(self, batch: int, height: int, width: int, like: Tensor) -> tuple[Tensor, Tensor]:
        z = like.new_zeros(batch, self.hidden_channels, height, width)
        return z, z.clone()

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """``x [B, C_in, H, W]``, ``state (h, c)`` each ``[B, C_h, H, W]`` (zeros when None)."""
        if state is None:
            state = self.init_state(x.shape[0], x.shape[2], x.shape[3], x)
        h, c = state
        i, f, o, g = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


@dataclass
class ConvLSTMConfig:
    """Architecture of :class:`ConvLSTMAutoencoder` (saved in ``convlstm.pt``)."""

    hidden: int = 64        # ConvLSTM channels (and the stem's output channels)
    embed_dim: int = 256    # bottleneck size: the visual embedding's width
    kernel: int = 3         # ConvLSTM kernel size (odd)
    downsample: int = 3     # stride-2 stem convolutions: frames shrink by 2**downsample
    grid: int = 4           # the final (h, c) maps are pooled to grid x grid before the bottleneck
    in_channels: int = 3


def _stem_channels(hidden: int, downsample: int) -> list[int]:
    return [max(8, hidden // 2 ** (downsample - 1 - i)) for i in range(downsample)]


class ConvLSTMEncoder(nn.Module):
    """Frames float ``[B, F, C, S, S]`` in ``[0, 1]`` to the bottleneck ``[B, embed_dim]``."""

    def __init__(self, cfg: ConvLSTMConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in = cfg.in_channels
        for c_out in _stem_channels(cfg.hidden, cfg.downsample):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.GELU()]
            c_in = c_out
        self.stem = nn.Sequential(*layers)
        self.cell = ConvLSTMCell(c_in, cfg.hidden, cfg.kernel)
        self.pool = nn.AdaptiveAvgPool2d(cfg.grid)
        self.to_code = nn.Linear(2 * cfg.hidden * cfg.grid * cfg.grid, cfg.embed_dim)

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    def forward(self, frames: Tensor) -> Tensor:
        b, f = frames.shape[:2]
        feats = self.stem(frames.flatten(0, 1) * 2.0 - 1.0).unflatten(0, (b, f))
        state = None
        for t in range(f):
            state = self.cell(feats[:, t], state)
        h, c = state
        return self.to_code(self.pool(torch.cat([h, c], dim=1)).flatten(1))


class ConvLSTMDecoder(nn.Module):
    """The bottleneck ``[B, embed_dim]`` to a frame sequence ``[B, F, C, S, S]`` in ``[0, 1]``."""

    def __init__(self, cfg: ConvLSTMConfig):
        super().__init__()
        self.cfg = cfg
        self.from_code = nn.Linear(cfg.embed_dim, 2 * cfg.hidden * cfg.grid * cfg.grid)
        self.cell = ConvLSTMCell(cfg.hidden, cfg.hidden, cfg.kernel)
        chans = list(reversed(_stem_channels(cfg.hidden, cfg.downsample)))  # hidden ... smallest
        layers: list[nn.Module] = []
        c_in = cfg.hidden
        for i in range(cfg.downsample):
            last = i == cfg.downsample - 1
            c_out = cfg.in_channels if last else chans[i + 1]
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.GELU())
            c_in = c_out
        self.head = nn.Sequential(*layers)

    def forward(self, code: Tensor, frames: int, size: tuple[int, int]) -> Tensor:
        s = (size[0] >> self.cfg.downsample, size[1] >> self.cfg.downsample)
        hc = self.from_code(code).view(code.shape[0], 2 * self.cfg.hidden, self.cfg.grid, self.cfg.grid)
        hc = F.interpolate(hc, size=s, mode="bilinear", align_corners=False)
        h, c = hc.chunk(2, dim=1)
        h = torch.tanh(h)
        x, out = h, []
        for _ in range(frames):
            h, c = self.cell(x, (h, c))
            out.append(torch.sigmoid(self.head(h)))
            x = h
        return torch.stack(out, dim=1)


class ConvLSTMAutoencoder(nn.Module):
    """ConvLSTM encoder-decoder; ``forward`` reconstructs, :meth:`encode` gives the embedding.

    Inputs are frames ``[B, F, 3, S, S]``, uint8 or float in ``[0, 1]``; ``S`` must be
    divisible by ``2**downsample``.
    """

    def __init__(self, hidden: int = 64, embed_dim: int = 256, kernel: int = 3, downsample: int = 3,
                 grid: int = 4, in_channels: int = 3):
        super().__init__()
        self.cfg = ConvLSTMConfig(hidden, embed_dim, kernel, downsample, grid, in_channels)
        self.encoder = ConvLSTMEncoder(self.cfg)
        self.decoder = ConvLSTMDecoder(self.cfg)

    @property
    def config(self) -> dict[str, int]:
        return dataclasses.asdict(self.cfg)

    def check_frames(self, frames: Tensor) -> None:
        if frames.dim() != 5 or frames.shape[2] != self.cfg.in_channels:
            raise UserError(f"ConvLSTM expects frames [batch, frames, {self.cfg.in_channels}, S, S], "
                            f"got {tuple(frames.shape)}")
        m = 2 ** self.cfg.downsample
        if frames.shape[-1] % m or frames.shape[-2] % m:
            raise UserError(f"ConvLSTM with downsample={self.cfg.downsample} needs frame sizes divisible by {m}, "
                            f"got {frames.shape[-2]}x{frames.shape[-1]}; change --size at extraction or downsample")

    def encode(self, frames: Tensor) -> Tensor:
        """Frames ``[B, F, 3, S, S]`` (float in ``[0, 1]`` or uint8) to ``[B, embed_dim]``."""
        self.check_frames(frames)
        return self.encoder(frames_to_unit_float(frames))

    def forward(self, frames: Tensor) -> Tensor:
        """The reconstruction ``[B, F, 3, S, S]`` in ``[0, 1]``."""
        code = self.encode(frames)
        return self.decoder(code, frames.shape[1], (frames.shape[-2], frames.shape[-1]))


def save_convlstm(path: str | Path, model: ConvLSTMAutoencoder, input_shape: tuple[int, ...], epoch: int,
                  extra: dict[str, Any] | None = None) -> None:
    """Write ``convlstm.pt`` (plain data, ``weights_only``-loadable), atomically."""
    payload = {"format": CHECKPOINT_FORMAT, "config": model.config, "input_shape": [int(x) for x in input_shape],
               "encoder": model.encoder.state_dict(), "model": model.state_dict(), "epoch": int(epoch)}
    payload.update(extra or {})
    torch_save(path, payload)


def read_convlstm_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"no ConvLSTM checkpoint at {path}; train one with "
                        f"`mdr-graph pretrain-visual --features FEATDIR --out RUNDIR` (it writes RUNDIR/convlstm.pt)")
    try:
        ckpt = torch_load(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path} is not a readable ConvLSTM checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or "encoder" not in ckpt or "config" not in ckpt:
        raise UserError(f"{path} is not a ConvLSTM checkpoint (expected keys config, encoder); "
                        f"pass the convlstm.pt written by `mdr-graph pretrain-visual`")
    return ckpt


def frozen(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def load_convlstm_encoder(path: str | Path) -> ConvLSTMEncoder:
    """The pretrained encoder from ``convlstm.pt``, frozen and in eval mode.

    Call it on float frames in ``[0, 1]`` (``[B, F, 3, S, S]``) to get ``[B, embed_dim]``.
    """
    ckpt = read_convlstm_checkpoint(path)
    enc = ConvLSTMEncoder(ConvLSTMConfig(**ckpt["config"]))
    enc.load_state_dict(ckpt["encoder"])
    return frozen(enc)


def load_convlstm_autoencoder(path: str | Path) -> ConvLSTMAutoencoder:
    """The whole pretrained autoencoder (e.g. to inspect reconstructions), in eval mode."""
    ckpt = read_convlstm_checkpoint(path)
    model = ConvLSTMAutoencoder(**ckpt["config"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


class ConvLSTMEmbedding(nn.Module):
    """The ``convlstm`` modality: frozen pretrained bottleneck, then a trainable projection.

    Frames ``uint8 [B, F, 3, S, S]`` -> one token ``[B, 1, d_model]``. The frozen encoder
    stays in eval mode and without gradients even when the fusion model trains. Its
    weights are part of this module's ``state_dict``, so a saved fusion model rebuilds
    from ``arch`` without the original ``convlstm.pt``.
    """

    def __init__(self, input_shape: tuple[int, ...], d_model: int, path: str | Path | None = None,
                 arch: dict[str, int] | None = None, dropout: float = 0.0):
        super().__init__()
        if len(input_shape) != 4:
            raise UserError(f"convlstm expects frames shaped [frames, 3, S, S], got {tuple(input_shape)}")
        if path is not None:
            ckpt = read_convlstm_checkpoint(path)
            self.arch = dict(ckpt["config"])
            self.encoder = ConvLSTMEncoder(ConvLSTMConfig(**self.arch))
            self.encoder.load_state_dict(ckpt["encoder"])
        elif arch is not None:
            # Rebuilding a saved model (its state_dict brings the weights), or the
            # "random frozen features" ablation when nothing is loaded afterwards.
            self.arch = dict(arch)
            self.encoder = ConvLSTMEncoder(ConvLSTMConfig(**self.arch))
        else:
            raise UserError("the convlstm modality needs a pretrained encoder: run `mdr-graph pretrain-visual "
                            "--features FEATDIR --out RUNDIR` and set convlstm_path = RUNDIR/convlstm.pt")
        m = 2 ** self.arch["downsample"]
        if input_shape[-1] % m or input_shape[-2] % m:
            raise UserError(f"convlstm encoder (downsample={self.arch['downsample']}) needs frame sizes divisible "
                            f"by {m}, got {input_shape[-2]}x{input_shape[-1]}")
        frozen(self.encoder)
        self.proj = nn.Sequential(nn.Linear(self.arch["embed_dim"], d_model), nn.Dropout(dropout))
        self.norm = nn.LayerNorm(d_model)

    def train(self, mode: bool = True) -> "ConvLSTMEmbedding":
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, frames: Tensor) -> Tensor:
        with torch.no_grad():
            code = self.encoder(frames_to_unit_float(frames))
        return self.norm(self.proj(code)).unsqueeze(1)
