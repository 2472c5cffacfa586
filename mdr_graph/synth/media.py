"""Draw and encode one synthetic clip: numpy pictures and sound, muxed into an mp4 by PyAV.

Picture: a vertical-gradient background whose mean luma is the video's ``brightness``
latent (its hue is a per-video nuisance), with a disc crossing the picture's middle
band horizontally; the distance it travels over the clip is the ``motion`` latent, so
any two sampled frames show a displacement proportional to it. The disc stays in the
central square, so both a centre crop and a letterbox of the 9:16 picture keep it.

Sound: the song's melody (its own root pitch, tempo, 8-note loop and timbre, so every
video of a song shares a recognisable sound), entered at a per-video offset, plus a
per-video "voice" tone whose pitch is the ``voice_hz`` latent; the mix is scaled to the
``loudness_db`` latent (RMS, dBFS).

Everything here is a pure function of the spec dict the planner builds, so a file is
the same bytes whichever worker process writes it (given the fixed heap fill that
:mod:`mdr_graph.synth.workers` sets up for libx264).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from mdr_graph.io import atomic_path

LUMA = np.array([0.299, 0.587, 0.114])
GRADIENT = 0.08            # background luma goes from brightness+0.08 (top) to brightness-0.08 (bottom)
DISC_RADIUS = 0.1          # as a fraction of the picture width
DISC_CONTRAST = 0.35       # disc luma differs from the background's by this much
VOICE_LEVEL = 0.6          # voice tone amplitude relative to the melody's fundamental
SYLLABLE_HZ = 4.0
AAC_BITRATE = 48_000


@functools.lru_cache(maxsize=None)
def available_codec(preferred: str = "auto") -> str:
    """``libx264`` when PyAV's FFmpeg has it, else ``mpeg4`` (for ``auto``); checks an explicit choice."""
    import av

    names = ("libx264", "mpeg4") if preferred == "auto" else (preferred,)
    for name in names:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:
            continue
    from mdr_graph.errors import UserError

    raise UserError(f"video encoder {preferred!r} is not in this PyAV build; use --codec auto")


def _chroma(hue: float) -> np.ndarray:
    """A unit-ish RGB direction of zero luma for ``hue`` in [0, 1)."""
    a = 2 * math.pi * hue
    c = np.array([math.cos(a), math.cos(a - 2 * math.pi / 3), math.cos(a + 2 * math.pi / 3)])
    return c - LUMA @ c


def _colour(luma: np.ndarray, hue: float) -> np.ndarray:
    """RGB in [0, 1] with the given luma; saturation shrinks near black/white so nothing clips."""
    c = _chroma(hue)
    sat = 0.7 * np.minimum(luma, 1 - luma) / np.abs(c).max()
    return luma[..., None] + sat[..., None] * c


def background(spec: dict) -> np.ndarray:
    """``uint8 [H, W, 3]`` background with mean luma ``spec['brightness']``."""
    h, w, b = spec["height"], spec["width"], spec["brightness"]
    rows = b + GRADIENT * (1 - 2 * (np.arange(h) + 0.5) / h)
    rgb = _colour(rows, spec["hue"])
    return np.rint(np.broadcast_to(rgb[:, None, :], (h, w, 3)) * 255).astype(np.uint8)


def disc_path(spec: dict) -> np.ndarray:
    """Disc centre x (pixels) for every frame; it moves ``motion * width`` over the clip."""
    w, n = spec["width"], spec["n_frames"]
    r = DISC_RADIUS * w
    travel = spec["motion"] * w
    x0 = r + spec["x_start"] * (w - 2 * r - travel)
    x = x0 + travel * np.arange(n) / max(1, n - 1)
    return x if spec["direction"] > 0 else w - x


