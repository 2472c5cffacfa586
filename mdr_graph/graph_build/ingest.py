"""Validate scraped records and turn them into the canonical ``videos`` table.

Every input record ends up either as one row of the table or as one reject with a
stable reason code, so ``videos + rejected == input_records`` always holds and nothing
disappears silently. Rejecting is reserved for records that would corrupt the graph
or the target; an optional field that cannot be read (a follower count written as
"lots") becomes null and is counted in ``unreadable_values`` instead.

The popularity target is ``log((plays + shares + comments + 1) / age_days)`` with the
age from ``create_time`` to the record's scrape time, floored at one day. The scrape
time is the record's own (yt-dlp ``epoch``, a CSV ``scrape_time`` column, a
``scrapeTime`` field), else ``--scrape-time``, else the latest ``create_time`` among the
accepted records. The min-max normalisation is fitted later, on the training split.

Records are processed one at a time into column lists (no per-record pandas work), so
ingest runs close to JSON-parsing speed and holds only the fields it keeps.
"""

from __future__ import annotations

import json
import math
import os
import sys
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

import numpy as np
import pandas as pd

from mdr_graph.errors import UserError
from mdr_graph.graph_build.formats import (FORMATS, MalformedRow, NotARecord, NotAVideo, check_column_map,
                                           expand_inputs, read_records)
from mdr_graph.graph_build.jsonstream import BadLine
from mdr_graph.graph_build.media_paths import PathEscapesRoot, media_root_for
from mdr_graph.graph_build.parse import (parse_bool, parse_count, parse_duration, parse_hashtags, parse_id,
                                         parse_text, parse_timestamp)
from mdr_graph.graph_build.schema import AUTHOR_COUNTS, VIDEO_COLUMNS
from mdr_graph.graph_build.smp import DEFAULT_TARGET as SMP_DEFAULT_TARGET
from mdr_graph.graph_build.song_identity import song_identity

# Stable reject codes (they appear in rejects.jsonl and summary.json) and what they mean.
REJECT_REASONS: dict[str, str] = {
    "missing_video_id": "the record has no video id",
    "missing_counts": "plays, shares or comments is absent (the popularity target needs all three)",
    "bad_count": "an engagement count is present but is not a number",
    "negative_count": "a count (engagement, followers or song uses) is negative",
    "bad_timestamp": "the create time is missing or unreadable, or the record's scrape time is unreadable",
    "created_after_scrape": "the video's create time is after the time it was scraped",
    "duplicate_exact": "a later copy of an accepted video, identical to the kept copy",
    "duplicate_conflicting": "a later copy of an accepted video whose fields differ from the kept copy",
    "path_escapes_root": "the media path in the record resolves outside the media root",
    "not_a_record": "an entry of the record list is not a JSON object",
    "not_a_video": "a record that describes something else (a yt-dlp playlist or channel)",
    "bad_json": "a JSON-lines line that is not valid JSON",
    "malformed_row": "a CSV row with a different number of fields than the header",
    "missing_target": "a given target (--target-column, or smp-video's popularity) is absent",
    "bad_target": "a given target is not a finite number",
}

TARGET_COUNTS = ("plays", "shares", "comments")
TARGET_FORMULA = "log((plays + shares + comments + 1) / age_days), age floored at 1 day"


