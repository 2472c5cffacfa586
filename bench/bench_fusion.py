"""Benchmark the fusion architectures and the ConvLSTM pretraining on this CPU.

For every architecture (co-attention stacked and guided, concat-MLP, single
Transformer, late fusion) with all seven modalities, at the `cpu` size (d_model 64,
patch 16) and the `reference` size (d_model 1024, 4 heads, patch 32): trainable
parameters, training samples/s (forward + backward + Adam step), inference samples/s
and peak RSS. Then the ConvLSTM autoencoder at its defaults: seconds per epoch of
`pretrain-visual`'s loop on 300 clips of 2x64x64 frames, and frozen-encoder clips/s.

Each case runs in its own subprocess on one thread, so peak memory is that case's alone
and speeds are per core. The machine is shared with other jobs, so the tables lead with
throughput per CPU-second (process CPU time, which contention does not inflate); wall
throughput is beside it, and the load average is recorded. Inputs are
random tensors of the real shapes: frames [2, 3, 64, 64] uint8, MFCC [40, 1001] (10 s),
Whisper-tiny [384], GAT [256], metadata [14], hashed text [2048].

    .venv/bin/python bench/bench_fusion.py            # everything, writes docs/benchmarks.md
    .venv/bin/python bench/bench_fusion.py --quick    # cpu size only, no write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHAPES = {"vit": [2, 3, 64, 64], "convlstm": [2, 3, 64, 64], "mfcc": [40, 1001], "whisper": [384], "network": [256],
          "meta": [14], "text": [2048]}
SIZES = {
    "cpu": dict(d_model=64, heads=4, layers=1, patch=16, batch=32),
    "reference": dict(d_model=1024, heads=4, layers=1, patch=32, batch=256),
}
KINDS = [("coattention", "stacked"), ("coattention", "guided"), ("concat-mlp", "stacked"),
         ("single-transformer", "stacked"), ("late-fusion", "stacked")]


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_model_case(kind: str, fusion: str, size: str, convlstm: str, steps: int) -> dict:
    import torch

    from mdr_graph.fusion import FusionConfig
    from mdr_graph.models import build_model

    base_mb = _peak_mb()
    s = SIZES[size]
    torch.manual_seed(0)
    cfg = FusionConfig(modalities=list(SHAPES), d_model=s["d_model"], heads=s["heads"], layers=s["layers"],
                       patch=s["patch"], fusion=fusion, text_dim=SHAPES["text"][0], convlstm_path=convlstm,
                       text_features="hashed")
    model = build_model(kind, cfg, {m: tuple(v) for m, v in SHAPES.items()})
    b = s["batch"]
    g = torch.Generator().manual_seed(0)
    x = {m: (torch.randint(0, 256, (b, *v), dtype=torch.uint8, generator=g) if m in ("vit", "convlstm")
             else torch.randn((b, *v), generator=g)) for m, v in SHAPES.items()}
    present = torch.rand(b, len(SHAPES), generator=g) > 0.1
    target = torch.rand(b, generator=g)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        loss = torch.nn.functional.mse_loss(model(x, present).pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    step()  # warm-up (allocations, kernel selection)
    train_cpu, train_wall = _timed(step, steps)
    model.eval()
    with torch.no_grad():
        model(x, present)
        infer_cpu, infer_wall = _timed(lambda: model(x, present), steps)
    return {"params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "train_samples_cpu_s": b / train_cpu, "train_samples_s": b / train_wall,
            "infer_samples_cpu_s": b / infer_cpu, "infer_samples_s": b / infer_wall, "batch": b,
            "peak_mb": _peak_mb(), "import_mb": base_mb}


def _timed(fn, steps: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per call. CPU time is what the work costs even when other jobs share the CPU."""
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.process_time() - c0) / steps, (time.perf_counter() - w0) / steps


def run_convlstm_case(n_clips: int, epochs: int) -> dict:
    import torch

    from mdr_graph.pretrain.convlstm import VisualPretrainConfig, pretrain_autoencoder

    base_mb = _peak_mb()
    g = torch.Generator().manual_seed(0)
    clips = torch.zeros(n_clips, 2, 3, 64, 64, dtype=torch.uint8)
    for i in range(n_clips):  # a coloured square moving between the two frames
        x, y = (int(v) for v in torch.randint(0, 44, (2,), generator=g))
        colour = torch.randint(60, 256, (3, 1, 1), generator=g).to(torch.uint8)
        for f in range(2):
            clips[i, f, :, y:y + 16, x + 4 * f:x + 4 * f + 16] = colour
    n_val = n_clips // 10
    cfg = VisualPretrainConfig(epochs=epochs)
    with tempfile.TemporaryDirectory() as d:
        c0 = time.process_time()
        m = pretrain_autoencoder(clips[n_val:], clips[:n_val], cfg, d, log=lambda s: None)
        cpu_per_epoch = (time.process_time() - c0) / epochs
        from mdr_graph.encoders.convlstm import load_convlstm_encoder

        enc = load_convlstm_encoder(Path(d) / "convlstm.pt")
        with torch.no_grad():
            frames = clips.float() / 255
            enc(frames[:64])
            t0 = time.perf_counter()
            for i in range(0, n_clips, 64):
                enc(frames[i:i + 64])
            enc_s = time.perf_counter() - t0
    return {"seconds_per_epoch": m["seconds_per_epoch"], "cpu_seconds_per_epoch": cpu_per_epoch,
            "epoch_seconds": [h["seconds"] for h in m["history"]],
            "train_mse": m["train_mse"], "val_mse": m["val_mse"], "n_train": m["n_train"],
            "encode_clips_s": n_clips / enc_s, "peak_mb": _peak_mb(), "import_mb": base_mb}


