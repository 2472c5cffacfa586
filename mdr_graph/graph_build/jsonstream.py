"""Read the records of a JSON file one at a time, whatever its size.

A scrape of three million videos is a 9 GB JSON file; ``json.load`` would hold every
record as Python objects at once (tens of GB). This reader keeps a window of the file
in memory and decodes one record at a time with the standard library's C scanner
(``JSONDecoder.raw_decode``), so it runs at ``json.load`` speed in constant memory.

Layouts understood, all detected from the content rather than the file name:

- a top-level array of records: ``[{...}, {...}]``;
- an object wrapping the array under a known key (``{"collector": [...]}`` from
  tiktok-scraper, ``itemList``/``items`` from TikTok-Api, ``entries`` from a yt-dlp
  playlist); the object's other keys are kept as the *envelope*;
- one object that is itself the record (a yt-dlp ``.info.json``);
- JSON lines: one record per line. A line that does not parse is yielded as a
  :class:`BadLine` so the caller can reject it and go on.

A file that is not JSON at all, or breaks JSON syntax inside an array, raises
:class:`JsonSyntaxError` with the line and column.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

RECORD_LIST_KEYS = ("collector", "itemList", "items", "entries", "aweme_list", "videos")

_WS = re.compile(r"[ \t\n\r]*")
_CHUNK_BYTES = 16 << 20
# A decode error this far before the end of the window is a real syntax error, not a
# record cut by the window's edge (no real metadata value is this long).
_MAX_VALUE_CHARS = 16 << 20
_JSONL_PROBE_BYTES = 16 << 20


class JsonSyntaxError(ValueError):
    """The file is not valid JSON at ``line``:``column``."""

    def __init__(self, msg: str, line: int, column: int):
        super().__init__(f"{msg} at line {line}, column {column}")
        self.line, self.column = line, column


@dataclass
class BadLine:
    """A JSON-lines line that is not valid JSON."""

    line: int
    error: str


@dataclass
class JsonLayout:
    """How the file is laid out; ``envelope`` holds a wrapper object's other keys."""

    kind: str = "unknown"          # array | wrapped | single | jsonl
    list_key: str | None = None
    envelope: dict[str, Any] = field(default_factory=dict)
    line: int | None = None        # JSON lines: the line of the record last yielded


