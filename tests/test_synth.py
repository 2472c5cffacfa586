"""The synthetic corpus: real decodable clips, scraper-shaped metadata, a planted signal that is really there."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal as signal_module
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from mdr_graph.cli import main as cli_main
from mdr_graph.config import load_toml, resolve
from mdr_graph.errors import UserError
from mdr_graph.synth import SynthConfig, generate_corpus, load_truth, plan_corpus
from mdr_graph.synth import signal
from mdr_graph.synth.metadata import truth_table

LUMA = np.array([0.299, 0.587, 0.114])
# Record keys of tiktok-scraper's trending dump (../shared/data/tiktok-scraper/trending-2020-12.json).
SCRAPER_KEYS = {"id", "text", "createTime", "authorMeta", "musicMeta", "covers", "webVideoUrl", "videoUrl",
                "videoUrlNoWaterMark", "videoMeta", "diggCount", "shareCount", "playCount", "commentCount",
                "downloaded", "mentions", "hashtags"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """24 two-second clips over 6 songs; 3 without sound and 3 broken files."""
    out = tmp_path_factory.mktemp("synth") / "corpus"
    generate_corpus(out, n_videos=24, n_songs=6, seed=7, seconds=2.0, no_audio_fraction=0.125, corrupt=3,
                    workers=1, show_progress=False)
    return out


@pytest.fixture(scope="module")
def truth(corpus):
    return load_truth(corpus)


@pytest.fixture(scope="module")
def records(corpus):
    return json.loads((corpus / "metadata.json").read_text())["collector"]


def _decode(path: Path) -> tuple[list[np.ndarray], np.ndarray | None]:
    """All RGB frames and the mono samples (None without an audio track)."""
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = (np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)[0]
                 if c.streams.audio else None)
    return frames, audio


def _ok(truth):
    return truth[truth["corrupt"] == ""]


def test_clips_decode_with_picture_and_sound_in_9_16(corpus, truth):
    for row in _ok(truth).itertuples():
        path = corpus / row.video_file
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            assert v.codec_context.name in ("h264", "mpeg4")
            assert (v.codec_context.width, v.codec_context.height) == (144, 256)
            assert v.codec_context.width * 16 == v.codec_context.height * 9
            assert bool(c.streams.audio) == row.has_audio
            if row.has_audio:
                a = c.streams.audio[0]
                assert a.codec_context.name == "aac" and a.codec_context.channels == 1
                assert a.codec_context.sample_rate == 22050
            n = sum(1 for _ in c.decode(video=0))
        assert n == row.n_frames
        assert 1.6 - 1e-9 <= row.duration_s <= 2.4 + 1e-9


def test_broken_and_silent_files_are_what_truth_says(corpus, truth):
    broken = truth[truth["corrupt"] != ""]
    assert sorted(broken["corrupt"]) == ["empty", "garbage", "truncated"]
    for row in broken.itertuples():
        path = corpus / row.video_file
        if row.corrupt == "empty":
            assert path.stat().st_size == 0
        with pytest.raises(av.error.FFmpegError):
            with av.open(str(path)) as c:
                for _ in c.decode(video=0):
                    pass
    assert (~truth["has_audio"]).sum() == 3
    assert truth.loc[~truth["has_audio"], "audio"].eq(0).all()
    assert truth.loc[~truth["has_audio"], "loudness_db"].isna().all()


def test_metadata_has_tiktok_scraper_shape(corpus, records, truth):
    dump = json.loads((corpus / "metadata.json").read_text())
    assert set(dump) >= {"headers", "collector"}
    assert len(records) == len(truth) == 24
    for r in records:
        assert set(r) == SCRAPER_KEYS
        assert len(r["id"]) == 19 and r["id"].isdigit()
        assert int(r["id"]) >> 32 == r["createTime"]           # TikTok ids carry the posting second
        assert {"id", "name", "nickName", "verified", "fans"} <= set(r["authorMeta"])
        assert {"musicId", "musicName", "musicAuthor", "musicOriginal", "musicUses"} <= set(r["musicMeta"])
        assert r["musicMeta"]["musicId"].isdigit() and len(r["musicMeta"]["musicId"]) == 19
        assert isinstance(r["authorMeta"]["fans"], int) and isinstance(r["musicMeta"]["musicUses"], int)
        assert r["videoMeta"] == {"height": 256, "width": 144, "duration": r["videoMeta"]["duration"]}
        assert all(set(h) == {"id", "name", "title", "cover"} for h in r["hashtags"])
        assert all(f"#{h['name']}" in r["text"] for h in r["hashtags"])
        assert min(r[k] for k in ("diggCount", "shareCount", "playCount", "commentCount")) >= 0
    assert [r["id"] for r in records] == truth["video_id"].tolist()
    assert len({r["id"] for r in records}) == 24
    # every listed song is used, and there are exactly --songs of them
    assert len({r["musicMeta"]["musicId"] for r in records}) == 6
    assert {r["musicMeta"]["musicId"]: r["musicMeta"]["musicUses"] for r in records}.keys() == set(truth["song_id"])


def test_record_keys_match_the_real_scrape(shared_data, records):
    real = json.loads((shared_data / "tiktok-scraper" / "trending-2020-12.json").read_text())["collector"][0]
    assert set(records[0]) == set(real)
    for nested in ("authorMeta", "musicMeta", "covers", "videoMeta"):
        assert set(real[nested]) <= set(records[0][nested]), nested
    assert set(records[0]["authorMeta"]) - set(real["authorMeta"]) == {"fans", "heart", "following", "video", "digg"}
    assert set(records[0]["musicMeta"]) - set(real["musicMeta"]) == {"musicUses"}


def test_popularity_raw_follows_from_the_metadata_counts(records, truth):
    create = np.array([r["createTime"] for r in records], dtype=np.int64)
    scrape = create.max()                                   # the documented scrape time
    age = np.maximum(1.0, (scrape - create) / 86_400)
    total = np.array([r["playCount"] + r["shareCount"] + r["commentCount"] for r in records], dtype=np.float64)
    expected = np.log((total + 1) / age)
    np.testing.assert_allclose(truth["popularity_raw"], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(truth["age_days"], age, rtol=0, atol=1e-12)
    assert (age == 1.0).sum() == 1                          # only the newest video hits the 1-day floor
    # the noiseless score plus noise is what the counts encode, up to integer rounding
    assert np.abs(truth["popularity_raw"] - truth["score"] - truth["noise"]).max() < 0.02
    parts = truth[list(signal.COMPONENTS)].sum(axis=1)
    np.testing.assert_allclose(truth["score"], SynthConfig().intercept + parts, atol=1e-9)


def test_same_seed_same_bytes_any_worker_count_other_seed_differs(tmp_path):
    kw = dict(n_videos=8, n_songs=3, seconds=0.5, show_progress=False)
    a = generate_corpus(tmp_path / "a", seed=3, workers=1, **kw)
    b = generate_corpus(tmp_path / "b", seed=3, workers=2, **kw)
    c = generate_corpus(tmp_path / "c", seed=4, workers=1, **kw)
    assert a["written"] == b["written"] == 8
    for name in ("metadata.json", "truth.csv", "config.toml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    files = sorted(p.name for p in (tmp_path / "a" / "videos").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b" / "videos").iterdir())
    for name in files:
        fa, aa = _decode(tmp_path / "a" / "videos" / name)
        fb, ab = _decode(tmp_path / "b" / "videos" / name)
        assert len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb))
        assert np.array_equal(aa, ab)
        assert (tmp_path / "a" / "videos" / name).read_bytes() == (tmp_path / "b" / "videos" / name).read_bytes()
    assert (tmp_path / "a" / "metadata.json").read_bytes() != (tmp_path / "c" / "metadata.json").read_bytes()
    assert not set(files) & {p.name for p in (tmp_path / "c" / "videos").iterdir()}
    assert not np.allclose(load_truth(tmp_path / "a")["score"], load_truth(tmp_path / "c")["score"])


def _square64(frame: np.ndarray) -> np.ndarray:
    """Centre-crop the 9:16 picture to a square and sample it down to 64x64 (as the extractor sees it)."""
    h, w, _ = frame.shape
    top = (h - w) // 2
    sq = frame[top:top + w].astype(np.float64)
    idx = ((np.arange(64) + 0.5) * w / 64).astype(int)
    return sq[idx][:, idx]


def _disc_x(img: np.ndarray) -> float:
    """Column of the disc: pixels whose luma departs from their row's median (the background)."""
    luma = img @ LUMA
    mask = np.abs(luma - np.median(luma, axis=1, keepdims=True)) > 40
    cols = np.nonzero(mask)[1]
    return float(cols.mean())


