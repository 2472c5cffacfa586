"""The SMP Challenge 2025 video track's relational JSON lines (``--format smp-video``).

A split ``S`` is four files in one directory: ``posts_S.jsonl`` (the records: pid, uid,
post_content = comma-separated hashtags, post_time, video_path, ...), ``videos_S.jsonl``
(vid, pid, video_duration, music_title, ...), ``users_S.jsonl`` (uid and the account's
counts) and ``popularity_S.jsonl`` (pid, uid, popularity: the given label). A post is one
record; the other three are looked up by ``pid`` / ``uid``, so a post with no video row
or no user row is still a record (those fields are null) and a row that matches no post
is counted in the file report as unjoined, never silently merged.

The data has no engagement counts: its target is the given ``popularity`` (the default
target column of this format). There is no music id, so the song comes from
``music_title`` by the song identity rule (``song_identity``): 1,470 of the 4,000 posts
are titled "original sound" and are their creators' own sounds, not one song.

``post_suggested_words`` is not read: TikTok assigns those search terms after posting and
their presence follows the label (docs/graph.md has the numbers), so they would leak it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from mdr_graph.errors import UserError

POSTS_RE = re.compile(r"^posts_(?P<split>.+)\.jsonl$")
SIDE_TABLES = {"videos": "pid", "users": "uid", "popularity": "pid"}  # side table -> join key
DEFAULT_TARGET = "popularity"


def is_posts_file(path: Path) -> bool:
    return POSTS_RE.match(path.name) is not None


def is_side_file(path: Path) -> bool:
    """``videos_S.jsonl`` / ``users_S.jsonl`` / ``popularity_S.jsonl`` beside a ``posts_S.jsonl``."""
    for table in SIDE_TABLES:
        prefix = table + "_"
        if path.name.startswith(prefix) and path.name.endswith(".jsonl"):
            split = path.name[len(prefix):-len(".jsonl")]
            if (path.parent / f"posts_{split}.jsonl").exists():
                return True
    return False


def _side_path(posts: Path, table: str) -> Path:
    split = POSTS_RE.match(posts.name)
    if split is None:
        raise UserError(f"{posts}: --format smp-video reads posts_<split>.jsonl files (with videos_, users_ and "
                        "popularity_<split>.jsonl beside them)")
    return posts.parent / f"{table}_{split['split']}.jsonl"


def _load_side(path: Path, key: str) -> dict[str, dict]:
    """A side table by its join key; the first row of a key wins, later ones are counted as duplicates."""
    rows: dict[str, dict] = {}
    if not path.exists():
        return rows
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except ValueError as e:
                raise UserError(f"{path}: line {n} is not valid JSON ({e})") from None
            if isinstance(r, dict) and isinstance(r.get(key), str):
                rows.setdefault(r[key], r)
    return rows


class SmpJoin:
    """The side tables of one posts file, and which of their rows a post used."""

    def __init__(self, posts: Path, target_column: str | None):
        self.tables = {t: _load_side(_side_path(posts, t), k) for t, k in SIDE_TABLES.items()}
        self.missing = [t for t in SIDE_TABLES if not _side_path(posts, t).exists()]
        self.target_column = target_column or DEFAULT_TARGET
        self.used: dict[str, set[str]] = {t: set() for t in SIDE_TABLES}

    def unjoined(self) -> dict[str, int]:
        """Side-table rows that no post of the file matched."""
        return {t: len(set(rows) - self.used[t]) for t, rows in self.tables.items()}

    def mapper(self) -> Callable[[dict, dict], dict]:
        videos, users, pop = self.tables["videos"], self.tables["users"], self.tables["popularity"]
        used, target_column = self.used, self.target_column

        def from_smp_video(post: dict, envelope: dict) -> dict:
            pid, uid = post.get("pid"), post.get("uid")
            v = videos.get(pid) if isinstance(pid, str) else None
            u = users.get(uid) if isinstance(uid, str) else None
            p = pop.get(pid) if isinstance(pid, str) else None
            for table, row, key in (("videos", v, pid), ("users", u, uid), ("popularity", p, pid)):
                if row is not None:
                    used[table].add(key)
            v, u = v or {}, u or {}
            target = p.get(target_column) if p is not None and target_column in p else post.get(target_column)
            return {
                "video_id": pid,
                "song_id": None,                       # no music id: the identity rule uses the title
                "song_title": v.get("music_title"),
                "song_author": None,
                "song_original": None,
                "song_uses": None,
                "author_id": uid,
                "author_followers": u.get("user_follower_count"),
                "author_following": u.get("user_following_count"),
                "author_videos": u.get("user_video_count"),
                # likes the account's videos received (SMP's user_likes_count equals user_heart_count)
                "author_hearts": _first_present(u, "user_heart_count", "user_likes_count"),
                "author_diggs": u.get("user_digg_count"),
                "caption": None,                       # post_content is the hashtag list, not a caption
                "hashtags": [] if post.get("post_content") == "" else post.get("post_content"),  # "": no tags
                "duration_s": v.get("video_duration"),
                "create_time": post.get("post_time"),
                "scrape_time": None,
                "plays": None, "likes": None, "shares": None, "comments": None, "saves": None,
                "video_path": post.get("video_path"),
                "target": target,
            }

        return from_smp_video


def _first_present(d: dict, *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None
