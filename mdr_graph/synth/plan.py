"""Draw everything about a corpus except its pixels and samples: a pure function of the config.

The plan fixes, per video, its song, author, hashtags, posting time, media latents
(brightness, motion, loudness, pitch, ...), the planted score and the engagement counts
that encode it; per song its lift, platform use count and sound; per author the follower
count, the creator lift and the account counts that show it; per topic hashtag its lift.
Media rendering, metadata.json and truth.csv are all read off the plan, so they cannot
disagree with each other.

Each aspect draws from its own named random stream (``stream(seed, "audio")``...), so
changing one option (say ``--corrupt``) leaves every other latent of the corpus as it was.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from mdr_graph.synth import signal, text
from mdr_graph.synth.config import SynthConfig, validate

CORRUPT_KINDS = ("truncated", "empty", "garbage")
PENTATONIC = (0, 2, 4, 7, 9, 12)       # semitone steps a song's 8-note melody is drawn from
MELODY_NOTES = 8
SONG_BASE_HZ = (110.0, 330.0)          # per-song root pitch (log-uniform): the song's audible identity
SONG_BPM = (80.0, 150.0)
USES_LOG10 = (3.5, 0.8, 0.3)           # log10(platform uses) = a + b*song_lift + c*N(0,1)
MAX_LOG_TARGET = 30.0                  # keeps counts inside int64 whatever the weights


def stream(seed: int, name: str, *extra: int) -> np.random.Generator:
    """An independent generator per (seed, aspect[, index]), stable across versions of numpy."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()), *extra)))


@dataclass
class CorpusPlan:
    config: SynthConfig
    videos: pd.DataFrame      # one row per video, in metadata order
    songs: pd.DataFrame       # one row per song (every song has >= 1 video)
    authors: pd.DataFrame     # one row per author (every author has >= 1 video)
    topics: pd.DataFrame      # one row per topic hashtag: name, lift, share
    scrape_time: int          # epoch seconds: the newest video's createTime


