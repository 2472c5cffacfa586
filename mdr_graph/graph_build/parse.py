"""Parse the values scrapers write into plain Python values.

Scrapers disagree on how to write a number, a time or a list: TikTok's pages show
"541.2K" plays, CSV exports hold everything as text, yt-dlp writes upload days as
"YYYYMMDD". Each parser here takes whatever a scraper wrote and returns one plain
type, ``None`` when the value is absent, and raises ``ValueError`` (with a short
reason) when the value is present but cannot be read. The ingest decides what an
unreadable value means for the record; these functions only read values.

They run once per field per record, so each has a fast path for the common case.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timezone

# Text that means "no value" in CSV exports and hand-edited files.
_NULL_TEXT = frozenset({"", "nan", "none", "null", "n/a", "na", "-", "--"})

# "541.2K", "1,234", "1.4M plays", "44 videos", "1,2K" (decimal comma), "-3"
_COUNT_RE = re.compile(r"^([+-]?)(\d[\d,_ \u00a0\u202f']*(?:[.,]\d+)?)\s*([kmb]|w|mil)?\b\.?\s*[^\d]*$", re.IGNORECASE)
_MULTIPLIER = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000, "w": 10_000, "mil": 1_000}

_NS_PER_S = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# A time outside this window is a scraper bug (createTime 0, a day count), not a real post.
MIN_TIME_NS = int(datetime(1990, 1, 1, tzinfo=timezone.utc).timestamp()) * _NS_PER_S
MAX_TIME_NS = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp()) * _NS_PER_S

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})

_TAG_RE = re.compile(r"[^\s,#\[\]'\"]+")
# A "#tag" inside free text: TikTok ends a tag at whitespace, another '#' or punctuation.
_CAPTION_TAG_RE = re.compile(r"#([^\s#,.!?;:()\[\]{}\"'@]+)")


def is_null_text(s: str) -> bool:
    return s.strip().lower() in _NULL_TEXT


def parse_count(value: object) -> int | None:
    """A non-negative-or-negative integer count from an int, a float or text as TikTok shows it.

    "541.2K" -> 541200, "1.4M" -> 1400000, "30.58M" -> 30580000, "1,234" -> 1234,
    "44 videos" -> 44, "1,2K" -> 1200 (decimal comma before a suffix). Negative counts
    are returned as they are; rejecting them is the caller's decision.
    """
    t = type(value)
    if t is int:
        return value  # type: ignore[return-value]
    if value is None:
        return None
    if t is bool:
        raise ValueError(f"a boolean ({value}) is not a count")
    if t is float:
        if math.isnan(value):  # type: ignore[arg-type]
            return None
        if math.isinf(value) or value != int(value):  # type: ignore[arg-type]
            raise ValueError(f"{value!r} is not a whole count")
        return int(value)  # type: ignore[arg-type]
    if t is not str:
        raise ValueError(f"a {t.__name__} is not a count")
    s = value.strip()  # type: ignore[union-attr]
    if s.isdigit():
        return int(s)
    if s.lower() in _NULL_TEXT:
        return None
    m = _COUNT_RE.match(s)
    if not m:
        raise ValueError(f"cannot read {value!r} as a count")
    sign, num, suffix = m.group(1), m.group(2), (m.group(3) or "").lower()
    num = re.sub(r"[ \u00a0\u202f_']", "", num)
    if suffix and re.fullmatch(r"\d+,\d{1,2}", num):
        num = num.replace(",", ".")  # "1,2K": a decimal comma, as some locales show it
    else:
        num = num.replace(",", "")
    x = float(num) * _MULTIPLIER[suffix]
    if not suffix and x != int(x):
        raise ValueError(f"{value!r} is not a whole count")
    n = int(round(x))
    return -n if sign == "-" else n


def _check_range(ns: int, value: object) -> int:
    if not MIN_TIME_NS <= ns <= MAX_TIME_NS:
        raise ValueError(f"{value!r} is not a plausible time (outside 1990-2100)")
    return ns


def _epoch_to_ns(x: float | int, value: object) -> int:
    """Epoch seconds, or milli/micro/nanoseconds recognised by magnitude."""
    a = abs(x)
    if a != a or a == math.inf:
        raise ValueError(f"{value!r} is not a time")
    if a >= 1e17:
        ns = int(x)
    elif a >= 1e14:
        ns = int(x) * 1_000
    elif a >= 1e11:
        ns = int(round(x * 1_000_000))
    elif type(x) is int:
        ns = x * _NS_PER_S
    else:
        ns = int(round(x * 1_000_000)) * 1_000
    return _check_range(ns, value)


def _datetime_to_ns(dt: datetime, value: object) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # a time without a zone is read as UTC
    delta = dt - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1_000
    return _check_range(ns, value)


def parse_timestamp(value: object) -> int | None:
    """Nanoseconds since the epoch (UTC) from epoch numbers or ISO/date text.

    Accepts epoch seconds (int, float or digits; milliseconds and finer are recognised
    by magnitude), ISO 8601 text with or without a zone (no zone means UTC), "Z"
    suffixes, yt-dlp's "YYYYMMDD" days and RFC 2822 dates.
    """
    t = type(value)
    if t is int:
        return _epoch_to_ns(value, value)  # type: ignore[arg-type]
    if value is None:
        return None
    if t is float:
        if math.isnan(value):  # type: ignore[arg-type]
            return None
        return _epoch_to_ns(value, value)  # type: ignore[arg-type]
    if isinstance(value, datetime):
        return _datetime_to_ns(value, value)
    if isinstance(value, date):
        return _datetime_to_ns(datetime(value.year, value.month, value.day), value)
    if t is bool or t is not str:
        raise ValueError(f"a {t.__name__} is not a time")
    s = value.strip()  # type: ignore[union-attr]
    if s.lower() in _NULL_TEXT:
        return None
    if s.isdigit():
        if len(s) == 8:  # yt-dlp's upload_date: YYYYMMDD (an 8-digit epoch would be 1970)
            try:
                return _datetime_to_ns(datetime.strptime(s, "%Y%m%d"), value)
            except ValueError:
                raise ValueError(f"{value!r} is not a YYYYMMDD date") from None
        return _epoch_to_ns(int(s), value)
    try:
        x = float(s)
    except ValueError:
        x = None
    if x is not None:
        return _epoch_to_ns(x, value)
    try:
        return _datetime_to_ns(datetime.fromisoformat(s), value)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return _datetime_to_ns(parsedate_to_datetime(s), value)
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"cannot read {value!r} as a time (use epoch seconds or ISO 8601)") from None


def parse_duration(value: object) -> float | None:
    """Seconds from a number, "15", "15s", "mm:ss" or "hh:mm:ss"."""
    t = type(value)
    if t is int or t is float:
        x = float(value)  # type: ignore[arg-type]
        if math.isnan(x):
            return None
    elif value is None:
        return None
    elif t is str:
        s = value.strip().lower()  # type: ignore[union-attr]
        if s in _NULL_TEXT:
            return None
        if ":" in s:
            parts = s.split(":")
            if len(parts) > 3 or not all(p.replace(".", "", 1).isdigit() for p in parts):
                raise ValueError(f"cannot read {value!r} as a duration")
            x = 0.0
            for p in parts:
                x = x * 60 + float(p)
        else:
            try:
                x = float(s[:-1] if s.endswith("s") else s)
            except ValueError:
                raise ValueError(f"cannot read {value!r} as a duration") from None
    else:
        raise ValueError(f"a {t.__name__} is not a duration")
    if x < 0 or math.isinf(x):
        raise ValueError(f"{value!r} is not a valid duration")
    return x


def parse_bool(value: object) -> bool | None:
    """A boolean from a bool, 0/1, or text such as "True", "false", "yes"."""
    if value is True or value is False:
        return value  # type: ignore[return-value]
    if value is None:
        return None
    if type(value) is int and value in (0, 1):
        return bool(value)
    if type(value) is float and math.isnan(value):  # type: ignore[arg-type]
        return None
    if isinstance(value, str):
        s = value.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        if s in _NULL_TEXT:
            return None
    raise ValueError(f"cannot read {value!r} as true/false")


def _tag_name(item: object) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):  # {name} (tiktok-scraper), {title} (challenges), {hashtagName} (textExtra)
        for key in ("name", "title", "hashtagName", "hashtag", "tag"):
            v = item.get(key)
            if isinstance(v, str) and v:
                return v
    return None


def parse_hashtags(value: object) -> list[str] | None:
    """Hashtag names without '#', in first-seen order, without repeats.

    Accepts a list of names or of dicts (``{name}``, ``{title}``, ``{hashtagName}``),
    comma-separated text ("fyp, viral"), "#fyp #viral" text, and JSON/Python list text.
    """
    if value is None:
        return None
    if type(value) is list:
        # fast path: tiktok-scraper's [{"name": ...}] or a plain list of names
        names = [x["name"] if type(x) is dict and type(x.get("name")) is str else
                 x if type(x) is str else _tag_name(x) for x in value]
    elif isinstance(value, (list, tuple)):
        names = [_tag_name(x) for x in value]
    elif isinstance(value, str):
        s = value.strip()
        if s.lower() in _NULL_TEXT or s == "[]":
            return [] if s == "[]" else None
        names = None
        if s.startswith("["):
            try:
                parsed = json.loads(s)
                if isinstance(parsed, list):
                    names = [_tag_name(x) for x in parsed]
            except ValueError:
                pass  # e.g. Python repr "['a', 'b']": the tokenizer below reads it
        if names is None:
            names = _TAG_RE.findall(s)
    else:
        raise ValueError(f"a {type(value).__name__} is not a hashtag list")
    out: list[str] = []
    for n in names:
        if n:
            if n[0] == "#" or n[0].isspace() or n[-1].isspace():
                n = n.strip().lstrip("#").strip()
            if n and n not in out:  # tag lists are short: a list beats a set here
                out.append(n)
    return out


def caption_hashtags(caption: object) -> list[str] | None:
    """The ``#tags`` written in a caption, for sources with no hashtag field (a CSV export)."""
    if not isinstance(caption, str):
        return None
    return parse_hashtags(_CAPTION_TAG_RE.findall(caption))


def parse_id(value: object) -> str | None:
    """An identifier as text: ints become their digits, blanks become ``None``."""
    if type(value) is str:
        s = value.strip()  # type: ignore[union-attr]
        return s if s and s.lower() not in _NULL_TEXT else None
    if value is None or value is True or value is False:
        return None
    if type(value) is int:
        return str(value)
    if type(value) is float:
        if math.isnan(value) or value != int(value):  # type: ignore[arg-type]
            return None
        return str(int(value))  # type: ignore[arg-type]
    return None


def parse_text(value: object) -> str | None:
    """Free text (captions, titles): kept as written; numbers become text."""
    if type(value) is str or value is None:
        return value  # type: ignore[return-value]
    if type(value) is float and math.isnan(value):  # type: ignore[arg-type]
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None
