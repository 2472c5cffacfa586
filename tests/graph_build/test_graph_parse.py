"""Value parsers: counts as TikTok shows them, times, durations, booleans, hashtags, ids."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mdr_graph.graph_build.parse import (parse_bool, parse_count, parse_duration, parse_hashtags, parse_id,
                                         parse_text, parse_timestamp)

NS = 1_000_000_000


@pytest.mark.parametrize("text, expected", [
    ("541.2K", 541_200), ("1.4M", 1_400_000), ("30.58M", 30_580_000), ("1,234", 1_234),
    ("44 videos", 44), ("1.2B", 1_200_000_000), ("12k", 12_000), ("1,2K", 1_200), ("1,234,567", 1_234_567),
    ("  987 ", 987), ("3.0", 3), ("1.4M plays", 1_400_000), ("0", 0), ("-5", -5), (17, 17), (17.0, 17),
    ("2.5 mil", 2_500), ("1 234", 1_234),
])
def test_counts_as_tiktok_shows_them(text, expected):
    assert parse_count(text) == expected


@pytest.mark.parametrize("text", [None, "", "  ", "nan", "N/A", "null", float("nan")])
def test_absent_counts_are_none(text):
    assert parse_count(text) is None


@pytest.mark.parametrize("bad", ["lots", "1.5", "K", "1.2.3", True, [3], 2.5])
def test_unreadable_counts_raise(bad):
    with pytest.raises(ValueError):
        parse_count(bad)


def test_timestamps_epoch_and_iso_with_or_without_zone():
    t = 1_608_214_517
    assert parse_timestamp(t) == t * NS
    assert parse_timestamp(str(t)) == t * NS
    assert parse_timestamp(float(t) + 0.5) == t * NS + NS // 2
    assert parse_timestamp(t * 1000) == t * NS  # milliseconds, recognised by magnitude
    iso = datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert parse_timestamp(iso) == t * NS                  # no zone: UTC
    assert parse_timestamp(iso + "Z") == t * NS
    assert parse_timestamp(iso + "+00:00") == t * NS
    assert parse_timestamp(iso + "+02:00") == (t - 7200) * NS
    assert parse_timestamp(iso.replace("T", " ")) == t * NS
    assert parse_timestamp("20201217") == int(datetime(2020, 12, 17, tzinfo=timezone.utc).timestamp()) * NS
    assert parse_timestamp("Thu, 17 Dec 2020 14:15:17 GMT") == t * NS
    assert parse_timestamp(None) is None and parse_timestamp("") is None


@pytest.mark.parametrize("bad", ["yesterday", "2020-13-45", 0, "0", "99999999", True, "inf"])
def test_bad_timestamps_raise(bad):
    with pytest.raises(ValueError):
        parse_timestamp(bad)


@pytest.mark.parametrize("value, expected", [
    (15, 15.0), ("15", 15.0), ("15.5", 15.5), ("0:15", 15.0), ("1:02", 62.0), ("1:00:05", 3605.0), ("15s", 15.0),
    (None, None), ("", None),
])
def test_durations(value, expected):
    assert parse_duration(value) == expected


@pytest.mark.parametrize("bad", ["abc", "-3", -1, "1:2:3:4", "a:b"])
def test_bad_durations_raise(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("True", True), ("false", False), ("FALSE", False), ("yes", True), ("0", False),
    (1, True), (0, False), (None, None), ("", None),
])
def test_booleans_as_text(value, expected):
    assert parse_bool(value) is expected


def test_bad_boolean_raises():
    with pytest.raises(ValueError):
        parse_bool("maybe")


@pytest.mark.parametrize("value, expected", [
    (["fyp", "#dance"], ["fyp", "dance"]),
    ([{"name": "fyp"}, {"title": "cat"}, {"hashtagName": "dog"}], ["fyp", "cat", "dog"]),
    ("fyp, viral,funny", ["fyp", "viral", "funny"]),
    ("#fyp #viral", ["fyp", "viral"]),
    ("#fyp#viral", ["fyp", "viral"]),
    ('["a", "b"]', ["a", "b"]),
    ("['a', 'b']", ["a", "b"]),
    (["x", "x", "#x"], ["x"]),
    ("[]", []), ([], []), (None, None), ("", None),
    ("#แหวนหางช้าง, #été", ["แหวนหางช้าง", "été"]),
])
def test_hashtags_list_or_text(value, expected):
    assert parse_hashtags(value) == expected


def test_ids_and_text():
    assert parse_id(6907228749016714497) == "6907228749016714497"
    assert parse_id(" 42 ") == "42"
    assert parse_id("") is None and parse_id(None) is None and parse_id("nan") is None
    assert parse_id(12.0) == "12"
    assert parse_text("") == "" and parse_text(None) is None and parse_text(3) == "3"
