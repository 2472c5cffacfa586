"""Real TikTok encodes (needs ../shared/data): what extract stores is the picture, upright and unstretched,
and the sound, resampled from 44.1 kHz stereo to 16 kHz mono, over the whole file.

The files chosen cover what the synthetic clips do not: an odd frame height (576x1026),
variable frame rates (average rates 1035/38, 2800/113 and 200/7 fps), 23.976 fps, a
clip longer than Whisper's 30 s window and one shorter than the 10 s audio clip.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from mdr_graph.media.decode import decode_video
from mdr_graph.media.extract import ExtractConfig, extract_video

pytestmark = pytest.mark.needs_shared

CASES = {
    "7321307169545014561": "576x1026, odd height",
    "7297370558558211371": "variable frame rate (1035/38 fps average)",
    "7322223983015824682": "variable frame rate (2800/113 fps average)",
    "7345166642499849505": "variable frame rate (200/7 fps average)",
    "7326325091187412255": "23.976 fps, 68 s",
    "7340853821226175787": "5.6 s, shorter than the 10 s audio clip",
}


def whole_frames_at(path, times: np.ndarray) -> list[np.ndarray]:
    """The full-size RGB picture on screen at each time (seconds from the first frame): an independent decode."""
    out, prev = [], None
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        start = float(vs.start_time * vs.time_base)
        frames = iter(c.decode(vs))
        pending = None
        for t in times:
            while True:
                f = pending or next(frames, None)
                pending = None
                if f is None or f.time - start > t + 1e-4:
                    pending = f
                    break
                prev = f
            out.append(prev.to_ndarray(format="rgb24"))
    return out


def centre_square(img: np.ndarray, size: int) -> np.ndarray:
    h, w, _ = img.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(img[y0:y0 + side, x0:x0 + side])
    return np.asarray(crop.resize((size, size), Image.BOX), dtype=np.float32)


@pytest.mark.parametrize("video_id", list(CASES), ids=list(CASES.values()))
def test_frames_are_the_centre_of_the_upright_picture(real_videos, video_id):
    path = real_videos / f"{video_id}.mp4"
    d = decode_video(path, frames=4, size=64)
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        duration = float(vs.duration * vs.time_base)
    assert d.duration_s == pytest.approx(duration)
    assert np.all(np.diff(d.frame_times) > 0) and 0 <= d.frame_times[0] and d.frame_times[-1] < duration
    errs, wrongs = [], np.zeros(3)
    for got, whole in zip(d.frames, whole_frames_at(path, d.frame_times)):
        got = got.transpose(1, 2, 0).astype(np.float32)
        want = centre_square(whole, 64)
        errs.append(np.abs(got - want).mean())
        assert errs[-1] < 6, f"stored frame differs from the centre square of the picture (mean abs {errs[-1]:.1f})"
        squashed = np.asarray(Image.fromarray(whole).resize((64, 64), Image.BOX), dtype=np.float32)
        wrongs += [np.abs(got - w).mean() for w in (squashed, want[::-1], np.rot90(want))]
    # ...and the frames differ far more from a squashed, a flipped or a turned picture (summed over the
    # video's frames: a near-blank frame alone looks the same every way)
    assert np.all(wrongs > 2 * sum(errs)), (wrongs, sum(errs))


@pytest.mark.parametrize("video_id", list(CASES), ids=list(CASES.values()))
def test_sound_is_16k_mono_of_the_whole_track(real_videos, video_id):
    path = real_videos / f"{video_id}.mp4"
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        assert (a.rate, a.channels) == (44100, 2)
        track_s = float(a.duration * a.time_base)
    d = decode_video(path, frames=1, size=16, audio_seconds=30.0)
    want = min(track_s, 30.0) * 16000
    assert d.has_audio and abs(len(d.audio) - want) <= 0.05 * 16000  # within 50 ms of the track (or window)
    assert d.audio.dtype == np.float32 and d.audio.ndim == 1 and np.abs(d.audio).max() > 0.01
    feats = extract_video(path, ExtractConfig(size=16, frames=1))  # 10 s clip: padded when the track is shorter
    assert tuple(feats["mfcc"].shape) == (40, 1001) and feats["has_audio"]
