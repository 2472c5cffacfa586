"""The one reader of GRAPHDIR/videos.parquet: every stage fails the same way on a bad table."""

from __future__ import annotations

import pandas as pd
import pytest

from mdr_graph.errors import UserError
from mdr_graph.graph_build.tables import read_videos


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


@pytest.mark.parametrize("command", [["train", "--modalities", "meta", "--out", "{tmp}/run"],
                                     ["extract", "--out", "{tmp}/feats"],
                                     ["compare", "--out", "{tmp}/cmp", "--models", "song-mean"]])
def test_every_stage_reports_a_missing_table_alike(tmp_path, capsys, command):
    from mdr_graph.cli import main

    argv = [a.replace("{tmp}", str(tmp_path)) for a in command]
    assert main([argv[0], "--graph", str(tmp_path / "g"), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "videos.parquet not found: pass --graph the directory" in err[0], err
