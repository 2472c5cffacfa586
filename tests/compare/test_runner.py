"""`compare`: identical splits for every model, resume, skip reasons, settings checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mdr_graph.cli import main
from mdr_graph.compare.plan import Available, plan_models, parse_models
from mdr_graph.compare.ablations import plan_ablations
from mdr_graph.errors import UserError
from mdr_graph.io import read_json

FAST = ["--epochs", "2", "--patience", "5", "--d-model", "16", "--heads", "2", "--text-dim", "64",
        "--batch-size", "16"]
MODELS = "global-mean,song-mean,meta-linear,concat-mlp"


@pytest.fixture(scope="module")
def compared(tmp_path_factory, make_toy_graph) -> Path:
    root = tmp_path_factory.mktemp("cmp")
    g = make_toy_graph(root)
    out = root / "cmp"
    assert main(["compare", "--graph", str(g), "--out", str(out), "--seeds", "2", "--models", MODELS, *FAST]) == 0
    return out


def test_every_model_of_a_seed_uses_the_same_split(compared):
    summary = read_json(compared / "compare.json")
    ran = [m["name"] for m in summary["models"] if not m["skip"]]
    assert ran == ["global-mean", "song-mean", "meta-linear", "concat-mlp"]
    per_seed = {}
    for name in ran:
        for seed in (0, 1):
            run = compared / name / f"seed{seed}"
            splits = read_json(run / "splits.json")
            metrics = read_json(run / "metrics.json")
            assert metrics["split_hash"] == summary["splits"][str(seed)]["hash"]
            per_seed.setdefault(seed, []).append(splits)
    for seed, all_splits in per_seed.items():
        assert all(s == all_splits[0] for s in all_splits), f"seed {seed}: models saw different splits"
    assert per_seed[0][0] != per_seed[1][0]  # and seeds do differ
    # every run directory is in the `train` format
    for name in ran:
        run = compared / name / "seed0"
        for f in ("predictions.csv", "metrics.json", "config.toml", "splits.json", "normalization.json"):
            assert (run / f).exists(), f"{run}/{f}"
    # normalisation is the same for every model of a seed (fitted on the same training ids)
    norms = [read_json(compared / n / "seed0" / "normalization.json") for n in ran]
    assert all(n == norms[0] for n in norms)


def test_rerun_skips_finished_runs(compared):
    before = {p: p.stat().st_mtime_ns for p in compared.glob("*/seed*/metrics.json")}
    args = ["compare", "--config", str(compared / "config.toml"), "--out", str(compared)]
    assert main(args) == 0
    after = {p: p.stat().st_mtime_ns for p in compared.glob("*/seed*/metrics.json")}
    assert before == after


def test_rerun_with_other_settings_refuses_to_mix(compared, capsys):
    cfg = read_json(compared / "compare.json")["config"]
    rc = main(["compare", "--graph", cfg["graph"], "--out", str(compared), "--seeds", "1", "--models", "concat-mlp",
               *FAST[:-2], "--batch-size", "8"])
    assert rc == 2
    assert "other settings" in capsys.readouterr().err


def test_missing_inputs_skip_with_reasons():
    avail = Available(graph="g")  # metadata only: no features, no GAT
    specs = {s.name: s for s in plan_models(parse_models("all"), avail, ["meta", "text"])}
    for name in ("audio-mlp", "vision-only", "late-fusion"):
        assert "--features" in specs[name].skip
    assert "--gat" in specs["gat-only"].skip
    assert specs["unimodal-average"].skip and "meta-linear" in specs["unimodal-average"].skip
    for name in ("global-mean", "song-mean", "meta-linear", "coattention", "concat-mlp", "single-transformer"):
        assert specs[name].runnable, name


def test_metadata_only_with_gat_plans_network_meta_text():
    from mdr_graph.compare.plan import fusion_modalities

    avail = Available(graph="g", gat="gat.pt")
    mods = fusion_modalities(avail)
    assert mods == ["network", "labels", "meta", "text", "gbdt"]
    specs = {s.name: s for s in plan_models(parse_models("all"), avail, mods)}
    assert specs["gat-only"].runnable and specs["gat-only"].modalities == ["network"]
    assert specs["unimodal-average"].runnable and specs["unimodal-average"].members == ["gat-only", "meta-linear"]
    with pytest.raises(UserError, match="vit"):
        fusion_modalities(avail, ["network", "vit"])


def test_full_inputs_plan_every_model_and_ablation(tmp_path):
    avail = Available(graph="g", features="f", gat="gat.pt", convlstm="c.pt",
                      feature_keys=frozenset({"frames", "mfcc", "fbank"}), frames=2, has_media_files=True)
    from mdr_graph.compare.plan import fusion_modalities

    mods = fusion_modalities(avail)
    assert mods == ["network", "labels", "meta", "text", "gbdt", "mfcc", "vit", "convlstm"]
    specs = {s.name: s for s in plan_models(parse_models("all"), avail, mods)}
    assert all(s.runnable for s in specs.values()), {n: s.skip for n, s in specs.items() if s.skip}
    assert specs["late-fusion"].modalities == ["convlstm", "mfcc"]  # no whisper: the audio branch is MFCC
    abl = {s.name: s for s in plan_ablations(mods, avail, "stacked", tmp_path)}
    assert {f"drop-{m}" for m in mods} <= set(abl)
    assert abl["fbank-instead-of-mfcc"].modalities == ["network", "labels", "meta", "text", "gbdt", "fbank", "vit", "convlstm"]
    assert abl["positional-encoding-off"].overrides["positional_encoding"] is False
    assert abl["guided"].overrides["fusion"] == "guided"
    assert {"frames-1", "frames-4"} <= set(abl)
    assert all(s.runnable for s in abl.values())


def test_unknown_model_is_a_user_error(toy_graph, tmp_path, capsys):
    rc = main(["compare", "--graph", str(toy_graph), "--out", str(tmp_path / "x"), "--models", "gat,foo"])
    assert rc == 2
    assert "unknown model" in capsys.readouterr().err


def test_compare_json_records_skips(compared):
    summary = read_json(compared / "compare.json")
    assert json.dumps(summary)  # plain JSON
    assert summary["available"]["gat"] is False
    assert summary["splits"]["0"]["sizes"]["train"] > 0


def test_refused_rerun_leaves_the_directory_untouched(compared):
    before = (compared / "config.toml").read_text()
    cfg = read_json(compared / "compare.json")["config"]
    assert main(["compare", "--graph", cfg["graph"], "--out", str(compared), "--models", "meta-linear,concat-mlp",
                 "--seeds", "2", "--lr", "0.5"]) == 2
    assert (compared / "config.toml").read_text() == before


def test_a_broken_run_is_recorded_and_the_others_finish(toy_graph, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--graph", str(toy_graph), "--out", str(out), "--seeds", "1",
            "--models", "meta-linear,concat-mlp", *FAST]
    assert main(args) == 0
    run = out / "concat-mlp" / "seed0"
    (run / "metrics.json").unlink()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")  # a damaged checkpoint to resume from
    assert main(args) == 1
    assert "concat-mlp seed0" in capsys.readouterr().err
    summary = read_json(out / "compare.json")
    status = {m["name"]: m["runs"]["0"]["status"] for m in summary["models"]}
    assert status == {"meta-linear": "done", "concat-mlp": "failed"}
    assert (run / "error.log").exists()
    assert "Failed runs" in (out / "report.md").read_text()


def test_bad_model_settings_fail_before_any_run(toy_graph, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--graph", str(toy_graph), "--out", str(out), "--d-model", "30", "--heads", "4"]) == 2
    assert "multiple of heads" in capsys.readouterr().err
    assert not out.exists()


def test_parallel_jobs_give_the_same_runs(compared, tmp_path):
    """--jobs 2 trains in worker processes; the runs must equal the sequential ones."""
    import pandas as pd

    cfg = read_json(compared / "compare.json")["config"]
    out = tmp_path / "par"
    assert main(["compare", "--graph", cfg["graph"], "--out", str(out), "--seeds", "2", "--models", MODELS,
                 "--jobs", "2", *FAST]) == 0
    for name in MODELS.split(","):
        for seed in (0, 1):
            a = pd.read_csv(compared / name / f"seed{seed}" / "predictions.csv")
            b = pd.read_csv(out / name / f"seed{seed}" / "predictions.csv")
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-7)
