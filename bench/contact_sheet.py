"""Contact sheet of extracted frames, to check by eye what ``mdr-graph extract`` stored.

One row per video: the frames exactly as stored in FEATDIR (the model's input, scaled up
without smoothing so each stored pixel stays visible), then the same moments decoded
whole (``fit="letterbox"``, the full picture on black bars) from the video file. Look for:
the picture of the video (not noise, not a green or grey plate), the right way up
(phone videos carry a display rotation), and nothing stretched (a face keeps its shape;
the whole-frame column shows the true aspect ratio, and a stored crop is its centre square).

    .venv/bin/python bench/contact_sheet.py --features FEATDIR --out sheet.png
    .venv/bin/python bench/contact_sheet.py --features FEATDIR --videos 8 --scale 2 --out sheet.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REFERENCE_PX = 128   # long side of the whole-frame reference images
GAP = 4              # pixels between images
LABEL_H = 14         # pixels above each row for its caption


def stored_rows(featdir: Path, n_videos: int, ids: list[str] | None = None) -> list[dict]:
    """Videos ``ids`` (default: the first ``n_videos`` with features): id, file, stored frames and their times."""
    import pandas as pd

    from mdr_graph.media.store import PART_COLUMNS, FeatureStore, dedupe, read_parts

    store = FeatureStore(featdir)
    parts = dedupe(read_parts(featdir))[PART_COLUMNS]
    paths = dict(zip(parts["video_id"].astype(str), parts["video_path"]))
    rows = []
    for vid in ids or store.ids[:n_videos]:
        if vid not in store:
            raise SystemExit(f"{featdir}: video {vid} has no features ({store.error(vid) or 'not in the index'})")
        item = store.get(vid)
        path = paths.get(vid)
        rows.append({"video_id": vid, "path": None if pd.isna(path) else str(path),
                     "frames": item["frames"].numpy(), "times": item["frame_times"].numpy()})
    return rows


def reference_frames(path: str, times: np.ndarray) -> list[np.ndarray]:
    """The whole picture on screen at each stored frame's time, letterboxed into a square, HWC uint8."""
    import av

    from mdr_graph.media.decode import fit_square

    out = []
    with av.open(path) as c:
        vs = c.streams.video[0]
        start = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        frames = c.decode(vs)
        prev = None
        for t in times:  # times are increasing: one decode pass picks every frame
            for f in frames:
                if f.time is not None and f.time - start > t + 1e-4:
                    pending = f
                    break
                prev = f
            else:
                pending = None
            out.append(fit_square(prev if prev is not None else pending, REFERENCE_PX, "letterbox").transpose(1, 2, 0))
            if pending is not None:
                prev = pending
    return out


def upscale(img_chw: np.ndarray, scale: int) -> np.ndarray:
    hwc = img_chw.transpose(1, 2, 0)
    return np.repeat(np.repeat(hwc, scale, axis=0), scale, axis=1)


def compose(rows: list[dict], scale: int, with_reference: bool):
    """One PIL image: per row a caption, the stored frames, then (optionally) the whole frames."""
    from PIL import Image, ImageDraw

    tiles = []
    for r in rows:
        stored = [upscale(f, scale) for f in r["frames"]]
        ref = reference_frames(r["path"], r["times"]) if with_reference and r["path"] else []
        tiles.append((r, stored, ref))
    width = max(sum(t.shape[1] + GAP for t in s + ref) + GAP * 3 for _, s, ref in tiles)
    height = sum(LABEL_H + max(t.shape[0] for t in s + ref) + GAP for _, s, ref in tiles) + GAP
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = GAP
    for r, stored, ref in tiles:
        times = ", ".join(f"{t:.1f}" for t in r["times"])
        draw.text((GAP, y), f"{r['video_id']}  stored {stored[0].shape[1] // scale}px x{scale} at {times} s"
                  + ("  |  whole frame (letterbox)" if ref else ""), fill=(0, 0, 0))
        y += LABEL_H
        x = GAP
        for i, t in enumerate(stored + ref):
            if i == len(stored) and ref:
                x += GAP * 3  # a wider gap between the stored frames and the references
            sheet.paste(Image.fromarray(np.ascontiguousarray(t)), (x, y))
            x += t.shape[1] + GAP
        y += max(t.shape[0] for t in stored + ref) + GAP
    return sheet


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, metavar="FEATDIR", help="a feature directory from `mdr-graph extract`")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--videos", type=int, default=6, help="rows (videos) on the sheet (default 6)")
    p.add_argument("--ids", help="comma-separated video ids to show instead of the first --videos")
    p.add_argument("--scale", type=int, default=2, help="stored pixels are shown this many times larger (default 2)")
    p.add_argument("--no-reference", action="store_true", help="only the stored frames, no whole-frame decode")
    args = p.parse_args(argv)
    from mdr_graph.io import atomic_path

    ids = [v.strip() for v in args.ids.split(",") if v.strip()] if args.ids else None
    rows = stored_rows(Path(args.features), args.videos, ids)
    if not rows:
        print(f"{args.features}: no video with features", file=sys.stderr)
        return 2
    sheet = compose(rows, max(1, args.scale), not args.no_reference)
    with atomic_path(args.out) as tmp:
        sheet.save(tmp, format="PNG")
    print(f"wrote {args.out}: {len(rows)} videos, {sheet.width}x{sheet.height}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
