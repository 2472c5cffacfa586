"""Plausible names, captions and hashtags for the synthetic scrape.

None of this text carries signal except the hashtags: their *count* (a metadata latent)
and which *topic* tag a video carries (the hashtag effect, drawn in ``plan``); the words
are drawn so captions look like TikTok's and vary in length, which makes caption length a
realistic nuisance feature. Every function takes the generator it draws from,
so the text is as deterministic as the rest of the corpus.
"""

from __future__ import annotations

import zlib

import numpy as np

FIRST_NAMES = ("mia", "leo", "zoe", "kai", "ava", "noah", "lena", "omar", "ines", "yuki", "sofia", "liam", "nia",
               "marco", "elif", "tariq", "jade", "felix", "amara", "hugo", "priya", "theo", "lucia", "sami", "ruby",
               "jonas", "maya", "ezra", "nora", "diego", "ayla", "finn", "zara", "emil", "lola", "ravi", "ivy", "otto")
LAST_NAMES = ("kovacs", "silva", "tanaka", "okafor", "novak", "berg", "moreau", "rossi", "haddad", "kim", "larsen",
              "mendes", "petrov", "nguyen", "smith", "fischer", "ali", "garcia", "dubois", "jensen", "costa", "sato")
TITLE_WORDS = ("neon", "harbor", "paper", "moon", "velvet", "static", "golden", "echo", "midnight", "sugar",
               "wildfire", "ocean", "satellite", "honey", "chrome", "lullaby", "thunder", "cherry", "glass", "rivers",
               "disco", "summer", "shadow", "signal", "bloom", "parade", "gravity", "comet", "violet", "tokyo")
CAPTION_WORDS = ("wait", "for", "it", "pov", "when", "your", "friend", "tries", "this", "again", "new", "trend",
                 "day", "in", "my", "life", "tutorial", "part", "2", "no", "way", "the", "best", "recipe", "ever",
                 "can't", "stop", "watching", "how", "we", "did", "that", "first", "time", "be", "like", "honestly",
                 "morning", "routine", "dance", "challenge", "with", "mom", "dog", "cat", "vibes", "only", "lol")
EMOJIS = ("\U0001F602", "\U0001F525", "\u2728", "\U0001F60D", "\U0001F480", "\U0001F4AF", "\U0001F972", "\U0001F440",
          "\U0001F483", "\U0001F3B6", "\U0001F4C8", "\U0001F64C")
HASHTAG_NAMES = ("fyp", "foryou", "foryoupage", "viral", "dance", "comedy", "duet", "trend", "funny", "music", "tiktok",
            "xyzbca", "fy", "learnontiktok", "food", "pets", "fashion", "diy", "art", "sports", "gaming", "travel",
            "makeup", "fitness", "storytime", "challenge", "love", "meme", "asmr", "cooking")


def hashtag_id(name: str) -> str:
    """A stable numeric id per hashtag name (the scraper gives short numeric strings)."""
    return str(zlib.crc32(name.encode()) % 9_000_000 + 1_000)


def person(rng: np.random.Generator) -> tuple[str, str]:
    """``(handle, display name)`` such as ``("mia.kovacs_23", "Mia K")``."""
    first, last = FIRST_NAMES[rng.integers(len(FIRST_NAMES))], LAST_NAMES[rng.integers(len(LAST_NAMES))]
    sep = ("", ".", "_")[rng.integers(3)]
    handle = f"{first}{sep}{last}" + (f"_{rng.integers(1, 100)}" if rng.random() < 0.5 else "")
    return handle, f"{first.capitalize()} {last[0].upper()}"


def song_title(rng: np.random.Generator) -> str:
    k = 1 + int(rng.integers(3))
    return " ".join(TITLE_WORDS[i].capitalize() for i in rng.permutation(len(TITLE_WORDS))[:k])


def artist_name(rng: np.random.Generator) -> str:
    first, last = FIRST_NAMES[rng.integers(len(FIRST_NAMES))], LAST_NAMES[rng.integers(len(LAST_NAMES))]
    if rng.random() < 0.3:
        return f"DJ {first.capitalize()}"
    return f"{first.capitalize()} {last.capitalize()}"


def topic_names(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct topic hashtags such as ``neonroutine``, none of them a ``HASHTAG_NAMES`` tag."""
    pairs = [a + b for a in TITLE_WORDS for b in CAPTION_WORDS if (a + b).isalpha()]
    pairs = [pairs[i] for i in rng.permutation(len(pairs))]
    return [pairs[t % len(pairs)] + (str(t // len(pairs)) if t >= len(pairs) else "") for t in range(n)]


def caption(rng: np.random.Generator, tags: list[str], handles: list[str]) -> tuple[str, list[str], list[str]]:
    """``(text, hashtag names, mentions)``; the text ends with the hashtags, as on TikTok."""
    n_words = int(rng.integers(0, 13))
    words = [CAPTION_WORDS[i] for i in rng.integers(len(CAPTION_WORDS), size=n_words)]
    if words:
        words[0] = words[0].capitalize()
    if rng.random() < 0.4:
        words.append(EMOJIS[rng.integers(len(EMOJIS))])
    mentions: list[str] = []
    if handles and rng.random() < 0.1:
        mentions = [f"@{handles[rng.integers(len(handles))]}"]
        words += ["with", mentions[0]]
    text = " ".join(words + [f"#{t}" for t in tags])
    return text, list(tags), mentions
