"""Fixtures for the media tests: small real mp4 files, a graph table pointing at them, a tiny Whisper.

Every clip is written with PyAV by :mod:`mdr_graph.media.synthetic`; frame ``i`` is a
flat colour that encodes ``i``, so tests can read back which frames were sampled.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from mdr_graph.media.synthetic import write_clip


def write_graph(graph_dir: Path, rows: list[dict]) -> Path:
    """Write ``graph_dir/videos.parquet`` with the columns ``extract`` reads."""
    graph_dir.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({
        "video_id": pd.array([r["video_id"] for r in rows], dtype="string"),
        "video_path": pd.array([r.get("video_path") for r in rows], dtype="string"),
        "duration_s": pd.array([r.get("duration_s") for r in rows], dtype="Float64"),
    })
    df.to_parquet(graph_dir / "videos.parquet", index=False)
    return graph_dir


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def corpus(clip_dir) -> dict:
    """Nine good clips (one silent) plus a corrupt, an empty, a truncated and a missing file.

    Returns ``{"rows": videos.parquet rows, "good": ids, "bad": {id: expected error prefix}, "silent": id}``.
    """
    rows, good = [], []
    for i in range(9):
        vid = f"vid{i:02d}"
        path = write_clip(clip_dir / f"{vid}.mp4", seconds=2.0 + 0.5 * i, fps=10, width=72, height=128,
                          gop=8 + i, tone_hz=None if i == 4 else 300.0 + 50 * i, faststart=(i % 2 == 0))
        rows.append({"video_id": vid, "video_path": str(path), "duration_s": 2.0 + 0.5 * i})
        good.append(vid)
    corrupt = clip_dir / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    empty = clip_dir / "empty.mp4"
    empty.write_bytes(b"")
    full = write_clip(clip_dir / "full_faststart.mp4", seconds=3.0, fps=10, width=72, height=128, gop=10,
                      faststart=True)
    cut = truncate(full, clip_dir / "truncated.mp4", 0.6)
    rows += [
        {"video_id": "corrupt", "video_path": str(corrupt), "duration_s": 3.0},
        {"video_id": "empty", "video_path": str(empty), "duration_s": 3.0},
        {"video_id": "truncated", "video_path": str(cut), "duration_s": 3.0},
        {"video_id": "nofile", "video_path": None, "duration_s": 3.0},
    ]
    bad = {"corrupt": "cannot open container", "empty": "empty file", "truncated": "truncated",
           "nofile": "no media file"}
    return {"rows": rows, "good": good, "bad": bad, "silent": "vid04"}


@pytest.fixture(scope="session")
def make_graph():
    """``make_graph(dir, rows)`` writes ``dir/videos.parquet`` and returns ``dir``."""
    return write_graph


@pytest.fixture
def graph(tmp_path, corpus) -> Path:
    return write_graph(tmp_path / "graph", corpus["rows"])


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A random-weight Whisper checkpoint in the real format (``{"dims", "model_state_dict"}``)."""
    from mdr_graph.media.whisper_features import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("whisper") / "tiny-random.pt", seed=0)
