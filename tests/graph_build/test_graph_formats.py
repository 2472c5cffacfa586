"""Readers: each format's records become raw canonical dicts, and auto-detection says what it chose."""

from __future__ import annotations

import json

import pytest

from mdr_graph.errors import UserError
from mdr_graph.graph_build.formats import NotAVideo, RAW_FIELDS, expand_inputs, parse_column_map, read_records


def _items(src):
    return [item for _, _, item in src]


def test_tiktok_scraper_wrapped_and_list(write_json, scraper_record):
    recs = [scraper_record("1", "9", **{"authorMeta.fans": 1200, "musicMeta.musicUses": "44.1K"}),
            scraper_record("2", "9")]
    for obj in ({"headers": {}, "collector": recs, "zip": "x"}, recs):
        src = read_records(write_json(obj))
        assert src.format == "tiktok-scraper" and "musicMeta" in src.detected
        got = _items(src)
        assert set(got[0]) == set(RAW_FIELDS)
        assert got[0]["video_id"] == "1" and got[0]["song_id"] == "9" and got[0]["plays"] == 5000
        assert got[0]["author_followers"] == 1200 and got[0]["song_uses"] == "44.1K"
        assert got[1]["author_followers"] is None and got[0]["duration_s"] == 15


def test_tiktok_api_list_jsonl_and_wrappers(write_json, api_record):
    r = api_record("5", "6")
    for obj, kw in (([r, api_record("7")], {}), ([r, api_record("7")], {"lines": True}),
                    ({"itemList": [r]}, {}), ({"itemInfo": {"itemStruct": r}}, {}), ({"itemStruct": r}, {})):
        src = read_records(write_json(obj, name="api.jsonl" if kw else "api.json", **kw))
        assert src.format == "tiktok-api", obj
        first = _items(src)[0]
        assert first["video_id"] == "5" and first["song_id"] == "6" and first["plays"] == 257200
        assert first["author_followers"] == 7338 and first["duration_s"] == 26 and first["song_original"] is True
        assert [t["title"] for t in first["hashtags"]] == ["cat", "dog"]


def test_tiktok_api_statsv2_strings_and_missing_challenges(write_json, api_record, DELETE):
    r = api_record("5", stats=DELETE, statsV2={"playCount": "257.2K", "shareCount": "21", "commentCount": "93",
                                               "diggCount": "11.4K"}, challenges=DELETE, textExtra=DELETE)
    first = _items(read_records(write_json([r])))[0]
    assert first["plays"] == "257.2K" and first["hashtags"] == []


def test_ytdlp_single_file_directory_and_playlist(tmp_path, write_json, ytdlp_record):
    write_json(ytdlp_record("111"), name="dl/a/111.info.json")
    write_json(ytdlp_record("222", track=None, artist=None), name="dl/b/222.info.json")
    (tmp_path / "dl" / "111.mp4").write_bytes(b"")  # not a metadata file: ignored
    files = expand_inputs([tmp_path / "dl"])
    assert [f.name for f in files] == ["111.info.json", "222.info.json"]
    first = _items(read_records(files[0]))
    assert len(first) == 1
    a = first[0]
    # no music id: the reader passes track and artist on; the ingest derives the song id
    assert a["song_id"] is None and (a["song_title"], a["song_author"]) == ("Big Fun", "Evan Todd")
    assert a["scrape_time"] == ytdlp_record()["epoch"] and a["shares"] == 5 and a["video_path"] == "111.mp4"
    assert a["caption"] == "Slap and Run! #fun"
    assert _items(read_records(files[1]))[0]["song_id"] is None  # no track: a video without a song
    playlist = write_json({"_type": "playlist", "id": "pl", "entries": [ytdlp_record("1"), ytdlp_record("2")]})
    assert [x["video_id"] for x in _items(read_records(playlist))] == ["1", "2"]
    meta = write_json({"_type": "playlist", "id": "pl", "title": "channel"}, name="pl.info.json")
    assert isinstance(_items(read_records(meta))[0], NotAVideo)


