"""Run every model of the comparison on the same splits and seeds, resumably.

Layout of ``DIR`` (every run directory is in the ``train`` format: ``predictions.csv``,
``metrics.json``, ``config.toml``, ``splits.json``, ``normalization.json``; neural runs
add ``model.pt`` and ``tb/``)::

    DIR/config.toml                 the resolved settings ([compare] and the [train] template)
    DIR/compare.json                what ran, what was skipped and why, split fingerprints, summaries
    DIR/data/videos.csv, songs.csv  the columns of the graph the report plots (so it needs nothing else)
    DIR/<model>/seed<k>/            one run per model and seed
    DIR/ablations/<variant>/seed<k>/
    DIR/report.md, report.html, plots/

The split of seed ``k`` is ``make_splits(videos, SplitConfig(split, k, fractions))`` for every model, and each
run's ``splits.json`` is fingerprinted (:func:`~mdr_graph.splits.split_hash`)
and checked against it, so "same split" is verified, not assumed. A run whose
``metrics.json`` exists is finished and skipped on re-run; a neural run with only a
``checkpoint.pt`` resumes from it. A finished run whose saved config differs from what
would be run now is an error rather than a silent mix of settings.
"""

from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mdr_graph.compare.tabular import run_ensemble, run_tabular_baseline
from mdr_graph.splits import make_splits, split_hash
from mdr_graph.compare.plan import (Available, RunSpec, fusion_modalities, inspect_inputs, parse_models,
                                    plan_models)
from mdr_graph.config import from_dict, load_toml, save_toml
from mdr_graph.errors import UserError
from mdr_graph.fusion_config import FusionConfig
from mdr_graph.graph_build.tables import read_songs, read_videos
from mdr_graph import modalities as registry
from mdr_graph.modalities import names
from mdr_graph.io import read_json, write_json, write_text
from mdr_graph.runlog import progress
from mdr_graph.splits import SplitConfig, check_filled, make_splits, split_hash
from mdr_graph.train.config import TrainConfig
from mdr_graph.train.runcheck import check_convlstm_split, settings_diff

COMPARE_VERSION = 1


@dataclass
class CompareConfig:
    """What to compare. Training hyperparameters live in the ``[train]`` template beside it."""

    graph: str = ""
    features: str = ""
    gat: str = ""
    convlstm: str = ""          # may hold "{seed}": one ConvLSTM pretrained per seed's split (SEED_FIELD)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    split: str = SplitConfig.kind               # mdr_graph.splits.KINDS; fractions: the [train] template's
    models: list[str] = field(default_factory=lambda: ["all"])
    modalities: list[str] = field(default_factory=list)   # the full model's; empty = every usable one
    fusion: str = FusionConfig.fusion           # the full model's co-attention variant
    ablate: bool = False
    ablate_frames: list[int] = field(default_factory=list)  # frame counts for the frames ablation; empty = auto
    workers: int = 1                            # extraction workers for the frames ablation


# In --convlstm, replaced by each run's seed: the ConvLSTM is pretrained on one split's
# training videos, so every seed needs its own (train refuses another split's).
SEED_FIELD = "{seed}"


def for_seed(path: str, seed: int) -> str:
    return path.replace(SEED_FIELD, str(seed))


def run_dir(out: str | Path, spec: RunSpec, seed: int) -> Path:
    base = Path(out) / "ablations" if spec.group == "ablation" else Path(out)
    return base / spec.name / f"seed{seed}"


def run_config(template: TrainConfig, spec: RunSpec, seed: int, ccfg: CompareConfig) -> TrainConfig:
    """The ``TrainConfig`` of one run: the template, the compared inputs, the spec's changes, the seed."""
    mods = [m for m in spec.modalities if m in names()]   # a tabular model's inputs also name ids
    values = {**dataclasses.asdict(template), "graph": ccfg.graph, "features": ccfg.features, "gat": ccfg.gat,
              "convlstm": for_seed(ccfg.convlstm, seed), "split": ccfg.split, "seed": int(seed), "modalities": mods,
              **spec.overrides}
    if spec.kind != "neural":
        values["model"] = spec.name
    return TrainConfig(**values)


# What a non-neural run depends on; training hyperparameters do not change it.
TABULAR_FIELDS = ("graph", "split", "split_fractions", "seed", "model", "modalities", "oof_folds", "label_smoothing",
                  "label_recency_days", "label_max_hashtag_df")


