"""The song identity rule: music id, else a generic title is the creator's own sound, else title + artist."""

from __future__ import annotations

import pytest

from mdr_graph.graph_build.ingest import ingest
from mdr_graph.graph_build.song_identity import (is_generic_title, own_sound_id, song_identity, title_song_id)

T0 = 1_608_000_000


@pytest.mark.parametrize("title", [
    "original sound", "Original Sound - alice", "original sound – Bob 🎵", "sonido original", "som original",
    "suara asli - budi", "nhạc nền - Minh Anh", "son original", "Оригинальный звук", "orijinal ses",
    "Originalton", "suono originale", "原聲 - 小明", "เสียงต้นฉบับ", "ORIGINAL\u00a0SOUND",  # NBSP: NFKC makes it a space
])
def test_generic_titles(title):
    assert is_generic_title(title)


@pytest.mark.parametrize("title", ["Flowers", "Love You So", "original sounds of the city", "sound original",
                                   "Monkeys Spinning Monkeys", "", None])
def test_specific_titles(title):
    assert not is_generic_title(title)


def test_rule_order_and_stability():
    assert song_identity("123", "original sound", "x", "c1") == ("123", "music_id")
    own, how = song_identity(None, "original sound", "alice", "c1")
    assert how == "own_sound" and own == own_sound_id("original sound", "c1")
    assert song_identity(None, "Original  Sound", None, "c1")[0] == own  # normalised title
    assert song_identity(None, "original sound", "alice", "c2")[0] != own  # another creator, another sound
    assert song_identity(None, "original sound", "alice", None) == (None, "none")  # whose? unknown
    t, how = song_identity(None, "Flowers", "Miley Cyrus", "c1")
    assert how == "title" and t == title_song_id("flowers", "MILEY  cyrus")
    assert song_identity(None, "Flowers", "Miley Cyrus", "c2")[0] == t  # one shared song across creators
    assert song_identity(None, "Flowers", "Someone Else", "c1")[0] != t
    assert song_identity(None, None, "x", "c1") == (None, "none")
    assert song_identity(None, "  ", "x", "c1") == (None, "none")


def test_ingest_applies_the_rule(write_json, scraper_record, DELETE):
    def rec(vid, author, title, music_id=DELETE):
        return scraper_record(vid, **{"authorMeta.id": author, "musicMeta.musicId": music_id,
                                      "musicMeta.musicName": title, "musicMeta.musicOriginal": DELETE})
    recs = [rec("1", "a", "original sound - a"), rec("2", "a", "original sound - a"),
            rec("3", "b", "original sound - a"), rec("4", "a", "Flowers"), rec("5", "b", "Flowers"),
            rec("6", "a", "original sound", music_id="m9"), rec("7", "a", None)]
    videos, rejects = ingest(write_json(recs), scrape_time=T0 + 86_400)
    assert rejects == []
    sid = dict(zip(videos["video_id"], videos["song_id"].astype(object).where(videos["song_id"].notna(), None)))
    assert sid["1"] == sid["2"] != sid["3"]  # a's own sound twice; b's "original sound - a" is b's own sound
    assert sid["4"] == sid["5"] and sid["4"].startswith("title-")
    assert sid["6"] == "m9" and sid["7"] is None
    assert videos.set_index("video_id").loc[["1", "3"], "song_original"].tolist() == [True, True]
    assert pd_isna(videos.set_index("video_id").loc["4", "song_original"])


def pd_isna(v) -> bool:
    import pandas as pd

    return bool(pd.isna(v))
