"""Benchmark GAT link-prediction pretraining: seconds per epoch and peak memory, full batch vs edge batches.

Synthetic graphs shaped like the VAN data: about one song per 300 videos, song
popularity Zipf-distributed (exponent 1), the default model (hidden 256, 4 heads, 2
layers). Each case runs in its own subprocess, so peak RSS is that case's alone, under
a memory cap so that a case that does not fit fails cleanly instead of starving the
machine. Also times the streamed embedding export of every video to parquet.

    .venv/bin/python bench/bench_pretrain.py            # all song-video cases (~1 h on 2 shared cores)
    .venv/bin/python bench/bench_pretrain.py --quick    # reference and 100k cases only
    .venv/bin/python bench/bench_pretrain.py --hetero   # song, creator and hashtag graphs (100k and 1M)

The --hetero cases build a HeteroData with all four node types synthetically: songs
Zipf(1) over one song per ~300 videos, creators Zipf(1.1) over one creator per 10 videos,
hashtags Zipf(1) over one tag per 20 videos with 0-4 tags per video (mean 2), plus three
hub tags on 8%, 12% and 15% of the videos (like #fyp, #xuhuong, #viral), none removed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section  # noqa: E402

MEM_CAP_GB = 16          # the machine is shared; no case may take more than this
CASE_TIMEOUT_S = 45 * 60
EDGES_PER_BATCH = 100_000   # supervision links per step (each step on the exact 2-hop subgraph of its pairs)

# name, videos, songs, supervision links per batch (0 = full batch), epochs[, torch threads]
CASES = [
    ("reference 88k x 311, full batch", 88_000, 311, 0, 3),
    ("reference 88k x 311, full batch, 1 thread", 88_000, 311, 0, 3, 1),
    ("100k, full batch", 100_000, 333, 0, 3),
    ("100k, edge batches", 100_000, 333, 10_000, 3),
    ("1M, full batch", 1_000_000, 3_333, 0, 2),
    ("1M, edge batches", 1_000_000, 3_333, EDGES_PER_BATCH, 2),
    ("3M, full batch", 3_000_000, 10_000, 0, 2),
    ("3M, edge batches", 3_000_000, 10_000, EDGES_PER_BATCH, 2),
]
EMBED_CASES = ("1M, edge batches", "3M, edge batches")

# name, videos, supervision links per batch, epochs, hidden
HETERO_CASES = [
    ("100k, full batch", 100_000, 0, 1, 64),
    ("100k, edge batches of 50k links", 100_000, 50_000, 1, 64),
    ("1M, full batch", 1_000_000, 0, 1, 64),
    ("1M, full batch, default width", 1_000_000, 0, 1, 256),
]
HUB_SHARES = (0.08, 0.12, 0.15)


def hetero_graph(num_videos: int, seed: int = 0):
    """A video-song-creator-hashtag HeteroData in the graph contract, with Zipf entities and hub hashtags."""
    import numpy as np
    import torch
    from torch_geometric.data import HeteroData

    from mdr_graph.testing.graphs import synthetic_graph

    rng = np.random.default_rng(seed)
    data = synthetic_graph(num_videos, max(2, num_videos // 300), zipf_exponent=1.0, seed=seed, with_ids=False)

    def zipf_pick(n_items: int, size: int, a: float) -> np.ndarray:
        w = 1.0 / np.arange(1, n_items + 1) ** a
        return rng.permutation(n_items)[rng.choice(n_items, size, p=w / w.sum())]

    n_creators, n_tags = max(2, num_videos // 10), max(10, num_videos // 20)
    creator = zipf_pick(n_creators, num_videos, 1.1)
    data["creator"].x = torch.from_numpy(rng.standard_normal((n_creators, 2)).astype(np.float32))
    data["creator"].feature_names = ["log_followers", "followers_missing"]
    ei = torch.from_numpy(np.stack([np.arange(num_videos), creator]).astype(np.int64))
    data["video", "posted_by", "creator"].edge_index = ei
    data["creator", "rev_posted_by", "video"].edge_index = ei.flip(0).contiguous()
    k = rng.integers(0, 5, num_videos)
    src = [np.repeat(np.arange(num_videos), k)]
    dst = [len(HUB_SHARES) + zipf_pick(n_tags - len(HUB_SHARES), int(k.sum()), 1.0)]
    for h, share in enumerate(HUB_SHARES):
        v = rng.choice(num_videos, int(share * num_videos), replace=False)
        src.append(v)
        dst.append(np.full(v.size, h))
    pairs = np.unique(np.stack([np.concatenate(src), np.concatenate(dst)]), axis=1)
    data["hashtag"].x = torch.from_numpy(rng.standard_normal((n_tags, 1)).astype(np.float32))
    data["hashtag"].feature_names = ["log_chars"]
    ei = torch.from_numpy(pairs.astype(np.int64))
    data["video", "tagged", "hashtag"].edge_index = ei
    data["hashtag", "rev_tagged", "video"].edge_index = ei.flip(0).contiguous()
    return data


# ----------------------------------------------------------------------------- workers (one case per process)

def _worker_train(spec: dict) -> dict:
    import torch

    from mdr_graph.graph_build.graph import save_graph
    from mdr_graph.pretrain.config import GATConfig
    from mdr_graph.testing.graphs import synthetic_graph
    from mdr_graph.pretrain.trainer import train
    from mdr_graph.runlog import peak_rss_mb

    os.environ["MDR_GRAPH_NO_PROGRESS"] = "1"
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    t0 = time.perf_counter()
    data = (hetero_graph(spec["videos"]) if spec.get("hetero")
            else synthetic_graph(spec["videos"], spec["songs"], signal=1.0, zipf_exponent=1.0, seed=0))
    if spec.get("save_graph"):
        save_graph(data, spec["save_graph"])
    rss_graph = peak_rss_mb()
    t1 = time.perf_counter()
    cfg = GATConfig(epochs=spec["epochs"], patience=spec["epochs"], batch_edges=spec["components"],
                    hidden=spec.get("hidden", 256))
    marks: list[tuple[float, float]] = []  # (wall, process CPU) at each epoch end, checkpointing included
    m = train(data, cfg, spec["rundir"],
              on_epoch_end=lambda *_: marks.append((time.perf_counter(), time.process_time())))
    hist = m["history"]
    steady = hist[1:] if len(hist) > 1 else hist
    cpu = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    return {
        "epoch_s": sum(h["train_s"] + h["val_s"] for h in steady) / len(steady),
        "train_s": sum(h["train_s"] for h in steady) / len(steady),
        "epoch_cpu_s": sum(cpu) / len(cpu) if cpu else float("nan"),
        "first_epoch_s": hist[0]["train_s"] + hist[0]["val_s"],
        "graph_s": t1 - t0, "run_s": time.perf_counter() - t1,
        "peak_rss_mb": peak_rss_mb(), "rss_after_graph_mb": rss_graph,
        "batches": m["batch_edges"], "test_auc": m["test_auc"], "degree_baseline_auc": m["degree_baseline_auc"],
        "relations": {r: {k: v[k] for k in ("test_auc", "degree_baseline_auc")} for r, v in m["relations"].items()},
        "num_links": m["num_links"],
        "threads": torch.get_num_threads(),
    }


def _worker_embed(spec: dict) -> dict:
    from mdr_graph.pretrain.embed import export_graph_embeddings
    from mdr_graph.runlog import peak_rss_mb

    os.environ["MDR_GRAPH_NO_PROGRESS"] = "1"
    t0 = time.perf_counter()
    n = export_graph_embeddings(spec["gat"], spec["graph"], spec["out"], batch_videos=spec["batch_videos"])
    size = os.path.getsize(spec["out"])
    os.unlink(spec["out"])
    return {"rows": n, "seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb(), "file_mb": size / 2**20}


def _cap_memory() -> None:
    cap = MEM_CAP_GB * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run_case(kind: str, spec: dict) -> dict:
    """Run one worker in a fresh, memory-capped subprocess; return its result or why it failed."""
    cmd = [sys.executable, __file__, "--worker", kind, json.dumps(spec)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CASE_TIMEOUT_S, preexec_fn=_cap_memory)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {CASE_TIMEOUT_S // 60} min"}
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        oom = "MemoryError" in p.stderr or "memory" in tail.lower() or p.returncode in (-9, 137)
        return {"error": f"out of memory under the {MEM_CAP_GB} GB cap" if oom else f"failed: {tail[:200]}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="only the reference and 100k cases")
    ap.add_argument("--hetero", action="store_true", help="only the song+creator+hashtag graphs (100k, 1M)")
    args = ap.parse_args()
    if args.worker:
        kind, spec = args.worker
        result = (_worker_train if kind == "train" else _worker_embed)(json.loads(spec))
        print(json.dumps(result))
        return 0

    if args.hetero:
        return main_hetero()
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    embeds: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_pretrain_") as tmp:
        for name, V, S, comps, epochs, *threads in CASES:
            if args.quick and V > 100_000:
                continue
            full_1m = results.get("1M, full batch", {})
            if V == 3_000_000 and comps == 0 and "error" in full_1m:
                results[name] = {"error": "not run: the 1M full batch already failed"}
                continue
            if V == 3_000_000 and comps == 0 and "peak_rss_mb" in full_1m:
                est_gb = full_1m["peak_rss_mb"] * 3 / 1024
                if est_gb > MEM_CAP_GB:
                    results[name] = {"error": f"not run: about {est_gb:.0f} GB (3x the 1M full-batch peak) "
                                              f"exceeds the {MEM_CAP_GB} GB cap"}
                    print(name, results[name], flush=True)
                    continue
            rundir = Path(tmp) / name.replace(" ", "_").replace(",", "")
            spec = {"videos": V, "songs": S, "components": comps, "epochs": epochs, "rundir": str(rundir),
                    "threads": threads[0] if threads else 0}
            if name in EMBED_CASES:
                spec["save_graph"] = str(rundir / "graph")
            t = time.perf_counter()
            results[name] = run_case("train", spec)
            results[name]["wall_s"] = time.perf_counter() - t
            print(name, results[name], flush=True)
            if name in EMBED_CASES and "error" not in results[name]:
                embeds[name] = run_case("embed", {"gat": str(rundir / "gat.pt"), "graph": str(rundir / "graph"),
                                                  "out": str(Path(tmp) / "emb.parquet"), "batch_videos": 250_000})
                print("embed", name, embeds[name], flush=True)
    load_after = os.getloadavg()

    lines = [
        "GAT link-prediction pretraining (`mdr-graph pretrain`, default model: hidden 256, 4 heads, 2 layers; "
        "80/10/10 split, 60/40 message/supervision, 0.5 negatives per positive). Synthetic graphs with one song "
        "per ~300 videos and Zipf(1) song popularity; each case in its own process under a "
        f"{MEM_CAP_GB} GB address-space cap. Seconds per epoch = one training pass over every batch plus the "
        "validation pass, averaged over epochs after the first; CPU s/epoch is the process CPU time between "
        "epoch ends (both threads, checkpointing included), which other jobs on the machine inflate less than wall "
        "time (with 2 threads on a loaded machine, OpenMP threads also burn CPU waiting for each other, so the "
        "1-thread reference row is the cleanest measure of the work itself). Peak RSS includes the graph itself. "
        "AUCs are after only 2-3 epochs (full batch = one optimizer step "
        "per epoch): a smoke check, not a quality result.",
        "",
        "| case | s/epoch (wall) | of which training | CPU s/epoch | peak RSS (GB) | notes |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | - | - | - | - | {r['error']} |")
        else:
            lines.append(f"| {name} | {r['epoch_s']:.2f} | {r['train_s']:.2f} | {r['epoch_cpu_s']:.1f} | "
                         f"{r['peak_rss_mb'] / 1024:.2f} | "
                         f"{r['batches'] or 'full'} links per batch; test AUC {r['test_auc']:.3f} vs degree baseline "
                         f"{r['degree_baseline_auc']:.3f}; graph alone {r['rss_after_graph_mb'] / 1024:.2f} GB |")
    ratios = []
    for size in ("100k", "1M", "3M"):
        f, c = results.get(f"{size}, full batch", {}), results.get(f"{size}, edge batches", {})
        if "epoch_s" in f and "epoch_s" in c:
            ratios.append(f"{size}: edge batches take {c['epoch_s'] / f['epoch_s']:.2f}x the wall time "
                          f"({c['epoch_cpu_s'] / f['epoch_cpu_s']:.2f}x the CPU time) per epoch and "
                          f"{c['peak_rss_mb'] / f['peak_rss_mb']:.2f}x the peak memory of full batch")
    if ratios:
        lines += ["", "Side by side: " + "; ".join(ratios) + "."]
    if embeds:
        lines += ["", "Embedding export (`mdr-graph embed`, every video, one full-graph pass, 250k rows per parquet "
                      "row group), in its own process:", "",
                  "| graph | rows | s (load + export) | peak RSS (GB) | file (MB) |", "|---|---|---|---|---|"]
        for name, e in embeds.items():
            if "error" in e:
                lines.append(f"| {name.split(',')[0]} | - | - | - | {e['error']} |")
            else:
                lines.append(f"| {name.split(',')[0]} | {e['rows']:,} | {e['seconds']:.1f} | "
                             f"{e['peak_rss_mb'] / 1024:.2f} | {e['file_mb']:.0f} |")
    busy = max(load_before[0], load_after[0]) > (os.cpu_count() or 1) + 0.5
    lines += ["", f"Load average (1 min): {load_before[0]:.1f} before, {load_after[0]:.1f} after, on "
                  f"{os.cpu_count()} cores" + (" (other jobs shared the CPU: absolute times are inflated; the "
                                               "side-by-side ratios come from one run)." if busy else
                                               " (a quiet machine).")]
    # --quick keeps its own section, so it never hides the full run's 1M / 3M rows.
    name, title = ("pretrain_quick", "## GAT pretraining, reference and 100k only (--quick)") if args.quick \
        else ("pretrain", "## GAT pretraining")
    write_section(name, title + "\n\n" + "\n".join(lines))
    print("\n".join(lines))
    return 0


def main_hetero() -> int:
    """The song+creator+hashtag cases, in their own section of docs/benchmarks.md."""
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_pretrain_hetero_") as tmp:
        for name, V, batch, epochs, hidden in HETERO_CASES:
            spec = {"videos": V, "songs": 0, "components": batch, "epochs": epochs, "hidden": hidden,
                    "hetero": True, "rundir": str(Path(tmp) / name.replace(" ", "_").replace(",", ""))}
            t = time.perf_counter()
            results[name] = run_case("train", spec)
            results[name]["wall_s"] = time.perf_counter() - t
            print(name, results[name], flush=True)
            _write_hetero(results, load_before)  # after every case: a long last case never loses the others
    return 0


def _write_hetero(results: dict[str, dict], load_before: tuple) -> None:
    load_after = os.getloadavg()
    lines = [
        "GAT link-prediction pretraining on every relation (`mdr-graph pretrain --hidden H`: HeteroConv of "
        "GATConv, 4 heads, 2 layers, one decoder per relation; width H as listed, the default is 256) on synthetic "
        "graphs with all four node "
        "types: songs Zipf(1) over one song per ~300 videos; creators Zipf(1.1) over one creator per 10 videos; "
        "hashtags Zipf(1) over one tag per 20 videos, 0-4 per video, plus three hub tags on 8%, 12% and 15% of "
        "the videos, kept (no hub rule applied). Full batch: one step per epoch on the whole graph. Edge batches "
        "(`--batch-edges`): each step scores a batch of supervision links and their negatives on the exact 2-hop "
        "subgraph around them (`pretrain/batching.py`); with ~300 videos per song and hub tags, that subgraph is "
        f"nearly the whole graph, so edge batches repeat near-full passes. Each case in its own process under a {MEM_CAP_GB} GB "
        "address-space cap. s/epoch = training pass + validation pass; with one epoch there is no steady-state "
        "epoch, so it includes the first epoch's one-time costs. AUCs after 1-2 epochs are a smoke check, not a "
        "quality result.",
        "",
        "| case | hidden | links (uses / posted_by / tagged) | s/epoch (wall) | of which training | peak RSS (GB) | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    hidden = {c[0]: c[4] for c in HETERO_CASES}
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | {hidden[name]} | - | - | - | - | {r['error']} |")
            continue
        nl = r["num_links"]
        r["batches"] = r["batches"] or "all"
        aucs = "; ".join(f"{k} {v['test_auc']:.3f} vs degree {v['degree_baseline_auc']:.3f}"
                         for k, v in r["relations"].items())
        lines.append(f"| {name} | {hidden[name]} | {nl['uses']:,} / {nl['posted_by']:,} / {nl['tagged']:,} | {r['epoch_s']:.0f} | "
                     f"{r['train_s']:.0f} | {r['peak_rss_mb'] / 1024:.2f} | {r['batches']} links per step; "
                     f"test AUC {aucs}; graph alone {r['rss_after_graph_mb'] / 1024:.2f} GB |")
    lines += ["", "With pyg-lib (or torch-sparse) installed, PyG's `LinkNeighborLoader` would instead sample a fixed "
                  "number of neighbours per hop (e.g. `num_neighbors=[20, 10]`), so a hub contributes 20 videos to a "
                  "step instead of all of them: bounded, approximate steps. Neither installs here, so this exact "
                  "k-hop batching (no sampling, same result as full batch for the scored pairs) is what is measured.",
              "", f"Load average (1 min): {load_before[0]:.1f} before, {load_after[0]:.1f} after, on "
                  f"{os.cpu_count()} cores" + (" (other jobs shared the CPU: absolute times are inflated)."
                                               if max(load_before[0], load_after[0]) > (os.cpu_count() or 1) + 0.5
                                               else " (a quiet machine).")]
    write_section("pretrain_hetero", "## GAT pretraining on song, creator and hashtag graphs\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
