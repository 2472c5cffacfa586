"""The settings of a synthetic corpus: one dataclass, saved as ``DIR/config.toml`` (section ``synth``).

Everything that changes a single byte of the corpus lives here; how the corpus is
produced (worker count, progress bar, ``--force``) does not, so a corpus re-run with
more workers is recognised as the same corpus and resumed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import date

from mdr_graph.errors import UserError

# Bumped whenever the generator's output changes for the same settings, so a corpus
# written by an older generator is never silently "resumed" with newer files.
GENERATOR_VERSION = 2  # 2: creators with several videos (Zipf), shared hashtags, creator and hashtag effects

CODECS = ("auto", "libx264", "mpeg4")


@dataclass
class SynthConfig:
    """Corpus size, media format and the planted signal's weights.

    Signal: ``score = intercept + w_song*song + w_visual*visual + w_audio*audio + w_meta*meta
    + w_creator*creator + w_hashtag*hashtag`` where each unweighted part has unit variance by
    construction; the observed popularity is ``score + N(0, noise_sd)``. See docs/synthetic-corpus.md.
    """

    n_videos: int = 200
    n_songs: int | None = None          # None: max(1, n_videos // 4); every song gets >= 1 video
    seed: int = 0
    # media
    seconds: float = 3.0                # mean clip length; each clip is seconds * U(0.8, 1.2)
    width: int = 144
    height: int = 256                   # 9:16 portrait, like TikTok
    fps: int = 12
    sample_rate: int = 22050            # AAC mono; the extractor resamples to 16 kHz
    codec: str = "auto"                 # auto = libx264 if PyAV's FFmpeg has it, else mpeg4
    no_audio_fraction: float = 0.0      # share of videos written without an audio track
    corrupt: int = 0                    # number of deliberately broken files (truncated, empty, garbage)
    # corpus structure
    zipf_exponent: float = 1.1          # song popularity: P(rank r) ~ r^-a on top of one video per song
    n_creators: int | None = None       # None: max(1, n_videos // 4); every creator posts >= 1 video
    creator_zipf: float = 1.1           # creator activity: P(rank r) ~ r^-a on top of one video each
    days: int = 30                      # createTime spread (days before the newest video)
    end_date: str = "2020-12-21"        # UTC day of the newest video, which defines the scrape time
    # planted signal
    intercept: float = 8.0
    w_song: float = 0.7
    w_visual: float = 0.7
    w_audio: float = 0.7
    w_meta: float = 0.7
    w_creator: float = 0.7
    w_hashtag: float = 0.7
    noise_sd: float = 0.5

    @property
    def songs(self) -> int:
        return self.n_songs if self.n_songs is not None else max(1, self.n_videos // 4)

    @property
    def creators(self) -> int:
        return self.n_creators if self.n_creators is not None else max(1, self.n_videos // 4)

    def resolved(self) -> dict:
        """The settings with defaults filled in: saved as config.toml, compared when resuming."""
        d = dataclasses.asdict(self)
        d["n_songs"] = self.songs
        d["n_creators"] = self.creators
        return d


def validate(cfg: SynthConfig) -> SynthConfig:
    """Raise :class:`UserError` naming the first bad setting."""
    def bad(flag: str, value, why: str):
        raise UserError(f"synth: {flag}={value!r} is invalid: {why}")

    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        bad("--seed", cfg.seed, "must be a non-negative integer")
    if cfg.n_videos < 1:
        bad("--videos", cfg.n_videos, "need at least one video")
    if not 1 <= cfg.songs <= cfg.n_videos:
        bad("--songs", cfg.songs, f"must be between 1 and --videos ({cfg.n_videos}), since every song is used")
    if not 1 <= cfg.creators <= cfg.n_videos:
        bad("--creators", cfg.creators, f"must be between 1 and --videos ({cfg.n_videos}), since every creator posts")
    if not 0.0 <= cfg.creator_zipf <= 4.0:
        bad("--creator-zipf", cfg.creator_zipf, "use 0 (uniform) to 4 (one creator posts nearly everything)")
    if not 0.5 <= cfg.seconds <= 120:
        bad("--seconds", cfg.seconds, "use 0.5 to 120 seconds")
    for flag, v in (("--width", cfg.width), ("--height", cfg.height)):
        if v < 16 or v % 2:
            bad(flag, v, "must be an even number of pixels, at least 16 (H.264 uses 4:2:0 chroma)")
    if abs(cfg.width / cfg.height - 9 / 16) > 0.02:
        bad("--width/--height", f"{cfg.width}x{cfg.height}", "must be 9:16 portrait, e.g. 144x256, 360x640, 720x1280")
    if not 2 <= cfg.fps <= 60:
        bad("--fps", cfg.fps, "use 2 to 60")
    if cfg.sample_rate not in (16000, 22050, 24000, 32000, 44100, 48000):
        bad("--sample-rate", cfg.sample_rate, "use one of 16000, 22050, 24000, 32000, 44100, 48000")
    if cfg.codec not in CODECS:
        bad("--codec", cfg.codec, f"choose from {', '.join(CODECS)}")
    if not 0.0 <= cfg.no_audio_fraction <= 1.0:
        bad("--no-audio-fraction", cfg.no_audio_fraction, "must be between 0 and 1")
    if not 0 <= cfg.corrupt <= cfg.n_videos:
        bad("--corrupt", cfg.corrupt, f"must be between 0 and --videos ({cfg.n_videos})")
    if not 0.0 <= cfg.zipf_exponent <= 4.0:
        bad("--zipf", cfg.zipf_exponent, "use 0 (uniform) to 4 (one song takes nearly everything)")
    if not 1 <= cfg.days <= 3650:
        bad("--days", cfg.days, "use 1 to 3650")
    try:
        date.fromisoformat(cfg.end_date)
    except (TypeError, ValueError):
        bad("--end-date", cfg.end_date, "write it as YYYY-MM-DD")
    for name in ("intercept", "w_song", "w_visual", "w_audio", "w_meta", "w_creator", "w_hashtag", "noise_sd"):
        v = getattr(cfg, name)
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            bad(name, v, "must be a finite number")
    if cfg.noise_sd < 0:
        bad("--noise", cfg.noise_sd, "must be >= 0")
    return cfg
