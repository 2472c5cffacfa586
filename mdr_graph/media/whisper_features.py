"""Whisper features of a clip: a mean-pooled encoder embedding, the transcript and its language.

The model is loaded offline: from a checkpoint file (``whisper.load_model(path)``), or
by name (``tiny``, ``base``, ...) only when that model's file is already in Whisper's
cache (``$XDG_CACHE_HOME/whisper`` or ``~/.cache/whisper``) and matches its checksum.
This tool never downloads; a missing model is a :class:`~mdr_graph.errors.UserError`
naming the file and how to get it.

The embedding is ``model.embed_audio`` over the log-mel spectrogram of the first 30 s
(Whisper's fixed window, padded with silence), averaged over the encoder positions
that cover actual sound (50 per second), so a 10-second clip is not diluted by 20
seconds of padding; a clip with no sound at all is averaged over the whole window.
The transcript and detected language come from ``model.transcribe`` on the same 30 s.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mdr_graph.errors import UserError

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


def resolve_whisper(path_or_name: str) -> tuple[str, str | None]:
    """(checkpoint file, official model name or None) without loading; UserError when unavailable."""
    import whisper

    spec = str(path_or_name).strip()
    p = Path(spec).expanduser()
    if p.is_file():
        return str(p.resolve()), None
    models = getattr(whisper, "_MODELS", {})
    if spec in models:
        url = models[spec]
        cached = whisper_cache_dir() / os.path.basename(url)
        if not cached.is_file():
            raise UserError(
                f"Whisper model {spec!r} is not in the local cache ({cached}) and mdr-graph never downloads. "
                f"On a machine with internet run `python -c \"import whisper; whisper.load_model('{spec}')\"`, "
                f"then copy the file to {cached} on this machine, or pass --whisper /path/to/{cached.name}")
        expected = url.split("/")[-2]
        digest = hashlib.sha256()
        with open(cached, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise UserError(f"Whisper model file {cached} is incomplete or corrupt (SHA-256 mismatch); "
                            f"copy a fresh {cached.name} there or pass --whisper /path/to/{cached.name}")
        return str(cached), spec
    if _looks_like_path(spec):
        raise UserError(f"Whisper checkpoint not found: {p}; pass an existing .pt file "
                        f"(a dict with 'dims' and 'model_state_dict') or a cached model name")
    raise UserError(f"unknown Whisper model {spec!r}: pass a checkpoint path or one of "
                    f"{', '.join(models) or 'tiny, base, small, medium, large'} (already in {whisper_cache_dir()})")


def load_whisper(path_or_name: str, device: str = "cpu"):
    """Load a Whisper model from a local checkpoint path, or a cached model name, never downloading."""
    import whisper

    file, name = resolve_whisper(path_or_name)
    try:
        if name is not None:  # checksum verified above, so whisper reads the cache and adds alignment heads
            model = whisper.load_model(name, device=device, download_root=str(Path(file).parent))
        else:
            model = whisper.load_model(file, device=device)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{file} is not a loadable Whisper checkpoint (expected a dict with 'dims' and "
                        f"'model_state_dict'): {type(e).__name__}: {e}") from None
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


def whisper_features(model, audio: np.ndarray, has_audio: bool = True, *, do_transcribe: bool = True,
                     max_tokens: int | None = None) -> dict[str, Any]:
    """``{"whisper": float32 [d], "transcript": str, "language": str}`` for one clip.

    A clip without sound still gets the embedding of silence (so shapes stay uniform),
    and an empty transcript and language, rather than whatever Whisper hallucinates.
    """
    out: dict[str, Any] = {"whisper": embed(model, audio)}
    if do_transcribe and has_audio:
        out["transcript"], out["language"] = transcribe(model, audio, max_tokens)
    else:
        out["transcript"], out["language"] = "", ""
    return out