def song_degrees(n_videos: int, n_songs: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Videos per song: one each, plus ``n_videos - n_songs`` drawn Zipf-like over randomly ranked songs.

    The popularity rank is a random permutation, independent of the song's lift, so the
    corpus degree of a song says nothing about how much it lifts its videos.
    """
    rank = rng.permutation(n_songs) + 1.0
    p = rank ** -exponent
    return 1 + rng.multinomial(n_videos - n_songs, p / p.sum())


def _unique_ids(high: np.ndarray, rng: np.random.Generator, taken: set[int] | None = None) -> list[str]:
    """TikTok-style ids: ``(epoch_seconds << 32) | random 32 bits`` (19 digits for 1977-2043)."""
    taken = set() if taken is None else taken
    out = []
    for h in high.astype(np.int64).tolist():
        while True:
            v = (int(h) << 32) | int(rng.integers(0, 2 ** 32))
            if v not in taken:
                taken.add(v)
                out.append(str(v))
                break
    return out


def _songs(cfg: SynthConfig) -> pd.DataFrame:
    S = cfg.songs
    rng = stream(cfg.seed, "songs")
    lift = rng.standard_normal(S)
    base_hz = np.exp(rng.uniform(math.log(SONG_BASE_HZ[0]), math.log(SONG_BASE_HZ[1]), S))
    bpm = rng.uniform(*SONG_BPM, S)
    h2, h3 = rng.uniform(0.2, 0.6, S), rng.uniform(0.05, 0.3, S)
    melody = rng.choice(np.array(PENTATONIC), size=(S, MELODY_NOTES))
    uses_noise = rng.standard_normal(S)
    degree = song_degrees(cfg.n_videos, S, cfg.zipf_exponent, stream(cfg.seed, "degree"))
    a, b, c = USES_LOG10
    uses = np.maximum(np.rint(10 ** (a + b * lift + c * uses_noise)), degree).astype(np.int64)
    original = stream(cfg.seed, "original").random(S) < np.where(degree == 1, 0.6, 0.15)
    trng = stream(cfg.seed, "song_text")
    titles = [text.song_title(trng) for _ in range(S)]
    artists = [text.artist_name(trng) for _ in range(S)]
    return pd.DataFrame({
        "song_index": np.arange(S), "song_lift": lift, "song_uses": uses, "song_original": original,
        "song_degree": degree, "song_base_hz": base_hz, "song_bpm": bpm, "song_h2": h2, "song_h3": h3,
        "song_melody": [tuple(int(x) for x in m) for m in melody], "song_title": titles, "song_author": artists,
    })


def _authors(cfg: SynthConfig) -> pd.DataFrame:
    A = cfg.creators
    rng = stream(cfg.seed, "authors")
    mu, sd = signal.FOLLOWERS_LOG10
    fans = np.rint(10 ** np.clip(rng.normal(mu, sd, A), *signal.FOLLOWERS_CLIP)).astype(np.int64)
    verified = (fans > 1_000_000) & (rng.random(A) < 0.7)
    people, taken = [], set()
    for _ in range(A):
        handle, nick = text.person(rng)
        while handle in taken:                                  # handles are unique on TikTok
            handle = f"{handle}{rng.integers(10)}"
        taken.add(handle)
        people.append((handle, nick))
    joined = rng.integers(1_540_000_000, 1_590_000_000, A)   # late 2018 to mid 2020
    ids = _unique_ids(joined, rng)
    # The creator effect: a lift shared by all the creator's videos, independent of its followers,
    # that shows in the likes its videos outside the corpus have earned (authorMeta.heart).
    crng = stream(cfg.seed, "creator")
    lift = crng.standard_normal(A)
    a, b, c = signal.HEARTS_LOG10
    other_hearts = np.rint(10 ** (a + b * lift + c * crng.standard_normal(A))).astype(np.int64)
    degree = song_degrees(cfg.n_videos, A, cfg.creator_zipf, stream(cfg.seed, "author_degree"))
    return pd.DataFrame({"author_index": np.arange(A), "author_id": ids, "author_name": [p[0] for p in people],
                         "author_nick": [p[1] for p in people], "fans": fans, "verified": verified,
                         "log10_followers": np.log10(fans), "creator_lift": lift, "author_degree": degree,
                         "other_hearts": other_hearts,
                         "other_videos": crng.poisson(20, A).astype(np.int64),       # nuisances
                         "following": crng.integers(0, 2000, A), "digg": crng.integers(0, 50_000, A)})


def _topics(cfg: SynthConfig) -> tuple[pd.DataFrame, list[str]]:
    """Topic hashtags: a lift each, Zipf-like popularity capped below build-graph's hub threshold."""
    T = max(4, round(signal.TOPICS_PER_VIDEO * cfg.n_videos))
    rng = stream(cfg.seed, "topics")
    rank = rng.permutation(T) + 1.0
    p = rank ** -signal.TOPIC_ZIPF
    p /= p.sum()
    for _ in range(50):  # cap and renormalise until no topic is above the cap (or all are at it)
        if p.max() <= signal.TOPIC_MAX_SHARE + 1e-12 or T * signal.TOPIC_MAX_SHARE <= 1:
            break
        over = p > signal.TOPIC_MAX_SHARE
        spare = p[over].sum() - over.sum() * signal.TOPIC_MAX_SHARE
        p[over] = signal.TOPIC_MAX_SHARE
        p[~over] += spare * p[~over] / p[~over].sum()
    names = text.topic_names(T + max(50, cfg.n_videos // 2), rng)  # topics, then effect-free filler tags
    return pd.DataFrame({"topic_index": np.arange(T), "topic": names[:T], "topic_lift": rng.standard_normal(T),
                         "topic_share": p}), names[T:]


def _hashtags(cfg: SynthConfig, count: np.ndarray, topics: pd.DataFrame,
              fillers: list[str]) -> tuple[np.ndarray, list[list[str]]]:
    """Each video's topic (-1: none) and tag list: the topic, then hub tags, then effect-free fillers
    drawn uniformly from a vocabulary of ``max(50, videos // 2)`` (rare tags, as in real scrapes)."""
    rng = stream(cfg.seed, "hashtag_names")
    N = len(count)
    topic = np.where(count > 0, rng.choice(len(topics), size=N, p=topics["topic_share"].to_numpy()), -1)
    names = topics["topic"].tolist()
    tags: list[list[str]] = []
    for i in range(N):
        k = int(count[i])
        row = [names[topic[i]]] if k else []
        for hub, p in signal.HUB_TAGS.items():
            if len(row) < k and rng.random() < p:
                row.append(hub)
        if len(row) < k:
            row += [fillers[j] for j in rng.permutation(len(fillers))[:k - len(row)]]
        tags.append([row[j] for j in rng.permutation(len(row))])  # the topic is not always first
    return topic, tags


def _end_midnight(cfg: SynthConfig) -> int:
    d = datetime.fromisoformat(cfg.end_date).replace(tzinfo=timezone.utc)
    return int(d.timestamp())


def plan_corpus(cfg: SynthConfig) -> CorpusPlan:
    """Draw the whole corpus (no media) from ``cfg``; deterministic for a given config."""
    validate(cfg)
    N, seed = cfg.n_videos, cfg.seed
    songs, authors = _songs(cfg), _authors(cfg)
    topics, fillers = _topics(cfg)
    v = pd.DataFrame({"index": np.arange(N)})

    rng = stream(seed, "assign")
    v["song_index"] = rng.permutation(np.repeat(songs["song_index"].to_numpy(), songs["song_degree"].to_numpy()))
    v["author_index"] = stream(seed, "assign_author").permutation(
        np.repeat(authors["author_index"].to_numpy(), authors["author_degree"].to_numpy()))

    # Posting times: day offsets 2..days+1 before end_date at a uniform time of day; one
    # "anchor" video is posted on end_date itself and is the newest, which defines the
    # scrape time. So every other video is more than 1 day old (the age floor never bites).
    rng = stream(seed, "time")
    sec_of_day = rng.integers(0, 86_400, N)
    day_offset = rng.integers(2, cfg.days + 2, N)
    anchor = int(rng.integers(N))
    day_offset[anchor] = 0
    midnight = _end_midnight(cfg)
    create = midnight - day_offset * 86_400 + sec_of_day
    scrape_time = int(create[anchor])
    v["create_time"] = create
    v["hour_utc"] = sec_of_day / 3600.0
    v["age_days"] = np.maximum(1.0, (scrape_time - create) / 86_400.0)

    rng = stream(seed, "duration")
    n_frames = np.maximum(2, np.rint(cfg.seconds * rng.uniform(0.8, 1.2, N) * cfg.fps)).astype(np.int64)
    v["n_frames"] = n_frames
    v["duration_s"] = n_frames / cfg.fps

    rng = stream(seed, "visual")
    v["brightness"] = rng.uniform(*signal.BRIGHTNESS, N)
    v["motion"] = rng.uniform(*signal.MOTION, N)
    v["hue"] = rng.random(N)
    v["direction"] = rng.choice(np.array([-1, 1]), N)
    v["x_start"] = rng.random(N)            # where in its free range the shape starts

    rng = stream(seed, "audio")
    loud = rng.uniform(*signal.LOUDNESS_DB, N)
    voice = np.exp(rng.uniform(math.log(signal.VOICE_HZ[0]), math.log(signal.VOICE_HZ[1]), N))
    v["song_offset"] = rng.random(N)        # where in the song's loop the clip starts
    silent = np.zeros(N, bool)
    silent[rng.choice(N, size=int(round(cfg.no_audio_fraction * N)), replace=False)] = True
    v["has_audio"] = ~silent
    v["loudness_db"] = np.where(silent, np.nan, loud)
    v["voice_hz"] = np.where(silent, np.nan, voice)

    v["hashtag_count"] = stream(seed, "hashtags").integers(signal.HASHTAGS[0], signal.HASHTAGS[1] + 1, N)
    topic_index, tag_lists = _hashtags(cfg, v["hashtag_count"].to_numpy(), topics, fillers)
    v["topic_index"] = topic_index
    v["topic_hashtag"] = np.where(topic_index >= 0, topics["topic"].to_numpy()[topic_index], "")
    v["topic_lift"] = np.where(topic_index >= 0, topics["topic_lift"].to_numpy()[topic_index], np.nan)

    rng = stream(seed, "corrupt")
    corrupt = np.full(N, "", dtype=object)
    for k, i in enumerate(rng.choice(N, size=cfg.corrupt, replace=False)):
        corrupt[i] = CORRUPT_KINDS[k % len(CORRUPT_KINDS)]
    v["corrupt"] = corrupt

    v = v.merge(songs[["song_index", "song_lift", "song_uses", "song_original", "song_degree"]], on="song_index",
                how="left", sort=False)
    v = v.merge(authors[["author_index", "author_id", "fans", "log10_followers", "creator_lift", "author_degree"]],
                on="author_index", how="left", sort=False)

    # The planted signal.
    unit = signal.unit_components(v)
    parts = signal.weighted_components(unit, cfg)
    for c in signal.COMPONENTS:
        v[c] = parts[c].to_numpy()
    v["score"] = cfg.intercept + parts.sum(axis=1).to_numpy()
    v["noise"] = stream(seed, "noise").normal(0.0, cfg.noise_sd, N) if cfg.noise_sd > 0 else np.zeros(N)

    # Engagement counts that encode score + noise through the builder's formula.
    rng = stream(seed, "counts")
    share_ratio = np.exp(rng.normal(math.log(9e-4), 0.8, N))
    comment_ratio = np.exp(rng.normal(math.log(1.3e-3), 0.7, N))
    like_ratio = np.clip(np.exp(rng.normal(math.log(0.085), 0.5, N)), 0.002, 0.6)
    target = np.minimum(v["score"].to_numpy() + v["noise"].to_numpy(), MAX_LOG_TARGET)
    total = np.maximum(0, np.rint(np.exp(target) * v["age_days"].to_numpy() - 1)).astype(np.int64)
    den = 1.0 + share_ratio + comment_ratio
    shares = np.floor(total * share_ratio / den).astype(np.int64)
    comments = np.floor(total * comment_ratio / den).astype(np.int64)
    plays = total - shares - comments
    v["plays"], v["shares"], v["comments"] = plays, shares, comments
    v["likes"] = np.rint(plays * like_ratio).astype(np.int64)
    # authorMeta.heart: the likes of the creator's videos here plus those it earned elsewhere
    corpus_likes = np.bincount(v["author_index"].to_numpy(), weights=v["likes"].to_numpy(), minlength=len(authors))
    authors["hearts"] = authors["other_hearts"].to_numpy() + np.rint(corpus_likes).astype(np.int64)
    authors["videos"] = authors["author_degree"].to_numpy() + authors["other_videos"].to_numpy()
    v["popularity_raw"] = np.log((plays + shares + comments + 1) / v["age_days"].to_numpy())

    # Ids: videos carry their posting second in the high bits, as TikTok's do; an
    # "original sound" is created with the first video that uses it.
    rng = stream(seed, "ids")
    v["video_id"] = _unique_ids(create, rng)
    first_post = v.groupby("song_index")["create_time"].min().reindex(songs["song_index"]).to_numpy()
    song_born = np.where(songs["song_original"].to_numpy(), first_post,
                         rng.integers(1_500_000_000, 1_600_000_000, len(songs)))
    songs["song_id"] = _unique_ids(song_born, rng, taken={int(x) for x in v["video_id"]})
    v["song_id"] = songs["song_id"].to_numpy()[v["song_index"].to_numpy()]
    # An original sound is named after, and credited to, the author of its first video.
    first_author = v.sort_values(["create_time", "index"]).drop_duplicates("song_index").set_index("song_index")
    nick = authors["author_nick"].to_numpy()[first_author["author_index"].reindex(songs["song_index"]).to_numpy()]
    orig = songs["song_original"].to_numpy()
    songs["song_title"] = np.where(orig, "original sound", songs["song_title"])
    songs["song_author"] = np.where(orig, nick, songs["song_author"])

    rng = stream(seed, "captions")
    handles = authors["author_name"].tolist()
    caps = [text.caption(rng, tags, handles) for tags in tag_lists]
    v["caption"] = [c[0] for c in caps]
    v["hashtags"] = [c[1] for c in caps]
    v["mentions"] = [c[2] for c in caps]
    return CorpusPlan(config=cfg, videos=v, songs=songs, authors=authors, topics=topics, scrape_time=scrape_time)
