"""Benchmark GAT pretraining under torchrun (DDP, gloo) against one process, side by side.

The same synthetic graph (one song per ~300 videos, Zipf(1) song popularity, the default
model) and the same link batches are pretrained three ways, each in its own
process tree under a per-process memory cap:

- one process, 2 torch threads (the default on this 2-core machine);
- one process, 1 torch thread;
- ``torchrun --standalone --nproc_per_node=2``, 1 thread per rank: the link batches
  are dealt out across the ranks, so each optimizer step takes one batch per rank.

Reports wall seconds per epoch (training + validation, from ``metrics.json``), peak RSS
per rank, optimizer steps per epoch and test AUC. On 2 cores two ranks can at best
match one 2-thread process; the point on this machine is that the DDP path works at
scale and what it costs per rank in memory (each rank holds the whole graph).

    .venv/bin/python bench/bench_pretrain_ddp.py                  # 1M and 3M videos (~25 min on 2 quiet cores)
    .venv/bin/python bench/bench_pretrain_ddp.py --videos 100000  # a quick look

The 1-thread single-process case runs at the first size only (it is there to show what
one core does alone).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section  # noqa: E402

MEM_CAP_GB = 10          # per process; two ranks may take 2x this
CASE_TIMEOUT_S = 60 * 60
EDGES_PER_BATCH = 100_000   # as bench_pretrain.py: supervision links per step


def _cap_memory() -> None:
    cap = MEM_CAP_GB * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run(name: str, cmd: list[str], threads: int, rundir: Path) -> dict:
    env = {**os.environ, "MDR_GRAPH_NO_PROGRESS": "1", "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CASE_TIMEOUT_S,
                           preexec_fn=_cap_memory)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {CASE_TIMEOUT_S // 60} min"}
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"failed: {tail[:200]}"}
    m = json.loads((rundir / "metrics.json").read_text())
    hist = m["history"]
    steady = hist[1:] if len(hist) > 1 else hist
    return {
        "epoch_s": sum(h["train_s"] + h["val_s"] for h in steady) / len(steady),
        "train_s": sum(h["train_s"] for h in steady) / len(steady),
        "peak_rss_mb": m["peak_rss_mb_per_rank"], "world_size": m["world_size"], "batches": m["batches"],
        "test_auc": m["test_auc"], "degree_baseline_auc": m["degree_baseline_auc"], "wall_s": wall,
    }


def run_size(videos: int, epochs: int, tmp: Path, with_one_thread: bool) -> dict[str, dict]:
    from mdr_graph.graph_build.graph import save_graph
    from mdr_graph.testing.graphs import synthetic_graph

    songs = max(1, videos // 300)
    graph = tmp / f"graph-{videos}"
    graph.mkdir()
    save_graph(synthetic_graph(videos, songs, signal=1.0, zipf_exponent=1.0, seed=0), graph)
    common = ["--graph", str(graph), "--epochs", str(epochs), "--patience", str(epochs),
              "--batch-edges", str(EDGES_PER_BATCH)]
    py = [sys.executable, "-m", "mdr_graph"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "mdr_graph"]
    cases = [("1 process, 2 threads", py, 2), ("1 process, 1 thread", py, 1), ("torchrun, 2 ranks x 1 thread", torchrun, 1)]
    results: dict[str, dict] = {}
    for name, launcher, threads in cases:
        if threads == 1 and launcher is py and not with_one_thread:
            continue
        rundir = tmp / f"{videos}-{name.replace(' ', '_').replace(',', '')}"
        results[name] = run(name, [*launcher, "pretrain", *common, "--out", str(rundir)], threads, rundir)
        print(f"{videos:,}", name, results[name], flush=True)
    shutil.rmtree(graph)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, nargs="+", default=[1_000_000, 3_000_000])
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()

    load_before = os.getloadavg()
    by_size: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_pretrain_ddp_") as tmp:
        for k, videos in enumerate(args.videos):
            by_size[videos] = run_size(videos, args.epochs, Path(tmp), with_one_thread=k == 0)
    load_after = os.getloadavg()

    sizes = ", ".join(f"{v:,} videos / {max(1, v // 300):,} songs" for v in args.videos)
    lines = [
        f"GAT pretraining under `torchrun` (DDP, gloo) vs one process on synthetic graphs ({sizes}; Zipf(1) "
        f"song popularity), default model, batches of {EDGES_PER_BATCH} supervision links "
        f"(`--batch-edges {EDGES_PER_BATCH}`), {args.epochs} epochs. Seconds per epoch = training + "
        "validation, after the first epoch; peak RSS per process (each rank holds the whole graph plus its "
        "own batches). Under DDP each optimizer step takes one batch per rank, so an epoch has about half the "
        "steps. AUCs after so few epochs are a smoke check, not a quality result.",
        "",
        "| videos | case | s/epoch (wall) | of which training | optimizer steps/epoch | peak RSS per process (GB) | "
        "test AUC (degree baseline) |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for videos, results in by_size.items():
        for name, r in results.items():
            if "error" in r:
                lines.append(f"| {videos:,} | {name} | - | - | - | - | {r['error']} |")
                continue
            steps = r["batches"] // r["world_size"]
            rss = " / ".join(f"{v / 1024:.2f}" for v in r["peak_rss_mb"])
            lines.append(f"| {videos:,} | {name} | {r['epoch_s']:.1f} | {r['train_s']:.1f} | {steps} | {rss} | "
                         f"{r['test_auc']:.3f} ({r['degree_baseline_auc']:.3f}) |")
        one, ddp = results.get("1 process, 2 threads", {}), results.get("torchrun, 2 ranks x 1 thread", {})
        if "epoch_s" in one and "epoch_s" in ddp:
            ratios.append(f"{videos:,} videos: 2 DDP ranks take {ddp['epoch_s'] / one['epoch_s']:.2f}x the wall "
                          f"time per epoch of one 2-thread process and "
                          f"{sum(ddp['peak_rss_mb']) / one['peak_rss_mb'][0]:.2f}x its peak memory in total")
    if ratios:
        lines += ["", "Side by side: " + "; ".join(ratios) + "."]
    busy = max(load_before[0], load_after[0]) > (os.cpu_count() or 1) + 0.5
    lines += ["", f"Load average (1 min): {load_before[0]:.1f} before, {load_after[0]:.1f} after, on "
                  f"{os.cpu_count()} cores" + (" (other jobs shared the CPU)." if busy else " (a quiet machine).")]
    write_section("pretrain_ddp", "## GAT pretraining under torchrun (DDP)\n\n" + "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