def check_same_config(path: Path, cfg: TrainConfig, fields: tuple[str, ...] | None = None) -> None:
    """Raise when a run in ``path`` was made with other settings than ``cfg`` (only ``fields``, if given)."""
    saved_toml = load_toml(path / "config.toml").get("train", {})
    saved = dataclasses.asdict(from_dict(TrainConfig, saved_toml, source=str(path / "config.toml")))
    # where the label-derived inputs are cached changes no result
    skip = frozenset(k for k in saved if fields and k not in fields) | {"fitted_cache"}
    diff = settings_diff(saved, cfg, skip=skip)
    if diff:
        raise UserError(f"{path} was trained with other settings ({', '.join(diff[:4])}); "
                        f"delete that run directory to retrain it, or compare into a new --out")


def expected_splits(videos: pd.DataFrame, split: str, seeds: list[int], fractions) -> dict[int, dict]:
    """``{seed: {"hash", "sizes"}}``: the split every model of that seed must use."""
    out = {}
    for s in seeds:
        cfg = SplitConfig(split, s, tuple(fractions))
        sp = make_splits(videos, cfg)
        check_filled(sp, cfg, videos)  # every model of the seed would fail on it: refuse it up front
        out[s] = {"hash": split_hash(sp), "sizes": {k: int(len(v)) for k, v in sp.items()}}
    return out


def verify_split(path: Path, want_hash: str) -> str:
    """Fingerprint ``path/splits.json``; raise if it is not the seed's split."""
    got = split_hash({k: np.asarray(v, dtype=object) for k, v in read_json(path / "splits.json").items()})
    if got != want_hash:
        raise RuntimeError(f"{path} used split {got}, but every model of this seed must use {want_hash}")
    return got


def _stamp_split_hash(path: Path, h: str) -> None:
    m = read_json(path / "metrics.json")
    if m.get("split_hash") != h:
        m["split_hash"] = h
        write_json(path / "metrics.json", m)


def snapshot_data(graph: str | Path, out: Path) -> None:
    """Copy the graph columns the report plots into ``DIR/data`` (no engagement counts)."""
    g = Path(graph)
    v = read_videos(g, ["video_id", "song_id", "create_time", "popularity_raw"])
    write_text(out / "data" / "videos.csv", v.to_csv(index=False))
    s = read_songs(g, ["song_id", "degree"], missing_ok=True)
    if s is None:
        s = v.groupby("song_id", sort=False).size().rename("degree").reset_index()
    write_text(out / "data" / "songs.csv", s.to_csv(index=False))


def execute(spec: RunSpec, cfg: TrainConfig, path: Path, out: Path, seed: int) -> None:
    """Produce one run directory (resuming a neural run from its checkpoint)."""
    if spec.kind == "tabular":
        run_tabular_baseline(spec.name, cfg, path)
    elif spec.kind == "ensemble":
        members = [out / m / f"seed{seed}" for m in spec.members]
        run_ensemble(spec.name, members, cfg, path)
    else:
        from mdr_graph.train.loop import fit

        fit(cfg, path, resume=(path / "checkpoint.pt").exists() and not (path / "metrics.json").exists())


def run_one(spec: RunSpec, cfg: TrainConfig, out: Path, seed: int, want_hash: str) -> dict:
    """Produce (or reuse) one run directory; returns its status for ``compare.json``. Never raises on a model
    failure: the traceback goes to the run's ``error.log`` and the status says ``failed``."""
    path = run_dir(out, spec, seed)
    rel = str(path.relative_to(out))
    if (path / "metrics.json").exists():
        check_same_config(path, cfg, None if spec.kind == "neural" else TABULAR_FIELDS)
        verify_split(path, want_hash)
        return {"dir": rel, "status": "done", "reused": True}
    try:
        execute(spec, cfg, path, out, seed)
        verify_split(path, want_hash)
        _stamp_split_hash(path, want_hash)
        (path / "error.log").unlink(missing_ok=True)  # from an earlier failed attempt
        return {"dir": rel, "status": "done", "reused": False}
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - one broken model must not lose the others' results
        path.mkdir(parents=True, exist_ok=True)
        write_text(path / "error.log", traceback.format_exc())
        msg = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        from tqdm.auto import tqdm

        tqdm.write(f"compare: {spec.name} seed{seed} failed: {msg} (traceback in {rel}/error.log)")
        return {"dir": rel, "status": "failed", "error": msg}


def picklable_outside_modalities(jobs: int) -> list:
    """The modalities registered from outside the package, checked to reach a spawned worker: they
    travel by pickle, so their table and encoder must be importable (defined at module level)."""
    import pickle

    outside = registry.added()
    for m in outside:
        try:
            pickle.dumps(m)
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise UserError(f"compare --jobs {jobs}: modality {m.name!r} cannot be sent to a worker process "
                            f"({str(e).splitlines()[0]}); define its table and encoder at module level, or "
                            "use --jobs 1") from None
    return outside


