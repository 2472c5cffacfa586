"""Write a synthetic short-video corpus that looks like a real scrape, with a planted popularity signal.

DIR/videos/<id>.mp4 are real H.264 (or MPEG-4) + AAC clips, 9:16, a few seconds each;
DIR/metadata.json is a tiktok-scraper dump (plus authorMeta.fans and
musicMeta.musicUses); DIR/truth.csv is the answer key. Popularity
log((plays+shares+comments+1)/age_days) is planted from four documented parts, each
visible to one modality: the song (a per-song lift, shown by its platform use count
and its recognisable melody), the picture (brightness and the motion of a disc), the
sound (loudness and the pitch of a voice tone) and the metadata (followers, posting
hour, hashtag count), plus noise. See docs/synthetic-corpus.md.

The same settings give the same corpus, byte for byte, whatever --workers is. Re-running
into a partly written DIR with the same settings resumes it; a DIR holding anything else
is refused unless --force.

example:
  mdr-graph synth --out corpus --videos 200 --songs 50 --seed 0
  mdr-graph build-graph corpus/metadata.json --media-root corpus/videos --out graph
"""

from __future__ import annotations

import importlib

# Names resolve on first use (PEP 562), so that `python -m mdr_graph.synth.workers`, the
# encoder subprocess, starts without importing pandas and the CLI.
_EXPORTS = {
    "add_arguments": "mdr_graph.synth.cli", "main": "mdr_graph.synth.cli",
    "SynthConfig": "mdr_graph.synth.config",
    "generate_corpus": "mdr_graph.synth.corpus", "load_truth": "mdr_graph.synth.corpus",
    "write_corpus": "mdr_graph.synth.corpus",
    "CorpusPlan": "mdr_graph.synth.plan", "plan_corpus": "mdr_graph.synth.plan",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
