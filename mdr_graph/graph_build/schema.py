"""The canonical tables every later stage reads: ``videos.parquet`` and ``songs.parquet``.

Column names here are a contract: other tools read them exactly as written.
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

VIDEO_EDGE = ("video", "uses", "song")
REV_EDGE = ("song", "rev_uses", "video")
