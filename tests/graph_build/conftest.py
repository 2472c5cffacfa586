"""Small hand-written scrape records of every format, as factories.

Each factory returns one record shaped like the real tool's output, with keyword
overrides; nested keys are overridden with ``"outer.inner"`` names. Records are tiny
so the tests that use them run in milliseconds.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

T0 = 1_608_000_000  # 2020-12-15T02:40:00Z


def _apply(rec: dict, overrides: dict) -> dict:
    rec = copy.deepcopy(rec)
    for key, value in overrides.items():
        target = rec
        parts = key.split(".")
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        if value is _DELETE:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = value
    return rec


_DELETE = object()


@pytest.fixture
def DELETE():
    """Use as an override value to remove a key."""
    return _DELETE


@pytest.fixture
def scraper_record():
    def make(video_id="100", song_id="900", **overrides) -> dict:
        rec = {
            "id": video_id, "text": "so good #fyp #dance", "createTime": T0,
            "authorMeta": {"id": "a1", "name": "alice", "nickName": "Alice", "verified": False},
            "musicMeta": {"musicId": song_id, "musicName": "Song " + song_id, "musicAuthor": "Band",
                          "musicOriginal": False, "playUrl": "https://example.invalid/m.mp3"},
            "covers": {"default": "https://example.invalid/c.jpeg"},
            "webVideoUrl": f"https://www.tiktok.com/@alice/video/{video_id}",
            "videoMeta": {"height": 1024, "width": 576, "duration": 15},
            "diggCount": 300, "shareCount": 20, "playCount": 5000, "commentCount": 10,
            "downloaded": False, "mentions": [],
            "hashtags": [{"id": "1", "name": "fyp", "title": "", "cover": ""},
                         {"id": "2", "name": "dance", "title": "", "cover": ""}],
        }
        return _apply(rec, overrides)
    return make


@pytest.fixture
def api_record():
    def make(video_id="200", song_id="901", **overrides) -> dict:
        rec = {
            "id": video_id, "desc": "#cat #dog", "createTime": T0,
            "video": {"id": video_id, "height": 1024, "width": 576, "duration": 26},
            "author": {"id": "b1", "uniqueId": "bob", "nickname": "Bob"},
            "music": {"id": song_id, "title": "original sound - bob", "authorName": "bob", "original": True,
                      "duration": 26, "album": ""},
            "stats": {"diggCount": 11400, "shareCount": 21, "commentCount": 93, "playCount": 257200},
            "authorStats": {"followerCount": 7338, "followingCount": 10},
            "challenges": [{"id": "1", "title": "cat"}, {"id": "2", "title": "dog"}],
            "textExtra": [{"hashtagName": "cat"}, {"hashtagName": "dog"}],
        }
        return _apply(rec, overrides)
    return make


@pytest.fixture
def ytdlp_record():
    def make(video_id="7059698374567611694", **overrides) -> dict:
        rec = {
            "id": video_id, "title": "a title", "description": "Slap and Run! #fun",
            "timestamp": T0, "upload_date": "20201215", "duration": 30,
            "view_count": 1000, "like_count": 100, "repost_count": 5, "comment_count": 7,
            "uploader": "pokemonlife22", "uploader_id": "6820838815978423302",
            "channel_follower_count": 4200, "track": "Big Fun", "artist": "Evan Todd",
            "tags": ["fun"], "extractor": "TikTok", "extractor_key": "TikTok",
            "webpage_url": f"https://www.tiktok.com/@p/video/{video_id}", "epoch": T0 + 86_400 * 10,
            "_filename": f"{video_id}.mp4",
        }
        return _apply(rec, overrides)
    return make


@pytest.fixture
def write_json(tmp_path):
    """Write an object as JSON (or a list as JSON lines with ``lines=True``) and return the path."""
    def write(obj, name="scrape.json", lines=False) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if lines:
            path.write_text("".join(json.dumps(r) + "\n" for r in obj), encoding="utf-8")
        else:
            path.write_text(json.dumps(obj), encoding="utf-8")
        return path
    return write