def _target(value: Any, column: str) -> float:
    """A given target value (``--target-column``): a finite number, else a reject."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Reject("missing_target", f"no {column}")
    if isinstance(value, bool):
        raise _Reject("bad_target", f"{column}: {value!r} is not a number")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise _Reject("bad_target", f"{column}: {value!r} is not a number") from None
    if not math.isfinite(x):
        raise _Reject("bad_target", f"{column}: {value!r} is not finite")
    return x
# Compared between copies of one video id; scrape time and file location may differ.
_COMPARED = tuple(c for c in VIDEO_COLUMNS if c not in ("scrape_time", "video_path", "popularity_raw"))
_STORED = tuple(c for c in VIDEO_COLUMNS if c != "popularity_raw")
_NS_PER_DAY = 86_400 * 10**9
_ECHO_FILES = 20  # name each file's detected format up to this many files, then summarise


class _Reject(Exception):
    def __init__(self, code: str, detail: str):
        self.code, self.detail = code, detail


class Rejects:
    """Where rejects go: counted by reason, optionally kept in a list and/or streamed to a JSONL file."""

    def __init__(self, keep: bool = True, stream: TextIO | None = None):
        self.items: list[dict] | None = [] if keep else None
        self.stream = stream
        self.by_reason: Counter[str] = Counter()

    def add(self, source: str, position: int, line: int | None, video_id: str | None, code: str, detail: str,
            **extra: Any) -> None:
        rec = {"source": source, "position": position}
        if line is not None:
            rec["line"] = line
        rec.update(video_id=video_id, reason=code, detail=detail, **extra)
        self.by_reason[code] += 1
        if self.items is not None:
            self.items.append(rec)
        if self.stream is not None:
            self.stream.write(json.dumps(rec, ensure_ascii=False) + "\n")

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


@dataclass
class Ingested:
    """The canonical table and an account of every input record."""

    videos: pd.DataFrame
    rejects: Rejects
    input_records: int
    files: list[dict]                       # per file: path, format, detected, records, videos, rejected
    scrape_time_sources: dict[str, int]     # record | option | latest_create_time -> number of videos
    scrape_time_fallback: str | None        # the latest create_time used as scrape time, if any
    unreadable_values: dict[str, int]       # optional field -> values that could not be read (set null)
    media_files: dict[str, int] = field(default_factory=dict)   # found / missing
    song_identity: dict[str, int] = field(default_factory=dict)  # music_id|own_sound|title|none -> videos
    target: dict[str, Any] = field(default_factory=dict)         # which target popularity_raw holds

    @property
    def formats(self) -> list[str]:
        return sorted({f["format"] for f in self.files})


def _id_text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


class _Table:
    """Column lists of accepted rows, plus what the duplicate check needs."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {c: [] for c in _STORED}
        self.first_seen: dict[str, int] = {}     # video_id -> row
        self.row_source = array("i")
        self.row_position = array("q")

    def __len__(self) -> int:
        return len(self.row_position)

    def differing(self, row: int, values: dict[str, Any]) -> list[str]:
        return [c for c in _COMPARED if self.cols[c][row] != values[c]]


def _count(raw: dict, name: str) -> int | None:
    v = raw[name]
    if type(v) is int or v is None:
        return v
    try:
        return parse_count(v)
    except ValueError as e:
        raise _Reject("bad_count", f"{name}: {e}") from None


def _optional(raw: dict, name: str, parser: Callable[[Any], Any], unreadable: Counter) -> Any:
    """An optional field: unreadable values become null (counted), never a reject."""
    try:
        return parser(raw[name])
    except ValueError:
        unreadable[name] += 1
        return None


def _account_count(raw: dict, name: str, unreadable: Counter) -> int | None:
    """An optional account count (creator features): unreadable or negative -> null, counted."""
    v = raw.get(name)
    if type(v) is not int:
        v = _optional(raw, name, parse_count, unreadable) if v is not None else None
    if v is not None and v < 0:
        unreadable[name] += 1
        return None
    return v


def _interned(v: Any, cache: dict) -> Any:
    return v if v is None else cache.setdefault(v, v)


