"""Decode one video with PyAV: a few frames sampled uniformly by segment, and its sound.

Frame sampling ("uniform by segment"): the video's duration ``D`` is split into
``segments`` equal segments (``segments`` defaults to the number of frames wanted);
segment ``k`` covers ``[k*D/segments, (k+1)*D/segments)`` and we keep the frame on
screen at the segment's **centre**, ``(k + 0.5)*D/segments`` (``position="start"``
takes the frame at ``k*D/segments`` instead). "On screen at time t" means the last frame
whose presentation time is ``<= t``. With ``segments=15`` and 2 frames you get the
reference design's "first 2 of 15 segments".

Two ways to reach those frames, both exact (they return the same frames):

- ``seek``: for each target, seek to the keyframe before it and decode forward to it.
  Cheap on long videos with sparse keyframes: only a fraction of a GOP per target.
- ``scan``: one decode pass from the start, stopping after the last target.
  Cheaper on short clips, where a seek and the decoder restart cost more than the
  frames in between.
- ``auto`` (default) chooses per video from the container's own index (keyframe
  positions, read from the mp4 header without decoding), by counting the frames each
  way would decode plus a fixed seek cost (see :data:`SEEK_COST_FRAMES`).

Only kept frames are converted: FFmpeg's swscale resizes a kept frame straight from
YUV to the small RGB image, and every other frame is dropped without conversion. On the
way to a target, frames that no other frame references (most B-frames) are not even
decoded (``skip_frame=NONREF`` until two frames before the target).

Square images ("fit"): TikTok videos are 9:16 portrait. ``crop`` (default) scales the
short side to ``size`` and keeps the centre square, so nothing is distorted and no
pixels are wasted on bars, at the price of the top and bottom of a portrait frame.
``letterbox`` keeps the whole picture, scaled so the long side is ``size``, on black
bars. ``stretch`` squashes the whole frame into the square. Display rotation from the
container (phone videos) is applied first.

Audio: the first audio track is decoded from its start, resampled by FFmpeg's
swresample and mixed to mono as the mean of its channels; decoding stops as soon as
enough seconds have been read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FITS = ("crop", "letterbox", "stretch")
STRATEGIES = ("auto", "seek", "scan")
POSITIONS = ("centre", "start")

# What one seek costs, in frame decodes: the demuxer jump, the decoder flush, the
# threaded decoder's refill and the (dearer) keyframe. A seek plus its first frame took
# 10-11 plain frame decodes on the benchmark clips (H.264, 360p and 720p, 2 cores);
# only the seek/scan choice depends on it, never which frames are returned.
SEEK_COST_FRAMES = 12
# Non-reference frames are skipped only when presented more than this many frame
# periods before the next target, so the frame on screen at the target is always decoded.
SKIP_MARGIN_FRAMES = 2
# Without an index, clips up to this long are scanned and longer ones are sought.
SHORT_CLIP_S = 8.0
# How an error reason starts when the video has no file to decode (see corpus.is_missing_file).
FILE_NOT_FOUND = "file not found"


class DecodeError(Exception):
    """A file that cannot be decoded (corrupt, truncated, empty, no video stream).

    ``str(error)`` is one line that says why; the extract run records it in
    ``errors.jsonl`` and goes on with the next video.
    """


@dataclass
class DecodedVideo:
    """What :func:`decode_video` returns: pixels, their timestamps, and the sound."""

    frames: np.ndarray        # uint8 [F, 3, size, size]
    frame_times: np.ndarray   # float64 [F], seconds from the video's first frame
    n_distinct: int           # how many different decoded frames the F images come from
    duration_s: float
    audio: np.ndarray         # float32 [n], mono at the requested sample rate, n <= seconds * rate
    has_audio: bool
    strategy: str             # "seek" or "scan": what was actually done
    n_decoded: int = 0        # video frames the decoder produced (non-reference frames skipped unseen)


def segment_times(duration_s: float, n_frames: int, segments: int | None = None,
                  position: str = "centre") -> np.ndarray:
    """Target times (seconds from the start) of the first ``n_frames`` of ``segments`` equal segments."""
    segments = segments or n_frames
    if n_frames < 1 or segments < n_frames:
        raise ValueError(f"need 1 <= frames <= segments, got frames={n_frames}, segments={segments}")
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    k = np.arange(n_frames, dtype=np.float64)
    offset = 0.5 if position == "centre" else 0.0
    return (k + offset) * max(duration_s, 0.0) / segments


_REFORMATTER = None


def _reformatter():
    """One swscale context per process, reused across frames of the same geometry.

    ``frame.to_ndarray(width=..., ...)`` builds a fresh context for every frame, which
    costs several times the scaling itself on small outputs.
    """
    global _REFORMATTER
    if _REFORMATTER is None:
        from av.video.reformatter import VideoReformatter

        _REFORMATTER = VideoReformatter()
    return _REFORMATTER


def fit_square(frame, size: int, fit: str = "crop") -> np.ndarray:
    """Convert one decoded ``av.VideoFrame`` to uint8 ``[3, size, size]`` RGB (see module doc for ``fit``)."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    quarter_turns = int(round((frame.rotation or 0) / 90.0)) % 4
    w, h = frame.width, frame.height
    dw, dh = (h, w) if quarter_turns % 2 else (w, h)  # as displayed
    if fit == "stretch":
        tw, th = size, size
    elif fit == "crop":
        scale = size / min(dw, dh)
        tw, th = max(size, round(dw * scale)), max(size, round(dh * scale))
    else:
        scale = size / max(dw, dh)
        tw, th = max(1, min(size, round(dw * scale))), max(1, min(size, round(dh * scale)))
    sw, sh = (th, tw) if quarter_turns % 2 else (tw, th)
    interp = "AREA" if sw <= w and sh <= h else "BICUBIC"
    img = _reformatter().reformat(frame, width=sw, height=sh, format="rgb24", interpolation=interp).to_ndarray()
    if quarter_turns:
        img = np.rot90(img, quarter_turns)  # counter-clockwise, as the display matrix says
    if fit == "crop":
        y0, x0 = (th - size) // 2, (tw - size) // 2
        img = img[y0:y0 + size, x0:x0 + size]
    elif fit == "letterbox":
        out = np.zeros((size, size, 3), np.uint8)
        y0, x0 = (size - th) // 2, (size - tw) // 2
        out[y0:y0 + th, x0:x0 + tw] = img
        img = out
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def _open(path: str | Path):
    import av

    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise DecodeError(f"{FILE_NOT_FOUND}: {p}") from None
    except OSError as e:
        raise DecodeError(f"cannot stat file: {e}") from None
    if size == 0:
        raise DecodeError("empty file (0 bytes)")
    try:
        container = av.open(str(p), mode="r")
    except Exception as e:  # av.error.* carry FFmpeg's reason
        raise DecodeError(f"cannot open container: {_reason(e)}") from None
    try:
        _check_complete(container, size)
    except BaseException:
        container.close()
        raise
    return container