def test_ytdlp_artists_list(write_json, ytdlp_record, DELETE):
    r = ytdlp_record("1", artist=DELETE, artists=["A", "B"])
    assert _items(read_records(write_json(r)))[0]["song_author"] == "A, B"


def test_csv_with_column_mapping(tmp_path):
    p = tmp_path / "export.csv"
    p.write_text("id,music,views,shares,comments,posted,tags,len\n"
                 '1,9,"1,234",5,6,2020-12-01T10:00:00,"fyp, viral",0:15\n'
                 "2,9,541.2K,1,2,1606816800,,12\n", encoding="utf-8")
    cols = parse_column_map("video_id=id,song_id=music,plays=views,create_time=posted,hashtags=tags,duration_s=len")
    src = read_records(p, columns=cols)
    assert src.format == "csv"
    rows = list(src)
    assert [pos for pos, _, _ in rows] == [1, 2] and [line for _, line, _ in rows] == [2, 3]
    a, b = rows[0][2], rows[1][2]
    assert a["video_id"] == "1" and a["plays"] == "1,234" and a["hashtags"] == "fyp, viral"
    assert a["duration_s"] == "0:15"
    assert b["hashtags"] is None and b["likes"] is None  # blank cells and unmapped columns are null


def test_csv_semicolon_and_tsv(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("video_id;song_id;create_time;plays;shares;comments\n1;2;1606816800;3;4;5\n")
    assert list(read_records(p))[0][2]["plays"] == "3"
    t = tmp_path / "x.tsv"
    t.write_text("video_id\tsong_id\tcreate_time\tplays\tshares\tcomments\n1\t2\t1606816800\t3\t4\t5\n")
    assert list(read_records(t))[0][2]["song_id"] == "2"


def test_csv_errors_name_the_file_and_columns(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("id,music\n1,2\n")
    with pytest.raises(UserError, match=r"x.csv: no column for video_id.*--columns.*the columns are: id, music"):
        read_records(p)
    with pytest.raises(UserError, match="maps plays to 'views', which is not a column"):
        read_records(p, columns={"video_id": "id", "song_id": "music", "plays": "views"})
    with pytest.raises(UserError, match="unknown canonical name"):
        parse_column_map("views=plays")
    with pytest.raises(UserError, match="canonical=source"):
        parse_column_map("video_id")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UserError, match="empty"):
        read_records(tmp_path / "empty.csv")


def test_detection_failure_and_wrong_format(write_json):
    p = write_json([{"foo": 1, "bar": 2}])
    with pytest.raises(UserError, match=r"cannot tell the scrape format.*--format"):
        read_records(p)
    with pytest.raises(UserError, match="--format csv, but the file is JSON"):
        read_records(p, fmt="csv")
    assert read_records(p, fmt="tiktok-api").format == "tiktok-api"  # an explicit format is obeyed


def test_invalid_json_names_the_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"collector": [{"id": 1},\n {"id": 2,,}]}')
    with pytest.raises(UserError, match=r"broken.json: not valid JSON.*line 2"):
        list(read_records(p))


def test_non_records_are_marked(write_json, scraper_record):
    src = read_records(write_json({"collector": [scraper_record(), 3, None, "x"]}))
    kinds = [type(i).__name__ for i in _items(src)]
    assert kinds == ["dict", "NotARecord", "NotARecord", "NotARecord"]


def test_expand_inputs_errors(tmp_path):
    with pytest.raises(UserError, match="input not found"):
        expand_inputs([tmp_path / "nope.json"])
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match="no metadata files"):
        expand_inputs([tmp_path / "d"])
    f = tmp_path / "a.json"
    f.write_text(json.dumps([]))
    assert expand_inputs([f, tmp_path / "." / "a.json"]) == [f]  # the same file twice is read once
