"""One reader per scrape format, each turning records into *raw canonical* dicts.

A raw canonical dict has the canonical field names (``RAW_FIELDS``) with the values as
the scraper wrote them ("541.2K", "1608214517", "0:15"); :mod:`.ingest` parses and
validates them. Keeping the readers free of parsing means a new scraper needs only a
mapping function here.

What each format reads (first field present wins):

tiktok-scraper (``{"collector": [...]}`` or a list; records have ``musicMeta``)
    id, text, createTime, authorMeta.id (else .name), authorMeta.fans|followerCount|followers,
    musicMeta.musicId|musicName|musicAuthor|musicOriginal,
    musicMeta.musicUses|videoCount|useCount|userCount, videoMeta.duration,
    playCount, diggCount, shareCount, commentCount, collectCount, hashtags[].name,
    scrapeTime|scrape_time, video_path|videoPath.
TikTok-Api (``itemStruct`` dicts: a list, JSON lines, ``{"itemList": [...]}``, or
``{"itemInfo": {"itemStruct": ...}}``)
    id, desc, createTime, video.duration, author.id (else uniqueId, or authorId),
    authorStats.followerCount, music.id|title|authorName|original,
    music.videoCount|userCount, stats.* (else statsV2.*: playCount, diggCount,
    shareCount, commentCount, collectCount), challenges[].title (else
    textExtra[].hashtagName; none of them means no hashtags), scrapeTime|scrape_time, video_path.
yt-dlp (``*.info.json``, a directory of them, ``yt-dlp -j`` JSON lines, or a playlist)
    id, description (else title), timestamp (else upload_date), duration,
    view_count, like_count, repost_count, comment_count, save_count,
    uploader_id|channel_id, channel_follower_count, epoch (the scrape time),
    filepath|_filename|requested_downloads[0].filepath, tags, and the song from
    music_id|track_id, else (in the ingest, by the song identity rule) an id derived from
    track + artist(s).
csv (header row; ``--columns canonical=source`` maps names, unmapped canonical names
    are looked up as they are) — any of ``RAW_FIELDS``; without a hashtag column, the
    ``#tags`` of the caption.
smp-video (``posts_S.jsonl`` with ``videos_S``, ``users_S``, ``popularity_S.jsonl`` beside it,
    or their directory; see :mod:`.smp`) — pid, uid, post_content (hashtags), post_time,
    video_path; video_duration and music_title by pid; the account's counts by uid; the
    given ``popularity`` (the target) by pid.
Creator counts (tiktok-scraper authorMeta.following|video|heart|digg, TikTok-Api
    authorStats.followingCount|videoCount|heartCount|diggCount) fill author_following,
    author_videos, author_hearts (likes received) and author_diggs (likes given).
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from mdr_graph.errors import UserError
from mdr_graph.graph_build.jsonstream import BadLine, JsonLayout, JsonSyntaxError, iter_json
from mdr_graph.graph_build.parse import caption_hashtags
from mdr_graph.graph_build.smp import SmpJoin, is_side_file

FORMATS = ("tiktok-scraper", "tiktok-api", "yt-dlp", "csv", "smp-video")
INPUT_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv")

# The fields a reader fills; the ingest turns them into the VIDEO_COLUMNS table.
RAW_FIELDS = (
    "video_id", "song_id", "song_title", "song_author", "song_original", "song_uses",
    "author_id", "author_followers", "caption", "hashtags", "duration_s",
    "create_time", "scrape_time", "plays", "likes", "shares", "comments", "saves", "video_path",
    # the creator's account as scraped (creator node features); appended so older CSV maps still read
    "author_following", "author_videos", "author_hearts", "author_diggs",
)
# Creator fields, each with the scraper keys that hold it (first present wins).
_SCRAPER_AUTHOR = {"author_following": ("following", "followingCount"), "author_videos": ("video", "videoCount"),
                   "author_hearts": ("heart", "heartCount"), "author_diggs": ("digg", "diggCount")}
_API_AUTHOR = {"author_following": ("followingCount",), "author_videos": ("videoCount",),
               "author_hearts": ("heartCount", "heart"), "author_diggs": ("diggCount",)}
REQUIRED_CSV_FIELDS = ("video_id", "create_time")  # no song column: videos without a song


class NotARecord:
    """A value in a record list that is not an object (a number, a string, null)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str):
        self.kind = kind