def _disc(spec: dict) -> tuple[np.ndarray, Iterator[tuple[slice, slice, np.ndarray]]]:
    """The disc's RGB colour (0-255) and, per frame, ``(rows, cols, alpha)`` of its box.

    The box has even bounds, so it maps exactly onto the half-resolution chroma planes.
    """
    h, w, b = spec["height"], spec["width"], spec["brightness"]
    disc_luma = b + DISC_CONTRAST if b < 0.5 else b - DISC_CONTRAST
    rgb = _colour(np.array(disc_luma), (spec["hue"] + 0.5) % 1.0) * 255
    r, yc = DISC_RADIUS * w, h / 2

    def even_box(lo: float, hi: float, size: int) -> tuple[int, int]:
        a, z = max(0, int(math.floor(lo - 1))), min(size, int(math.ceil(hi + 1)))
        return a - a % 2, min(size, z + z % 2)

    y0, y1 = even_box(yc - r, yc + r, h)
    yy = np.arange(y0, y1)[:, None] + 0.5

    def boxes():
        for xc in disc_path(spec):
            x0, x1 = even_box(xc - r, xc + r, w)
            xx = np.arange(x0, x1)[None, :] + 0.5
            yield slice(y0, y1), slice(x0, x1), np.clip(r + 0.5 - np.hypot(xx - xc, yy - yc), 0.0, 1.0)

    return rgb, boxes()


def render_frames(spec: dict) -> Iterator[np.ndarray]:
    """Yield ``uint8 [H, W, 3]`` RGB frames (for previews; encoding uses :func:`render_yuv`)."""
    bg = background(spec)
    rgb, boxes = _disc(spec)
    for rows, cols, alpha in boxes:
        frame = bg.copy()
        a = alpha[..., None]
        frame[rows, cols] = np.rint(frame[rows, cols] * (1 - a) + rgb * a).astype(np.uint8)
        yield frame


def render_yuv(spec: dict) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield the frames of :func:`render_frames` as yuv420p planes, drawn in YUV directly.

    The background is converted once and the disc is blended into each plane (with a
    2x2-averaged alpha in chroma); the conversion is linear, so this matches converting
    every RGB frame up to rounding, at a fraction of the cost.
    """
    bg = rgb_to_yuv420p(background(spec))
    rgb, boxes = _disc(spec)
    disc = _yuv_float(rgb)
    for rows, cols, alpha in boxes:
        planes = [p.copy() for p in bg]
        crows, ccols = slice(rows.start // 2, rows.stop // 2), slice(cols.start // 2, cols.stop // 2)
        ah, aw = alpha.shape
        calpha = alpha.reshape(ah // 2, 2, aw // 2, 2).mean(axis=(1, 3))
        for plane, value, r_, c_, a in zip(planes, disc, (rows, crows, crows), (cols, ccols, ccols),
                                           (alpha, calpha, calpha)):
            plane[r_, c_] = np.rint(plane[r_, c_] * (1 - a) + value * a).astype(np.uint8)
        yield planes[0], planes[1], planes[2]


def render_audio(spec: dict) -> np.ndarray:
    """``float32 [n_samples]`` mono soundtrack in [-1, 1] at ``spec['sample_rate']``."""
    sr = spec["sample_rate"]
    n = int(round(spec["n_frames"] / spec["fps"] * sr))
    t = np.arange(n) / sr
    beat = 60.0 / spec["song_bpm"]
    melody = np.asarray(spec["song_melody"])
    loop = beat * len(melody)
    ts = t + spec["song_offset"] * loop                      # time inside the song
    note = np.floor(ts / beat).astype(np.int64) % len(melody)
    tau = ts - np.floor(ts / beat) * beat                    # time inside the note
    freq = spec["song_base_hz"] * 2.0 ** (melody[note] / 12.0)
    phase = 2 * math.pi * freq * tau
    env = (1 - np.exp(-tau / 0.01)) * np.exp(-2.5 * tau / beat)
    song = env * (np.sin(phase) + spec["song_h2"] * np.sin(2 * phase) + spec["song_h3"] * np.sin(3 * phase))
    syllable = 0.3 + 0.7 * (0.5 * (1 + np.sin(2 * math.pi * SYLLABLE_HZ * t))) ** 2
    voice = VOICE_LEVEL * syllable * np.sin(2 * math.pi * spec["voice_hz"] * t)
    x = song + voice
    rms = float(np.sqrt(np.mean(x * x))) or 1.0
    x = x / rms * 10 ** (spec["loudness_db"] / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _yuv_float(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited-range Y, U, V (floats) of RGB values in 0-255, last axis = channel."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255,
            128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255,
            128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255)


def rgb_to_yuv420p(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited-range 4:2:0 planes ``(Y [H, W], U [H/2, W/2], V [H/2, W/2])``, uint8.

    Converting here rather than handing RGB to swscale keeps the encoder's input fully
    under our control (see :func:`yuv_frame` and :mod:`mdr_graph.synth.workers`).
    """
    y, u, v = _yuv_float(rgb.astype(np.float64))
    h, w = y.shape
    u = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    v = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return tuple(np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, u, v))


