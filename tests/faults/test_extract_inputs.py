"""extract faults: another graph's store (§5), a media file swapped for a symlink after the build (§6)."""

from __future__ import annotations

import json
import os


def _graph_with_media(tmp_path, scrape, record, cli, name="g", n=3):
    media = tmp_path / f"{name}-media"
    media.mkdir()
    recs = [record(i) for i in range(n)]
    for r in recs:
        (media / f"{r['id']}.mp4").write_bytes(b"not really a video")
    assert cli("build-graph", scrape(recs, name=f"{name}.json"), "--media-root", media,
               "--out", tmp_path / name)[0] == 0
    return tmp_path / name, media, recs


def test_extract_refuses_a_store_made_for_another_graph(tmp_path, scrape, record, cli, one_line_error):
    g1, _, _ = _graph_with_media(tmp_path, scrape, record, cli, "g1")
    g2, _, _ = _graph_with_media(tmp_path, scrape, record, cli, "g2")
    feats = tmp_path / "f"
    assert cli("extract", "--graph", g1, "--out", feats)[0] == 0
    index = (feats / "index.parquet").read_bytes()
    rc, err = cli("extract", "--graph", g2, "--out", feats)
    line = one_line_error(err)
    assert rc == 2 and str(g1.resolve()) in line and str(g2.resolve()) in line
    assert (feats / "index.parquet").read_bytes() == index


def test_extract_rechecks_containment_against_the_graphs_media_root(tmp_path, scrape, record, cli):
    g, media, recs = _graph_with_media(tmp_path, scrape, record, cli)
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(b"a file outside the media root")
    victim = media / f"{recs[0]['id']}.mp4"
    victim.unlink()
    os.symlink(outside, victim)                 # swapped after the build
    assert cli("extract", "--graph", g, "--out", tmp_path / "f")[0] == 0
    errors = {e["video_id"]: e for e in map(json.loads, (tmp_path / "f" / "errors.jsonl").read_text().splitlines())}
    err = errors[recs[0]["id"]]
    assert "outside the media root the graph was built with" in err["error"] and str(media.resolve()) in err["error"]
    assert err["video_path"] is None                # never opened
