"""The one reader of GRAPHDIR/videos.parquet: every stage fails the same way on a bad table."""

from __future__ import annotations

import pandas as pd
import pytest

from mdr_graph.errors import UserError
from mdr_graph.graph_build.tables import read_songs, read_videos


def _table(root, **cols):
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(cols).to_parquet(root / "videos.parquet", index=False)
    return root


def test_reads_all_or_the_asked_columns(tmp_path):
    g = _table(tmp_path / "g", video_id=["a", "b"], video_path=["x", None], duration_s=[1.0, 2.0])
    assert list(read_videos(g).columns) == ["video_id", "video_path", "duration_s"]
    assert list(read_videos(g, ["video_path"]).columns) == ["video_path"]
    assert list(read_videos(g, ["video_id", "video_path"], optional=["duration_s", "absent"]).columns) == [
        "video_id", "video_path", "duration_s"]


def test_missing_unreadable_or_incomplete_tables_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="videos.parquet not found.*build-graph"):
        read_videos(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "videos.parquet").write_text("not parquet")
    with pytest.raises(UserError, match="not a readable parquet file.*build-graph") as e:
        read_videos(tmp_path / "bad")
    assert "\n" not in str(e.value)
    g = _table(tmp_path / "old", video_id=["a"])
    with pytest.raises(UserError, match="lacks column.*video_path.*rebuild"):
        read_videos(g, ["video_path"])
    g = _table(tmp_path / "noid", video_path=["a"])
    with pytest.raises(UserError, match="lacks column.*video_id"):
        read_videos(g)


def test_the_songs_table_is_read_the_same_way(tmp_path):
    """``read_songs``: the one reader of songs.parquet (stats, predict, compare's report data)."""
    root = tmp_path / "g"
    assert read_songs(root, missing_ok=True) is None
    with pytest.raises(UserError, match="songs.parquet not found.*build-graph"):
        read_songs(root)
    root.mkdir()
    pd.DataFrame({"song_id": ["s1", "s2"], "degree": [3, 1], "song_title": ["a", "b"]}).to_parquet(
        root / "songs.parquet", index=False)
    assert list(read_songs(root, ["song_id", "degree"]).columns) == ["song_id", "degree"]
    assert len(read_songs(root)) == 2
    with pytest.raises(UserError, match="songs.parquet lacks column.*song_uses.*rebuild"):
        read_songs(root, ["song_uses"])
    (root / "songs.parquet").write_text("not parquet")
    with pytest.raises(UserError, match="not a readable parquet file"):
        read_songs(root, missing_ok=True)


@pytest.mark.parametrize("command", [["train", "--modalities", "meta", "--out", "{tmp}/run"],
                                     ["extract", "--out", "{tmp}/feats"],
                                     ["compare", "--out", "{tmp}/cmp", "--models", "song-mean"]])
def test_every_stage_reports_a_missing_table_alike(tmp_path, capsys, command):
    from mdr_graph.cli import main

    argv = [a.replace("{tmp}", str(tmp_path)) for a in command]
    assert main([argv[0], "--graph", str(tmp_path / "g"), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "videos.parquet not found: pass --graph the directory" in err[0], err