def test_visual_latents_are_visible_in_two_64px_frames(corpus, truth):
    bright, measured_b, motion, measured_m = [], [], [], []
    for row in _ok(truth).itertuples():
        frames, _ = _decode(corpus / row.video_file)
        n = len(frames)
        picks = [frames[int((k + 0.5) * n / 2)] for k in range(2)]    # 2 frames, uniform by segment (centres)
        small = [_square64(f) for f in picks]
        bright.append(row.brightness)
        measured_b.append(np.mean([(s @ LUMA).mean() for s in small]) / 255)
        motion.append(row.motion)
        measured_m.append(abs(_disc_x(small[1]) - _disc_x(small[0])) / 64)
    assert signal.spearman(bright, measured_b) > 0.95
    assert np.abs(np.array(bright) - np.array(measured_b)).max() < 0.05
    assert signal.spearman(motion, measured_m) > 0.9
    # the disc travels motion * width over the clip; frames half a clip apart see about half of it
    expected = np.array(motion) * 0.5
    assert np.abs(np.array(measured_m) - expected).max() < 0.06


def test_audio_latents_loudness_and_pitch_are_in_the_sound(corpus, truth):
    rows = truth[(truth["corrupt"] == "") & truth["has_audio"]]
    level, pitch = [], []
    for row in rows.itertuples():
        _, audio = _decode(corpus / row.video_file)
        level.append(20 * math.log10(float(np.sqrt(np.mean(audio ** 2)))))
        spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
        freq = np.fft.rfftfreq(len(audio), 1 / 22050)
        band = (freq > 500) & (freq < 3000)
        pitch.append(freq[band][spec[band].argmax()])
    assert signal.spearman(rows["loudness_db"], level) > 0.95
    assert np.abs(np.array(level) - rows["loudness_db"].to_numpy()).max() < 1.5     # dB
    np.testing.assert_allclose(pitch, rows["voice_hz"], rtol=0.02)