def _reason(e: BaseException) -> str:
    """One line: FFmpeg's own words when it has them, else the exception's type and message."""
    strerror = getattr(e, "strerror", None)
    if isinstance(strerror, str) and strerror.strip():
        return strerror.strip()
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _check_complete(container, file_size: int) -> None:
    """A container whose own index points past the end of the file was cut short (a partial download)."""
    end = 0
    for stream in container.streams:
        entries = stream.index_entries
        if entries is not None and len(entries):  # samples are stored in file order: the last one ends last
            last = entries[len(entries) - 1]
            if last.pos >= 0:
                end = max(end, last.pos + last.size)
    if end > file_size:
        raise DecodeError(f"truncated: the file has {file_size} bytes but its index needs {end}")


def _video_duration(container, stream, fallback_s: float | None) -> tuple[float, bool]:
    """(duration in seconds, whether it came from the video stream itself)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base), True
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate), True
    if container.duration:
        return container.duration / 1_000_000.0, False
    if fallback_s and fallback_s > 0:
        return float(fallback_s), False
    return 0.0, False


class _KeyframeIndex:
    """Keyframe and frame positions from the container's index (no decoding needed)."""

    def __init__(self, stream):
        entries = stream.index_entries
        n = len(entries) if entries is not None else 0
        self.available = n > 0
        if not self.available:
            return
        ts = np.fromiter((e.timestamp for e in entries), dtype=np.int64, count=n)
        key = np.fromiter((e.is_keyframe for e in entries), dtype=bool, count=n)
        order = np.argsort(ts, kind="stable")
        tb = float(stream.time_base)
        self.times = ts[order] * tb
        self.key_pos = np.flatnonzero(key[order])
        self.available = len(self.key_pos) > 0

    def position(self, t: float) -> int:
        """Index of the last entry at or before ``t`` (0 when ``t`` precedes them all)."""
        return max(0, int(np.searchsorted(self.times, t + 1e-9, side="right")) - 1)

    def keyframe_before(self, pos: int) -> int:
        i = int(np.searchsorted(self.key_pos, pos, side="right")) - 1
        return int(self.key_pos[max(i, 0)])

    def keyframe_time_before(self, t: float) -> float:
        return float(self.times[self.keyframe_before(self.position(t))])


