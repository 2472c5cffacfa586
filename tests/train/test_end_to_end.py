"""The whole pipeline on a small synthetic corpus: synth → build-graph → pretrain → extract
→ pretrain-visual → train → evaluate → predict, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from mdr_graph.cli import main as cli

TINY = ["--epochs", "3", "--patience", "50", "--d-model", "32", "--heads", "2", "--batch-size", "16"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    assert cli(["synth", "--out", str(d / "corpus"), "--videos", "48", "--songs", "12", "--seed", "3",
                "--seconds", "1.5"]) == 0
    assert cli(["build-graph", str(d / "corpus" / "metadata.json"), "--out", str(d / "graph"),
                "--media-root", str(d / "corpus" / "videos")]) == 0
    assert cli(["pretrain", "--graph", str(d / "graph"), "--out", str(d / "gat"), "--epochs", "3",
                "--hidden", "32", "--heads", "2"]) == 0
    assert cli(["extract", "--graph", str(d / "graph"), "--out", str(d / "feats")]) == 0
    assert cli(["pretrain-visual", "--features", str(d / "feats"), "--graph", str(d / "graph"),
                "--out", str(d / "cl"), "--epochs", "1"]) == 0
    base = ["train", "--graph", str(d / "graph"), "--features", str(d / "feats"), "--gat", str(d / "gat" / "gat.pt"),
            "--convlstm", str(d / "cl" / "convlstm.pt"),
            "--modalities", "network,meta,text,mfcc,vit,convlstm"]
    assert cli([*base, "--out", str(d / "run"), *TINY]) == 0
    return d, base


def test_train_writes_the_run_contract(pipeline):
    d, _ = pipeline
    run = d / "run"
    for name in ("model.pt", "checkpoint.pt", "metrics.json", "predictions.csv", "config.toml", "splits.json",
                 "normalization.json"):
        assert (run / name).exists(), name
    m = json.loads((run / "metrics.json").read_text())
    for key in ("val_spearman", "test_spearman", "test_pearson", "test_mse", "test_mae", "contributions", "params",
                "seconds_per_epoch", "epochs", "best_epoch", "seed"):
        assert key in m, key
    assert m["epochs"] == 3 and 1 <= m["best_epoch"] <= 3 and m["seed"] == 0
    assert sum(m["contributions"].values()) == pytest.approx(1.0, abs=1e-5)
    preds = pd.read_csv(run / "predictions.csv")
    assert list(preds.columns) == ["video_id", "split", "target", "prediction"]
    assert len(preds) == 48 and preds["video_id"].is_unique
    assert set(preds["split"]) == {"train", "val", "test"}
    # the target is min-max normalised with training statistics: train spans exactly [0, 1]
    train = preds[preds["split"] == "train"]["target"]
    assert train.min() == pytest.approx(0.0) and train.max() == pytest.approx(1.0)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert {"loss/train", "loss/val", "spearman/val", "lr"} <= set(acc.Tags()["scalars"])
    assert any(t.startswith("contribution/") for t in acc.Tags()["scalars"])
    # a predicted-vs-true image at every evaluation (3 epochs), the matplotlib figure when val improved
    assert [e.step for e in acc.Images("val/pred_vs_true_every_epoch")] == [1, 2, 3]
    assert "val/pred_vs_true/image/0" in acc.Tags()["images"] or "val/pred_vs_true" in acc.Tags()["images"]


def test_checkpoint_loads_weights_only(pipeline):
    d, _ = pipeline
    ck = torch.load(d / "run" / "model.pt", weights_only=True)
    assert {"kind", "config", "input_shapes", "model", "train_config", "normalization"} <= set(ck)


def test_every_trainer_writes_one_checkpoint_format_and_every_model_one_run_format(pipeline):
    """train, pretrain and pretrain-visual share checkpoint.pt's keys; train and a tabular baseline share the run files."""
    from mdr_graph.compare.tabular import run_tabular_baseline
    from mdr_graph.config import from_dict, load_toml
    from mdr_graph.train.config import TrainConfig
    from mdr_graph.train.run_files import RUN_FILES
    from mdr_graph.trainloop import CHECKPOINT_KEYS

    d, _ = pipeline
    cks = {name: torch.load(d / name / "checkpoint.pt", weights_only=True) for name in ("run", "gat", "cl")}
    assert all(CHECKPOINT_KEYS <= set(ck) for ck in cks.values())
    assert set(cks["run"]) == set(cks["cl"]) == set(cks["gat"]) - {"split_fingerprint"}
    assert len({frozenset(ck["state"]) for ck in cks.values()}) == 1
    assert cks["run"]["settings"]["d_model"] == 32 and cks["gat"]["settings"]["hidden"] == 32
    cfg = from_dict(TrainConfig, load_toml(d / "run" / "config.toml")["train"])
    tabular = run_tabular_baseline("song-mean", cfg, d / "song-mean")
    fusion = json.loads((d / "run" / "metrics.json").read_text())
    assert set(tabular) - {"fitted"} == set(fusion) and tabular["split_hash"] == fusion["split_hash"]
    assert all((d / r / f).exists() for r in ("run", "song-mean") for f in RUN_FILES)