def test_videos_of_one_song_share_its_sound(corpus, truth):
    rows = truth[(truth["corrupt"] == "") & truth["has_audio"]]
    spectra = []
    for row in rows.itertuples():
        _, audio = _decode(corpus / row.video_file)
        spec = np.abs(np.fft.rfft(audio[:32768], n=32768))
        freq = np.fft.rfftfreq(32768, 1 / 22050)
        s = spec[(freq > 80) & (freq < 450)]                    # the melody's register, below any voice tone
        spectra.append(s / np.linalg.norm(s))
    sim = np.array(spectra) @ np.array(spectra).T
    song = rows["song_id"].to_numpy()
    same = song[:, None] == song[None, :]
    off = ~np.eye(len(song), dtype=bool)
    assert (same & off).any()
    assert sim[same & off].mean() > sim[~same].mean() + 0.2


def test_song_degrees_are_heavy_tailed_and_every_song_is_used():
    plan = plan_corpus(SynthConfig(n_videos=600, n_songs=150, seed=1))
    deg = plan.songs["song_degree"].to_numpy()
    assert len(deg) == 150 and deg.min() >= 1 and deg.sum() == 600
    assert deg.max() >= 10 * np.median(deg)
    assert (deg == 1).sum() >= 30                               # many songs with a single video
    counts = plan.videos["song_id"].value_counts()
    assert set(counts.index) == set(plan.songs["song_id"])
    assert (counts.sort_index().to_numpy() == plan.songs.set_index("song_id")["song_degree"].sort_index()).all()


def test_components_have_unit_scale_and_the_song_shows_in_its_use_count():
    cfg = SynthConfig(n_videos=4000, n_songs=1000, seed=2)
    plan = plan_corpus(cfg)
    unit = signal.unit_components(plan.videos)
    for c in ("visual", "audio", "hashtag"):
        assert abs(unit[c].mean()) < 0.1 and abs(unit[c].std() - 1) < 0.1, c
    # creator-level latents are unit-scale over creators; over videos a prolific creator (Zipf) weighs more
    a = plan.authors
    assert abs(a["creator_lift"].mean()) < 0.1 and abs(a["creator_lift"].std() - 1) < 0.1
    assert abs(signal.z_followers(a["log10_followers"]).mean()) < 0.1
    songs = plan.songs
    assert abs(songs["song_lift"].std() - 1) < 0.1
    assert signal.spearman(songs["song_lift"], np.log(songs["song_uses"])) > 0.85
    # the corpus degree is independent of the lift: no shortcut through counting videos
    assert abs(signal.spearman(songs["song_lift"], songs["song_degree"])) < 0.1
    rep = signal.oracle_report(truth_table(plan))
    for c in signal.COMPONENTS:
        assert 0.12 < rep[c]["variance_share"] < 0.35, (c, rep[c])
        assert rep[c]["oracle_spearman"] > 0.3
    assert rep["all"]["oracle_spearman"] > 0.9


