"""Read a CTranslate2 Whisper ``model.bin`` and turn it into an openai-whisper checkpoint.

The binary format (version 6) is what ``ctranslate2.specs.model_spec.ModelSpec._serialize``
writes, little-endian: ``u32 version``, ``string name``, ``u32 revision``, ``u32 n``, then
``n`` variables (``string name``, ``u8 rank``, ``rank x u32 shape``, ``u8 dtype``,
``u32 nbytes``, raw bytes), then ``u32 n_aliases`` and that many ``(string alias,
string target)``. A string is ``u16 length`` (with the final NUL), its UTF-8 bytes and a NUL.

The Whisper layout (``ctranslate2/specs/whisper_spec.py``, filled by
``converters/transformers.py`` ``WhisperLoader``/``BartLoader``) maps onto openai-whisper's
module names as follows; :func:`to_openai` does it and checks every assumption it relies on:

=================================================  ==================================================
CTranslate2                                        openai-whisper
=================================================  ==================================================
``encoder/conv{1,2}/{weight,bias}``                ``encoder.conv{1,2}.*``
``encoder/position_encodings/encodings``           ``encoder.positional_embedding`` (sinusoids)
``*/layer_i/self_attention/linear_0`` (q|k|v)      ``*.blocks.i.attn.{query,key,value}``; key: no bias
``*/layer_i/self_attention/linear_1``              ``*.blocks.i.attn.out``
``*/layer_i/self_attention/layer_norm``            ``*.blocks.i.attn_ln`` (``gamma``/``beta``)
``decoder/layer_i/attention/linear_0``             ``decoder.blocks.i.cross_attn.query``
``decoder/layer_i/attention/linear_1`` (k|v)       ``decoder.blocks.i.cross_attn.{key,value}``
``decoder/layer_i/attention/linear_2``             ``decoder.blocks.i.cross_attn.out``
``decoder/layer_i/attention/layer_norm``           ``decoder.blocks.i.cross_attn_ln``
``*/layer_i/ffn/linear_{0,1}``, ``ffn/layer_norm``  ``*.blocks.i.mlp.{0,2}``, ``mlp_ln``
``encoder/layer_norm``, ``decoder/layer_norm``     ``encoder.ln_post``, ``decoder.ln``
``decoder/embeddings/weight``                      ``decoder.token_embedding.weight``
``decoder/position_encodings/encodings``           ``decoder.positional_embedding``
``decoder/projection/weight``                      tied: must be (an alias of) the token embedding
=================================================  ==================================================

CTranslate2 fuses q, k and v with ``fuse_linear``, which pads the bias of a layer without
one (openai-whisper's key) with zeros: the key third of each fused bias must be zero.
``dims`` follow from the tensor shapes and the stored ``num_heads``.

Weights keep their stored dtype (float16 for the registry's base model): openai-whisper's
own released checkpoints are float16 too, ``load_state_dict`` copies them into the float32
model, so nothing is lost and the file is half the size of a float32 copy.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdr_graph.errors import UserError

BINARY_VERSION = 6
SPEC_NAME = "WhisperSpec"
# dtype codes, in the order of CTranslate2's DataType enum (include/ctranslate2/types.h);
# bfloat16 (5) has no numpy type and int8 weights carry scales: neither is read here.
DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16)
DTYPE_NAMES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
GELU = 3  # common_spec.Activation.GELU


@dataclass
class Ct2Model:
    """The content of a ``model.bin``: header, named arrays and aliases (alias -> target)."""

    version: int
    name: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]

    def get(self, key: str) -> np.ndarray:
        return self.variables[self.aliases.get(key, key)]

    def has(self, key: str) -> bool:
        return key in self.variables or key in self.aliases


class _Reader:
    def __init__(self, buf: memoryview, source: str):
        self.buf, self.pos, self.source = buf, 0, source

    def take(self, n: int, what: str) -> memoryview:
        if self.pos + n > len(self.buf):
            raise UserError(f"{self.source} ends inside {what} (at byte {self.pos} of {len(self.buf)}): "
                            f"the file is truncated or not a CTranslate2 model")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.unpack("H", what)
        raw = bytes(self.take(n, what))
        if n == 0 or raw[-1] != 0:
            raise UserError(f"{self.source}: malformed string in {what} at byte {self.pos}: not a CTranslate2 model")
        return raw[:-1].decode("utf-8", errors="replace")


def parse_ct2(data: bytes | bytearray | memoryview, source: str = "model.bin") -> Ct2Model:
    """Parse CTranslate2 binary-format bytes. Arrays are views into ``data`` (no copy)."""
    r = _Reader(memoryview(data), source)
    version = r.unpack("I", "the header")
    if version != BINARY_VERSION:
        raise UserError(f"{source}: CTranslate2 binary version {version}, this reader knows version "
                        f"{BINARY_VERSION} only")
    name = r.string("the header")
    revision = r.unpack("I", "the header")
    n = r.unpack("I", "the header")
    variables: dict[str, np.ndarray] = {}
    for _ in range(n):
        key = r.string("a variable name")
        rank = r.unpack("B", key)
        shape = tuple(r.unpack("I", key) for _ in range(rank))
        code = r.unpack("B", key)
        nbytes = r.unpack("I", key)
        if code >= len(DTYPES):
            kind = DTYPE_NAMES[code] if code < len(DTYPE_NAMES) else f"code {code}"
            raise UserError(f"{source}: variable {key} is {kind}; only float32/float16 models are converted")
        dtype = np.dtype(DTYPES[code])
        if nbytes != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
            raise UserError(f"{source}: variable {key} has {nbytes} bytes for shape {shape} of {dtype}")
        variables[key] = np.frombuffer(r.take(nbytes, key), dtype=dtype).reshape(shape)
    aliases = {}
    for _ in range(r.unpack("I", "the alias table")):
        alias = r.string("the alias table")
        aliases[alias] = r.string("the alias table")
    if r.pos != len(r.buf):
        raise UserError(f"{source}: {len(r.buf) - r.pos} unexpected bytes after the alias table")
    return Ct2Model(version, name, revision, variables, aliases)


def read_ct2(path: str | Path) -> Ct2Model:
    """Read a CTranslate2 ``model.bin`` into memory and parse it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    return parse_ct2(data, str(path))