def choose_strategy(index: _KeyframeIndex, targets_abs: np.ndarray, duration_s: float,
                    seek_cost: float = SEEK_COST_FRAMES) -> str:
    """``"seek"`` or ``"scan"``, whichever decodes fewer frames for these targets."""
    if not index.available:
        return "scan" if duration_s <= SHORT_CLIP_S else "seek"
    positions = [index.position(t) for t in targets_abs]
    scan_cost = positions[-1] + 1
    seek_total, cur = 0.0, -1
    for p in positions:
        kf = index.keyframe_before(p)
        if cur >= 0 and kf <= cur:
            seek_total += p - cur
        else:
            seek_total += seek_cost + p - kf + 1
        cur = max(cur, p)
    return "seek" if seek_total < scan_cost else "scan"


def _frame_time(frame, fallback: float) -> float:
    t = frame.time
    return float(t) if t is not None else fallback


class _FrameSource:
    """Decoded frames of one stream, from wherever the demuxer stands.

    While ``skip_before`` is set, packets presented more than ``margin`` seconds before
    it are decoded with ``skip_frame=NONREF``: frames that no other frame references
    (most B-frames) are dropped by the decoder unseen, which halves the work on typical
    H.264. Reference frames are always decoded, so every later frame is intact; the
    caller checks that the frame it picked is not older than the margin (else a
    skipped frame could have been the right one) and redoes the pick without skipping.
    """

    def __init__(self, container, stream, margin: float, skip: bool = True):
        self.container, self.stream = container, stream
        self.tb = float(stream.time_base)
        self.margin = margin
        self.skip = skip
        self.skip_before = -math.inf
        self.decoded = 0
        self.skipped_any = False

    def __iter__(self):
        import av

        cc = self.stream.codec_context
        skipping = False
        try:
            for packet in self.container.demux(self.stream):
                want = (self.skip and packet.pts is not None
                        and packet.pts * self.tb < self.skip_before - self.margin)
                if want != skipping:
                    cc.skip_frame = "NONREF" if want else "DEFAULT"
                    skipping = want
                self.skipped_any |= want
                for frame in packet.decode():
                    self.decoded += 1
                    yield frame
        except (av.error.FFmpegError, OSError, EOFError) as e:
            raise DecodeError(f"video decoding failed: {_reason(e)}") from None
        finally:
            if skipping:
                cc.skip_frame = "DEFAULT"


