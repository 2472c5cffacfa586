"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MDR_GRAPH_NO_PROGRESS", "1")

ROOT = Path(__file__).resolve().parents[1]
# The real scraped metadata lives beside the project root, never inside it.
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project root; tests that need it skip, saying so, when it is absent."""
    if not (SHARED_DATA / "tiktok-scraper" / "trending-2020-12.json").exists():
        pytest.skip(f"needs the real scraped metadata in {SHARED_DATA} (../shared/data beside the project root)")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """One torch thread for the whole session, module-scoped fixtures included.

    CI has two cores and the tests are small: a second thread only adds contention, and
    a fixed thread count keeps float32 results identical between a fixture and a test.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def real_videos(shared_data) -> Path:
    """The real TikTok mp4 files of ``../shared/data/tiktok-popularity/videos``; skips, saying so, when absent."""
    folder = shared_data / "tiktok-popularity" / "videos"
    if not any(folder.glob("*.mp4")):
        pytest.skip(f"needs the real TikTok videos in {folder}")
    return folder
