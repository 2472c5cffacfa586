"""The plan as a tiktok-scraper dump (``metadata.json``) and as the answer key (``truth.csv``).

``metadata.json`` has the shape of ``tiktok-scraper``'s trending output
(``{"headers": ..., "collector": [record, ...], "zip": ""}``, see
../shared/data/tiktok-scraper/trending-2020-12.json) with documented extensions the
graph builder reads: ``authorMeta.fans`` (follower count), ``authorMeta.heart`` (likes
the account's videos received), ``authorMeta.following``, ``authorMeta.video``,
``authorMeta.digg`` (the later tiktok-scraper's account fields) and
``musicMeta.musicUses`` (the song's platform-wide use count). URLs point at the
reserved ``.invalid`` domain: they look like the real thing and can never resolve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdr_graph.synth.plan import CorpusPlan
from mdr_graph.synth.text import hashtag_id

HEADERS = {
    "user-agent": "mdr-graph synth (synthetic corpus; no request was made)",
    "referer": "https://www.tiktok.com/",
    "cookie": "",
}
CDN = "https://synthetic.invalid"

# truth.csv: identifiers, the answer (score, its parts, noise, popularity_raw), then raw latents.
TRUTH_COLUMNS = [
    "video_id", "song_id", "author_id", "video_file", "has_audio", "corrupt",
    "score", "song", "visual", "audio", "meta", "creator", "hashtag", "noise", "popularity_raw",
    "create_time", "age_days", "duration_s", "n_frames",
    "song_lift", "song_uses", "song_degree", "song_original", "song_base_hz", "song_bpm",
    "brightness", "motion", "hue", "direction", "loudness_db", "voice_hz",
    "log10_followers", "fans", "hour_utc", "hashtag_count",
    "creator_lift", "author_degree", "author_hearts", "author_other_hearts", "topic_hashtag", "topic_lift",
    "plays", "likes", "shares", "comments",
]
TRUTH_DTYPES = {"video_id": str, "song_id": str, "author_id": str, "corrupt": str, "video_file": str,
                "topic_hashtag": str}


def video_file(video_id: str) -> str:
    """Path of a video's file relative to the corpus directory."""
    return f"videos/{video_id}.mp4"


def records(plan: CorpusPlan) -> list[dict]:
    """One tiktok-scraper record per video, in plan order."""
    cfg = plan.config
    songs = plan.songs.sort_values("song_index").to_dict("records")        # row i is song_index i
    authors = plan.authors.sort_values("author_index").to_dict("records")
    out = []
    for v in plan.videos.itertuples(index=False):
        s, a = songs[v.song_index], authors[v.author_index]
        vid, sid = v.video_id, s["song_id"]
        out.append({
            "id": vid,
            "text": v.caption,
            "createTime": int(v.create_time),
            "authorMeta": {
                "id": a["author_id"],
                "secUid": f"MS4wLjABAAAA-synthetic-{a['author_id']}",
                "name": a["author_name"],
                "nickName": a["author_nick"],
                "verified": bool(a["verified"]),
                "signature": "",
                "avatar": f"{CDN}/avatar/{a['author_id']}.jpeg",
                "fans": int(a["fans"]),                      # extension: follower count
                "heart": int(a["hearts"]),                   # extension: likes its videos received
                "following": int(a["following"]),            # extension
                "video": int(a["videos"]),                   # extension: videos posted (>= its videos here)
                "digg": int(a["digg"]),                      # extension: likes it gave
            },
            "musicMeta": {
                "musicId": sid,
                "musicName": s["song_title"],
                "musicAuthor": s["song_author"],
                "musicOriginal": bool(s["song_original"]),
                "playUrl": f"{CDN}/music/{sid}.mp3",
                "coverThumb": f"{CDN}/music/{sid}/100x100.jpeg",
                "coverMedium": f"{CDN}/music/{sid}/200x200.jpeg",
                "coverLarge": f"{CDN}/music/{sid}/720x720.jpeg",
                "musicUses": int(s["song_uses"]),            # extension: platform-wide use count
            },
            "covers": {
                "default": f"{CDN}/cover/{vid}/default.jpeg",
                "origin": f"{CDN}/cover/{vid}/origin.jpeg",
                "dynamic": f"{CDN}/cover/{vid}/dynamic.webp",
            },
            "webVideoUrl": f"https://www.tiktok.com/@{a['author_name']}/video/{vid}",
            "videoUrl": f"{CDN}/video/{vid}.mp4",
            "videoUrlNoWaterMark": "",
            "videoMeta": {"height": cfg.height, "width": cfg.width, "duration": int(round(v.duration_s))},
            "diggCount": int(v.likes),
            "shareCount": int(v.shares),
            "playCount": int(v.plays),
            "commentCount": int(v.comments),
            "downloaded": True,
            "mentions": list(v.mentions),
            "hashtags": [{"id": hashtag_id(t), "name": t, "title": "", "cover": ""} for t in v.hashtags],
        })
    return out


def scraper_dump(plan: CorpusPlan) -> dict:
    return {"headers": dict(HEADERS), "collector": records(plan), "zip": ""}


def truth_table(plan: CorpusPlan) -> pd.DataFrame:
    """The answer key, one row per video in metadata order (columns: :data:`TRUTH_COLUMNS`)."""
    v = plan.videos.copy()
    songs = plan.songs.set_index("song_index")
    for col in ("song_base_hz", "song_bpm"):
        v[col] = songs[col].reindex(v["song_index"]).to_numpy()
    v["video_file"] = [video_file(i) for i in v["video_id"]]
    v["direction"] = v["direction"].astype(np.int64)
    authors = plan.authors.set_index("author_index")
    v["author_hearts"] = authors["hearts"].reindex(v["author_index"]).to_numpy()
    v["author_other_hearts"] = authors["other_hearts"].reindex(v["author_index"]).to_numpy()
    return v[TRUTH_COLUMNS].reset_index(drop=True)


def read_truth(path) -> pd.DataFrame:
    """Read ``truth.csv`` with ids as strings (they exceed float precision) and blanks as ""."""
    t = pd.read_csv(path, dtype=TRUTH_DTYPES, keep_default_na=True)
    t["corrupt"] = t["corrupt"].fillna("")
    return t