class _Picker:
    """Walk decoded frames forward and pick, for each target time, the frame on screen then."""

    def __init__(self, source: _FrameSource, period: float):
        self.source = source
        self.it = iter(source)
        self.period = period
        self.prev = None       # last frame pulled with time <= the last target
        self.prev_t = -math.inf
        self.pending = None    # a frame pulled that lies beyond the last target
        self.pending_t = 0.0
        self.last_t = -math.inf  # time of the most recent frame pulled
        self.eof = False

    def pick(self, t: float):
        """(frame, time) on screen at ``t``; the first frame if ``t`` precedes every frame; None at EOF."""
        eps = min(1e-4, self.period / 4)
        self.source.skip_before = t
        while True:
            if self.pending is not None:
                f, ft = self.pending, self.pending_t
                self.pending = None
            else:
                f = next(self.it, None)
                if f is None:
                    self.eof = True
                    return (self.prev, self.prev_t) if self.prev is not None else (None, None)
                ft = _frame_time(f, self.last_t + self.period if self.last_t > -math.inf else 0.0)
                self.last_t = ft
            if ft > t + eps:
                self.pending, self.pending_t = f, ft
                if self.prev is not None:
                    return self.prev, self.prev_t
                return f, ft
            self.prev, self.prev_t = f, ft


def _check_reached(t_rel: float, got_rel: float | None, period: float, duration: float, exact_duration: bool) -> None:
    if got_rel is None:
        raise DecodeError("no decodable video frames")
    slack = max(0.5, 3 * period)
    if exact_duration and got_rel < t_rel - slack:
        raise DecodeError(f"truncated: last decodable frame at {got_rel:.2f}s of a declared {duration:.2f}s")


def read_audio(container, seconds: float, sample_rate: int) -> tuple[np.ndarray, bool]:
    """Up to ``seconds`` of the first audio track, mono float32 at ``sample_rate``; (samples, has_audio)."""
    import av

    if not container.streams.audio or seconds <= 0:
        return np.zeros(0, np.float32), bool(container.streams.audio) and seconds <= 0
    stream = container.streams.audio[0]
    stream.thread_type = "AUTO"
    need = int(round(seconds * sample_rate))
    # Keep the channels through the resampler and average them after: FFmpeg's own downmix
    # scales each side of a stereo pair by 1/sqrt(2), so a tone in both channels would get louder.
    resampler = av.AudioResampler(format="fltp", layout=None, rate=sample_rate)
    chunks: list[np.ndarray] = []
    got = 0

    def take(frames) -> None:
        nonlocal got
        for out in frames:
            arr = out.to_ndarray()  # [channels, samples]
            mono = arr.mean(axis=0, dtype=np.float32) if arr.shape[0] > 1 else arr.reshape(-1)
            chunks.append(mono)
            got += len(mono)

    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                take(resampler.resample(frame))
            if got >= need:
                break
        else:
            take(resampler.resample(None))
    except (av.error.FFmpegError, OSError, EOFError) as e:
        if got == 0:
            raise DecodeError(f"audio decoding failed: {_reason(e)}") from None
        # keep the audio read before the damage; the rest is padded with silence later
    if got == 0:
        return np.zeros(0, np.float32), False
    audio = np.concatenate(chunks)[:need].astype(np.float32, copy=False)
    return audio, True


