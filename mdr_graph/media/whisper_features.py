"""Whisper features of a clip: a mean-pooled encoder embedding, the transcript and its language.

The model is loaded offline, always with ``whisper.load_model(path)`` on a local file, so
openai-whisper's own download code is never reached:

- a checkpoint file (``{"dims", "model_state_dict"}``);
- ``base``: the registry model installed by ``mdr-graph whisper-install`` in
  ``~/.cache/mdr-graph/whisper`` (:mod:`.whisper_model`), checked against its manifest's
  SHA-256 on every load;
- any official name (``tiny``, ``small``, ...) whose file is already in Whisper's own cache
  (``$XDG_CACHE_HOME/whisper`` or ``~/.cache/whisper``) and matches its published checksum.

A missing or damaged model is a :class:`~mdr_graph.errors.UserError` in one line that says
what to run.

The embedding is ``model.embed_audio`` over the log-mel spectrogram of the first 30 s
(Whisper's fixed window, padded with silence), averaged over the encoder positions
that cover actual sound (50 per second), so a 10-second clip is not diluted by 20
seconds of padding; a clip with no sound at all is averaged over the whole window.
The transcript and detected language come from the same 30 s, greedy, by openai-whisper's
``model.transcribe`` or, with the ``faster-whisper`` backend, by faster-whisper
(CTranslate2, int8) running the same weights from the installed CTranslate2 directory:
about half the CPU time, see docs/whisper.md. The embedding always comes from the
PyTorch encoder, so it does not depend on the backend.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mdr_graph.errors import UserError
from mdr_graph.media.extract_config import TRANSCRIBE_BACKENDS

WINDOW_S = 30.0
POSITIONS_PER_SECOND = 50  # encoder output: 1500 positions per 30 s window

TINY_TEST_DIMS = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
                      n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=1)


def whisper_cache_dir() -> Path:
    """Where ``whisper.load_model(name)`` keeps its downloads."""
    default = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.getenv("XDG_CACHE_HOME", default)) / "whisper"


def _looks_like_path(s: str) -> bool:
    return os.sep in s or (os.altsep is not None and os.altsep in s) or s.endswith((".pt", ".pth", ".bin"))


@dataclass(frozen=True)
class Resolved:
    """A Whisper model found on disk: its checkpoint file, its name, and its alignment heads."""

    file: str
    name: str | None                                 # official/installed model name, None for a plain file
    alignment_heads: tuple[tuple[int, int], ...] | None = None  # (layer, head); None: openai-whisper's own


def _official_cached(spec: str) -> str | None:
    """The verified file of an official model already in Whisper's cache; UserError if it is damaged."""
    import whisper

    url = whisper._MODELS[spec]
    cached = whisper_cache_dir() / os.path.basename(url)
    if not cached.is_file():
        return None
    expected = url.split("/")[-2]
    digest = hashlib.sha256()
    with open(cached, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise UserError(f"Whisper model file {cached} is incomplete or corrupt (SHA-256 mismatch); "
                        f"copy a fresh {cached.name} there or pass --whisper /path/to/{cached.name}")
    return str(cached)


def _resolve(path_or_name: str) -> Resolved:
    import whisper

    from mdr_graph.media import whisper_model

    spec = str(path_or_name).strip()
    p = Path(spec).expanduser()
    if p.is_file():
        return Resolved(str(p.resolve()), None)
    models = getattr(whisper, "_MODELS", {})
    if spec in whisper_model.MODELS:
        # installed by `mdr-graph whisper-install`; an official copy in Whisper's cache also does
        if whisper_model.is_installed(spec) or (spec not in models or _official_cached(spec) is None):
            inst = whisper_model.verify(spec)  # one line: not installed / half installed / corrupt
            return Resolved(str(inst.checkpoint), spec, tuple(inst.alignment_heads) or None)
    if spec in models:
        cached = _official_cached(spec)
        if cached is None:
            cached_path = whisper_cache_dir() / os.path.basename(models[spec])
            raise UserError(
                f"Whisper model {spec!r} is not in the local cache ({cached_path}) and mdr-graph never downloads. "
                f"On a machine with internet run `python -c \"import whisper; whisper.load_model('{spec}')\"`, "
                f"then copy the file to {cached_path} on this machine, or pass --whisper /path/to/{cached_path.name}")
        return Resolved(cached, spec)
    if _looks_like_path(spec):
        raise UserError(f"Whisper checkpoint not found: {p}; pass an existing .pt file "
                        f"(a dict with 'dims' and 'model_state_dict') or a model name")
    raise UserError(f"unknown Whisper model {spec!r}: pass a checkpoint path, an installed model "
                    f"({', '.join(whisper_model.MODELS)}: `mdr-graph whisper-install`) or one of "
                    f"{', '.join(models) or 'tiny, base, small, medium, large'} already in {whisper_cache_dir()}")


def resolve_whisper(path_or_name: str) -> tuple[str, str | None]:
    """(checkpoint file, model name or None) without loading; UserError when unavailable or damaged."""
    r = _resolve(path_or_name)
    return r.file, r.name


def _alignment_dump(heads, n_layer: int, n_head: int) -> bytes:
    """openai-whisper's ``set_alignment_heads`` format: base85 of a gzipped boolean [layer, head] mask."""
    mask = np.zeros((n_layer, n_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes()))


def load_whisper(path_or_name: str, device: str = "cpu"):
    """Load a Whisper model from a local checkpoint path or an installed/cached name, never downloading."""
    import whisper

    r = _resolve(path_or_name)
    try:  # always a path: openai-whisper's download code is only reached for a name
        model = whisper.load_model(r.file, device=device)
    except Exception as e:
        raise UserError(f"{r.file} is not a loadable Whisper checkpoint (expected a dict with 'dims' and "
                        f"'model_state_dict'): {type(e).__name__}: {e}") from None
    # word-level timing uses these heads; a path load would fall back to "all heads of the upper half"
    if r.alignment_heads:
        model.set_alignment_heads(_alignment_dump(r.alignment_heads, model.dims.n_text_layer,
                                                  model.dims.n_text_head))
    elif r.name in getattr(whisper, "_ALIGNMENT_HEADS", {}):
        model.set_alignment_heads(whisper._ALIGNMENT_HEADS[r.name])
    model.eval()
    return model


def write_tiny_checkpoint(path: str | Path, seed: int = 0, dims: dict[str, int] | None = None) -> Path:
    """Write a random-weight Whisper checkpoint in the real format, for tests and demos.

    The file is what ``whisper.load_model(path)`` expects (``{"dims", "model_state_dict"}``)
    with tiny dimensions (:data:`TINY_TEST_DIMS`, multilingual vocabulary, whose
    tokenizer ships inside the whisper package). It transcribes gibberish; it exists to
    exercise the real loading and feature code offline and in seconds.
    """
    from whisper.model import ModelDimensions, Whisper

    from mdr_graph.io import torch_save

    d = dict(TINY_TEST_DIMS if dims is None else dims)
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Whisper(ModelDimensions(**d))
    finally:
        torch.random.set_rng_state(gen_state)
    path = Path(path)
    torch_save(path, {"dims": d, "model_state_dict": model.state_dict()})
    return path


def model_label(model) -> str:
    """A short description of a loaded model, for logs and metrics."""
    d = model.dims
    return (f"whisper(audio {d.n_audio_layer}x{d.n_audio_state}, text {d.n_text_layer}x{d.n_text_state}, "
            f"{'multilingual' if model.is_multilingual else 'English'})")


@torch.no_grad()
def embed(model, audio: np.ndarray, sample_rate: int = 16000) -> torch.Tensor:
    """Mean-pooled encoder output ``[n_audio_state]`` over the first 30 s of 16 kHz mono ``audio``."""
    import whisper

    if sample_rate != whisper.audio.SAMPLE_RATE:
        raise ValueError(f"Whisper needs {whisper.audio.SAMPLE_RATE} Hz audio, got {sample_rate}")
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(-1)
    n_sound = min(len(x), whisper.audio.N_SAMPLES)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(x), n_mels=model.dims.n_mels)
    feats = model.embed_audio(mel[None].to(model.device))[0]  # [n_audio_ctx, d]
    n_pos = int(np.ceil(n_sound / sample_rate * POSITIONS_PER_SECOND)) if n_sound else feats.shape[0]
    n_pos = max(1, min(n_pos, feats.shape[0]))
    return feats[:n_pos].mean(dim=0).float().cpu()


