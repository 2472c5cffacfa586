"""The canonical tables every later stage reads, and the graph's node and edge types.

``videos.parquet``, ``songs.parquet``, ``creators.parquet`` and ``hashtags.parquet``:
column names here are a contract; other tools read them exactly as written. Row ``i`` of
an entity table is node ``i`` of its type in ``graph.pt``.
"""

from __future__ import annotations

# One row per accepted video. Optional fields are null when the scrape lacks them.
VIDEO_COLUMNS: dict[str, str] = {
    "video_id": "string",
    "song_id": "string",
    "song_title": "string",
    "song_author": "string",
    "song_original": "boolean",
    "song_uses": "Int64",          # platform-wide use count of the song, as scraped (not its degree here)
    "author_id": "string",
    "author_followers": "Int64",
    "caption": "string",
    "hashtags": "object",          # list[str]
    "duration_s": "Float64",
    "create_time": "datetime64[ns, UTC]",
    "scrape_time": "datetime64[ns, UTC]",
    "plays": "Int64",
    "likes": "Int64",
    "shares": "Int64",
    "comments": "Int64",
    "saves": "Int64",
    "video_path": "string",        # absolute path of the media file, null when absent
    "popularity_raw": "float64",   # log((plays + shares + comments + 1) / age_days), age floored at 1 day,
                                   # or a given target (--target-column; summary.json "target" says which)
    # The creator's account as scraped (appended, so earlier readers' column positions hold).
    # Scrape-time values: they may include engagement gathered after the video was posted.
    "author_following": "Int64",   # accounts the creator follows
    "author_videos": "Int64",      # videos the account has posted
    "author_hearts": "Int64",      # likes the account's videos have received (includes this video's likes)
    "author_diggs": "Int64",       # likes the account has given
}
AUTHOR_COUNTS = ("author_following", "author_videos", "author_hearts", "author_diggs")

# One row per song; ``degree`` is its number of videos in this data set.
SONG_COLUMNS: dict[str, str] = {
    "song_id": "string",
    "song_title": "string",
    "song_author": "string",
    "song_original": "boolean",
    "song_uses": "Int64",
    "degree": "int64",
}

# Engagement counts: targets only, never features.
ENGAGEMENT_COLUMNS = ("plays", "likes", "shares", "comments", "saves")

# One row per creator (``author_id``), the account as last scraped (the latest scrape_time
# with a value). ``hearts_other`` is ``hearts`` minus the likes of the creator's videos in
# this data set, so it never holds the engagement of a video being predicted; null when
# any of those likes is unknown. ``degree`` is its number of videos in this data set.
CREATOR_COLUMNS: dict[str, str] = {
    "creator_id": "string",
    "followers": "Int64",
    "following": "Int64",
    "videos": "Int64",             # videos the account has posted (as scraped; not its degree here)
    "hearts": "Int64",             # likes received by all its videos, as scraped
    "hearts_other": "Int64",       # hearts minus the likes of its videos in this data set (>= 0)
    "diggs": "Int64",
    "degree": "int64",
}

# One row per hashtag node: lower-cased (case-folded), NFKC-normalised, '#' stripped.
# Hub tags (the max-document-frequency rule, docs/graph.md) are not nodes; summary.json
# lists them. ``degree`` is its number of videos in this data set.
HASHTAG_COLUMNS: dict[str, str] = {
    "hashtag": "string",
    "degree": "int64",
}

# The hashtag hub rule (docs/graph.md): a tag on more than DEFAULT_MAX_DF of the videos is
# not a node. The real hubs (#fyp, #foryou, #xuhuong, #viral) tag 8-41% of real scrapes'
# videos. Below DEFAULT_MIN_HUB_VIDEOS videos a tag is never a hub: in a small data set a
# few videos sharing a tag is information, not a hub.
DEFAULT_MAX_DF = 0.05
DEFAULT_MIN_HUB_VIDEOS = 10

# Node types besides ``video`` that ``build-graph --nodes`` can add, in graph order.
ENTITY_TYPES = ("song", "creator", "hashtag")
# --nodes default: every relation, because it wins on real data. gat-only test Spearman, 3 seeds,
# random split: SMP-Video 0.516 (song,creator,hashtag) vs 0.018 (song only); trending-2020-12
# 0.157 vs 0.086. `--nodes song` is VAN's bipartite graph, unchanged.
DEFAULT_NODES = ENTITY_TYPES
# The attribute of ``data[node_type]`` that lists its ids (node i -> id).
ID_ATTRS = {"video": "video_id", "song": "song_id", "creator": "creator_id", "hashtag": "hashtag"}

VIDEO_EDGE = ("video", "uses", "song")
REV_EDGE = ("song", "rev_uses", "video")
CREATOR_EDGE = ("video", "posted_by", "creator")
REV_CREATOR_EDGE = ("creator", "rev_posted_by", "video")
HASHTAG_EDGE = ("video", "tagged", "hashtag")
REV_HASHTAG_EDGE = ("hashtag", "rev_tagged", "video")
# Entity type -> (its video edge type, the reverse); both directions are in every graph.
EDGE_TYPES = {"song": (VIDEO_EDGE, REV_EDGE), "creator": (CREATOR_EDGE, REV_CREATOR_EDGE),
              "hashtag": (HASHTAG_EDGE, REV_HASHTAG_EDGE)}