def _typed(raw: dict, cache: dict, unreadable: Counter, require_counts: bool) -> dict[str, Any]:
    """Parse one raw canonical dict; raise ``_Reject`` for a record that cannot be used.

    Runs once per record, so the common case (ints from JSON) skips the parsers.
    """
    vid = parse_id(raw["video_id"])
    if vid is None:
        raise _Reject("missing_video_id", "no video id")
    plays, likes, shares = _count(raw, "plays"), _count(raw, "likes"), _count(raw, "shares")
    comments, saves = _count(raw, "comments"), _count(raw, "saves")
    if require_counts and (plays is None or shares is None or comments is None):
        missing = [n for n, c in (("plays", plays), ("shares", shares), ("comments", comments)) if c is None]
        raise _Reject("missing_counts", f"no {', '.join(missing)}")
    uses = raw["song_uses"]
    if type(uses) is not int:
        uses = _optional(raw, "song_uses", parse_count, unreadable)
    followers = raw["author_followers"]
    if type(followers) is not int:
        followers = _optional(raw, "author_followers", parse_count, unreadable)
    checked = (("plays", plays), ("likes", likes), ("shares", shares), ("comments", comments), ("saves", saves),
               ("song_uses", uses), ("author_followers", followers))
    if any(c is not None and c < 0 for _, c in checked):
        raise _Reject("negative_count", ", ".join(f"{n}={c}" for n, c in checked if c is not None and c < 0))
    v = raw["create_time"]
    try:
        ct = v * 1_000_000_000 if type(v) is int and 631_152_000 <= v < 4_102_444_800 else parse_timestamp(v)
    except ValueError as e:
        raise _Reject("bad_timestamp", f"create time: {e}") from None
    if ct is None:
        raise _Reject("bad_timestamp", "no create time")
    v = raw["scrape_time"]
    try:
        st = None if v is None else parse_timestamp(v)
    except ValueError as e:
        raise _Reject("bad_timestamp", f"scrape time: {e}") from None
    dur = raw["duration_s"]
    dur = float(dur) if type(dur) is int and dur >= 0 else _optional(raw, "duration_s", parse_duration, unreadable)
    orig = raw["song_original"]
    if orig is not True and orig is not False:
        orig = _optional(raw, "song_original", parse_bool, unreadable)
    aid = parse_id(raw["author_id"])
    title, artist = parse_text(raw["song_title"]), parse_text(raw["song_author"])
    # The music id, else an id derived from the title (see song_identity); None: no song edge.
    sid, how = song_identity(parse_id(raw["song_id"]), title, artist, aid)
    if how == "own_sound" and orig is None:
        orig = True  # a generic title is the creator's own upload
    tags = raw["hashtags"]
    try:
        tags = parse_hashtags(tags)
    except ValueError:
        tags = None
        unreadable["hashtags"] += 1
    if tags:
        tags = [cache.setdefault(t, t) for t in tags]
    v = raw["caption"]
    return {
        "video_id": vid, "song_id": _interned(sid, cache), "song_identity": how,
        "song_title": _interned(title, cache), "song_author": _interned(artist, cache),
        "song_original": orig, "song_uses": uses,
        "author_id": _interned(aid, cache), "author_followers": followers,
        "caption": v if type(v) is str else parse_text(v), "hashtags": tags, "duration_s": dur,
        "create_time": ct, "scrape_time": st,
        "plays": plays, "likes": likes, "shares": shares, "comments": comments, "saves": saves,
        **{name: _account_count(raw, name, unreadable) for name in AUTHOR_COUNTS},
    }


