"""Benchmark `mdr-graph predict --video` from a cold process: where the wall time of scoring one draft goes.

Each case is a fresh ``python -m mdr_graph.cli predict --run RUN --video FILE --timings``
(no warm cache but the OS's file cache, like a user's second try), repeated ``--reps``
times; the table gives medians. The stages come from ``--timings``:

- start-up: the interpreter, the CLI, pandas and numpy (imported before the command runs),
  reading the arguments, and the exit: the wall time not inside any timed stage;
- import torch: torch's import inside the process (numpy is already loaded by then, so it is
  less than a bare ``python -c "import torch"``);
- other imports: the toolkit's modules, PyAV, torchaudio, and, for a run with the network
  modality, PyTorch Geometric (which imports ``torch._dynamo`` and numba on its own);
- model load: the run's config, normalisation and ``model.pt`` (and the Whisper checkpoint);
- decode: frames and sound of the file; features: MFCC (and Whisper's embedding and
  transcript); network: the frozen GAT's inductive embedding of the new video (graph load
  included); forward: the metadata/text inputs and the fusion model.

Beside them, bare ``python -c pass``, ``import torch`` and ``import torch, torch_geometric``
processes, so the library floors are visible. The last column, the toolkit's own share, is the
predict wall time minus the bare ``import torch`` process's.

    .venv/bin/python bench/bench_predict.py --run RUN [--run RUN2 ...] [--video FILE] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, write_section  # noqa: E402

DEFAULT_VIDEO = ROOT / ".." / "shared" / "data" / "tiktok-popularity" / "videos" / "7281438997736475947.mp4"
STAGES = ["import torch", "imports", "model load", "decode", "features", "network", "forward"]
FLOORS = {"python -c pass": "pass", "import torch": "import torch",
          "import torch, torch_geometric": "import torch, torch_geometric"}


def cold(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds and CPU seconds (user + system) of one fresh process, and its stderr."""
    env = {**os.environ, "MDR_GRAPH_NO_PROGRESS": "1"}
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage, not every child's so far
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{text[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, text


def predict_once(run: str, video: str) -> dict[str, float]:
    wall, cpu, err = cold([sys.executable, "-m", "mdr_graph.cli", "predict", "--run", run, "--video", video,
                           "--song-id", "bench-new-song", "--timings"])
    line = next(ln for ln in err.splitlines() if ln.startswith("timings: "))
    stages = json.loads(line.removeprefix("timings: "))
    stages["start-up"] = wall - sum(stages.values())
    stages["wall"], stages["cpu"] = wall, cpu
    return stages


def describe(run: str) -> str:
    from mdr_graph.train.evaluate import load_run

    cfg = load_run(run)[0]
    whisper = ""
    if cfg.features:
        from mdr_graph.media.extract import load_config

        w = load_config(cfg.features).whisper
        whisper = f", Whisper {Path(w).name}" if w else ", no Whisper"
    return f"{', '.join(cfg.modalities)}{whisper}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, help="a trained run directory (repeatable)")
    p.add_argument("--video", default=str(DEFAULT_VIDEO), help="the mp4 to score (default: a real TikTok file)")
    p.add_argument("--reps", type=int, default=5, help="cold processes per case (default 5)")
    args = p.parse_args()
    if not Path(args.video).is_file():
        raise SystemExit(f"video not found: {args.video}")
    load_before = os.getloadavg()
    floors = {}
    for name, code in FLOORS.items():
        print(f"== {name}", file=sys.stderr)
        runs = [cold([sys.executable, "-c", code]) for _ in range(args.reps)]
        floors[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
    results = {}
    for run in args.run:
        print(f"== predict --run {run}", file=sys.stderr)
        reps = [predict_once(run, args.video) for _ in range(args.reps)]
        keys = ["wall", "cpu", "start-up"] + [s for s in STAGES if any(s in r for r in reps)]
        results[run] = {k: statistics.median(r.get(k, 0.0) for r in reps) for k in keys}
        print(json.dumps(results[run]), file=sys.stderr)
    load_after = os.getloadavg()
    for r in results.values():  # the measure: everything past a bare `import torch` process
        r["own"] = r["wall"] - floors["import torch"][0]

    cols = ["wall", "cpu", "start-up", *STAGES, "own"]
    names = {"cpu": "CPU (user+sys)", "imports": "other imports", "own": "**wall minus bare `import torch`**"}
    lines = [
        f"`mdr-graph predict --video` on one real TikTok mp4 ({Path(args.video).name}, "
        f"{Path(args.video).stat().st_size / 1e6:.1f} MB, 576x1024 H.264 + AAC 44.1 kHz stereo), each from a cold "
        f"process, median of {args.reps}. Seconds. Load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.1f}' for x in load_before)} at the start and "
        f"{', '.join(f'{x:.1f}' for x in load_after)} at the end, on 2 cores shared with other work.",
        "",
        "| process | " + " | ".join(names.get(c, c) for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for run, r in results.items():
        lines.append(f"| predict: {describe(run)} | "
                     + " | ".join(f"{r[c]:.2f}" if c in r else "-" for c in cols) + " |")
    lines += ["", "Floors (a bare process, median seconds):", "", "| process | wall | CPU (user+sys) |",
              "|---|---:|---:|"]
    lines += [f"| `python -c \"{code}\"` | {floors[name][0]:.2f} | {floors[name][1]:.2f} |"
              for name, code in FLOORS.items()]
    pyg = floors["import torch, torch_geometric"][0] - floors["import torch"][0]
    lines += ["", f"PyTorch Geometric alone adds {pyg:.2f} s to a process that has imported torch (it imports "
                  "`torch._dynamo`, sympy and numba at import time); only runs with the network modality load it."]
    body = "\n".join(lines)
    write_section("predict", "## Scoring one new video (`mdr-graph predict --video`, cold process)\n\n" + body)
    print(body)


if __name__ == "__main__":
    main()