def decode_video(path: str | Path, *, frames: int = 2, size: int = 64, fit: str = "crop",
                 position: str = "centre", segments: int | None = None, strategy: str = "auto",
                 sample_rate: int = 16000, audio_seconds: float = 10.0, threads: int = 0,
                 duration_hint_s: float | None = None, skip_nonref: bool = True) -> DecodedVideo:
    """Open ``path`` once; return its sampled frames and up to ``audio_seconds`` of mono audio.

    Raises :class:`DecodeError` when the file is missing, empty, corrupt, truncated or
    has no video stream. A file without an audio track is fine: ``has_audio=False``.
    ``threads=0`` lets FFmpeg pick the decoder thread count. ``skip_nonref=False`` decodes
    every frame on the way to a target (same result, more work; for comparison).
    """
    import av

    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    container = _open(path)
    try:
        if not container.streams.video:
            raise DecodeError("no video stream")
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        if threads:
            vs.thread_count = threads
        duration, exact = _video_duration(container, vs, duration_hint_s)
        rate = vs.average_rate or vs.guessed_rate
        period = float(1 / rate) if rate else 1 / 30
        start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0

        audio, has_audio = read_audio(container, audio_seconds, sample_rate)

        targets = segment_times(duration, frames, segments, position)
        targets_abs = start + targets
        index = _KeyframeIndex(vs)
        chosen = strategy if strategy != "auto" else choose_strategy(index, targets_abs, duration)
        picks, n_decoded = _pick_frames(container, vs, chosen, targets_abs, period, index, start, skip_nonref)

        images, times, seen = [], [], {}
        for (f, ft), t in zip(picks, targets_abs):
            _check_reached(t - start, None if ft is None else ft - start, period, duration, exact)
            key = id(f)
            if key not in seen:
                seen[key] = fit_square(f, size, fit)
            images.append(seen[key])
            times.append(ft - start)
        return DecodedVideo(frames=np.stack(images), frame_times=np.asarray(times, np.float64),
                            n_distinct=len(seen), duration_s=duration, audio=audio, has_audio=has_audio,
                            strategy=chosen, n_decoded=n_decoded)
    except (av.error.FFmpegError, OSError, EOFError) as e:  # anything else is a bug, not a bad file
        raise DecodeError(_reason(e)) from None
    finally:
        container.close()


def _pick_frames(container, stream, strategy: str, targets_abs: np.ndarray, period: float,
                 index: _KeyframeIndex, start: float, skip_nonref: bool = True) -> tuple[list, int]:
    """The (frame, time) on screen at each target, and how many frames were decoded to find them."""
    decoded = 0
    for skip in ((True, False) if skip_nonref else (False,)):
        if strategy == "scan":
            picks, src = _scan(container, stream, targets_abs, period, skip)
            sources = [src]
        else:
            picks, sources = _seek(container, stream, targets_abs, period, index, start, skip)
            if any(f is None for f, _ in picks):  # a seek found nothing: scan, to say how far the file decodes
                picks, src = _scan(container, stream, targets_abs, period, skip)
                sources.append(src)
        decoded += sum(s.decoded for s in sources)
        skipped = any(s.skipped_any for s in sources)
        margin = SKIP_MARGIN_FRAMES * period
        # A pick older than the margin might have lost to a skipped frame: then do it again, skipping nothing.
        if not skipped or all(ft is None or ft >= t - margin - 1e-6 for (_, ft), t in zip(picks, targets_abs)):
            break
    return picks, decoded


def _scan(container, stream, targets_abs: np.ndarray, period: float, skip: bool) -> tuple[list, _FrameSource]:
    container.seek(stream.start_time or 0, stream=stream, backward=True)  # the audio pass moved the demuxer
    source = _FrameSource(container, stream, SKIP_MARGIN_FRAMES * period, skip)
    picker = _Picker(source, period)
    return [picker.pick(float(t)) for t in targets_abs], source


def _seek(container, stream, targets_abs: np.ndarray, period: float, index: _KeyframeIndex, start: float,
          skip: bool) -> tuple[list, list[_FrameSource]]:
    tb = float(stream.time_base)
    picks: list = []
    sources: list[_FrameSource] = []
    picker: _Picker | None = None
    for t in targets_abs:
        t = float(t)
        if picker is not None and not picker.eof:
            if index.available:
                keep_going = index.keyframe_time_before(t) <= picker.last_t
            else:
                keep_going = t - picker.last_t < 1.0
            if keep_going:
                picks.append(picker.pick(t))
                continue
        back = 0.0
        for _attempt in range(4):
            container.seek(max(int(math.floor((t - back) / tb)), stream.start_time or 0), stream=stream,
                           backward=True)
            sources.append(_FrameSource(container, stream, SKIP_MARGIN_FRAMES * period, skip))
            picker = _Picker(sources[-1], period)
            f, ft = picker.pick(t)
            # The demuxer's index is in decode order; with B-frames it can land on a keyframe
            # shown after t. Then step further back, so the pick stays exact.
            if f is None or ft <= t + 1e-4 or t - back <= start + 1e-6:
                break
            back = max(2 * back, 1.0)
        picks.append((f, ft))
    return picks, sources
