"""Benchmark the real Whisper base on CPU: embedding, and transcripts by openai-whisper vs faster-whisper.

On real clips (every 5th of the 50 TikTok mp4s in ../shared/data/tiktok-popularity/videos,
so 10, and the two speech wavs in ../shared/data/speech), with the model installed by
``mdr-graph whisper-install`` (the same weights everywhere: the converted openai-whisper
checkpoint and the CTranslate2 directory it was converted from), it times per clip:

- **embedding only**: ``whisper_features.embed`` (openai-whisper encoder over the 30 s window);
- **transcript, openai-whisper**: ``whisper_features.transcribe`` (greedy, temperature 0);
- **transcript, faster-whisper** ``compute_type="int8"`` and ``"float32"``: ``transcribe_faster``
  with the same settings, from the *local* CTranslate2 directory (never a hub name).

Audio decoding (PyAV, first 30 s, 16 kHz mono) is done once, before, and timed apart.
Each case runs once untimed first (warm-up). Both wall time and process CPU time (all
threads) are reported: the machine is shared, and CPU seconds are less sensitive to other
people's load. Every library runs on the same number of threads (``--threads``, default 1,
as in an ``extract`` worker). It also reports how far the faster-whisper transcripts are
from openai-whisper's (word error rate between them) and whether the languages agree.

    .venv/bin/python bench/bench_whisper.py
    .venv/bin/python bench/bench_whisper.py --every 1          # all 50 videos
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, write_section  # noqa: E402

SHARED = (ROOT / ".." / "shared" / "data").resolve()
CASES = ["embedding (openai-whisper)", "transcript, openai-whisper", "transcript, faster-whisper int8",
         "transcript, faster-whisper float32"]


def words(text: str) -> list[str]:
    import re

    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float | None:
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return None
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


def clips(every: int) -> list[Path]:
    videos = sorted((SHARED / "tiktok-popularity" / "videos").glob("*.mp4"))[::every]
    return videos + [SHARED / "speech" / "en.wav", SHARED / "speech" / "vi.wav"]


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def load_avg() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def run(every: int, threads: int) -> dict:
    import torch

    from mdr_graph.media.whisper_features import (embed, load_audio, load_faster_whisper, load_whisper,
                                                  transcribe, transcribe_faster)
    from mdr_graph.runlog import progress

    torch.set_num_threads(threads)
    files = clips(every)
    audio, decode_s = {}, []
    for f in files:
        a, w, _ = timed(lambda: load_audio(f))
        audio[f.name] = a
        decode_s.append(w)
    (model, load_openai, _) = timed(lambda: load_whisper("base"))
    fast = {}
    load_fast = {}
    for ct in ("int8", "float32"):
        fast[ct], load_fast[ct], _ = timed(lambda: load_faster_whisper("base", compute_type=ct, threads=threads))
    fns = {
        CASES[0]: lambda a: (embed(model, a), None),
        CASES[1]: lambda a: transcribe(model, a),
        CASES[2]: lambda a: transcribe_faster(fast["int8"], a),
        CASES[3]: lambda a: transcribe_faster(fast["float32"], a),
    }
    first = next(iter(audio.values()))
    results: dict = {"cases": {}, "clips": [f.name for f in files], "seconds_of_audio": {},
                     "load_s": {"openai-whisper (torch.load + build)": load_openai,
                                "faster-whisper int8": load_fast["int8"],
                                "faster-whisper float32": load_fast["float32"]},
                     "decode_s_median": statistics.median(decode_s), "load_avg_start": load_avg()}
    for name, a in audio.items():
        results["seconds_of_audio"][name] = round(len(a) / 16000, 2)
    for case, fn in fns.items():
        fn(first)  # warm-up: first-call allocations, CTranslate2's packing of int8 weights, ...
        rows = {}
        for name, a in progress(list(audio.items()), desc=case, unit="clip"):
            out, w, c = timed(lambda: fn(a))
            rows[name] = {"wall_s": w, "cpu_s": c, "text": None if out[1] is None else out[0], "language": out[1]}
        results["cases"][case] = rows
    results["load_avg_end"] = load_avg()
    results["threads"] = threads
    return results


def table(res: dict) -> str:
    cases = res["cases"]
    base_case = CASES[1]
    lines = ["| case | wall s / clip (median) | wall s / clip (mean) | CPU s / clip (mean) | vs openai transcript "
             "(CPU) | transcript WER vs openai (mean) | same language |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    base_cpu = statistics.mean(r["cpu_s"] for r in cases[base_case].values())
    for case, rows in cases.items():
        walls = [r["wall_s"] for r in rows.values()]
        cpus = [r["cpu_s"] for r in rows.values()]
        speed, agree, same = "", "", ""
        if case != CASES[0]:
            speed = f"{base_cpu / statistics.mean(cpus):.2f}x"
            if case != base_case:
                ws = [wer(cases[base_case][n]["text"], r["text"]) for n, r in rows.items()]
                ws = [w for w in ws if w is not None]
                agree = f"{statistics.mean(ws):.2f}" if ws else "n/a"
                same = f"{sum(r['language'] == cases[base_case][n]['language'] for n, r in rows.items())}/{len(rows)}"
        lines.append(f"| {case} | {statistics.median(walls):.2f} | {statistics.mean(walls):.2f} | "
                     f"{statistics.mean(cpus):.2f} | {speed} | {agree} | {same} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--every", type=int, default=5, help="take every N-th TikTok video (default 5: 10 of 50)")
    p.add_argument("--threads", type=int, default=1, help="threads for torch and CTranslate2 (default 1)")
    p.add_argument("--json", metavar="FILE", help="also write every timing and transcript here")
    p.add_argument("--no-doc", action="store_true", help="print only; do not touch docs/benchmarks.md")
    args = p.parse_args()
    if not (SHARED / "tiktok-popularity" / "videos").is_dir():
        print(f"needs the real clips in {SHARED}", file=sys.stderr)
        return 2
    subprocess.run([sys.executable, "-m", "mdr_graph", "whisper-install"], check=True)
    res = run(args.every, args.threads)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    n_vid = len(res["clips"]) - 2
    tab = table(res)
    cases = res["cases"]
    samples = []
    for name in res["clips"]:
        o, f = cases[CASES[1]][name], cases[CASES[2]][name]
        cell = lambda t: repr(t[:90]).replace("|", "\\|")  # noqa: E731
        samples.append(f"| {name} | {res['seconds_of_audio'][name]:.1f} | {o['language']} | {cell(o['text'])} | "
                       f"{f['language']} | {cell(f['text'])} |")
    loads = ", ".join(f"{k} {v:.2f} s" for k, v in res["load_s"].items())
    body = f"""## Whisper base on CPU: embedding, and transcripts by openai-whisper vs faster-whisper

