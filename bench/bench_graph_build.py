"""Benchmark `build-graph` on 1M and 3M synthetic tiktok-scraper records against parsing alone.

The metadata is generated here (never taken from the real data): records shaped like
tiktok-scraper's output (same keys, URL-length strings), songs drawn by Zipf's law (P(rank r) ~ 1/r
over a catalogue of n/2 songs) so a few songs carry many videos and most carry one, and 0.5% repeated videos plus 0.1%
broken records so the reject path runs too.

Each case runs in its own subprocess so peak memory (ru_maxrss) is that case's alone:
- parse: ``json.load`` of the whole file (the baseline the target is set against);
- stream: the streaming reader alone, record by record (what build-graph uses);
- build: ``build_graph`` end to end (ingest, parquet tables, graph.pt, summary).

With ``--hetero`` the records also carry creators (Zipf's law over n/4 accounts, with
the account counts fans/following/heart/video/digg) and hashtags (Zipf's law over a
vocabulary of n/5 tags, plus the hub tags #fyp 12%, #foryou 10%, #viral 9% and #xuhuong
8% of videos), and the ``build-all`` case builds every node type
(``--nodes song,creator,hashtag``) next to ``build`` (``--nodes song``) on the same file.

Usage: python bench/bench_graph_build.py [--sizes 1000000,3000000] [--workdir DIR] [--keep]
       python bench/bench_graph_build.py --hetero --sizes 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section  # noqa: E402

CASES = {
    "parse": "import json\nwith open(PATH, encoding='utf-8') as f:\n    n = len(json.load(f)['collector'])",
    "stream": ("from mdr_graph.graph_build.jsonstream import iter_json\n"
               "n = sum(1 for _ in iter_json(PATH))"),
    "build": ("from mdr_graph.graph_build.build import build_graph\n"
              "s = build_graph([PATH], OUT)\nn = s['input_records']\n"
              "assert s['videos'] + s['rejected'] == n, s\n"
              "extra = {k: s[k] for k in ('videos', 'songs', 'rejected')}"),
    "build-all": ("from mdr_graph.graph_build.build import build_graph\n"
                  "s = build_graph([PATH], OUT, nodes='song,creator,hashtag')\nn = s['input_records']\n"
                  "assert s['videos'] + s['rejected'] == n, s\n"
                  "extra = {k: s[k] for k in ('videos', 'songs', 'rejected', 'nodes', 'edges_by_type', "
                  "'components', 'largest_component')}\n"
                  "extra['hubs'] = [(h['hashtag'], h['share']) for h in s['hashtag_hubs']]"),
}
HUB_TAGS = {"fyp": 0.12, "foryou": 0.10, "viral": 0.09, "xuhuong": 0.08}   # share of videos each tags

# Peak memory is VmHWM (this process's own high-water mark). ru_maxrss is not used: on
# Linux a child inherits the parent's maxrss at fork, so a small case would report the
# benchmark driver's memory instead of its own.
_RUNNER = """
import sys, time, json
PATH, OUT = sys.argv[1], sys.argv[2]
extra = {{}}
t0 = time.perf_counter()
{code}
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "records": n, "peak_rss_mb": hwm / 1024, **extra}}))
"""


def _url(rng: np.random.Generator, host: str, n: int) -> list[str]:
    tokens = rng.integers(0, 16**12, size=(n, 3))
    return [f"https://{host}.tiktokcdn.com/obj/tos-alisg-p-0037/{a:012x}{b:012x}?x-expires=1608649200&"
            f"x-signature={c:012x}%3D" for a, b, c in tokens]


def _zipf_sampler(n_items: int, exponent: float = 1.0):
    """Draw item indices with P(rank r) ~ r^-exponent, popular items spread over the id range."""
    cdf = np.cumsum(np.arange(1, n_items + 1, dtype=np.float64) ** -exponent)
    cdf /= cdf[-1]

    def draw(rng: np.random.Generator, size) -> np.ndarray:
        r = np.minimum(np.searchsorted(cdf, rng.random(size)), n_items - 1)
        return (r * 2654435761 + 12345) % n_items
    return draw


def generate(path: Path, n: int, seed: int = 0, chunk: int = 100_000, hetero: bool = False) -> None:
    """Write ``n`` tiktok-scraper records as ``{"headers": ..., "collector": [...]}``.

    ``hetero``: creators and hashtags drawn by Zipf's law, with hub tags (see the module doc).
    """
    rng = np.random.default_rng(seed)
    hrng = np.random.default_rng([seed, 1])  # the creator/hashtag draws, apart from the song-only stream
    creator_draw = _zipf_sampler(max(1, n // 4))
    n_tags = max(1, n // 5)
    tag_draw = _zipf_sampler(n_tags)
    n_songs = max(1, n // 2)
    # song popularity follows Zipf's law over a finite catalogue: P(rank r) ~ 1/r
    song_cdf = np.cumsum(1.0 / np.arange(1, n_songs + 1))
    song_cdf /= song_cdf[-1]
    n_authors = max(1, n // 3)
    words = ["dance", "fyp", "viral", "love", "funny", "cat", "duet", "trend", "music", "foryou", "art", "food"]
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write('{"headers":{"user-agent":"Mozilla/5.0","referer":"https://www.tiktok.com/"},"collector":[')
        first = True
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            song = np.minimum(np.searchsorted(song_cdf, rng.random(m)), n_songs - 1)
            song = (song * 2654435761 + 12345) % n_songs               # spread popular songs over the id range
            author = rng.integers(0, n_authors, size=m)
            create = 1_600_000_000 + rng.integers(0, 8_000_000, size=m)
            plays = rng.lognormal(9, 2, size=m).astype(np.int64)
            likes = (plays * rng.uniform(0.01, 0.2, size=m)).astype(np.int64)
            shares = (plays * rng.uniform(0, 0.01, size=m)).astype(np.int64)
            comments = (plays * rng.uniform(0, 0.01, size=m)).astype(np.int64)
            dur = rng.integers(5, 60, size=m)
            ntag = rng.integers(0, 6, size=m)
            tagw = rng.integers(0, len(words), size=(m, 5))
            covers = _url(rng, "p16-sign-sg", m)
            vids = start + np.arange(m)
            dup = rng.random(m) < 0.005
            broken = rng.random(m) < 0.001
            if hetero:
                author = creator_draw(hrng, m)
                k_topic = hrng.integers(0, 5, size=m)
                topic = tag_draw(hrng, (m, 4))
                hub = {t: hrng.random(m) < p for t, p in HUB_TAGS.items()}
                fans = hrng.lognormal(8, 2.5, size=m).astype(np.int64)
            out = []
            for i in range(m):
                vid = int(vids[i]) if not dup[i] or vids[i] == 0 else int(rng.integers(0, vids[i]))
                tags = [{"id": str(1000 + tagw[i, k]), "name": words[tagw[i, k]], "title": "", "cover": ""}
                        for k in range(ntag[i])]
                rec = {
                    "id": str(6_900_000_000_000_000_000 + vid),
                    "text": "so good " + " ".join("#" + t["name"] for t in tags),
                    "createTime": int(create[i]),
                    "authorMeta": {"id": str(6_800_000_000_000_000_000 + int(author[i])), "secUid": "MS4wLjABAAAA" +
                                   covers[i][-40:], "name": f"user{author[i]}", "nickName": f"User {author[i]}",
                                   "verified": False, "signature": "hello there", "avatar": covers[i]},
                    "musicMeta": {"musicId": str(6_700_000_000_000_000_000 + int(song[i])),
                                  "musicName": f"Song {song[i]}", "musicAuthor": f"Artist {song[i] % 5000}",
                                  "musicOriginal": bool(song[i] % 3 == 0), "playUrl": covers[i],
                                  "coverThumb": covers[i], "coverMedium": covers[i], "coverLarge": covers[i]},
                    "covers": {"default": covers[i], "origin": covers[i], "dynamic": covers[i]},
                    "webVideoUrl": f"https://www.tiktok.com/@user{author[i]}/video/{vid}",
                    "videoUrl": covers[i] + "&mime_type=video_mp4&rc=M2pwPGprb3ZweTMzOzczM0ApNjlnaTlnZGUzN2llaGVm",
                    "videoUrlNoWaterMark": "",
                    "videoMeta": {"height": 1024, "width": 576, "duration": int(dur[i])},
                    "diggCount": int(likes[i]), "shareCount": int(shares[i]), "playCount": int(plays[i]),
                    "commentCount": int(comments[i]), "downloaded": False, "mentions": [], "hashtags": tags,
                }
                if hetero:
                    names = [f"tag{topic[i, k]}" for k in range(k_topic[i])] + [t for t in HUB_TAGS if hub[t][i]]
                    rec["hashtags"] = [{"id": str(1000 + j), "name": t, "title": "", "cover": ""}
                                       for j, t in enumerate(names)]
                    rec["text"] = "so good " + " ".join("#" + t for t in names)
                    a = int(author[i])  # the account's counts depend on the account only
                    rec["authorMeta"].update(fans=int(fans[i] % 10_000_000) + a % 997, following=a % 1500,
                                             heart=(a * 7919) % 50_000_000, video=1 + a % 400, digg=a % 9000)
                if broken[i]:
                    del rec["playCount"]
                out.append(json.dumps(rec, ensure_ascii=False))
            f.write(("" if first else ",") + ",".join(out))
            first = False
        f.write('],"zip":"trend"}')
    os.replace(tmp, path)


def run_case(case: str, path: Path, out: Path) -> dict:
    code = _RUNNER.format(code=CASES[case])
    env = dict(os.environ, MDR_GRAPH_NO_PROGRESS="1")
    res = subprocess.run([sys.executable, "-c", code, str(path), str(out)], capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(f"{case} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,3000000", help="record counts, comma-separated")
    ap.add_argument("--workdir", default=None, help="where to write the synthetic files (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--no-write", action="store_true", help="print the results without updating docs/benchmarks.md")
    ap.add_argument("--hetero", action="store_true",
                    help="records with creators and hashtags (Zipf, with hubs); cases build and build-all")
    ap.add_argument("--generate", metavar="PATH", help=argparse.SUPPRESS)  # internal: write one file and exit
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.generate:
        generate(Path(args.generate), sizes[0], hetero=args.hetero)
        return 0
    if args.hetero:
        return main_hetero(args, sizes)
    load_before = os.getloadavg()[0]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-graph-build-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for n in sizes:
            path = work / f"synthetic-{n}.json"
            if not path.exists():
                t = time.perf_counter()
                # in a child process, so the generator's memory never counts against a case
                subprocess.run([sys.executable, __file__, "--generate", str(path), "--sizes", str(n)], check=True)
                print(f"generated {n:,} records ({path.stat().st_size / 1e9:.2f} GB) "
                      f"in {time.perf_counter() - t:.0f} s", flush=True)
            # json.load of the 3M file needs ~3x the RAM of the 1M one; it is only the baseline at 1M.
            cases = ["parse", "stream", "build"] if n <= 1_000_000 else ["stream", "build"]
            res = {}
            for case in cases:
                out = work / f"graph-{n}"
                shutil.rmtree(out, ignore_errors=True)
                res[case] = run_case(case, path, out)
                print(f"{n:>10,} {case:<7} {res[case]['seconds']:8.1f} s  peak {res[case]['peak_rss_mb']:9.0f} MB",
                      flush=True)
                shutil.rmtree(out, ignore_errors=True)
            rows.append((n, path.stat().st_size, res))
            if not args.keep:
                path.unlink()
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    load_after = os.getloadavg()[0]
    busy = max(load_before, load_after) > (os.cpu_count() or 1) + 0.5
    lines = ["### build-graph on synthetic tiktok-scraper metadata", "",
             "Synthetic records shaped like tiktok-scraper's (Zipf's-law song popularity, 0.5% repeated videos, "
             "0.1% without play counts), metadata only. Each case in its own process; peak = the process's VmHWM. "
             "`parse` is `json.load` of the file, `stream` the streaming reader alone, `build` the whole "
             "`build_graph` (ingest, videos/songs parquet, graph.pt, summary). Target: build <= 3x parse. "
             f"1-min load average {load_before:.1f} at the start, {load_after:.1f} at the end on "
             f"{os.cpu_count()} cores" + (": other jobs shared the machine, so absolute times are slower than on an "
                                          "idle one; the ratio is what the cases share." if busy else
                                          " (a quiet machine)."), "",
             "| records | file | case | time (s) | peak RSS (GB) | time / parse | time / stream |",
             "|---:|---:|---|---:|---:|---:|---:|"]
    for n, size, res in rows:
        parse, stream = res.get("parse", {}).get("seconds"), res["stream"]["seconds"]
        for case, r in res.items():
            vs_parse = f"{r['seconds'] / parse:.2f}x" if parse and case != "parse" else ""
            vs_stream = f"{r['seconds'] / stream:.2f}x" if case == "build" else ""
            lines.append(f"| {n:,} | {size / 1e9:.2f} GB | {case} | {r['seconds']:.1f} | "
                         f"{r['peak_rss_mb'] / 1024:.2f} | {vs_parse} | {vs_stream} |")
    lines += ["", "Build results: " + "; ".join(
        f"{n:,} records -> {r['build']['videos']:,} videos, {r['build']['songs']:,} songs, "
        f"{r['build']['rejected']:,} rejected" for n, _, r in rows) + ".",
        "`json.load` is not run on the 3M file: it would need about 21 GB (3x the 1M peak), which is why "
        "build-graph streams. At 3M the build is compared with the streaming parse of the same file."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("graph_build", body)
    return 0


def main_hetero(args: argparse.Namespace, sizes: list[int]) -> int:
    """Creators and hashtags: ``build`` (--nodes song) and ``build-all`` (every node type) on one file."""
    load_before = os.getloadavg()[0]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-graph-build-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for n in sizes:
            path = work / f"synthetic-hetero-{n}.json"
            if not path.exists():
                t = time.perf_counter()
                subprocess.run([sys.executable, __file__, "--generate", str(path), "--sizes", str(n), "--hetero"],
                               check=True)
                print(f"generated {n:,} records ({path.stat().st_size / 1e9:.2f} GB) "
                      f"in {time.perf_counter() - t:.0f} s", flush=True)
            res = {}
            for case in ("build", "build-all"):
                out = work / f"graph-{n}"
                shutil.rmtree(out, ignore_errors=True)
                res[case] = run_case(case, path, out)
                print(f"{n:>10,} {case:<9} {res[case]['seconds']:8.1f} s  peak {res[case]['peak_rss_mb']:9.0f} MB",
                      flush=True)
                shutil.rmtree(out, ignore_errors=True)
            rows.append((n, path.stat().st_size, res))
            if not args.keep:
                path.unlink()
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()[0]
    lines = ["### build-graph with creators and hashtags (every node type)", "",
             "Synthetic tiktok-scraper records as above, plus creators (Zipf's law over n/4 accounts, with "
             "fans/following/heart/video/digg) and hashtags (0-4 topic tags per video by Zipf's law over n/5 tags, "
             "and the hub tags #fyp 12%, #foryou 10%, #viral 9%, #xuhuong 8% of videos). `build` is "
             "`--nodes song`, `build-all` is `--nodes song,creator,hashtag` (creators.parquet, hashtags.parquet, "
             "hub rule, components over the whole graph). Budget: 8 GB. Each case in its own process; peak = "
             f"VmHWM. 1-min load average {load_before:.1f} at the start, {load_after:.1f} at the end on "
             f"{os.cpu_count()} cores (the machine is shared; times are wall-clock under that load).", "",
             "| records | file | case | time (s) | peak RSS (GB) | time / build |", "|---:|---:|---|---:|---:|---:|"]
    for n, size, res in rows:
        for case, r in res.items():
            rel = f"{r['seconds'] / res['build']['seconds']:.2f}x" if case != "build" else ""
            lines.append(f"| {n:,} | {size / 1e9:.2f} GB | {case} | {r['seconds']:.1f} | "
                         f"{r['peak_rss_mb'] / 1024:.2f} | {rel} |")
    for n, _, res in rows:
        r = res["build-all"]
        lines += ["", f"{n:,} records -> nodes {r['nodes']}, edges {r['edges_by_type']}; "
                      f"{r['components']:,} components, the largest {r['largest_component']:,} nodes; "
                      f"hub hashtags dropped: " + ", ".join(f"#{h} ({100 * s:.1f}%)" for h, s in r["hubs"]) + "."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("graph_build_hetero", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
