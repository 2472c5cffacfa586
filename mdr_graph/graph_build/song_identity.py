"""Which song a video uses, when the scrape gives no music id (the rule is in docs/graph.md).

1. A music id, when the record has one, is the song.
2. Otherwise a *generic* title ("original sound", "sonido original", "nhạc nền - NAME", ...)
   is the creator's own sound: TikTok gives every creator's uploaded audio such a title, so
   thousands of unrelated videos share the text. The song id is derived from the title and
   the creator (``own-<sha1>``); without a creator there is no telling whose sound it is,
   so the video has no song.
3. Otherwise a specific title names one shared song: the id is derived from the title and
   its artist (``title-<sha1>``), so "Flowers" by two artists is two songs.
4. No id and no title: no song (the video is kept, without a song edge).

Titles are compared NFKC-normalised, case-folded and with runs of whitespace collapsed,
so "Original  Sound" and "original sound" are one title.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# The platform's own-sound titles, by language. Matched at the start of the normalised
# title, alone or followed by " - NAME" (TikTok appends the creator's name).
GENERIC_TITLES = (
    "original sound",          # en
    "sonido original",         # es
    "som original",            # pt
    "son original",            # fr
    "suara asli",              # id / ms
    "nhạc nền",                # vi
    "âm thanh gốc",            # vi
    "originalton",             # de
    "suono originale",         # it
    "origineel geluid",        # nl
    "оригинальный звук",       # ru
    "orijinal ses",            # tr
    "dźwięk oryginalny",       # pl
    "originalljud",            # sv
    "lyd original",            # da / no
    "tunog orihinal",          # tl
    "เสียงต้นฉบับ",              # th
    "原聲",                     # zh-Hant
    "原声",                     # zh-Hans
    "オリジナル楽曲",              # ja
    "오리지널 사운드",              # ko
    "الصوت الأصلي",             # ar
    "צליל מקורי",               # he
    "πρωτότυπος ήχος",         # el
)


def normalise_title(title: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the form titles are compared in."""
    return " ".join(unicodedata.normalize("NFKC", title).casefold().split())


_GENERIC_RE = re.compile(
    r"^(?:" + "|".join(re.escape(normalise_title(t)) for t in GENERIC_TITLES) + r")(?:\s*[-–—:]\s*.*)?$")


def is_generic_title(title: str | None) -> bool:
    """True for a platform own-sound title ("original sound - alice", "sonido original")."""
    return bool(title) and _GENERIC_RE.match(normalise_title(title)) is not None


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def title_song_id(title: str, artist: str | None) -> str:
    """A stable id for a specific song known only by its title and artist."""
    return "title-" + _digest(normalise_title(title), normalise_title(artist or ""))


def own_sound_id(title: str, creator_id: str) -> str:
    """A stable id for a creator's own sound (a generic title)."""
    return "own-" + _digest(normalise_title(title), creator_id)


def song_identity(music_id: str | None, title: str | None, artist: str | None,
                  creator_id: str | None) -> tuple[str | None, str]:
    """``(song_id, how)``: ``how`` is ``music_id``, ``own_sound``, ``title`` or ``none``."""
    if music_id is not None:
        return music_id, "music_id"
    if not title or not title.strip():
        return None, "none"
    if is_generic_title(title):
        if creator_id is None:
            return None, "none"
        return own_sound_id(title, creator_id), "own_sound"
    return title_song_id(title, artist), "title"
