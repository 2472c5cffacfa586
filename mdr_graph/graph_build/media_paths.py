"""Find each video's media file without ever leaving the media root.

Paths come from scraped metadata (yt-dlp's ``filepath``, a CSV's ``video_path``) and
from video ids (``<root>/<video_id>.mp4``); both are untrusted. A path is accepted only
when its real path (symlinks resolved) lies inside the root; anything else raises
:class:`PathEscapesRoot`, which the ingest turns into a reject. A path that stays
inside but names no file just means the video has no media: ``None``.
"""

from __future__ import annotations

import os
from pathlib import Path


class PathEscapesRoot(ValueError):
    """A metadata path whose real path is outside the media root."""


class MediaResolver:
    """Resolve media files under ``root``.

    ``default_lookup``: look for ``<root>/<video_id>.mp4`` when the record names no
    path (on with ``--media-root``; off when the root is only the metadata file's
    directory, which bounds the paths records name).
    """

    def __init__(self, root: str | os.PathLike, default_lookup: bool, suffix: str = ".mp4"):
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self.default_lookup = default_lookup
        self.suffix = suffix
        self._entries: dict[str, tuple[bool, bool]] | None = None  # name -> (is_file, is_symlink)

    def inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self._prefix)

    def _listing(self) -> dict[str, tuple[bool, bool]]:
        """One directory scan instead of a stat per video (a million stats is slow)."""
        if self._entries is None:
            entries: dict[str, tuple[bool, bool]] = {}
            try:
                with os.scandir(self.root) as it:
                    for e in it:
                        if e.name.endswith(self.suffix):
                            entries[e.name] = (e.is_file(), e.is_symlink())
            except OSError:
                pass
            self._entries = entries
        return self._entries

    def _check(self, candidate: str, shown: str) -> str | None:
        real = os.path.realpath(candidate)
        if not self.inside(real):
            raise PathEscapesRoot(f"{shown!r} resolves to {real}, outside the media root {self.root}")
        return real if os.path.isfile(real) else None

    def resolve(self, video_id: str, named: object = None) -> str | None:
        """The absolute path of the video's file, ``None`` when there is none."""
        if isinstance(named, Path):
            named = str(named)
        if isinstance(named, str) and named.strip():
            named = named.strip()
            candidate = named if os.path.isabs(named) else os.path.join(self.root, named)
            return self._check(candidate, named)
        if not self.default_lookup:
            return None
        name = video_id + self.suffix
        if os.sep in name or (os.altsep and os.altsep in name) or name.startswith("."):
            return self._check(os.path.join(self.root, name), name)
        hit = self._listing().get(name)
        if hit is None:
            return None
        is_file, is_link = hit
        if is_link:
            return self._check(os.path.join(self.root, name), name)
        return os.path.join(self.root, name) if is_file else None


def media_root_for(metadata_file: Path, media_root: str | os.PathLike | None) -> MediaResolver:
    """``--media-root`` when given, else the metadata file's own directory (named paths only)."""
    if media_root is not None:
        return MediaResolver(media_root, default_lookup=True)
    return MediaResolver(Path(metadata_file).resolve().parent, default_lookup=False)
