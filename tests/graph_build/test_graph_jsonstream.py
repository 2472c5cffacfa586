"""The streaming JSON reader: every layout, windows cut anywhere, clear syntax errors."""

from __future__ import annotations

import json

import pytest

import mdr_graph.graph_build.jsonstream as js
from mdr_graph.graph_build.jsonstream import BadLine, JsonLayout, JsonSyntaxError, iter_json

RECORDS = [{"id": str(i), "n": i * 1.5, "text": "é😀 \"quoted\" ]}", "tags": [{"name": "x"}], "ok": i % 2 == 0,
            "none": None, "big": 12345678901234567890} for i in range(40)]


@pytest.fixture(params=[3, 17, 1 << 20], ids=["window3", "window17", "window1M"])
def tiny_window(request, monkeypatch):
    """Force the window to a few bytes so records, numbers and UTF-8 sequences straddle its edge."""
    monkeypatch.setattr(js, "_CHUNK_BYTES", request.param)
    return request.param


def _read(path):
    layout = JsonLayout()
    return list(iter_json(path, layout)), layout


def test_top_level_array(tmp_path, tiny_window):
    p = tmp_path / "a.json"
    p.write_text(json.dumps(RECORDS, ensure_ascii=False, indent=1), encoding="utf-8")
    got, layout = _read(p)
    assert got == RECORDS and layout.kind == "array"


def test_wrapped_collector_keeps_the_envelope(tmp_path, tiny_window):
    p = tmp_path / "w.json"
    p.write_text(json.dumps({"headers": {"ua": "x"}, "collector": RECORDS, "zip": "trend"}), encoding="utf-8")
    got, layout = _read(p)
    assert got == RECORDS
    assert layout.kind == "wrapped" and layout.list_key == "collector"
    assert layout.envelope == {"headers": {"ua": "x"}, "zip": "trend"}


def test_single_object_is_one_record(tmp_path, tiny_window):
    p = tmp_path / "v.info.json"
    p.write_text(json.dumps(RECORDS[0], indent=2), encoding="utf-8")
    got, layout = _read(p)
    assert got == [RECORDS[0]] and layout.kind == "single"


def test_json_lines_with_a_bad_line(tmp_path):
    p = tmp_path / "l.jsonl"
    lines = [json.dumps(r) for r in RECORDS[:3]]
    p.write_text(lines[0] + "\n" + lines[1] + "\n{not json\n\n" + lines[2] + "\n", encoding="utf-8")
    got, layout = _read(p)
    assert layout.kind == "jsonl"
    assert got[0] == RECORDS[0] and got[1] == RECORDS[1] and got[3] == RECORDS[2]
    assert isinstance(got[2], BadLine) and got[2].line == 3


def test_byte_order_mark_and_empty_array(tmp_path):
    p = tmp_path / "bom.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(RECORDS[:2]).encode())
    assert _read(p)[0] == RECORDS[:2]
    e = tmp_path / "empty.json"
    e.write_text("[ ]")
    assert _read(e)[0] == []


@pytest.mark.parametrize("text, line", [
    ('[{"a": 1},\n {"a": 2}\n {"a": 3}]', 3),   # missing comma
    ('[{"a": 1},\n {"a": }]', 2),               # bad value
    ('[{"a": 1},\n {"a": 2}', 2),               # truncated
    ("hello", 1),                               # not JSON at all
    ("", 1),                                    # empty file
    ('{"collector": [{"a": 1}]} trailing', 1),  # content after the document
])
def test_syntax_errors_name_the_line(tmp_path, tiny_window, text, line):
    p = tmp_path / "bad.json"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(JsonSyntaxError) as e:
        _read(p)
    assert e.value.line == line


def test_not_utf8_is_a_syntax_error(tmp_path):
    p = tmp_path / "latin1.json"
    p.write_bytes('[{"a": "caf\xe9"}]'.encode("latin-1"))
    with pytest.raises(JsonSyntaxError, match="UTF-8"):
        _read(p)


def test_records_are_read_lazily(tmp_path, monkeypatch):
    """The reader must not decode the whole file before yielding the first record."""
    monkeypatch.setattr(js, "_CHUNK_BYTES", 64)
    p = tmp_path / "lazy.json"
    p.write_text(json.dumps(RECORDS[:1]).rstrip("]") + ", {broken", encoding="utf-8")
    it = iter_json(p)
    assert next(it) == RECORDS[0]
    with pytest.raises(JsonSyntaxError):
        next(it)