def test_creators_post_several_videos_and_show_their_lift_in_their_other_likes():
    plan = plan_corpus(SynthConfig(n_videos=4000, seed=3))
    a, v = plan.authors, plan.videos
    assert len(a) == 1000 and a["author_degree"].min() >= 1 and a["author_degree"].sum() == 4000
    assert a["author_degree"].max() >= 10 * np.median(a["author_degree"])       # Zipf: a few prolific creators
    assert (v.groupby("author_index").size().sort_index().to_numpy() == a["author_degree"].to_numpy()).all()
    # all of a creator's videos share its lift; the lift shows in the likes earned outside the corpus
    assert (v.groupby("author_id")["creator_lift"].nunique() == 1).all()
    assert signal.spearman(a["creator_lift"], np.log(a["other_hearts"])) > 0.85
    assert abs(signal.spearman(a["creator_lift"], a["log10_followers"])) < 0.1   # apart from the meta part
    assert abs(signal.spearman(a["creator_lift"], a["author_degree"])) < 0.1     # counting videos is no shortcut
    corpus_likes = v.groupby("author_index")["likes"].sum().reindex(a["author_index"]).to_numpy()
    assert (a["hearts"].to_numpy() == a["other_hearts"].to_numpy() + corpus_likes).all()


def test_hashtags_are_shared_topics_plus_hubs():
    plan = plan_corpus(SynthConfig(n_videos=4000, seed=4))
    v, topics = plan.videos, plan.topics
    share = pd.Series([t for tags in v["hashtags"] for t in tags]).value_counts() / len(v)
    for hub in signal.HUB_TAGS:
        assert 0.08 <= share[hub] <= 0.15, (hub, share[hub])                   # like #fyp, #viral on real data
    assert share.drop(list(signal.HUB_TAGS)).max() < 0.04                     # below build-graph's hub threshold
    assert (v["hashtag_count"] == v["hashtags"].map(len)).all()
    has = v["hashtag_count"] > 0
    assert all(t in tags for t, tags in zip(v.loc[has, "topic_hashtag"], v.loc[has, "hashtags"]))
    assert (v.loc[~has, "topic_hashtag"] == "").all() and v.loc[~has, "topic_lift"].isna().all()
    per_topic = v[has].groupby("topic_hashtag").size()
    assert len(per_topic) > 0.95 * len(topics) and per_topic.median() >= 5   # topics are shared across videos


def test_the_graph_sees_creators_and_hashtags(tmp_path):
    """The synthetic scrape builds with every node type; hubs are dropped, topics kept, lifts visible."""
    from mdr_graph.graph_build.build import build_graph
    from mdr_graph.synth.metadata import scraper_dump

    plan = plan_corpus(SynthConfig(n_videos=1500, seed=6))
    (tmp_path / "metadata.json").write_text(json.dumps(scraper_dump(plan)))
    s = build_graph([tmp_path / "metadata.json"], tmp_path / "g", nodes="song,creator,hashtag")
    assert s["videos"] == 1500 and s["nodes"]["creator"] == len(plan.authors)
    assert {h["hashtag"] for h in s["hashtag_hubs"]} == set(signal.HUB_TAGS)
    used = set(plan.videos["topic_hashtag"]) - {""}
    assert used <= set(pd.read_parquet(tmp_path / "g" / "hashtags.parquet")["hashtag"])  # no topic is a hub
    creators = pd.read_parquet(tmp_path / "g" / "creators.parquet")
    lift = plan.authors.set_index("author_id").loc[creators["creator_id"], "creator_lift"].to_numpy()
    # the creator node feature holds the lift (through the other videos' likes), not the corpus likes
    assert signal.spearman(lift, np.log(creators["hearts_other"].to_numpy(dtype=float))) > 0.85
    assert (creators["hearts_other"].to_numpy() ==
            plan.authors.set_index("author_id").loc[creators["creator_id"], "other_hearts"].to_numpy()).all()


def test_engagement_counts_are_plausible():
    plan = plan_corpus(SynthConfig(n_videos=2000, n_songs=500, seed=5))
    v = plan.videos
    assert (v["plays"] > 0).all() and (v["likes"] <= v["plays"]).all()
    assert 0.03 < (v["likes"] / v["plays"]).median() < 0.2
    assert (v["shares"] < v["plays"]).all() and (v["comments"] < v["plays"]).all()
    span = (v["create_time"].max() - v["create_time"].min()) / 86_400
    assert 29 < span < 32