# ---------------------------------------------------------------------------- mapping

_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


def _count_layers(m: Ct2Model, side: str) -> int:
    found = {int(g.group(2)) for k in m.variables if (g := _LAYER.match(k)) and g.group(1) == side}
    if found != set(range(len(found))) or not found:
        raise UserError(f"{side} layers {sorted(found)} are not numbered 0..n-1: not a Whisper model")
    return len(found)


def _scalar(m: Ct2Model, key: str) -> int:
    if not m.has(key):
        raise UserError(f"{key} missing: not a CTranslate2 Whisper model")
    return int(m.get(key).reshape(-1)[0])


def model_dims(m: Ct2Model) -> dict[str, int]:
    """openai-whisper ``ModelDimensions`` from the tensor shapes and the stored head counts."""
    conv1 = m.get("encoder/conv1/weight")            # [n_audio_state, n_mels, 3]
    enc_pos = m.get("encoder/position_encodings/encodings")  # [n_audio_ctx, n_audio_state]
    emb = m.get("decoder/embeddings/weight")         # [n_vocab, n_text_state]
    dec_pos = m.get("decoder/position_encodings/encodings")  # [n_text_ctx, n_text_state]
    return dict(n_mels=int(conv1.shape[1]), n_audio_ctx=int(enc_pos.shape[0]), n_audio_state=int(conv1.shape[0]),
                n_audio_head=_scalar(m, "encoder/num_heads"), n_audio_layer=_count_layers(m, "encoder"),
                n_vocab=int(emb.shape[0]), n_text_ctx=int(dec_pos.shape[0]), n_text_state=int(emb.shape[1]),
                n_text_head=_scalar(m, "decoder/num_heads"), n_text_layer=_count_layers(m, "decoder"))


# Stored options, not weights, and the value each must have for openai-whisper's graph to
# compute the same thing. Absent is fine (older writers); another value is refused.
# Head counts are read by model_dims; the alignment options only steer CTranslate2's own
# word timing and change no weight.
_REQUIRED_OPTIONS = {"decoder/activation": GELU, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0,
                     "decoder/alibi": 0, "decoder/alibi_use_positive_positions": 0, "decoder/scale_alibi": 0,
                     "decoder/start_from_zero_embedding": 0}
_FREE_OPTIONS = {"encoder/num_heads", "decoder/num_heads", "decoder/alignment_heads", "decoder/alignment_layer"}


def _check_architecture(m: Ct2Model) -> None:
    """Refuse a model whose CTranslate2 options would make the openai-whisper graph compute something else."""
    if m.name != SPEC_NAME:
        raise UserError(f"model.bin holds a {m.name!r}, not a {SPEC_NAME}")
    for key, want in _REQUIRED_OPTIONS.items():
        if m.has(key) and _scalar(m, key) != want:
            raise UserError(f"{key} = {_scalar(m, key)}, Whisper needs {want}: this converter cannot map it")


def _split(w: np.ndarray, parts: int, key: str) -> list[np.ndarray]:
    if w.shape[0] % parts:
        raise UserError(f"{key} has {w.shape[0]} rows, not divisible into {parts} fused projections")
    return np.split(w, parts, axis=0)


