"""The planted popularity signal: latent ranges, the four components and their oracle scores.

Each component is a weighted sum of standardised latents, built so that it has unit
variance over the generating distribution (weights inside a component have squares
summing to one). The corpus score is then

    score = intercept + w_song*song + w_visual*visual + w_audio*audio + w_meta*meta

and the popularity the metadata encodes is ``score + noise``. Every latent is put into
the corpus where exactly one modality can see it; docs/synthetic-corpus.md explains
which, and this module is the single source of the numbers quoted there.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

COMPONENTS = ("song", "visual", "audio", "meta", "creator", "hashtag")

# Latent ranges (uniform unless noted).
BRIGHTNESS = (0.2, 0.8)        # mean luma of the picture, 0..1
MOTION = (0.0, 0.6)            # distance the shape travels over the clip, as a fraction of picture width
LOUDNESS_DB = (-30.0, -12.0)   # RMS level of the soundtrack, dBFS
VOICE_HZ = (600.0, 2400.0)     # pitch of the per-video "voice" tone over the song (log-uniform)
FOLLOWERS_LOG10 = (4.0, 1.0)   # normal (mean, sd) of log10(author followers), clipped to FOLLOWERS_CLIP
FOLLOWERS_CLIP = (1.0, 7.5)
PEAK_HOUR_UTC = 20.0           # posting hour (UTC) that lifts a video most; the trough is 08:00
HASHTAGS = (0, 8)              # hashtag count, uniform integer
# The creator effect shows in the account's likes from videos outside the corpus (authorMeta.heart
# minus the corpus videos' likes): log10(other hearts) = a + b*creator_lift + c*N(0,1).
HEARTS_LOG10 = (4.5, 0.8, 0.3)
# Hub tags: each joins a video that has room for it with this probability; no effect on the score.
HUB_TAGS = {"fyp": 0.15, "foryou": 0.13, "viral": 0.12}
TOPIC_ZIPF = 0.8               # topic tag popularity P(rank r) ~ r^-a, each capped at TOPIC_MAX_SHARE
TOPIC_MAX_SHARE = 0.03         # of the videos: a topic stays below build-graph's 5% hub threshold
TOPICS_PER_VIDEO = 0.1         # topic tags in the vocabulary per video (at least 4)

# Sub-weights inside each component (squares sum to 1, so each component has unit variance).
VISUAL_WEIGHTS = {"brightness": 0.8, "motion": 0.6}
AUDIO_WEIGHTS = {"loudness": 0.8, "pitch": 0.6}
META_WEIGHTS = {"followers": 0.6, "hour": 0.6, "hashtags": math.sqrt(1 - 0.6 ** 2 - 0.6 ** 2)}


def _z_uniform(x, lo: float, hi: float):
    """Standardise a U(lo, hi) variable to mean 0, variance 1."""
    return (np.asarray(x, dtype=np.float64) - (lo + hi) / 2) / ((hi - lo) / math.sqrt(12))


def z_brightness(b) -> np.ndarray:
    return _z_uniform(b, *BRIGHTNESS)


def z_motion(m) -> np.ndarray:
    return _z_uniform(m, *MOTION)


def z_loudness(db) -> np.ndarray:
    return _z_uniform(db, *LOUDNESS_DB)


def z_pitch(hz) -> np.ndarray:
    return _z_uniform(np.log(np.asarray(hz, dtype=np.float64)), math.log(VOICE_HZ[0]), math.log(VOICE_HZ[1]))


def z_followers(log10_followers) -> np.ndarray:
    return (np.asarray(log10_followers, dtype=np.float64) - FOLLOWERS_LOG10[0]) / FOLLOWERS_LOG10[1]


def z_hour(hour_utc) -> np.ndarray:
    """sqrt(2)*cos(...) has unit variance when the hour is uniform over the day."""
    return math.sqrt(2) * np.cos(2 * math.pi * (np.asarray(hour_utc, dtype=np.float64) - PEAK_HOUR_UTC) / 24)


def z_hashtags(n) -> np.ndarray:
    lo, hi = HASHTAGS
    k = hi - lo + 1
    return (np.asarray(n, dtype=np.float64) - (lo + hi) / 2) / math.sqrt((k * k - 1) / 12)


def unit_components(lat: pd.DataFrame) -> pd.DataFrame:
    """The four unweighted, unit-variance components from the latent columns of ``lat``.

    Needs ``song_lift, brightness, motion, loudness_db, voice_hz, has_audio,
    log10_followers, hour_utc, hashtag_count, creator_lift, topic_lift``. A video without a
    sound track gets an audio component of 0 (the population mean): its loudness and pitch
    do not exist. A video without hashtags has no topic (``topic_lift`` NaN) and a hashtag
    component of 0; the others' topic lift is scaled by ``sqrt(9/8)`` so that the
    component has unit variance (8 in 9 videos have a topic).
    """
    visual = VISUAL_WEIGHTS["brightness"] * z_brightness(lat["brightness"]) + \
        VISUAL_WEIGHTS["motion"] * z_motion(lat["motion"])
    has_audio = lat["has_audio"].to_numpy(dtype=bool)
    audio = AUDIO_WEIGHTS["loudness"] * z_loudness(lat["loudness_db"].fillna(-21.0)) + \
        AUDIO_WEIGHTS["pitch"] * z_pitch(lat["voice_hz"].fillna(1200.0))
    audio = np.where(has_audio, audio, 0.0)
    meta = META_WEIGHTS["followers"] * z_followers(lat["log10_followers"]) + \
        META_WEIGHTS["hour"] * z_hour(lat["hour_utc"]) + \
        META_WEIGHTS["hashtags"] * z_hashtags(lat["hashtag_count"])
    k = HASHTAGS[1] - HASHTAGS[0] + 1
    topic = lat["topic_lift"].to_numpy(dtype=np.float64)
    hashtag = np.where(np.isnan(topic), 0.0, topic * math.sqrt(k / (k - 1)))
    return pd.DataFrame({"song": lat["song_lift"].to_numpy(dtype=np.float64), "visual": visual,
                         "audio": audio, "meta": meta, "creator": lat["creator_lift"].to_numpy(dtype=np.float64),
                         "hashtag": hashtag}, index=lat.index)


def weighted_components(unit: pd.DataFrame, cfg) -> pd.DataFrame:
    """Scale each unit component by its weight in ``cfg`` (a SynthConfig)."""
    return pd.DataFrame({c: unit[c] * float(getattr(cfg, f"w_{c}")) for c in COMPONENTS}, index=unit.index)


def rank(x) -> np.ndarray:
    """Ranks with ties averaged (the Spearman convention)."""
    return pd.Series(np.asarray(x, dtype=np.float64)).rank(method="average").to_numpy()


def spearman(a, b) -> float:
    """Spearman rank correlation (NaN when either side is constant or there are < 3 values)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    ra, rb = rank(a[ok]), rank(b[ok])
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def oracle_report(truth: pd.DataFrame) -> dict:
    """How much of ``popularity_raw`` each component explains, measured on a truth table.

    For each component: its share of the variance of ``popularity_raw``, the Spearman of
    an oracle that knows only that component, and of one that knows all the others.
    ``all`` is the oracle that knows the noiseless score (the ceiling any model can reach).
    A statistic that does not exist (a constant component in a tiny corpus, e.g. one
    creator) is ``None``, so the report stays valid JSON and compares equal to itself.
    """
    y = truth["popularity_raw"].to_numpy(dtype=np.float64)
    var_y = float(np.var(y))
    total = truth[list(COMPONENTS)].sum(axis=1).to_numpy()
    out: dict[str, dict] = {}
    for c in COMPONENTS:
        x = truth[c].to_numpy(dtype=np.float64)
        out[c] = {
            "variance_share": float(np.var(x) / var_y) if var_y else float("nan"),
            "oracle_spearman": spearman(x, y),
            "without_spearman": spearman(total - x, y),
        }
    out["noise"] = {"variance_share": float(np.var(truth["noise"].to_numpy()) / var_y) if var_y else float("nan")}
    out["all"] = {"oracle_spearman": spearman(truth["score"], y)}
    return {k: {m: (None if isinstance(x, float) and math.isnan(x) else x) for m, x in d.items()}
            for k, d in out.items()}
