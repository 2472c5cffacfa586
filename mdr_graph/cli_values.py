"""Counts and times given on the command line, read by the same parsers as scraped records.

``predict --author-followers 12.3K`` must mean what a scraped ``fans: "12.3K"`` means to
``build-graph``, and be refused where build-graph rejects it (negative, too large), so
both go through :mod:`mdr_graph.graph_build.parse`; only the error type differs (a
one-line :class:`UserError` naming the flag instead of a per-record reject).
"""

from __future__ import annotations

from mdr_graph.errors import UserError


def count_option(flag: str, text: str | None) -> int | None:
    """A non-negative count as TikTok writes it ("1234", "12.3K", "1.4M"), or None when absent."""
    from mdr_graph.graph_build.parse import parse_count

    try:
        n = parse_count(text)
    except ValueError as e:
        raise UserError(f"{flag} {text!r}: {e} (write e.g. 1234, 12.3K or 1.4M)") from None
    if n is not None and n < 0:
        raise UserError(f"{flag} {text!r}: a count cannot be negative")
    return n


def time_option(flag: str, text: str | None) -> int | None:
    """Nanoseconds since the epoch (UTC) from ISO 8601 text or epoch seconds, or None when absent."""
    from mdr_graph.graph_build.parse import parse_timestamp

    try:
        return parse_timestamp(text)
    except ValueError as e:
        raise UserError(f"{flag} {text!r}: {e}") from None