def _attention(m: Ct2Model, src: str, dst: str, fused: bool, out: dict[str, np.ndarray]) -> set[str]:
    """Map one attention block; return the CTranslate2 keys it used."""
    used = set()

    def take(key: str) -> np.ndarray:
        used.add(f"{src}/{key}")
        return m.get(f"{src}/{key}")

    if fused:  # self-attention: linear_0 = [q; k; v], linear_1 = out
        qw, kw, vw = _split(take("linear_0/weight"), 3, f"{src}/linear_0/weight")
        qb, kb, vb = _split(take("linear_0/bias"), 3, f"{src}/linear_0/bias")
        out_key = "linear_1"
    else:  # cross-attention: linear_0 = q, linear_1 = [k; v], linear_2 = out
        qw, qb = take("linear_0/weight"), take("linear_0/bias")
        kw, vw = _split(take("linear_1/weight"), 2, f"{src}/linear_1/weight")
        kb, vb = _split(take("linear_1/bias"), 2, f"{src}/linear_1/bias")
        out_key = "linear_2"
    if np.any(kb != 0):  # openai-whisper's key projection has no bias; CT2 pads it with zeros
        raise UserError(f"{src}: the key part of the fused bias is not zero, so the key projection has a bias "
                        f"that openai-whisper cannot hold")
    out.update({f"{dst}.query.weight": qw, f"{dst}.query.bias": qb, f"{dst}.key.weight": kw,
                f"{dst}.value.weight": vw, f"{dst}.value.bias": vb,
                f"{dst}.out.weight": take(f"{out_key}/weight"), f"{dst}.out.bias": take(f"{out_key}/bias")})
    return used


def _pair(m: Ct2Model, src: str, dst: str, names: tuple[str, str], out: dict[str, np.ndarray]) -> set[str]:
    """``src/{names}`` -> ``dst.{weight,bias}`` (linear: weight/bias, layer norm: gamma/beta)."""
    out[f"{dst}.weight"] = m.get(f"{src}/{names[0]}")
    out[f"{dst}.bias"] = m.get(f"{src}/{names[1]}")
    return {f"{src}/{names[0]}", f"{src}/{names[1]}"}


_LINEAR, _NORM = ("weight", "bias"), ("gamma", "beta")


def to_openai(m: Ct2Model) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """``(dims, state_dict)`` of openai-whisper from a parsed CTranslate2 Whisper model.

    Every weight of the file must be used and every check must pass, or a
    :class:`UserError` says which one failed. Arrays keep their stored dtype. Shapes are
    checked by ``load_state_dict(strict=True)`` when the checkpoint is loaded.
    """
    _check_architecture(m)
    dims = model_dims(m)
    sd: dict[str, np.ndarray] = {}
    used = set(_REQUIRED_OPTIONS) | _FREE_OPTIONS
    try:
        for side in ("encoder", "decoder"):
            used |= _pair(m, f"{side}/layer_norm", "encoder.ln_post" if side == "encoder" else "decoder.ln", _NORM, sd)
            sd[f"{side}.positional_embedding"] = m.get(f"{side}/position_encodings/encodings")
            used.add(f"{side}/position_encodings/encodings")
            n = dims["n_audio_layer" if side == "encoder" else "n_text_layer"]
            for i in range(n):
                src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
                used |= _attention(m, f"{src}/self_attention", f"{dst}.attn", True, sd)
                used |= _pair(m, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln", _NORM, sd)
                if side == "decoder":
                    used |= _attention(m, f"{src}/attention", f"{dst}.cross_attn", False, sd)
                    used |= _pair(m, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln", _NORM, sd)
                used |= _pair(m, f"{src}/ffn/linear_0", f"{dst}.mlp.0", _LINEAR, sd)
                used |= _pair(m, f"{src}/ffn/linear_1", f"{dst}.mlp.2", _LINEAR, sd)
                used |= _pair(m, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln", _NORM, sd)
        for k in (1, 2):
            used |= _pair(m, f"encoder/conv{k}", f"encoder.conv{k}", _LINEAR, sd)
    except KeyError as e:
        raise UserError(f"model.bin has no variable {e.args[0]}: not a complete Whisper model") from None
    emb = m.get("decoder/embeddings/weight")
    sd["decoder.token_embedding.weight"] = emb
    used.add("decoder/embeddings/weight")
    # openai-whisper computes logits with the token embedding (tied); an untied projection cannot be kept.
    proj = "decoder/projection/weight"
    if m.has(proj):
        if m.aliases.get(proj) != "decoder/embeddings/weight" and not np.array_equal(m.get(proj), emb):
            raise UserError("decoder/projection/weight differs from the token embedding; openai-whisper ties them")
        used.add(proj)
    if m.has("decoder/projection/bias"):
        raise UserError("decoder/projection/bias is set; openai-whisper's output projection has no bias")
    unused = sorted(set(m.variables) - used)
    if unused:
        raise UserError(f"model.bin has {len(unused)} variable(s) this converter does not map, e.g. {unused[0]}")
    return dims, sd


def to_checkpoint(m: Ct2Model) -> dict:
    """``{"dims", "model_state_dict"}`` as ``whisper.load_model(path)`` reads it (torch tensors)."""
    import torch

    dims, sd = to_openai(m)
    # copies: the arrays are views into the file's bytes, which torch must not alias
    return {"dims": dims, "model_state_dict": {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}}
