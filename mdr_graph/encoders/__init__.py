"""Per-modality encoders: each maps one modality's batch to tokens ``[B, T_m, d_model]``.

========  =========================  ===============================================  ======
name      input per sample           encoder                                          tokens
========  =========================  ===============================================  ======
vit       uint8 ``[F, 3, S, S]``     patches + hierarchical PE + Transformer          F*N
convlstm  uint8 ``[F, 3, S, S]``     frozen pretrained ConvLSTM bottleneck + Linear   1
mfcc      float ``[n_mfcc, T]``      Audio-MLP (flatten + projection)                 chunks
fbank     float ``[n_mels, T]``      Audio-MLP (the filter-bank ablation)             chunks
whisper   float ``[d_w]``            Linear projection                                1
network   float ``[d_g]``            trainable FC on the frozen GAT embedding         1
meta      float ``[d_meta]``         MLP on pre-publication metadata                  1
text      float ``[vocab]`` or ``[1]``  Linear on hashed counts, or on the text ridge's   1
                                     out-of-fold score (``text_features = "ridge"``)
labels    float ``[d_labels]``       MLP on the leak-free popularity of the videos    1
                                     sharing the song, creator, hashtags
gbdt      float ``[1]``              Linear on the stacked LightGBM's out-of-fold     1
                                     score (:mod:`mdr_graph.train.gbdt`)
========  =========================  ===============================================  ======

:func:`build_encoder` builds one from a config object (``mdr_graph.fusion.FusionConfig``,
or anything with the same attributes; missing attributes take the defaults below).
:func:`register_encoder` adds a modality without touching this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from mdr_graph.encoders.audio import AudioMLPEncoder, WhisperProjection
from mdr_graph.encoders.convlstm import ConvLSTMEmbedding
from mdr_graph.encoders.layers import VectorEncoder
from mdr_graph.encoders.meta import MetaEncoder
from mdr_graph.encoders.network import NetworkEncoder
from mdr_graph.encoders.text import TextEncoder
from mdr_graph.encoders.vit import ViTEncoder
from mdr_graph.errors import UserError


class EncoderSpec(NamedTuple):
    """How to build one modality's encoder and what its input looks like."""

    build: Callable[[tuple[int, ...], int, Any], nn.Module]
    rank: int              # dimensions per sample
    dtype: torch.dtype     # dtype of the batch tensor (uint8 frames, float32 otherwise)
    description: str


def _opt(cfg: Any, name: str, default: Any) -> Any:
    v = getattr(cfg, name, default)
    return default if v is None else v


def _vit(shape, d, cfg):
    return ViTEncoder(shape, d, patch=_opt(cfg, "patch", 16), heads=_opt(cfg, "heads", 4),
                      layers=_opt(cfg, "vit_layers", 1), ff_mult=_opt(cfg, "ff_mult", 2),
                      dropout=_opt(cfg, "dropout", 0.0), positional_encoding=_opt(cfg, "positional_encoding", True))


def _convlstm(shape, d, cfg):
    return ConvLSTMEmbedding(shape, d, path=getattr(cfg, "convlstm_path", None),
                             arch=getattr(cfg, "convlstm_arch", None), dropout=_opt(cfg, "dropout", 0.0))


def _audio(shape, d, cfg):
    return AudioMLPEncoder(shape, d, hidden=_opt(cfg, "audio_hidden", 256), chunks=_opt(cfg, "audio_chunks", 1),
                           dropout=_opt(cfg, "dropout", 0.0))


def _text(shape, d, cfg):
    if _opt(cfg, "text_features", "hashed") == "ridge":   # one fitted score: standardise it, project it
        return VectorEncoder(shape[0], d, hidden=0, dropout=_opt(cfg, "dropout", 0.0), standardize=True)
    return TextEncoder(shape, d, getattr(cfg, "text_dim", None), _opt(cfg, "dropout", 0.0))


ENCODERS: dict[str, EncoderSpec] = {
    "vit": EncoderSpec(_vit, 4, torch.uint8, "ViT over sampled frames"),
    "convlstm": EncoderSpec(_convlstm, 4, torch.uint8, "frozen ConvLSTM-autoencoder bottleneck"),
    "mfcc": EncoderSpec(_audio, 2, torch.float32, "Audio-MLP over MFCC"),
    "fbank": EncoderSpec(_audio, 2, torch.float32, "Audio-MLP over log filter banks"),
    "whisper": EncoderSpec(lambda s, d, c: WhisperProjection(s, d, _opt(c, "dropout", 0.0)), 1, torch.float32,
                           "pooled Whisper encoder embedding"),
    "network": EncoderSpec(lambda s, d, c: NetworkEncoder(s, d, _opt(c, "dropout", 0.0)), 1, torch.float32,
                           "frozen GAT embedding"),
    "meta": EncoderSpec(lambda s, d, c: MetaEncoder(s, d, _opt(c, "meta_hidden", 128), _opt(c, "dropout", 0.0)),
                        1, torch.float32, "pre-publication metadata"),
    "text": EncoderSpec(_text, 1, torch.float32, "hashed bag of words, or the text ridge's score"),
    "labels": EncoderSpec(lambda s, d, c: VectorEncoder(s[0], d, _opt(c, "meta_hidden", 128), _opt(c, "dropout", 0.0)),
                          1, torch.float32, "leak-free popularity of the videos sharing song, creator, hashtags"),
    "gbdt": EncoderSpec(lambda s, d, c: VectorEncoder(s[0], d, 0, _opt(c, "dropout", 0.0)), 1, torch.float32,
                        "the stacked LightGBM's out-of-fold score"),
}

MODALITIES = tuple(ENCODERS)


def register_encoder(name: str, build: Callable[[tuple[int, ...], int, Any], nn.Module], rank: int,
                     dtype: torch.dtype = torch.float32, description: str = "") -> None:
    """Add (or replace) a modality: ``build(input_shape, d_model, cfg) -> module giving [B, T, d_model]``."""
    ENCODERS[name] = EncoderSpec(build, rank, dtype, description)


def check_modality(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise UserError(f"unknown modality {name!r}; choose from {', '.join(ENCODERS)}")
    return ENCODERS[name]


def build_encoder(name: str, input_shape: tuple, d_model: int, cfg: Any = None) -> nn.Module:
    """The encoder of modality ``name`` for per-sample ``input_shape``, returning ``[B, T_m, d_model]``."""
    spec = check_modality(name)
    shape = tuple(int(x) for x in input_shape)
    if len(shape) != spec.rank or min(shape, default=1) <= 0:
        raise UserError(f"modality {name!r} expects a {spec.rank}-d per-sample input ({spec.description}), "
                        f"got shape {shape}")
    return spec.build(shape, d_model, cfg)


__all__ = ["ENCODERS", "MODALITIES", "EncoderSpec", "build_encoder", "check_modality", "register_encoder"]