def _worker(job: tuple) -> tuple[str, int, dict]:
    """Run one (spec, seed) in a pool process: one torch thread, no inner progress bars."""
    import os
    import warnings

    # a spawned process starts without the CLI's filter for this import-time warning of whisper/PyG
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script(_method)?` is deprecated", category=FutureWarning)
    import torch

    spec_json, cfg_json, out, seed, want_hash, threads, outside = job
    os.environ["MDR_GRAPH_NO_PROGRESS"] = "1"
    torch.set_num_threads(threads)
    for m in outside:   # modalities the parent registered from outside the package
        registry.register(m, replace=True)
    spec = RunSpec(**spec_json)
    return spec.name, seed, run_one(spec, TrainConfig(**cfg_json), Path(out), seed, want_hash)


def validate_template(template: TrainConfig, mods: list[str]) -> None:
    """Fail before the first run, not after hours, on settings no neural model accepts."""
    from mdr_graph.fusion_config import fusion_config

    fusion_config(dataclasses.replace(template, modalities=list(mods) or ["meta"])).validate()
    for name in ("epochs", "batch_size", "patience"):
        if getattr(template, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(template, name)}")
    if template.loss not in ("mse", "mae", "huber"):
        raise UserError(f"unknown loss {template.loss!r}; choose mse, mae or huber")


class Comparison:
    """One ``compare`` invocation: plan, run (resuming), summarise into ``compare.json``."""

    def __init__(self, ccfg: CompareConfig, template: TrainConfig, out: str | Path,
                 avail: Available | None = None, jobs: int = 1, threads: int | None = None):
        self.ccfg, self.template, self.out = ccfg, template, Path(out)
        if not template.fitted_cache:   # every run of one split and seed shares its label-derived inputs
            self.template = dataclasses.replace(template, fitted_cache=str(self.out.resolve() / "fitted"))
        self.jobs, self.threads = max(1, int(jobs)), threads
        self.avail = avail or inspect_inputs(ccfg.graph, ccfg.features, ccfg.gat,
                                             for_seed(ccfg.convlstm, ccfg.seeds[0]))
        # the run configs carry resolved absolute paths
        convlstm = str(Path(ccfg.convlstm).resolve()) if SEED_FIELD in ccfg.convlstm else self.avail.convlstm
        self.ccfg = dataclasses.replace(ccfg, graph=self.avail.graph, features=self.avail.features,
                                        gat=self.avail.gat, convlstm=convlstm)
        self.mods = fusion_modalities(self.avail, ccfg.modalities or None)
        validate_template(template, self.mods)
        self.specs = plan_models(parse_models(ccfg.models), self.avail, self.mods, ccfg.fusion)
        if ccfg.ablate:
            from mdr_graph.compare.ablations import plan_ablations

            self.specs += plan_ablations(self.mods, self.avail, ccfg.fusion, self.out, ccfg.ablate_frames or None)
        self.status: dict[str, dict[int, dict]] = {s.name: {} for s in self.specs}

    def runs(self) -> list[tuple[RunSpec, int]]:
        """Runnable (spec, seed) pairs, seed-major so a partial comparison is complete per seed."""
        return [(s, seed) for seed in self.ccfg.seeds for s in self.specs if s.runnable]

    def run(self) -> dict:
        self.check_existing()  # before writing anything: a mismatch must leave DIR untouched
        self.check_convlstm()
        videos = read_videos(self.ccfg.graph)
        self.splits = expected_splits(videos, self.ccfg.split, self.ccfg.seeds, self.template.split_fractions)
        self.out.mkdir(parents=True, exist_ok=True)
        save_toml(self.out / "config.toml", {"compare": self.ccfg, "train": self.template})
        snapshot_data(self.ccfg.graph, self.out)
        self._prepare_frame_stores()
        todo = self.runs()
        bar = progress(total=len(todo), desc="compare", unit="run")
        if self.jobs > 1:
            self._run_parallel([t for t in todo if t[0].kind != "ensemble"], bar)
            todo = [t for t in todo if t[0].kind == "ensemble"]
        for spec, seed in todo:
            bar.set_postfix_str(f"{spec.name} seed{seed}")
            self.status[spec.name][seed] = self._run_here(spec, seed)
            bar.update(1)
            self.write_summary()
        bar.close()
        return self.write_summary()

    def _run_here(self, spec: RunSpec, seed: int) -> dict:
        cfg = run_config(self.template, spec, seed, self.ccfg)
        if spec.kind == "ensemble":
            missing = [m for m in spec.members if self.status.get(m, {}).get(seed, {}).get("status") != "done"]
            if missing:
                return {"dir": str(run_dir(self.out, spec, seed).relative_to(self.out)), "status": "failed",
                        "error": f"member run(s) {', '.join(missing)} did not finish"}
        return run_one(spec, cfg, self.out, seed, self.splits[seed]["hash"])

    def _run_parallel(self, todo: list[tuple[RunSpec, int]], bar) -> None:
        """Independent runs in ``jobs`` processes of one torch thread each (results are the same runs)."""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        outside = picklable_outside_modalities(self.jobs)
        jobs = [(s.to_json(), dataclasses.asdict(run_config(self.template, s, k, self.ccfg)), str(self.out), k,
                 self.splits[k]["hash"], self.threads or 1, outside) for s, k in todo]
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_worker, j) for j in jobs]
            try:
                for fut in as_completed(futures):
                    name, seed, status = fut.result()
                    self.status[name][seed] = status
                    bar.set_postfix_str(f"{name} seed{seed} {status['status']}")
                    bar.update(1)
                    self.write_summary()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    def check_convlstm(self) -> None:
        """Each seed's ConvLSTM must have been pretrained on that seed's split (see ``SEED_FIELD``)."""
        if not self.ccfg.convlstm or not any("convlstm" in s.modalities for s, _ in self.runs()):
            return
        for seed in self.ccfg.seeds:
            cfg = dataclasses.replace(self.template, graph=self.ccfg.graph, modalities=["convlstm"],
                                      convlstm=for_seed(self.ccfg.convlstm, seed), split=self.ccfg.split, seed=seed)
            try:
                check_convlstm_split(cfg)
            except UserError as e:
                hint = (f"; with several seeds pretrain one ConvLSTM per seed and give --convlstm a path with "
                        f"{SEED_FIELD}, e.g. runs/convlstm-seed{SEED_FIELD}/convlstm.pt"
                        if len(self.ccfg.seeds) > 1 and SEED_FIELD not in self.ccfg.convlstm else "")
                raise UserError(f"seed {seed}: {e}{hint}") from None

    def check_existing(self) -> None:
        """Every run directory already in ``DIR`` must have been made with today's settings."""
        for spec, seed in self.runs():
            path = run_dir(self.out, spec, seed)
            if (path / "config.toml").exists():
                check_same_config(path, run_config(self.template, spec, seed, self.ccfg),
                                  None if spec.kind == "neural" else TABULAR_FIELDS)

    def _prepare_frame_stores(self) -> None:
        from mdr_graph.compare.ablations import frames_store

        for spec in self.specs:
            if spec.runnable and spec.name.startswith("frames-"):
                n = int(spec.name.split("-", 1)[1])
                try:
                    frames_store(self.avail, n, self.out, workers=self.ccfg.workers)
                except Exception as e:  # noqa: BLE001 - an ablation's extraction must not stop the comparison
                    spec.skip = f"could not extract {n} frames per video: {type(e).__name__}: {e}"

    def write_summary(self) -> dict:
        """``compare.json``: settings, split fingerprints, and every spec's status per seed."""
        from mdr_graph.compare.summary import aggregate

        entries = []
        for spec in self.specs:
            e = spec.to_json()
            e["runs"] = {str(k): v for k, v in sorted(self.status.get(spec.name, {}).items())}
            done = [self.out / r["dir"] for r in e["runs"].values() if r["status"] == "done"]
            e["summary"] = aggregate([read_json(p / "metrics.json") for p in done]) if done else None
            entries.append(e)
        summary = {
            "version": COMPARE_VERSION,
            "config": dataclasses.asdict(self.ccfg),
            "train_template": dataclasses.asdict(self.template),
            "fusion_modalities": self.mods,
            "available": {"features": bool(self.avail.features), "gat": bool(self.avail.gat),
                          "convlstm": bool(self.avail.convlstm), "feature_keys": sorted(self.avail.feature_keys),
                          "frames": self.avail.frames},
            "splits": {str(k): v for k, v in getattr(self, "splits", {}).items()},
            "models": [e for e in entries if e["group"] == "model"],
            "ablations": [e for e in entries if e["group"] == "ablation"],
            "data": {"videos": "data/videos.csv", "songs": "data/songs.csv"},
        }
        write_json(self.out / "compare.json", summary)
        return summary

    def failures(self) -> list[str]:
        return [f"{name} seed{seed}: {r.get('error')}" for name, per in self.status.items()
                for seed, r in per.items() if r["status"] == "failed"]


__all__ = ["CompareConfig", "Comparison", "run_config", "run_dir", "expected_splits", "verify_split", "run_one"]
