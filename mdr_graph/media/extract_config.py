"""The settings of ``mdr-graph extract``: what a feature directory was extracted with.

Apart from :mod:`.extract` so that the store (which reads ``FEATDIR/config.toml``
back) and the extraction both depend on it, and neither on the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mdr_graph.config import from_dict, load_toml
from mdr_graph.errors import UserError
from mdr_graph.media.decode import FITS, POSITIONS, STRATEGIES

CONFIG_FILE = "config.toml"     # FEATDIR/config.toml: [extract] settings (+ [source] graph) every shard shares
SECTION = "extract"
WHISPER_SAMPLE_RATE = 16000
TRANSCRIBE_BACKENDS = ("openai", "faster-whisper")  # transcripts by openai-whisper or faster-whisper (int8)


@dataclass
class ExtractConfig:
    """Settings of ``mdr-graph extract`` (saved as ``FEATDIR/config.toml``, section ``extract``)."""

    frames: int = 2                 # frames kept per video, one per segment
    segments: int | None = None     # split into this many segments and keep the first `frames` (None: = frames)
    position: str = "centre"        # take the frame at each segment's "centre" or "start"
    size: int = 64                  # square side in pixels (224 for ImageNet-sized encoders)
    fit: str = "crop"               # 9:16 -> square: "crop" (centre), "letterbox" or "stretch"
    strategy: str = "auto"          # frame access: "auto" (per video), "seek" or "scan"; same frames either way
    sample_rate: int = 16000        # audio is mixed to mono and resampled to this rate
    audio_seconds: float = 10.0     # audio is padded with silence or trimmed to this length
    n_mfcc: int = 40
    n_mels: int = 64                # mel bands behind the MFCC and the filter banks
    fbank: bool = False             # also store log mel filter banks [n_mels, T]
    whisper: str | None = None      # Whisper checkpoint path or cached model name; None: no Whisper
    transcribe: bool = True         # with Whisper: also transcribe and detect the language
    whisper_max_tokens: int | None = None  # cap on tokens decoded per 30 s window (None: Whisper's default)
    transcribe_backend: str = "openai"  # transcripts by "openai"-whisper or "faster-whisper" (same weights, int8)
    shard_size: int = 256           # videos per shard file (a kill loses at most this many)
    shard_mb: int = 512             # ... or this many MB of features, whichever comes first
    decode_threads: int = 0         # FFmpeg decoder threads per process (0: cores / workers)
    media_root: str | None = None   # if set, every video file must resolve inside this directory


# Settings that change what is stored: a resumed or sharded run must agree on these.
OUTPUT_FIELDS = ("frames", "segments", "position", "size", "fit", "sample_rate", "audio_seconds", "n_mfcc",
                 "n_mels", "fbank", "whisper", "transcribe", "whisper_max_tokens", "transcribe_backend")


def validate(cfg: ExtractConfig) -> ExtractConfig:
    """Check every setting; raise :class:`UserError` naming the bad one. Returns ``cfg``."""
    def bad(name: str, why: str) -> None:
        raise UserError(f"extract setting {name}={getattr(cfg, name)!r}: {why}")

    if cfg.frames < 1:
        bad("frames", "need at least 1 frame")
    if cfg.segments is not None and cfg.segments < cfg.frames:
        bad("segments", f"must be >= frames ({cfg.frames})")
    if cfg.position not in POSITIONS:
        bad("position", f"choose from {', '.join(POSITIONS)}")
    if not 8 <= cfg.size <= 1024:
        bad("size", "choose a square side between 8 and 1024 pixels (64 default, 224 for ViT)")
    if cfg.fit not in FITS:
        bad("fit", f"choose from {', '.join(FITS)}")
    if cfg.strategy not in STRATEGIES:
        bad("strategy", f"choose from {', '.join(STRATEGIES)}")
    if not 1000 <= cfg.sample_rate <= 192000:
        bad("sample_rate", "choose a rate in Hz such as 16000")
    if cfg.whisper and cfg.sample_rate != WHISPER_SAMPLE_RATE:
        bad("sample_rate", "Whisper needs 16000 Hz")
    if not 0 < cfg.audio_seconds <= 600:
        bad("audio_seconds", "choose a clip length in seconds, e.g. 10")
    if cfg.n_mels < 8:
        bad("n_mels", "need at least 8 mel bands")
    if not 1 <= cfg.n_mfcc <= cfg.n_mels:
        bad("n_mfcc", f"must be between 1 and n_mels ({cfg.n_mels})")
    if cfg.shard_size < 1:
        bad("shard_size", "need at least 1 video per shard")
    if cfg.shard_mb < 1:
        bad("shard_mb", "need at least 1 MB per shard")
    if cfg.decode_threads < 0:
        bad("decode_threads", "use 0 for automatic or a positive count")
    if cfg.whisper_max_tokens is not None and cfg.whisper_max_tokens < 1:
        bad("whisper_max_tokens", "use a positive count or leave unset")
    if cfg.transcribe_backend not in TRANSCRIBE_BACKENDS:
        bad("transcribe_backend", f"choose from {', '.join(TRANSCRIBE_BACKENDS)}")
    return cfg


def load_config(featdir: str | Path) -> ExtractConfig:
    """The settings a ``FEATDIR`` was extracted with."""
    path = Path(featdir) / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: {featdir} is not a feature directory from `mdr-graph extract`")
    return from_dict(ExtractConfig, load_toml(path).get(SECTION, {}), source=str(path))