def yuv_frame(planes: tuple[np.ndarray, np.ndarray, np.ndarray]):
    """An ``av.VideoFrame`` holding Y, U, V ``planes`` with zeroed row padding.

    FFmpeg pads each row to an aligned line size and leaves the padding uninitialised;
    zeroing it keeps uninitialised bytes out of the encoder's input.
    """
    import av

    h, w = planes[0].shape
    frame = av.VideoFrame(w, h, "yuv420p")
    for plane, data in zip(frame.planes, planes):
        padded = np.zeros((data.shape[0], plane.line_size), np.uint8)
        padded[:, :data.shape[1]] = data
        plane.update(padded)
    return frame


def encode_mp4(spec: dict, path: str | Path) -> None:
    """Write the clip to ``path`` as mp4: H.264 (or MPEG-4 Part 2) video, AAC mono audio when present.

    ``faststart`` puts the index first, as on web video, so a truncated download still
    opens and fails later, in the decoder. (It needs a real file: FFmpeg re-reads it.)
    """
    import av

    codec = spec["codec"]
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        vs = out.add_stream(codec, rate=spec["fps"])
        vs.width, vs.height, vs.pix_fmt = spec["width"], spec["height"], "yuv420p"
        vs.codec_context.thread_count = 1                    # one thread: identical bytes everywhere
        if codec == "libx264":
            vs.options = {"preset": "veryfast", "crf": "23", "g": str(2 * spec["fps"])}
        else:
            vs.bit_rate = 400_000
            vs.options = {"g": str(2 * spec["fps"])}
        aus = None
        if spec["has_audio"]:
            aus = out.add_stream("aac", rate=spec["sample_rate"], layout="mono")
            aus.bit_rate = AAC_BITRATE
        for i, planes in enumerate(render_yuv(spec)):
            frame = yuv_frame(planes)
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
        if aus is not None:
            samples = render_audio(spec)
            frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = spec["sample_rate"], 0
            out.mux(aus.encode(frame))
            out.mux(aus.encode())


def corrupt_bytes(good: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """A broken file of ``kind``: ``truncated`` (first 45%), ``empty``, or ``garbage`` (valid ftyp box, then noise)."""
    if kind == "truncated":
        return good[: int(len(good) * 0.45)]
    if kind == "empty":
        return b""
    if kind == "garbage":
        head = good[:32]
        return head + rng.integers(0, 256, size=max(1024, len(good) - 32), dtype=np.uint8).tobytes()
    raise ValueError(f"unknown corruption kind {kind!r}")


@functools.lru_cache(maxsize=None)
def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_video(spec: dict) -> dict:
    """Render, encode (and, if asked, break) one clip; write it atomically to ``spec['path']``."""
    with atomic_path(spec["path"]) as tmp:
        encode_mp4(spec, tmp)
        if spec["corrupt"]:
            rng = np.random.default_rng(np.random.SeedSequence(spec["seed"], spawn_key=(0x6D656469, spec["index"])))
            tmp.write_bytes(corrupt_bytes(tmp.read_bytes(), spec["corrupt"], rng))
        size = tmp.stat().st_size
        os.chmod(tmp, 0o666 & ~_umask())             # mkstemp made it private; a corpus is for sharing
    return {"index": spec["index"], "bytes": size}