def test_resume_rewrites_only_what_is_missing_and_refuses_other_dirs(tmp_path):
    out = tmp_path / "c"
    kw = dict(n_videos=4, n_songs=2, seed=0, seconds=0.5, workers=1, show_progress=False)
    first = generate_corpus(out, **kw)
    victim = out / "videos" / sorted(p.name for p in (out / "videos").iterdir())[0]
    before = victim.read_bytes()
    victim.unlink()
    (out / "summary.json").unlink()
    again = generate_corpus(out, **kw)
    assert (again["written"], again["skipped_existing"]) == (1, 3)
    assert victim.read_bytes() == before
    assert again["signal"] == first["signal"]
    with pytest.raises(UserError, match="different synthetic corpus"):
        generate_corpus(out, **{**kw, "seed": 1})
    over = generate_corpus(out, **{**kw, "seed": 1}, force=True)
    assert over["written"] == 4 and over["stale_removed"] == 4
    assert len(list((out / "videos").iterdir())) == 4
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        generate_corpus(foreign, **kw)
    generate_corpus(foreign, **kw, force=True)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_an_interrupted_run_resumes_to_the_same_corpus(tmp_path):
    args = ["--videos", "10", "--songs", "3", "--seconds", "1", "--workers", "1", "--seed", "5"]
    cmd = [sys.executable, "-m", "mdr_graph.cli", "synth", *args]
    env = {**os.environ, "MDR_GRAPH_NO_PROGRESS": "1"}
    out = tmp_path / "interrupted"
    p = subprocess.Popen([*cmd, "--out", str(out)], env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((out / "videos").glob("*.mp4"))) < 3 and p.poll() is None:
        time.sleep(0.05)
    os.killpg(p.pid, signal_module.SIGINT)                      # Ctrl-C in a terminal
    rc = p.wait(timeout=60)
    if rc == 0:
        pytest.skip("the run finished before it could be interrupted")
    assert rc == 130 and b"interrupted" in p.stderr.read()
    p.stderr.close()
    assert not (out / "summary.json").exists() and not (out / "metadata.json").exists()
    done = len(list((out / "videos").glob("*.mp4")))
    assert 3 <= done < 10
    subprocess.run([*cmd, "--out", str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_existing"] == done and summary["written"] == 10 - done
    clean = tmp_path / "clean"
    subprocess.run([*cmd, "--out", str(clean)], env=env, check=True, stdout=subprocess.DEVNULL)
    names = sorted(p.name for p in (clean / "videos").iterdir())
    assert names == sorted(p.name for p in (out / "videos").iterdir())    # no partial files left behind
    for name in ["metadata.json", "truth.csv", *(f"videos/{n}" for n in names)]:
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name


def test_cli_writes_a_corpus_and_reports_bad_input(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli_main(["synth", "--out", str(out), "--videos", "4", "--songs", "2", "--seconds", "0.5",
                   "--workers", "1", "--seed", "9"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "4 videos" in printed and "build-graph" in printed
    saved = load_toml(out / "config.toml")["synth"]
    assert saved["n_videos"] == 4 and saved["seed"] == 9
    # the saved config reproduces the corpus
    cfg = resolve(SynthConfig, argparse.Namespace(config=str(out / "config.toml")), "synth")
    assert cfg == SynthConfig(n_videos=4, n_songs=2, n_creators=1, seconds=0.5, seed=9)
    assert cli_main(["synth", "--out", str(tmp_path / "bad"), "--videos", "3", "--songs", "5"]) == 2
    assert "--songs=5" in capsys.readouterr().err
    assert cli_main(["synth", "--out", str(tmp_path / "bad"), "--width", "100", "--height", "100"]) == 2
    assert "9:16" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_mpeg4_fallback_and_other_sizes(tmp_path):
    s = generate_corpus(tmp_path / "m", n_videos=2, n_songs=1, seconds=0.5, codec="mpeg4", width=72, height=128,
                        sample_rate=16000, workers=1, show_progress=False)
    assert s["codec"] == "mpeg4"
    for f in (tmp_path / "m" / "videos").iterdir():
        with av.open(str(f)) as c:
            v, a = c.streams.video[0].codec_context, c.streams.audio[0].codec_context
            assert (v.name, v.width, v.height, a.name, a.sample_rate) == ("mpeg4", 72, 128, "aac", 16000)


def test_api_rejects_unknown_options(tmp_path):
    with pytest.raises(UserError, match="unknown setting"):
        generate_corpus(tmp_path / "x", n_videos=2, n_songs=1, colour="red")