def _subprocess(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="cpu size only, fewer steps, do not write the docs")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--clips", type=int, default=300)
    a = p.parse_args()
    if a.case:  # child process: one case, one JSON line, one thread (see the docstring)
        import torch

        torch.set_num_threads(1)
        parts = a.case.split(":")
        if parts[0] == "convlstm":
            res = run_convlstm_case(int(parts[1]), int(parts[2]))
        else:
            res = run_model_case(parts[0], parts[1], parts[2], parts[3], int(parts[4]))
        print(json.dumps(res))
        return

    import torch

    from mdr_graph.encoders.convlstm import ConvLSTMAutoencoder, save_convlstm

    load = os.getloadavg()
    tmp = tempfile.mkdtemp()
    ck = str(Path(tmp) / "convlstm.pt")
    torch.manual_seed(0)
    save_convlstm(ck, ConvLSTMAutoencoder(), tuple(SHAPES["convlstm"]), epoch=0)
    sizes = ["cpu"] if a.quick else list(SIZES)
    rows: dict[str, dict[str, dict]] = {}
    for size in sizes:
        rows[size] = {}
        for kind, fusion in KINDS:
            name = f"{kind} ({fusion})" if kind == "coattention" else kind
            steps = 2 if size == "reference" else a.steps * (1 if a.quick else 4)
            res = _subprocess(["--case", f"{kind}:{fusion}:{size}:{ck}:{steps}"])
            rows[size][name] = res
            print(size, name, json.dumps(res), flush=True)
    conv = _subprocess(["--case", f"convlstm:{a.clips}:{2 if a.quick else 3}"])
    print("convlstm", json.dumps(conv), flush=True)
    body = render(rows, conv, a.clips)
    body += (f"\n\nLoad average (1 min) at the start and end of the run: {load[0]:.1f} and {os.getloadavg()[0]:.1f} "
             f"on {os.cpu_count()} cores; a load above the core count means other jobs shared the CPU and "
             f"absolute speeds are lower bounds (the ratios, measured in one run, are the comparable part).")
    print(body)
    Path(ck).unlink(missing_ok=True)
    Path(tmp).rmdir()
    if not a.quick:
        from benchlib import write_section

        write_section("fusion", body)


def render(rows: dict, conv: dict, n_clips: int) -> str:
    lines = ["## Fusion models and ConvLSTM pretraining", "", (
             "All seven modalities (vit, convlstm, mfcc, whisper, network, meta, text) on random inputs of the real "
             "shapes (frames 2x3x64x64, MFCC 40x1001, Whisper 384, GAT 256, meta 14, text 2048), 10%% of modalities "
             "masked at random. Train = forward + backward + Adam step. Each case runs in its own process on ONE "
             "thread; speeds are samples per CPU-second (contention-proof), wall-clock samples/s in brackets "
             "(peak RSS includes ~%d MB of imported libraries)." % _import_mb(rows)), ""]
    for size, cases in rows.items():
        s = SIZES[size]
        ref = cases.get("coattention (stacked)", {})
        lines += [f"**{size}** (d_model {s['d_model']}, {s['heads']} heads, patch {s['patch']}, batch {s['batch']})",
                  "", "| model | trainable params | train samples/CPU-s (wall) | vs stacked | "
                  "inference samples/CPU-s (wall) | peak RSS MB |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, r in cases.items():
            if "error" in r:
                lines.append(f"| {name} | failed: {r['error']} | | | | |")
                continue
            key = "train_samples_cpu_s"
            ratio = r[key] / ref[key] if key in ref else float("nan")
            lines.append(f"| {name} | {r['params'] / 1e6:.2f}M | {r[key]:.1f} ({r['train_samples_s']:.1f}) | "
                         f"{ratio:.2f}x | {r['infer_samples_cpu_s']:.1f} ({r['infer_samples_s']:.1f}) | "
                         f"{r['peak_mb']:.0f} |")
        lines.append("")
    if "error" in conv:
        lines.append(f"ConvLSTM pretraining failed: {conv['error']}")
    else:
        lines += [f"**ConvLSTM autoencoder** (defaults: hidden 64, embed 256, 64x64 -> 8x8 maps), "
                  f"{conv['n_train']} training clips of 2 frames, batch 16:", "",
                  f"- CPU seconds per epoch (one thread): {conv['cpu_seconds_per_epoch']:.1f}; wall seconds per "
                  f"epoch: {', '.join(f'{x:.1f}' for x in conv['epoch_seconds'])}",
                  f"- reconstruction MSE, train by epoch: {', '.join(f'{x:.4f}' for x in conv['train_mse'])}; "
                  f"val: {', '.join(f'{x:.4f}' for x in conv['val_mse'])}",
                  f"- frozen encoder: {conv['encode_clips_s']:.0f} clips/s (wall, one thread); "
                  f"peak RSS {conv['peak_mb']:.0f} MB"]
    return "\n".join(lines)


def _import_mb(rows: dict) -> int:
    vals = [r["import_mb"] for cases in rows.values() for r in cases.values() if "import_mb" in r]
    return int(min(vals)) if vals else 0


if __name__ == "__main__":
    main()