def _ns_text(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()


def ingest_files(inputs: Iterable[str | os.PathLike], fmt: str = "auto", columns: dict[str, str] | None = None,
                 media_root: str | os.PathLike | None = None, scrape_time: Any = None,
                 require_counts: bool = True, rejects: Rejects | None = None, show_progress: bool = False,
                 echo: Callable[[str], None] | None = None, exclude: Iterable[str | os.PathLike] = (),
                 target_column: str | None = None) -> Ingested:
    """Read every input file, validate each record, and build the canonical table.

    ``inputs``: files or directories (searched for .json/.jsonl/.ndjson/.csv/.tsv).
    ``fmt``: ``auto`` or one of ``FORMATS``. ``columns``: canonical -> CSV column.
    ``media_root``: where ``<video_id>.mp4`` files are. ``scrape_time``: when the
    scrape was taken (ISO text or epoch), for records that do not say.
    ``require_counts=False`` accepts records without engagement counts (new videos to
    score); their ``popularity_raw`` is NaN. ``target_column``: take the target from this
    field instead of computing it from counts (smp-video files default to ``popularity``);
    ``popularity_raw`` then holds it, and counts are not required.
    """
    from mdr_graph.runlog import progress

    if fmt not in FORMATS and fmt != "auto":
        raise UserError(f"unknown --format {fmt!r}; choose from auto, {', '.join(FORMATS)}")
    columns = dict(columns or {})
    check_column_map(columns)
    try:
        option_st = parse_timestamp(scrape_time)
    except ValueError as e:
        raise UserError(f"--scrape-time {scrape_time!r}: {e}") from None
    if media_root is not None and not Path(media_root).is_dir():
        raise UserError(f"--media-root {media_root}: not a directory")
    files = expand_inputs(inputs, exclude=exclude)
    if not files:
        raise UserError("no input files given")
    rejects = rejects if rejects is not None else Rejects()
    table = _Table()
    cols = table.cols
    appenders = [(c, cols[c].append) for c in _STORED]
    first_seen = table.first_seen
    cache: dict = {}
    unreadable: Counter[str] = Counter()
    st_sources: Counter[str] = Counter()
    song_sources: Counter[str] = Counter()
    targets: list[float | None] = []   # the given target of each accepted row (None: computed)
    target_kinds: list[str | None] = []
    file_reports: list[dict] = []
    n_input = 0
    shared_resolver = None
    total_bytes = sum(p.stat().st_size for p in files)
    bar = progress(total=total_bytes, unit="B", unit_scale=True, desc="ingest",
                   **({} if show_progress else {"disable": True}))
    try:
        for file_index, path in enumerate(files):
            source = str(path)
            src = read_records(path, fmt, columns, on_bytes=bar.update, require_counts=require_counts,
                               target_column=target_column)
            given = target_column or (SMP_DEFAULT_TARGET if src.format == "smp-video" else None)
            if target_kinds and given != target_kinds[-1]:
                raise UserError(f"{source}: its target ({given or 'computed from counts'}) differs from the "
                                f"earlier files' ({target_kinds[-1] or 'computed from counts'}); build them apart")
            target_kinds.append(given)
            if echo and len(files) <= _ECHO_FILES:
                with bar.external_write_mode(file=sys.stderr):
                    echo(f"{source}: {src.format} ({src.detected})")
            if media_root is None or shared_resolver is None:  # one directory scan for all files
                resolver = shared_resolver = media_root_for(path, media_root)
            n_file = 0
            rejected_before = rejects.total
            for position, line, raw in src:
                n_file += 1
                if type(raw) is not dict:
                    code, detail = _marker_reason(raw)
                    rejects.add(source, position, getattr(raw, "line", line), None, code, detail)
                    continue
                try:
                    rec = _typed(raw, cache, unreadable, require_counts and given is None)
                    rec["target"] = _target(raw.get("target"), given) if given is not None else None
                    vid = rec["video_id"]
                    st = rec["scrape_time"]
                    if st is None and option_st is not None:
                        st = rec["scrape_time"] = option_st
                        st_kind = "option"
                    else:
                        st_kind = "record" if st is not None else "latest_create_time"
                    if st is not None and rec["create_time"] > st:
                        raise _Reject("created_after_scrape", f"created {_ns_text(rec['create_time'])}, "
                                                              f"scraped {_ns_text(st)}")
                    try:
                        rec["video_path"] = resolver.resolve(vid, raw["video_path"])
                    except PathEscapesRoot as e:
                        raise _Reject("path_escapes_root", str(e)) from None
                except _Reject as r:
                    rejects.add(source, position, line, _id_text(parse_id(raw.get("video_id"))), r.code, r.detail)
                    continue
                kept = first_seen.get(vid)
                if kept is not None:
                    diff = table.differing(kept, rec)
                    if given is not None and targets[kept] != rec["target"]:
                        diff.append("target")
                    dup_of = {"source": str(files[table.row_source[kept]]), "position": table.row_position[kept]}
                    if diff:
                        rejects.add(source, position, line, vid, "duplicate_conflicting",
                                    f"differs from the kept copy in {', '.join(diff)}", duplicate_of=dup_of)
                    else:
                        rejects.add(source, position, line, vid, "duplicate_exact",
                                    "identical to the kept copy", duplicate_of=dup_of)
                    continue
                first_seen[vid] = len(table)
                targets.append(rec["target"])
                table.row_source.append(file_index)
                table.row_position.append(position)
                for c, add in appenders:
                    add(rec[c])
                st_sources[st_kind] += 1
                song_sources[rec["song_identity"]] += 1
            n_input += n_file
            file_reports.append({"path": source, "format": src.format, "detected": src.detected,
                                 "records": n_file, "rejected": rejects.total - rejected_before,
                                 "videos": n_file - (rejects.total - rejected_before)})
            if src.join is not None:  # smp-video: side-table rows no post matched, and absent side tables
                file_reports[-1].update(unjoined_rows=src.join.unjoined(), missing_tables=src.join.missing)
    finally:
        bar.close()
    if echo and len(files) > _ECHO_FILES:
        kinds = Counter(f"{f['format']} ({f['detected']})" for f in file_reports)
        for kind, n in kinds.most_common():
            echo(f"{n:,} files: {kind}")
    fallback = None
    if st_sources.get("latest_create_time"):
        fallback = max(cols["create_time"])
    videos = _frame(cols, fallback)
    given = target_kinds[-1] if target_kinds else None
    if given is not None:
        videos["popularity_raw"] = np.asarray(targets, dtype=np.float64)
    found = int(videos["video_path"].notna().sum())
    return Ingested(videos=videos, rejects=rejects, input_records=n_input, files=file_reports,
                    scrape_time_sources=dict(st_sources), unreadable_values=dict(unreadable),
                    scrape_time_fallback=_ns_text(fallback) if fallback is not None else None,
                    media_files={"found": found, "missing": len(videos) - found},
                    song_identity=dict(sorted(song_sources.items())),
                    target={"kind": "given", "column": given} if given is not None else
                    {"kind": "computed", "formula": TARGET_FORMULA})


def _marker_reason(item: Any) -> tuple[str, str]:
    if isinstance(item, BadLine):
        return "bad_json", f"line {item.line}: {item.error}"
    if isinstance(item, MalformedRow):
        return "malformed_row", item.detail
    if isinstance(item, NotAVideo):
        return "not_a_video", item.kind
    if isinstance(item, NotARecord):
        return "not_a_record", f"a {item.kind}, not an object"
    return "not_a_record", f"a {type(item).__name__}"


# ---------------------------------------------------------------- lists -> DataFrame

def _masked(values: list, pa_type, pd_array):
    import pyarrow as pa

    arr = pa.array(values, type=pa_type)
    mask = arr.is_null().to_numpy(zero_copy_only=False)
    data = arr.fill_null(False if pa_type == pa.bool_() else 0).to_numpy(zero_copy_only=False)
    return pd_array(data, mask)


def _frame(cols: dict[str, list], fallback_ns: int | None) -> pd.DataFrame:
    """Column lists -> the canonical table, with exactly VIDEO_COLUMNS' names, order and dtypes.

    Each list is released as soon as its column is built, to keep the peak low.
    """
    import pyarrow as pa

    n = len(cols["video_id"])
    out: dict[str, Any] = {}
    create = np.fromiter(cols.pop("create_time"), dtype=np.int64, count=n)
    scrape_list = cols.pop("scrape_time")
    scrape = np.fromiter((fallback_ns if s is None else s for s in scrape_list), dtype=np.int64, count=n) \
        if n else np.zeros(0, np.int64)
    del scrape_list
    for name, dtype in VIDEO_COLUMNS.items():
        if name == "create_time":
            out[name] = _utc(create)
        elif name == "scrape_time":
            out[name] = _utc(scrape)
        elif name == "popularity_raw":
            continue
        elif dtype == "string":
            out[name] = pd.arrays.ArrowStringArray(pa.array(cols.pop(name), type=pa.large_string()))
        elif dtype == "Int64":
            out[name] = _masked(cols.pop(name), pa.int64(), pd.arrays.IntegerArray)
        elif dtype == "Float64":
            out[name] = _masked(cols.pop(name), pa.float64(), pd.arrays.FloatingArray)
        elif dtype == "boolean":
            out[name] = _masked(cols.pop(name), pa.bool_(), pd.arrays.BooleanArray)
        else:  # hashtags: lists of str (or None)
            out[name] = pd.Series(cols.pop(name), dtype=object).array
    df = pd.DataFrame(out)
    df["popularity_raw"] = popularity(df, create, scrape)
    return df[list(VIDEO_COLUMNS)]


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def popularity(videos: pd.DataFrame, create_ns: np.ndarray | None = None,
               scrape_ns: np.ndarray | None = None) -> np.ndarray:
    """``log((plays + shares + comments + 1) / age_days)``, age floored at 1 day; NaN without counts."""
    if create_ns is None:
        create_ns = videos["create_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    if scrape_ns is None:
        scrape_ns = videos["scrape_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    total = sum(videos[c].to_numpy(dtype="float64", na_value=np.nan) for c in TARGET_COUNTS) + 1.0
    age_days = np.maximum((scrape_ns - create_ns) / _NS_PER_DAY, 1.0)
    return np.log(total / age_days) if len(videos) else np.zeros(0)


def ingest(paths: Iterable[str | os.PathLike] | str | os.PathLike, fmt: str = "auto",
           columns: dict[str, str] | None = None, media_root: str | os.PathLike | None = None,
           scrape_time: Any = None, require_counts: bool = True) -> tuple[pd.DataFrame, list[dict]]:
    """The canonical ``videos`` table of some metadata files, and the rejected records.

    For callers that need the table without building a graph (``predict`` ingests new
    videos' metadata with ``require_counts=False``). Each reject is a dict with
    ``source, position, video_id, reason, detail`` (see ``REJECT_REASONS``).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    result = ingest_files(paths, fmt=fmt, columns=columns, media_root=media_root, scrape_time=scrape_time,
                          require_counts=require_counts, rejects=Rejects(keep=True))
    return result.videos, result.rejects.items or []
