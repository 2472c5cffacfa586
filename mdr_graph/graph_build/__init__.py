"""Ingest scraped metadata and build the song-video graph.

Public API (imported lazily, so ``import mdr_graph.graph_build.schema`` stays light):

- :func:`build_graph` (``.build``): inputs -> a complete graph directory; returns the summary.
- :func:`ingest` (``.ingest``): metadata files -> ``(videos_df, rejects)``, no graph.
- :func:`read_records` (``.formats``): one file -> its records as raw canonical dicts.
- :func:`graph_stats` (``.stats``): what ``mdr-graph graph-stats`` prints, as a dict.
"""

from __future__ import annotations

_LAZY = {
    "build_graph": "mdr_graph.graph_build.build",
    "BuildGraphConfig": "mdr_graph.graph_build.build",
    "ingest": "mdr_graph.graph_build.ingest",
    "ingest_files": "mdr_graph.graph_build.ingest",
    "REJECT_REASONS": "mdr_graph.graph_build.ingest",
    "read_records": "mdr_graph.graph_build.formats",
    "graph_stats": "mdr_graph.graph_build.stats",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