def transcribe(model, audio: np.ndarray, max_tokens: int | None = None) -> tuple[str, str]:
    """(text, language) of the first 30 s, greedy and deterministic (temperature 0, no fallback)."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)[: int(WINDOW_S * 16000)]
    options: dict[str, Any] = dict(temperature=0.0, condition_on_previous_text=False, fp16=False, verbose=None)
    if max_tokens:
        options["sample_len"] = int(max_tokens)
    result = model.transcribe(x, **options)
    return str(result.get("text", "")).strip(), str(result.get("language") or "")


# ---------------------------------------------------------------------------- faster-whisper backend

# int8 weights, float32 activations: the fastest CPU setting in bench/bench_whisper.py (docs/whisper.md)
FASTER_COMPUTE_TYPE = "int8"


def faster_model_dir(path_or_name: str) -> Path:
    """The local CTranslate2 directory for ``path_or_name``: an installed model's, or a directory given."""
    from mdr_graph.media import whisper_model

    spec = str(path_or_name).strip()
    if spec in whisper_model.MODELS:
        return whisper_model.verify(spec, checkpoint=False, ct2=True).ct2_dir
    p = Path(spec).expanduser()
    if p.is_dir() and (p / "model.bin").is_file():
        return p
    raise UserError(f"the faster-whisper backend runs an installed model (--whisper "
                    f"{' or '.join(whisper_model.MODELS)}, see `mdr-graph whisper-install`) or a CTranslate2 "
                    f"model directory; {spec!r} is neither")