class NotAVideo:
    """A record that describes something else (a yt-dlp playlist or channel)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str):
        self.kind = kind


# ---------------------------------------------------------------- per-format mapping

def _first(d: dict, *keys: str) -> Any:
    for k in keys:
        v = d.get(k)
        if v is not None:
            return v
    return None


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def from_tiktok_scraper(r: dict, envelope: dict) -> dict:
    m = r.get("musicMeta")
    m = m if type(m) is dict else {}
    a = r.get("authorMeta")
    a = a if type(a) is dict else {}
    v = r.get("videoMeta")
    v = v if type(v) is dict else {}
    get, mget, aget = r.get, m.get, a.get
    uses = mget("musicUses")
    if uses is None and m:
        uses = _first(m, "videoCount", "useCount", "userCount")
    followers = aget("fans")
    if followers is None and a:
        followers = _first(a, "followerCount", "followers")
    scrape = get("scrapeTime")
    if scrape is None:
        scrape = get("scrape_time") or (_first(envelope, "scrapeTime", "scrape_time") if envelope else None)
    return {
        "video_id": get("id"),
        "song_id": mget("musicId"),
        "song_title": mget("musicName"),
        "song_author": mget("musicAuthor"),
        "song_original": mget("musicOriginal"),
        "song_uses": uses,
        "author_id": aget("id") or aget("name"),
        "author_followers": followers,
        "caption": get("text"),
        "hashtags": get("hashtags"),
        "duration_s": v.get("duration"),
        "create_time": get("createTime"),
        "scrape_time": scrape,
        "plays": get("playCount"),
        "likes": get("diggCount"),
        "shares": get("shareCount"),
        "comments": get("commentCount"),
        "saves": get("collectCount"),
        "video_path": get("video_path") or get("videoPath"),
        **{name: _first(a, *keys) for name, keys in _SCRAPER_AUTHOR.items()},
    }


def from_tiktok_api(r: dict, envelope: dict) -> dict:
    if isinstance(r.get("itemInfo"), dict):
        r = _dict(r["itemInfo"].get("itemStruct"))
    elif isinstance(r.get("itemStruct"), dict):
        r = r["itemStruct"]
    music = _dict(r.get("music"))
    stats, stats2 = _dict(r.get("stats")), _dict(r.get("statsV2"))
    author = r.get("author")
    author_id = _first(author, "id", "uniqueId") if isinstance(author, dict) else (r.get("authorId") or author)
    tags = r.get("challenges")
    if tags is None and isinstance(r.get("textExtra"), list):
        tags = [t for t in r["textExtra"] if isinstance(t, dict) and t.get("hashtagName")]
    if tags is None and "desc" in r:
        tags = []  # TikTok-Api omits empty lists: a described video without challenges has no hashtags

    def stat(k: str) -> Any:
        v = stats.get(k)
        return stats2.get(k) if v is None else v

    return {
        "video_id": r.get("id"),
        "song_id": music.get("id"),
        "song_title": music.get("title"),
        "song_author": music.get("authorName"),
        "song_original": music.get("original"),
        "song_uses": _first(music, "videoCount", "userCount") or _first(_dict(music.get("stats")), "videoCount"),
        "author_id": author_id,
        "author_followers": _first(_dict(r.get("authorStats")), "followerCount") or _first(
            _dict(r.get("authorStatsV2")), "followerCount"),
        "caption": r.get("desc"),
        "hashtags": tags,
        "duration_s": _dict(r.get("video")).get("duration"),
        "create_time": r.get("createTime"),
        "scrape_time": _first(r, "scrapeTime", "scrape_time") or _first(envelope, "scrapeTime", "scrape_time"),
        "plays": stat("playCount"),
        "likes": stat("diggCount"),
        "shares": stat("shareCount"),
        "comments": stat("commentCount"),
        "saves": stat("collectCount"),
        "video_path": _first(r, "video_path", "videoPath"),
        **{name: _first(_dict(r.get("authorStats")), *keys) for name, keys in _API_AUTHOR.items()},
    }


def from_ytdlp(r: dict, envelope: dict) -> dict | NotAVideo:
    if r.get("_type") in ("playlist", "multi_video", "url", "url_transparent"):
        return NotAVideo(f"yt-dlp {r['_type']} entry")
    artists = r.get("artists")
    artist = r.get("artist") or (", ".join(a for a in artists if isinstance(a, str)) if isinstance(artists, list)
                                 else None)
    track = r.get("track")
    song_id = _first(r, "music_id", "track_id")  # else the ingest derives one from track + artist
    downloads = r.get("requested_downloads")
    dl_path = _dict(downloads[0]).get("filepath") if isinstance(downloads, list) and downloads else None
    return {
        "video_id": r.get("id"),
        "song_id": song_id,
        "song_title": track,
        "song_author": artist,
        "song_original": None,
        "song_uses": None,
        "author_id": _first(r, "uploader_id", "channel_id"),
        "author_followers": r.get("channel_follower_count"),
        "caption": r["description"] if r.get("description") is not None else r.get("title"),
        "hashtags": r.get("tags"),
        "duration_s": r.get("duration"),
        "create_time": _first(r, "timestamp", "upload_date"),
        "scrape_time": _first(r, "epoch") or _first(envelope, "epoch"),
        "plays": r.get("view_count"),
        "likes": r.get("like_count"),
        "shares": r.get("repost_count"),
        "comments": r.get("comment_count"),
        "saves": r.get("save_count"),
        "video_path": _first(r, "filepath", "_filename") or dl_path,
        "author_following": None, "author_videos": None, "author_hearts": None, "author_diggs": None,
    }


JSON_MAPPERS: dict[str, Callable[[dict, dict], Any]] = {
    "tiktok-scraper": from_tiktok_scraper,
    "tiktok-api": from_tiktok_api,
    "yt-dlp": from_ytdlp,
}


# ---------------------------------------------------------------- detection

def detect_json_record(rec: dict, path: Path, layout: JsonLayout) -> tuple[str | None, str]:
    """Guess the format from one record (and the file's layout); returns (format, why)."""
    if "pid" in rec and "uid" in rec and ("post_content" in rec or "post_time" in rec):
        return "smp-video", "records are SMP-Video posts (pid, uid, post_content)"
    if "musicMeta" in rec:
        return "tiktok-scraper", "records have musicMeta"
    if "itemStruct" in rec or "itemInfo" in rec:
        return "tiktok-api", "records are itemStruct dicts"
    if "music" in rec and ("stats" in rec or "statsV2" in rec):
        return "tiktok-api", "records have music and stats"
    if any(k in rec for k in ("extractor", "extractor_key", "webpage_url", "epoch", "_type")):
        return "yt-dlp", "records have yt-dlp's extractor/webpage_url fields"
    if path.name.endswith(".info.json"):
        return "yt-dlp", "a .info.json file"
    if layout.list_key == "collector":
        return "tiktok-scraper", "records are under 'collector'"
    if layout.list_key == "itemList":
        return "tiktok-api", "records are under 'itemList'"
    return None, f"first record has keys {', '.join(sorted(rec)[:12])}"


def _head(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read(4096).decode("utf-8-sig", errors="replace").lstrip()


def sniff_is_csv(path: Path) -> bool:
    """JSON for .json/.jsonl/.ndjson names; otherwise CSV unless the content starts like JSON."""
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
        return False
    head = _head(path)
    return head[0] not in "[{" if head else path.suffix.lower() in (".csv", ".tsv")


# ---------------------------------------------------------------- CSV

def parse_column_map(spec: str | None) -> dict[str, str]:
    """``"video_id=id,plays=views"`` -> ``{"video_id": "id", "plays": "views"}``."""
    if not spec:
        return {}
    out: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise UserError(f"--columns: {part.strip()!r} is not canonical=source "
                            "(e.g. --columns video_id=id,plays=views)")
        k, v = (x.strip() for x in part.split("=", 1))
        if not k or not v:
            raise UserError(f"--columns: {part.strip()!r} has an empty name")
        out[k] = v
    check_column_map(out)
    return out


def check_column_map(mapping: dict[str, str]) -> None:
    unknown = sorted(set(mapping) - set(RAW_FIELDS))
    if unknown:
        raise UserError(f"--columns: unknown canonical name(s) {', '.join(unknown)}; known: {', '.join(RAW_FIELDS)}")


def _iter_csv(path: Path, mapping: dict[str, str], on_bytes: Callable[[int], None] | None,
              require_counts: bool, target_column: str | None = None) -> Iterator[tuple[int, int, Any]]:
    """Yield (position, line, raw canonical dict | MalformedRow) for each data row."""
    raw = open(path, "rb")
    try:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        try:
            sample = text.read(65536)
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not a UTF-8 CSV file ({e.reason}); re-save it as UTF-8") from None
        text.seek(0)
        delim = "\t" if path.suffix.lower() == ".tsv" else ","
        if path.suffix.lower() != ".tsv":
            try:
                delim = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t|").delimiter
            except csv.Error:
                pass
        reader = csv.reader(text, delimiter=delim)
        try:
            header = next(reader)
        except StopIteration:
            raise UserError(f"{path}: the CSV file is empty (it needs a header row)") from None
        header = [h.strip() for h in header]
        index = {h: i for i, h in enumerate(header)}
        cols: dict[str, int] = {}
        for name in RAW_FIELDS:
            src = mapping.get(name, name)
            if src in index:
                cols[name] = index[src]
            elif name in mapping:
                raise UserError(f"{path}: --columns maps {name} to {src!r}, which is not a column; "
                                f"the columns are: {', '.join(header)}")
        needed = REQUIRED_CSV_FIELDS + (("plays", "shares", "comments") if require_counts and not target_column
                                        else ())
        missing = [n for n in needed if n not in cols]
        if missing:
            raise UserError(f"{path}: no column for {', '.join(missing)}; map them with --columns "
                            f"(e.g. --columns {missing[0]}=COLUMN); the columns are: {', '.join(header)}")
        if target_column:
            if target_column not in index:
                raise UserError(f"{path}: --target-column {target_column!r} is not a column; "
                                f"the columns are: {', '.join(header)}")
            cols["target"] = index[target_column]
        items = list(cols.items())
        # No hashtag column: the #tags in the caption (TikTok turns them into its hashtags).
        tags_from_caption = "hashtags" not in cols and "caption" in cols
        width = len(header)
        last_bytes = 0
        for pos, row in enumerate(reader, 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                yield pos, reader.line_num, MalformedRow(f"{len(row)} fields, the header has {width}")
                continue
            rec = dict.fromkeys(RAW_FIELDS)
            rec["target"] = None
            for name, i in items:
                v = row[i]
                rec[name] = v if v.strip() else None
            if tags_from_caption:
                rec["hashtags"] = caption_hashtags(rec["caption"])
            yield pos, reader.line_num, rec
            if on_bytes and not pos % 20000:
                now = raw.tell()
                on_bytes(now - last_bytes)
                last_bytes = now
        if on_bytes:
            on_bytes(raw.tell() - last_bytes)
    except csv.Error as e:
        raise UserError(f"{path}: not a valid CSV file ({e}); fix or re-export it") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not a UTF-8 CSV file ({e.reason}); re-save it as UTF-8") from None
    finally:
        raw.close()


class MalformedRow:
    """A CSV row whose field count differs from the header's."""

    __slots__ = ("detail",)

    def __init__(self, detail: str):
        self.detail = detail


# ---------------------------------------------------------------- one file

@dataclass
class RecordSource:
    """The records of one input file, as raw canonical dicts, and what was detected.

    Iterate to get ``(position, line, item)``: ``position`` is the 1-based index of the
    record in the file, ``line`` its line number where the format has lines (JSON
    lines, CSV) else ``None``, and ``item`` a raw canonical dict or a marker
    (``BadLine``, ``NotARecord``, ``NotAVideo``, ``MalformedRow``) for the ingest to reject.
    """

    path: Path
    format: str
    detected: str                     # how the format was chosen, for the user
    layout: JsonLayout = field(default_factory=JsonLayout)
    _items: Iterator[tuple[int, int | None, Any]] = field(default=iter(()), repr=False)
    join: Any = None                  # smp-video: the side tables (SmpJoin), for the unjoined-row report

    def __iter__(self) -> Iterator[tuple[int, int | None, Any]]:
        return self._items


def read_records(path: str | os.PathLike, fmt: str = "auto", columns: dict[str, str] | None = None,
                 on_bytes: Callable[[int], None] | None = None, require_counts: bool = True,
                 target_column: str | None = None) -> RecordSource:
    """Open one metadata file and return its records as raw canonical dicts.

    ``fmt`` is one of ``FORMATS`` or ``"auto"`` (detected from the first records; the
    result says what was detected and why). ``columns`` maps canonical names to CSV
    column names. ``target_column``: a field holding a given target, passed on as the raw
    dict's ``target`` (a CSV column, a record's key; for smp-video the popularity file's
    field, ``popularity`` by default). Raises ``UserError`` naming the file when it is
    not valid JSON/CSV or its format cannot be detected.
    """
    path = Path(path)
    if fmt not in FORMATS and fmt != "auto":
        raise UserError(f"unknown format {fmt!r}; choose from auto, {', '.join(FORMATS)}")
    if fmt == "csv" and _head(path)[:1] in ("[", "{"):
        raise UserError(f"{path}: --format csv, but the file is JSON; use --format auto or a JSON format")
    if fmt == "csv" or (fmt == "auto" and sniff_is_csv(path)):
        items = _iter_csv(path, columns or {}, on_bytes, require_counts, target_column)
        first = list(itertools.islice(items, 1))  # read the header now, so errors surface at open
        return RecordSource(path, "csv", "csv" if fmt == "csv" else f"csv (suffix {path.suffix or 'none'})",
                            _items=itertools.chain(first, items))
    layout = JsonLayout()
    values = _guard_json(path, iter_json(path, layout, on_bytes))
    head = list(itertools.islice(values, 100))
    chosen, why = fmt, "given with --format"
    if fmt == "auto":
        chosen = None
        for v in head:
            if isinstance(v, dict):
                chosen, why = detect_json_record(v, path, layout)
                break
        if chosen is None:
            if not head:
                chosen, why = "tiktok-scraper", "no records"
            else:
                raise UserError(f"{path}: cannot tell the scrape format ({why}); "
                                f"pass --format {'|'.join(FORMATS)}")
    join = None
    if chosen == "smp-video":
        join = SmpJoin(path, target_column)
        mapper = join.mapper()
    else:
        mapper = JSON_MAPPERS.get(chosen)
        if mapper is None:
            raise UserError(f"{path}: --format {chosen} does not read JSON; this file is JSON")
        if target_column:
            mapper = _with_target(mapper, target_column)
    items = _map_json(itertools.chain(head, values), mapper, layout)
    return RecordSource(path, chosen, why, layout, _items=items, join=join)


def _with_target(mapper: Callable[[dict, dict], Any], column: str) -> Callable[[dict, dict], Any]:
    """Add the record's ``column`` (a dotted path such as ``stats.score``) as the raw ``target``."""
    keys = column.split(".")

    def mapped(r: dict, envelope: dict) -> Any:
        out = mapper(r, envelope)
        if isinstance(out, dict):
            v: Any = r
            for k in keys:
                v = v.get(k) if isinstance(v, dict) else None
            out["target"] = v
        return out

    return mapped


def _guard_json(path: Path, values: Iterable[Any]) -> Iterator[Any]:
    try:
        yield from values
    except JsonSyntaxError as e:
        raise UserError(f"{path}: not valid JSON: {e}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e})") from None


def _map_json(values: Iterable[Any], mapper: Callable[[dict, dict], Any],
              layout: JsonLayout) -> Iterator[tuple[int, int | None, Any]]:
    envelope: dict | None = None
    jsonl = False
    for pos, v in enumerate(values, 1):
        if envelope is None:  # known once the first record is out: the reader has passed the list key
            envelope, jsonl = layout.envelope, layout.kind == "jsonl"
        line = layout.line if jsonl else None
        if type(v) is dict:
            yield pos, line, mapper(v, envelope)
        elif isinstance(v, BadLine):
            yield pos, v.line, v
        else:
            yield pos, line, NotARecord("null" if v is None else type(v).__name__)


def expand_inputs(inputs: Iterable[str | os.PathLike], exclude: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Files named, plus the metadata files (by suffix) under each directory, deduplicated.

    Hidden files and directories are skipped, and so is anything under ``exclude``
    (the graph directory being written, whose rejects.jsonl is not input).
    """
    skip = [os.path.realpath(e) + os.sep for e in exclude]
    out: list[Path] = []
    seen: set[str] = set()
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise UserError(f"input not found: {p}")
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in INPUT_SUFFIXES
                           and not any(part.startswith(".") for part in q.relative_to(p).parts)
                           and not any(os.path.realpath(q).startswith(s) for s in skip))
            if not found:
                raise UserError(f"{p}: no metadata files ({', '.join(INPUT_SUFFIXES)}) in this directory")
        else:
            found = [p]
        found = [q for q in found if not (p.is_dir() and is_side_file(q))]  # joined in by their posts file
        for q in found:
            key = os.path.realpath(q)
            if key not in seen:
                seen.add(key)
                out.append(q)
    return out
