"""Write synthetic mp4 clips with PyAV, for tests and benchmarks.

Each video frame is one flat colour that encodes the frame's own index, so a reader
can tell exactly which frames were sampled after compression, resizing and cropping
(:func:`decode_index`). The audio track, when asked for, is a pure tone, so a test can
check that resampling kept its pitch. Clips can be made with a long keyframe interval
(like phone uploads) and with or without ``faststart`` (the index at the front), which
matters for what a truncated download still lets you decode.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

# Three channels, 8 levels each: 512 distinct frame indices, and a level can drift by
# up to 15 units through YUV conversion and compression and still decode exactly.
_LEVELS = 8
_STEP = 256 // _LEVELS
MAX_INDEX = _LEVELS ** 3


def index_colour(i: int) -> tuple[int, int, int]:
    """The RGB colour that encodes frame index ``i`` (wrapping at :data:`MAX_INDEX`)."""
    i %= MAX_INDEX
    digits = (i // (_LEVELS * _LEVELS), (i // _LEVELS) % _LEVELS, i % _LEVELS)
    return tuple(_STEP // 2 + _STEP * d for d in digits)  # type: ignore[return-value]


def decode_index(image: np.ndarray) -> int:
    """The frame index encoded in ``image`` (``[3, H, W]`` or ``[H, W, 3]`` uint8), read at its centre."""
    img = np.asarray(image)
    if img.shape[0] == 3 and img.shape[-1] != 3:
        img = img.transpose(1, 2, 0)
    h, w = img.shape[:2]
    patch = img[h // 2 - max(1, h // 8): h // 2 + max(1, h // 8), w // 2 - max(1, w // 8): w // 2 + max(1, w // 8)]
    rgb = patch.reshape(-1, 3).astype(np.float64).mean(axis=0)
    d = np.clip(np.round((rgb - _STEP // 2) / _STEP), 0, _LEVELS - 1).astype(int)
    return int(d[0] * _LEVELS * _LEVELS + d[1] * _LEVELS + d[2])


def write_clip(path: str | Path, *, seconds: float = 3.0, fps: int = 10, width: int = 90, height: int = 160,
               gop: int | None = None, tone_hz: float | None = 440.0, audio_rate: int = 44100,
               audio_channels: int = 2, faststart: bool = False, codec: str = "libx264",
               crf: int = 18, preset: str = "veryfast", noise: float = 0.0, seed: int = 0,
               rotation: int = 0, corner_marker: bool = False) -> Path:
    """Write an H.264/AAC mp4 whose frame ``i`` is the flat colour :func:`index_colour(i)`.

    ``gop`` is the keyframe interval in frames (``None``: x264's default of 250).
    ``tone_hz=None`` writes no audio track at all. ``noise`` (0..1) adds random texture
    so that frames cost a realistic amount to decode (benchmarks); tests keep it 0 so the
    colour code stays exact. ``rotation`` (degrees counter-clockwise) is stored as the
    container's display matrix, as phones do; ``corner_marker`` paints the top-left
    quarter-size corner of every stored frame white, so a reader can tell orientation.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames = int(round(seconds * fps))
    rng = np.random.default_rng(seed)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        opts = {"crf": str(crf), "preset": preset} if codec == "libx264" else {}
        if gop is not None:
            vs.codec_context.gop_size = gop
            if codec == "libx264":
                opts.update({"keyint": str(gop), "min-keyint": str(gop), "scenecut": "0"})
        vs.codec_context.options = opts
        if rotation:
            vs.set_display_rotation(rotation)
        aus = None
        if tone_hz is not None:
            aus = out.add_stream("aac", rate=audio_rate)
            aus.layout = "stereo" if audio_channels == 2 else "mono"
        texture = (_texture(rng, height, width, n_frames) * noise).astype(np.uint8) if noise > 0 else None
        tone = _ToneWriter(out, aus, seconds, tone_hz, audio_rate, audio_channels) if aus is not None else None
        for i in range(n_frames):
            colour = np.asarray(index_colour(i), np.uint8)
            if texture is None:
                img = np.broadcast_to(colour, (height, width, 3))
            else:  # a textured scene panning diagonally (motion for the encoder), tinted by the index colour
                y, x = i % (texture.shape[0] - height), (2 * i) % (texture.shape[1] - width)
                img = texture[y:y + height, x:x + width] + (colour * (1 - noise)).astype(np.uint8)
            if corner_marker:
                img = np.array(img)
                img[: height // 4, : width // 4] = 255
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
            if tone is not None:  # interleave audio with video, as real files are
                tone.write_until((i + 1) / fps)
        for packet in vs.encode():
            out.mux(packet)
        if tone is not None:
            tone.write_until(seconds)
            tone.flush()
    return path


def _texture(rng: np.random.Generator, height: int, width: int, n_frames: int) -> np.ndarray:
    """A smooth random image larger than the frame (blocky noise, upsampled), to pan across."""
    pad_h, pad_w = height + min(n_frames, 4 * height), width + min(2 * n_frames, 4 * width)
    coarse = rng.integers(0, 256, size=(pad_h // 8 + 1, pad_w // 8 + 1, 3), dtype=np.uint8)
    fine = rng.integers(0, 64, size=(pad_h, pad_w, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:pad_h, :pad_w]
    return (big * 0.75 + fine).astype(np.uint8)


class _ToneWriter:
    """Encode a sine tone in blocks, so audio packets can be muxed between video frames."""

    def __init__(self, out, stream, seconds: float, tone_hz: float, rate: int, channels: int):
        self.out, self.stream, self.rate, self.channels = out, stream, rate, channels
        n = int(round(seconds * rate))
        self.wave = (0.5 * np.sin(2 * np.pi * tone_hz * np.arange(n) / rate)).astype(np.float32)
        self.pos = 0

    def write_until(self, t: float, block: int = 1024) -> None:
        import av

        end = min(len(self.wave), int(round(t * self.rate)))
        while self.pos + block <= end or (end == len(self.wave) and self.pos < end):
            chunk = self.wave[self.pos:self.pos + block]
            planar = np.ascontiguousarray(np.repeat(chunk[None, :], self.channels, axis=0))
            frame = av.AudioFrame.from_ndarray(planar, format="fltp",
                                               layout="stereo" if self.channels == 2 else "mono")
            frame.sample_rate = self.rate
            frame.pts = self.pos
            frame.time_base = Fraction(1, self.rate)
            for packet in self.stream.encode(frame):
                self.out.mux(packet)
            self.pos += len(chunk)

    def flush(self) -> None:
        for packet in self.stream.encode():
            self.out.mux(packet)