def load_faster_whisper(path_or_name: str, compute_type: str = FASTER_COMPUTE_TYPE, threads: int | None = None):
    """A ``faster_whisper.WhisperModel`` on CPU from the *local* directory (a path: it never looks at a hub)."""
    from faster_whisper import WhisperModel

    local = faster_model_dir(path_or_name)
    threads = torch.get_num_threads() if threads is None else threads
    try:
        return WhisperModel(str(local.resolve()), device="cpu", compute_type=compute_type, cpu_threads=threads,
                            local_files_only=True)
    except Exception as e:
        raise UserError(f"faster-whisper cannot load {local}: {type(e).__name__}: {e}") from None


_FASTER: dict[tuple[str, str, int], Any] = {}


def faster_whisper_for(path_or_name: str):
    """One faster-whisper model per (model, compute type, thread count) in this process, loaded on first use."""
    key = (str(path_or_name), FASTER_COMPUTE_TYPE, torch.get_num_threads())
    if key not in _FASTER:
        _FASTER[key] = load_faster_whisper(path_or_name, threads=key[2])
    return _FASTER[key]


def transcribe_faster(model, audio: np.ndarray, max_tokens: int | None = None) -> tuple[str, str]:
    """(text, language) of the first 30 s with faster-whisper, with the settings of :func:`transcribe`."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)[: int(WINDOW_S * 16000)]
    # greedy, one temperature (no fallback), no conditioning, no VAD: what transcribe() asks of openai-whisper
    segments, info = model.transcribe(x, beam_size=1, best_of=1, temperature=0.0, condition_on_previous_text=False,
                                      vad_filter=False, without_timestamps=False,
                                      max_new_tokens=int(max_tokens) if max_tokens else None)
    text = "".join(seg.text for seg in segments)  # a generator: decoding happens here
    return text.strip(), str(info.language or "")


def load_audio(path: str | Path, seconds: float = WINDOW_S, sample_rate: int = 16000) -> np.ndarray:
    """Up to ``seconds`` of an audio (or video) file, mono float32 at ``sample_rate``, decoded with PyAV."""
    from mdr_graph.media.decode import DecodeError, _open, read_audio

    try:
        container = _open(path)
        try:
            audio, has_audio = read_audio(container, seconds, sample_rate)
        finally:
            container.close()
    except DecodeError as e:
        raise UserError(f"{path}: {e}") from None
    if not has_audio:
        raise UserError(f"{path} has no audio track")
    return audio


def whisper_features(model, audio: np.ndarray, has_audio: bool = True, *, do_transcribe: bool = True,
                     max_tokens: int | None = None, backend: str = "openai",
                     faster_model=None) -> dict[str, Any]:
    """``{"whisper": float32 [d], "transcript": str, "language": str}`` for one clip.

    A clip without sound still gets the embedding of silence (so shapes stay uniform),
    and an empty transcript and language, rather than whatever Whisper hallucinates.
    ``backend="faster-whisper"`` takes the transcript from ``faster_model``.
    """
    if backend not in TRANSCRIBE_BACKENDS:
        raise ValueError(f"backend must be one of {TRANSCRIBE_BACKENDS}, got {backend!r}")
    out: dict[str, Any] = {"whisper": embed(model, audio)}
    if do_transcribe and has_audio:
        if backend == "faster-whisper":
            if faster_model is None:
                raise ValueError("backend 'faster-whisper' needs faster_model")
            out["transcript"], out["language"] = transcribe_faster(faster_model, audio, max_tokens)
        else:
            out["transcript"], out["language"] = transcribe(model, audio, max_tokens)
    else:
        out["transcript"], out["language"] = "", ""
    return out