def test_evaluate_matches_train(pipeline, capsys):
    d, _ = pipeline
    assert cli(["evaluate", "--run", str(d / "run"), "--split", "all"]) == 0
    assert '"matches_metrics_json": true' in capsys.readouterr().out


def test_resume_reproduces_the_uninterrupted_run(pipeline):
    d, base = pipeline
    assert cli([*base, "--out", str(d / "part"), *TINY[:0], "--epochs", "2", *TINY[2:]]) == 0
    assert cli([*base, "--out", str(d / "part"), "--resume", "--epochs", "3"]) == 0
    whole = json.loads((d / "run" / "metrics.json").read_text())
    resumed = json.loads((d / "part" / "metrics.json").read_text())
    for key in ("val_spearman", "test_spearman", "test_mse", "best_epoch", "epochs"):
        assert resumed[key] == pytest.approx(whole[key], abs=1e-6), key  # float32 sums
    assert [h["train_loss"] for h in resumed["history"]] == pytest.approx([h["train_loss"] for h in whole["history"]])


def test_predict_a_new_video_with_a_new_song(pipeline, tmp_path):
    d, _ = pipeline
    assert cli(["synth", "--out", str(tmp_path / "new"), "--videos", "2", "--songs", "1", "--seed", "77",
                "--seconds", "1.5"]) == 0
    clip = sorted((tmp_path / "new" / "videos").glob("*.mp4"))[0]
    known_song = pd.read_parquet(d / "graph" / "songs.parquet")["song_id"].iloc[0]
    out = tmp_path / "preds.csv"
    assert cli(["predict", "--run", str(d / "run"), "--video", str(clip), "--song-id", "never-seen-song",
                "--caption", "new #fyp", "--video", str(clip), "--video-id", "a", "--video-id", "b",
                "--song-id", str(known_song), "--out", str(out)]) == 0
    p = pd.read_csv(out, dtype={"song_id": str})
    assert p["song_in_graph"].tolist() == [False, True]
    assert np.isfinite(p["prediction"]).all() and ((p["prediction"] > 0) & (p["prediction"] < 1)).all()
    contrib = p[[c for c in p.columns if c.startswith("contribution_")]].sum(axis=1)
    assert contrib.to_numpy() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert p["present_mfcc"].all() and p["present_vit"].all()


