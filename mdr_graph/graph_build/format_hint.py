"""Say when a file was probably read with the wrong ``--format``.

A tiktok-scraper file read as ``tiktok-api`` is valid JSON whose records all lack the
fields that format maps, so every record is rejected for the same reason (usually
``missing_counts``) and nothing says why. When nearly every record of a file fails the
same way, this reads the file's first records with format detection and names the
format it looks like.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

# Reasons that follow from reading fields under the wrong names, not from bad values.
_SHAPE_REASONS = frozenset({"missing_video_id", "missing_counts", "bad_timestamp",
                            "not_a_video", "not_a_record"})
_NEARLY_ALL = 0.9


def format_hint(path: str | Path, used: str, records: int, reasons: Counter,
                columns: dict[str, str] | None = None) -> str | None:
    """A one-line hint when nearly every record of ``path`` was rejected for one shape reason."""
    if not records or not reasons:
        return None
    reason, n = reasons.most_common(1)[0]
    if reason not in _SHAPE_REASONS or n < _NEARLY_ALL * records:
        return None
    share = f"{n:,} of {records:,} records were rejected as {reason}"
    guess = _detected(Path(path), columns)
    if guess is None:
        return f"{share}: check --format (read as {used})" + (" and --columns" if used == "csv" else "")
    fmt, why = guess
    if fmt == used:  # the records themselves lack the field: their rejects say so
        return None
    return f"{share}: the file looks like {fmt} ({why}), not {used}; try --format {fmt}"


def _detected(path: Path, columns: dict[str, str] | None) -> tuple[str, str] | None:
    from mdr_graph.errors import UserError
    from mdr_graph.graph_build.formats import read_records

    try:
        src = read_records(path, "auto", columns)
    except (UserError, OSError, ValueError):
        return None
    return src.format, src.detected
