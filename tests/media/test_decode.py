"""Frame sampling, square fitting and audio decoding on real mp4 files whose frames encode their index."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest

from mdr_graph.media.decode import (DecodeError, _KeyframeIndex, choose_strategy, decode_video, segment_times)
from mdr_graph.testing.clips import decode_index, write_clip


def expected_indices(n_frames_total: int, fps: float, frames: int, segments: int | None = None,
                     position: str = "centre") -> list[int]:
    """Frame on screen at each target time, computed independently from the definition."""
    segments = segments or frames
    duration = n_frames_total / fps
    off = 0.5 if position == "centre" else 0.0
    return [min(n_frames_total - 1, math.floor((k + off) * duration / segments * fps + 1e-9)) for k in range(frames)]


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """6 s at 10 fps (60 frames), keyframe every 20 frames, B-frames on (x264 default)."""
    return write_clip(tmp_path_factory.mktemp("dec") / "coded.mp4", seconds=6.0, fps=10, width=90, height=160,
                      gop=20, tone_hz=440.0)


@pytest.mark.parametrize("strategy", ["seek", "scan", "auto"])
@pytest.mark.parametrize("frames", [1, 2, 5, 8])
def test_sampled_frames_are_the_segment_centres(coded, strategy, frames):
    d = decode_video(coded, frames=frames, size=32, strategy=strategy)
    assert d.frames.shape == (frames, 3, 32, 32) and d.frames.dtype == np.uint8
    got = [decode_index(img) for img in d.frames]
    want = expected_indices(60, 10, frames)
    assert got == want
    np.testing.assert_allclose(d.frame_times, np.array(want) / 10, atol=1e-6)
    assert d.n_distinct == frames
    assert d.duration_s == pytest.approx(6.0)


def test_seek_and_scan_return_identical_pixels(coded):
    a = decode_video(coded, frames=7, size=48, strategy="seek")
    b = decode_video(coded, frames=7, size=48, strategy="scan")
    assert a.strategy == "seek" and b.strategy == "scan"
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.frame_times, b.frame_times)


def test_segment_start_and_first_of_fifteen(coded):
    d = decode_video(coded, frames=2, size=16, position="start")
    assert [decode_index(x) for x in d.frames] == [0, 30]
    # the reference design: 15 segments, keep the first 2
    d = decode_video(coded, frames=2, size=16, segments=15)
    assert [decode_index(x) for x in d.frames] == expected_indices(60, 10, 2, segments=15) == [2, 6]


def test_segment_times_definition():
    np.testing.assert_allclose(segment_times(10.0, 2), [2.5, 7.5])
    np.testing.assert_allclose(segment_times(10.0, 2, position="start"), [0.0, 5.0])
    np.testing.assert_allclose(segment_times(15.0, 3, segments=15), [0.5, 1.5, 2.5])
    with pytest.raises(ValueError):
        segment_times(10.0, 3, segments=2)


def test_more_frames_than_the_video_has_repeats_frames(tmp_path):
    p = write_clip(tmp_path / "short.mp4", seconds=0.3, fps=10, tone_hz=None)  # 3 frames
    d = decode_video(p, frames=6, size=16)
    assert [decode_index(x) for x in d.frames] == [0, 0, 1, 1, 2, 2]
    assert d.n_distinct == 3


def test_fit_policies_on_portrait_video(tmp_path):
    p = write_clip(tmp_path / "portrait.mp4", seconds=1.0, fps=10, width=90, height=160, tone_hz=None)
    crop = decode_video(p, frames=1, size=64, fit="crop").frames[0]
    box = decode_video(p, frames=1, size=64, fit="letterbox").frames[0]
    stretch = decode_video(p, frames=1, size=64, fit="stretch").frames[0]
    for img in (crop, box, stretch):
        assert img.shape == (3, 64, 64) and decode_index(img) == 5
    # letterbox: 9:16 scaled to 36x64 in the middle, black bars left and right
    assert box[:, :, :10].max() == 0 and box[:, :, -10:].max() == 0
    assert box[:, :, 20:44].min() > 0
    # crop and stretch fill the square (a flat frame gives the same colour everywhere)
    assert crop.min() > 0 and stretch.min() > 0


def test_size_224_and_landscape(tmp_path):
    p = write_clip(tmp_path / "land.mp4", seconds=1.0, fps=10, width=160, height=90, tone_hz=None)
    d = decode_video(p, frames=2, size=224, fit="letterbox")
    assert d.frames.shape == (2, 3, 224, 224)
    assert d.frames[0][:, :40].max() == 0 and d.frames[0][:, -40:].max() == 0  # bars above and below


def test_audio_resampled_to_16k_keeps_its_pitch(tmp_path):
    p = write_clip(tmp_path / "tone.mp4", seconds=2.0, fps=10, tone_hz=1000.0, audio_rate=44100, audio_channels=2)
    d = decode_video(p, frames=1, size=16, sample_rate=16000, audio_seconds=1.5)
    assert d.has_audio
    assert len(d.audio) == 24000 and d.audio.dtype == np.float32
    seg = d.audio[4000:20000]
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    peak_hz = np.argmax(spectrum) * 16000 / len(seg)
    assert abs(peak_hz - 1000.0) <= 2.0
    # stereo mixed to mono: the 0.5-amplitude tone in both channels stays about 0.5
    assert 0.4 < np.abs(seg).max() < 0.6


def test_audio_stops_early_and_silent_video_has_no_audio(tmp_path):
    p = write_clip(tmp_path / "tone8k.mp4", seconds=3.0, fps=10, tone_hz=440.0, audio_rate=8000, audio_channels=1)
    d = decode_video(p, frames=1, size=16, sample_rate=16000, audio_seconds=1.0)
    assert len(d.audio) == 16000  # only what was asked for
    q = write_clip(tmp_path / "mute.mp4", seconds=1.0, fps=10, tone_hz=None)
    d = decode_video(q, frames=2, size=16)
    assert d.has_audio is False and len(d.audio) == 0
    assert d.frames.shape == (2, 3, 16, 16)


def test_auto_prefers_seek_on_long_sparse_keyframes_and_scan_on_short_clips(tmp_path):
    long_gop = write_clip(tmp_path / "long.mp4", seconds=40.0, fps=10, width=32, height=32, gop=100,
                          tone_hz=None)
    short = write_clip(tmp_path / "short.mp4", seconds=2.0, fps=10, width=32, height=32, gop=250, tone_hz=None)
    for path, frames, want in [(long_gop, 2, "seek"), (short, 2, "scan"), (short, 8, "scan")]:
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            dur = float(vs.duration * vs.time_base)
            assert choose_strategy(_KeyframeIndex(vs), segment_times(dur, frames), dur) == want
    d = decode_video(long_gop, frames=2, size=16)
    assert d.strategy == "seek" and [decode_index(x) for x in d.frames] == [100, 300]


@pytest.mark.parametrize("kind, reason", [("empty", "empty file"), ("garbage", "cannot open container"),
                                          ("cut_faststart", "truncated"), ("cut_plain", "cannot open container"),
                                          ("missing", "file not found")])
def test_undecodable_files_raise_a_reason(tmp_path, coded, kind, reason):
    p = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "garbage":
        p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "cut_faststart":
        full = write_clip(tmp_path / "fs.mp4", seconds=3.0, fps=10, gop=10, faststart=True)
        p.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.8)])
    elif kind == "cut_plain":  # index at the end: a cut file has none
        p.write_bytes(coded.read_bytes()[: int(coded.stat().st_size * 0.8)])
    for strategy in ("seek", "scan"):
        with pytest.raises(DecodeError, match=reason):
            decode_video(p, frames=2, strategy=strategy)


def test_audio_only_file_is_an_error(tmp_path):
    p = tmp_path / "audio.m4a"
    with av.open(str(p), "w", format="mp4") as out:
        s = out.add_stream("aac", rate=16000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for pkt in list(s.encode(frame)) + list(s.encode()):
            out.mux(pkt)
    with pytest.raises(DecodeError, match="no video stream"):
        decode_video(p)


def test_display_rotation_is_applied(tmp_path):
    # stored landscape 160x90 with a white top-left corner, shown rotated 90 degrees counter-clockwise
    p = write_clip(tmp_path / "rot.mp4", seconds=1.0, fps=10, width=160, height=90, rotation=90,
                   corner_marker=True, tone_hz=None)
    img = decode_video(p, frames=1, size=64, fit="letterbox").frames[0]
    # displayed portrait 90x160 -> 36x64 content between bars; the stored top-left is now bottom-left
    assert img[:, :, :10].max() == 0 and img[:, :, -10:].max() == 0
    assert img[:, -8:, 16:22].min() > 200   # bottom-left of the picture: white
    assert img[:, :8, 16:22].max() < 200    # top-left: not
    assert decode_index(img) == 5


@pytest.mark.parametrize("strategy", ["seek", "scan"])
def test_skipping_non_reference_frames_changes_nothing_but_the_work(coded, strategy):
    fast = decode_video(coded, frames=3, size=32, strategy=strategy)
    full = decode_video(coded, frames=3, size=32, strategy=strategy, skip_nonref=False)
    assert np.array_equal(fast.frames, full.frames) and np.array_equal(fast.frame_times, full.frame_times)
    assert fast.n_decoded < full.n_decoded  # x264's B-frames are mostly non-reference


def test_frames_decoded_match_the_strategy(coded):
    # 60 frames, keyframes every 20: the target at 3 s (frame 30) needs frames 20..30 when seeking
    # and 0..30 when scanning (a threaded decoder may run a few frames past it either way)
    seek = decode_video(coded, frames=1, size=16, strategy="seek", skip_nonref=False)
    scan = decode_video(coded, frames=1, size=16, strategy="scan", skip_nonref=False)
    assert scan.n_decoded >= 31 and seek.n_decoded < scan.n_decoded