def test_bad_input_is_a_one_line_error(pipeline, capsys):
    d, base = pipeline
    assert cli([*base[:-1], "network,smell", "--out", str(d / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "smell" in err[0]
    assert cli(["train", "--graph", str(d / "nope"), "--modalities", "meta", "--out", str(d / "bad2")]) == 2


def test_predict_from_scraped_metadata(pipeline, tmp_path):
    d, _ = pipeline
    assert cli(["synth", "--out", str(tmp_path / "new"), "--videos", "3", "--songs", "2", "--seed", "78",
                "--seconds", "1.5"]) == 0
    out = tmp_path / "preds.csv"
    assert cli(["predict", "--run", str(d / "run"), "--graph-input", str(tmp_path / "new" / "metadata.json"),
                "--media-root", str(tmp_path / "new" / "videos"), "--out", str(out)]) == 0
    p = pd.read_csv(out)
    assert len(p) == 3 and np.isfinite(p["prediction"]).all()
    assert p["present_vit"].all() and p["present_mfcc"].all()  # media found through --media-root


def test_finetune_gat_trains_the_gat_and_round_trips(pipeline, tmp_path, capsys):
    d, _ = pipeline
    run = d / "ft"
    assert cli(["train", "--graph", str(d / "graph"), "--gat", str(d / "gat" / "gat.pt"), "--modalities",
                "network,meta", "--finetune-gat", "--out", str(run), *TINY]) == 0
    ck = torch.load(run / "model.pt", weights_only=True)
    pre = torch.load(d / "gat" / "gat.pt", weights_only=True)["encoder"]
    changed = [k for k, v in ck["gat_state"].items() if not torch.equal(v, pre[k])]
    assert changed, "fine-tuning left every GAT weight at its pretrained value"
    views = ck["gat_views"]   # the forecaster's views it ran on (tests/pretrain/test_gat_embed.py checks them)
    assert views["known"].shape[0] > 1 and views["view_of"].max() == views["known"].shape[0] - 1
    capsys.readouterr()
    assert cli(["evaluate", "--run", str(run), "--split", "all"]) == 0
    assert '"matches_metrics_json": true' in capsys.readouterr().out
    clip = sorted((d / "corpus" / "videos").glob("*.mp4"))[0]
    out = tmp_path / "p.csv"
    assert cli(["predict", "--run", str(run), "--video", str(clip), "--video-id", "fresh", "--song-id", "new-song",
                "--out", str(out)]) == 0
    assert np.isfinite(pd.read_csv(out)["prediction"]).all()


HEAVY_MODULES = ("torch_geometric", "torch._dynamo", "whisper", "matplotlib", "torch.utils.tensorboard")


def _cold_predict(run, clip) -> tuple[dict, list[str]]:
    """``predict --timings`` in a fresh interpreter: its stage timings and which heavy modules it imported."""
    code = ("import json, sys; from mdr_graph.cli import main; "
            f"rc = main(['predict', '--run', {str(run)!r}, '--video', {str(clip)!r}, '--song-id', 's', '--timings']); "
            f"print('LOADED', json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules])); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MDR_GRAPH_NO_PROGRESS": "1"})
    timings = json.loads(next(ln for ln in out.stderr.splitlines() if ln.startswith("timings: "))[9:])
    loaded = json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("LOADED "))[7:])
    return timings, loaded


@pytest.mark.slow
def test_predict_imports_only_what_the_run_needs(pipeline, tmp_path):
    """A run without the network modality never imports PyG (nor torch._dynamo); none imports matplotlib,
    TensorBoard or Whisper to score a video; --timings names every stage."""
    d, _ = pipeline
    run = tmp_path / "no-network"
    assert cli(["train", "--graph", str(d / "graph"), "--features", str(d / "feats"), "--modalities",
                "meta,text,mfcc,vit", "--out", str(run), *TINY]) == 0
    clip = sorted((d / "corpus" / "videos").glob("*.mp4"))[0]
    timings, loaded = _cold_predict(run, clip)
    assert loaded == []
    assert set(timings) == {"import torch", "imports", "model load", "decode", "features", "forward"}
    assert all(v >= 0 for v in timings.values())
    timings, loaded = _cold_predict(d / "run", clip)  # with the network modality: PyG for the GAT, nothing else
    assert "network" in timings and "torch_geometric" in loaded
    assert not {"whisper", "matplotlib", "torch.utils.tensorboard"} & set(loaded)


def test_a_convlstm_pretrained_under_another_split_is_refused(pipeline, tmp_path, capsys):
    """The ConvLSTM saw the training split of (random, seed 0, 0.7/0.1/0.2): a run with other fractions,
    another seed or another kind would test on videos it reconstructed in pretraining."""
    d, base = pipeline
    rec = torch.load(d / "cl" / "convlstm.pt", weights_only=True)["split"]
    assert {k: rec[k] for k in ("kind", "seed", "fractions")} == {"kind": "random", "seed": 0,
                                                                  "fractions": [0.7, 0.1, 0.2]}
    for other in (["--split-fractions", "0.5,0.2,0.3"], ["--seed", "1"], ["--split", "time"]):
        capsys.readouterr()
        assert cli([*base, "--out", str(tmp_path / "run"), *TINY, *other]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "pretrained under another split" in err[0], err
        assert "pretrain-visual --graph" in err[0] and not (tmp_path / "run").exists()