class _Window:
    """A decoded window of the file with a cursor; refills from disk as records are consumed."""

    def __init__(self, path: str | os.PathLike, on_bytes: Callable[[int], None] | None):
        self.f = open(path, "rb")
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        self.scan = json.JSONDecoder().raw_decode
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line_base = 1          # line number of buf[0]
        self.on_bytes = on_bytes
        self.bytes_read = 0         # already reported through on_bytes

    def close(self) -> None:
        self.f.close()

    def fill(self, at_least: int = _CHUNK_BYTES) -> bool:
        """Drop the consumed prefix and append at least ``at_least`` more bytes; False at EOF."""
        if self.eof:
            return False
        if self.pos:
            self.line_base += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos:]
            self.pos = 0
        data = self.f.read(max(at_least, _CHUNK_BYTES))
        self.bytes_read += len(data)
        if self.on_bytes:
            self.on_bytes(len(data))
        try:
            self.buf += self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as e:
            raise JsonSyntaxError(f"not UTF-8 text ({e.reason})", *self.where(len(self.buf))) from None
        if not data:
            self.eof = True
        return bool(data)

    def where(self, pos: int) -> tuple[int, int]:
        line = self.line_base + self.buf.count("\n", 0, pos)
        return line, pos - (self.buf.rfind("\n", 0, pos) + 1) + 1

    def error(self, msg: str, pos: int | None = None) -> JsonSyntaxError:
        return JsonSyntaxError(msg, *self.where(self.pos if pos is None else pos))

    def peek(self) -> str:
        """The next non-whitespace character ('' at end of file), without consuming it."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def value(self) -> Any:
        """Decode one JSON value at the cursor (after ``peek``)."""
        while True:
            try:
                obj, end = self.scan(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self.eof or len(self.buf) - e.pos > _MAX_VALUE_CHARS:
                    raise self.error(e.msg, e.pos) from None
                self.fill(at_least=len(self.buf) - self.pos)  # grows geometrically: a long value costs O(n)
                continue
            if end == len(self.buf) and not self.eof and self.buf[end - 1] not in "]}\"":
                if self.fill():       # a number cut by the window's edge: read on and decode again
                    continue
            self.pos = end
            return obj

    def expect(self, ch: str) -> None:
        got = self.peek()
        if got != ch:
            raise self.error(f"expected {ch!r} but found {got!r}" if got else f"expected {ch!r} but the file ended")
        self.pos += 1

    def array(self) -> Iterator[Any]:
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            if self.peek() == "":
                raise self.error("the file ended inside an array")
            yield self.value()
            c = self.peek()
            if c == ",":
                self.pos += 1
            elif c == "]":
                self.pos += 1
                return
            else:
                raise self.error(f"expected ',' or ']' but found {c!r}" if c else "the file ended inside an array")


def _looks_like_jsonl(path: str | os.PathLike) -> bool:
    """True when the first line is a complete JSON object and more content follows it."""
    with open(path, "rb") as f:
        first = f.readline(_JSONL_PROBE_BYTES)
        if not first.endswith(b"\n"):
            return False
        rest = f.read(4096)
    if not rest.strip():
        return False
    try:
        return isinstance(json.loads(first.decode("utf-8-sig")), dict)
    except ValueError:
        return False


def _iter_jsonl(path: str | os.PathLike, on_bytes: Callable[[int], None] | None,
                layout: JsonLayout, reported: int = 0) -> Iterator[Any]:
    """``reported``: bytes the format probe already passed to ``on_bytes`` (not counted twice)."""
    loads = json.loads
    with open(path, "rb") as f:
        pending = -reported
        for lineno, raw in enumerate(f, 1):
            pending += len(raw)
            if on_bytes and pending > 1 << 20:
                on_bytes(pending)
                pending = 0
            if not raw.strip():
                continue
            layout.line = lineno
            try:
                yield loads(raw.decode("utf-8-sig" if lineno == 1 else "utf-8"))
            except UnicodeDecodeError as e:
                yield BadLine(lineno, f"not UTF-8 text ({e.reason})")
            except ValueError as e:
                yield BadLine(lineno, str(e))
        if on_bytes and pending:
            on_bytes(pending)


def iter_json(path: str | os.PathLike, layout: JsonLayout | None = None,
              on_bytes: Callable[[int], None] | None = None) -> Iterator[Any]:
    """Yield the records of a JSON file in order; fill ``layout`` as the file is read.

    Records are whatever values the file holds (normally dicts); JSON-lines lines that
    do not parse come out as :class:`BadLine`. Raises :class:`JsonSyntaxError` when the
    file is not JSON or its structure is broken.
    """
    layout = layout if layout is not None else JsonLayout()
    w = _Window(path, on_bytes)
    try:
        first = w.peek()
        if first == "[":
            layout.kind = "array"
            yield from w.array()
        elif first == "{":
            if _looks_like_jsonl(path):
                layout.kind = "jsonl"
                w.close()
                yield from _iter_jsonl(path, on_bytes, layout, reported=w.bytes_read)
                return
            yield from _object(w, layout)
        elif first == "":
            raise JsonSyntaxError("the file is empty", 1, 1)
        else:
            raise w.error(f"a JSON file starts with '[' or '{{', not {first!r}")
        if w.peek() != "":
            raise w.error("unexpected content after the end of the JSON document")
    finally:
        w.close()


def _object(w: _Window, layout: JsonLayout) -> Iterator[Any]:
    """A top-level object: stream a known record-list key, else the object is one record."""
    w.expect("{")
    obj: dict[str, Any] = {}
    if w.peek() == "}":
        w.pos += 1
    else:
        while True:
            if w.peek() != '"':
                raise w.error("expected a key string in the top-level object")
            key = w.value()
            w.expect(":")
            if key in RECORD_LIST_KEYS and layout.list_key is None and w.peek() == "[":
                layout.kind, layout.list_key = "wrapped", key
                layout.envelope = obj  # keys read so far; later keys are added as they come
                yield from w.array()
            else:
                if w.peek() == "":
                    raise w.error("the file ended inside the top-level object")
                obj[key] = w.value()
            c = w.peek()
            if c == ",":
                w.pos += 1
            elif c == "}":
                w.pos += 1
                break
            else:
                raise w.error(f"expected ',' or '}}' but found {c!r}" if c else "the file ended inside an object")
    if layout.list_key is None:
        layout.kind = "single"
        yield obj
