"""The ablations of the full model: which part earns its keep?

Each ablation is the full co-attention model with one thing changed, trained on the
same splits and seeds, so its Spearman can be read against the full model's row:

- ``drop-<m>``: one modality removed (for each modality of the full model);
- ``positional-encoding-off``: the ViT's hierarchical frame/patch encoding switched off;
- ``fbank-instead-of-mfcc``: log filter banks in place of MFCC (the reference design
  compared both and preferred MFCC);
- ``frames-<n>``: ``n`` sampled frames per video instead of the feature store's count;
  the frames are re-extracted into ``DIR/ablations/features-frames<n>`` with otherwise
  identical extraction settings (resumable, like every extraction);
- ``guided`` / ``stacked``: the other co-attention variant.

Planning (:func:`plan_ablations`) is pure; :func:`frames_store` does the extraction.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mdr_graph import modalities as registry
from mdr_graph.compare.plan import Available, RunSpec
from mdr_graph.errors import UserError


def default_frame_counts(stored: int | None) -> list[int]:
    """Half and double the stored frame count (1 and 4 for the default 2)."""
    if not stored:
        return []
    return sorted({max(1, stored // 2), stored * 2} - {stored})


def frames_dir(out: str | Path, n: int) -> Path:
    return Path(out) / "ablations" / f"features-frames{n}"


def plan_ablations(mods: list[str], avail: Available, fusion: str, out: str | Path,
                   frame_counts: list[int] | None = None) -> list[RunSpec]:
    """The ablation runs of the full model (``mods``, ``fusion``), each runnable or with its skip reason."""
    base = {"model": "coattention", "fusion": fusion}
    specs: list[RunSpec] = []

    def add(name: str, change: str, modalities: list[str], skip: str | None = None, **overrides) -> None:
        specs.append(RunSpec(name, "neural", list(modalities), f"co-attention ({fusion}), {change}",
                             overrides={**base, **overrides}, skip=skip, group="ablation", change=change))

    for m in mods:
        rest = [x for x in mods if x != m]
        add(f"drop-{m}", f"without {m}", rest, None if rest else "the full model has only this modality")

    with_pe = [s.name for s in registry.specs() if "positional_encoding" in s.knobs]
    pe_skip = None if set(with_pe) & set(mods) else \
        f"positional encoding acts on the frame/patch tokens of {' and '.join(with_pe)}; " \
        f"{' and '.join(with_pe)} {'is' if len(with_pe) == 1 else 'are'} not used"
    add("positional-encoding-off", "no positional encoding", mods, pe_skip, positional_encoding=False)

    if "mfcc" not in mods:
        fb_skip = "mfcc is not among the full model's modalities"
    else:
        fb_skip = avail.missing("fbank")
    add("fbank-instead-of-mfcc", "log filter banks instead of MFCC",
        [("fbank" if x == "mfcc" else x) for x in mods], fb_skip)

    counts = default_frame_counts(avail.frames) if frame_counts is None else list(frame_counts)
    frame_mods = [s.name for s in registry.specs() if s.store_key == "frames"]
    if not set(frame_mods) & set(mods):
        add("frames", "number of sampled frames", mods, f"no frame modality ({', '.join(frame_mods)}) is used")
    elif not avail.has_media_files:
        add("frames", "number of sampled frames", mods, "the video files are not available to re-extract frames")
    else:
        for n in counts:
            if n == avail.frames:
                continue
            add(f"frames-{n}", f"{n} frame{'s' if n != 1 else ''} per video instead of {avail.frames}", mods,
                features=str(frames_dir(out, n).resolve()))

    other = "guided" if fusion == "stacked" else "stacked"
    add(other, f"{other} co-attention instead of {fusion}", mods, None if len(mods) >= 2 else
        "co-attention variants differ only with two or more modalities", fusion=other)
    return specs


def frames_store(avail: Available, n: int, out: str | Path, workers: int = 1) -> Path:
    """Extract features with ``n`` frames (all other settings as the main store) into the ablation dir."""
    from mdr_graph.media.extract import run_extract
    from mdr_graph.media.store import FeatureStore

    if not avail.features:
        raise UserError("the frames ablation needs --features (its extraction settings are reused)")
    base = FeatureStore(avail.features).config
    cfg = dataclasses.replace(base, frames=int(n))
    dest = frames_dir(out, n)
    run_extract(avail.graph, dest, cfg, workers=workers)
    return dest