The real multilingual Whisper base (`mdr-graph whisper-install`: the registry's CTranslate2 float16 files, and the
openai-whisper checkpoint converted from them, so the same weights in both libraries) on {n_vid} real TikTok videos
(every {args.every}th of the 50 in `../shared/data/tiktok-popularity/videos`) and the two speech wavs
(`../shared/data/speech`): the first 30 s of each, 16 kHz mono. {res['threads']} thread(s) for torch and CTranslate2
alike, as in one `extract` worker. Greedy decoding at temperature 0, no fallback, no previous-text conditioning, no VAD,
in every case. One warm-up call per case, then one timed call per clip. Load average (1, 5, 15 min):
{res['load_avg_start']} at the start, {res['load_avg_end']} at the end: the machine was shared with other engineers'
jobs, so wall times are inflated; process CPU seconds (all threads) are the steadier measure.

{tab}

"vs openai transcript" is openai-whisper's mean CPU seconds per clip for the transcript over the case's.
The transcript WER column compares each faster-whisper transcript with openai-whisper's, word by word
(lower case, no punctuation): how far the two libraries' decodes of the same weights drift apart.

Per clip, embedding + transcript costs the embedding row plus one transcript row (the `extract` default is
openai-whisper; `--transcribe-backend faster-whisper` takes the transcript from faster-whisper int8 and keeps the
openai-whisper embedding). Audio decoding (PyAV, 30 s to 16 kHz mono) took {res['decode_s_median']:.3f} s per clip
(median), not included above. Loading: {loads}.

Transcripts (first 90 characters):

| clip | audio s | openai lang | openai-whisper | faster lang | faster-whisper int8 |
|---|---:|---|---|---|---|
""" + "\n".join(samples)
    print(body)
    if not args.no_doc:
        write_section("whisper", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
