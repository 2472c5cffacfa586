"""`mdr-graph pretrain-visual`: the training core, resume, the split it trains on, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mdr_graph.cli import main as cli_main
from mdr_graph.encoders.convlstm import load_convlstm_encoder
from mdr_graph.pretrain.convlstm import (VisualPretrainConfig, epoch_order, pretrain_autoencoder,
                                                  reconstruction_strip, select_ids)
from mdr_graph.errors import UserError
from mdr_graph.splits import SplitConfig, make_splits, split_hash

SMALL = dict(hidden=8, embed_dim=16, downsample=2, grid=2, batch_size=8, lr=3e-3, log_images=2)


def moving_squares(n: int, frames: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    """uint8 clips of a coloured square moving right: learnable, but not trivially constant."""
    g = torch.Generator().manual_seed(seed)
    clips = torch.zeros(n, frames, 3, size, size, dtype=torch.uint8)
    side = size // 4
    for i in range(n):
        x, y = (int(v) for v in torch.randint(0, size - side - frames, (2,), generator=g))
        colour = torch.randint(60, 256, (3, 1, 1), generator=g).to(torch.uint8)
        for f in range(frames):
            clips[i, f, :, y:y + side, x + f:x + f + side] = colour
    return clips


def test_training_lowers_the_reconstruction_error_and_writes_the_run(tmp_path):
    clips = moving_squares(40)
    cfg = VisualPretrainConfig(epochs=4, **SMALL)
    metrics = pretrain_autoencoder(clips[:32], clips[32:], cfg, tmp_path, log=lambda s: None)
    assert len(metrics["train_mse"]) == 4 and len(metrics["val_mse"]) == 4
    assert metrics["train_mse"][-1] < metrics["train_mse"][0]
    assert metrics["best_epoch"] == 1 + int(np.argmin(metrics["val_mse"]))
    assert metrics["seconds_per_epoch"] > 0 and metrics["seed"] == 0 and metrics["complete"]
    assert json.loads((tmp_path / "metrics.json").read_text())["best_epoch"] == metrics["best_epoch"]
    ck = torch.load(tmp_path / "convlstm.pt", weights_only=True)
    assert ck["epoch"] == metrics["best_epoch"] and ck["input_shape"] == [2, 3, 16, 16]
    assert set(ck) >= {"config", "input_shape", "encoder", "model", "epoch"}
    enc = load_convlstm_encoder(tmp_path / "convlstm.pt")
    assert enc(clips[:3].float() / 255).shape == (3, 16)
    assert (tmp_path / "config.toml").read_text().count("[pretrain_visual]") == 1
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    assert "reconstructions/input_then_reconstruction" in "".join(acc.Tags()["images"])
    assert {"mse/train", "mse/val"} <= set(acc.Tags()["scalars"])


def test_reconstruction_strip_puts_inputs_beside_reconstructions():
    from mdr_graph.encoders.convlstm import ConvLSTMAutoencoder

    model = ConvLSTMAutoencoder(hidden=8, embed_dim=16, downsample=2)
    clips = moving_squares(3)
    strip = reconstruction_strip(model, clips)
    assert strip.shape == (3, 3, 16, 4 * 16)
    assert torch.allclose(strip[:, :, :, :16], clips[:, 0].float() / 255)


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    clips = moving_squares(24, seed=1)
    full = pretrain_autoencoder(clips[:20], clips[20:], VisualPretrainConfig(epochs=3, **SMALL), tmp_path / "a",
                                log=lambda s: None)
    pretrain_autoencoder(clips[:20], clips[20:], VisualPretrainConfig(epochs=1, **SMALL), tmp_path / "b",
                         log=lambda s: None)
    resumed = pretrain_autoencoder(clips[:20], clips[20:], VisualPretrainConfig(epochs=3, **SMALL), tmp_path / "b",
                                   resume=True, log=lambda s: None)
    assert resumed["train_mse"] == full["train_mse"] and resumed["val_mse"] == full["val_mse"]
    a = torch.load(tmp_path / "a" / "convlstm.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "convlstm.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_existing_run_is_never_overwritten_and_settings_cannot_change_on_resume(tmp_path):
    clips = moving_squares(10)
    pretrain_autoencoder(clips[:8], clips[8:], VisualPretrainConfig(epochs=1, **SMALL), tmp_path, log=lambda s: None)
    with pytest.raises(UserError, match="--resume"):
        pretrain_autoencoder(clips[:8], clips[8:], VisualPretrainConfig(epochs=1, **SMALL), tmp_path)
    changed = VisualPretrainConfig(epochs=2, **dict(SMALL, lr=0.1))
    with pytest.raises(UserError, match="started with other settings \\(lr: 0.003 -> 0.1\\)"):
        pretrain_autoencoder(clips[:8], clips[8:], changed, tmp_path, resume=True)


def test_bad_clips_are_refused_with_the_reason(tmp_path):
    with pytest.raises(UserError, match="not divisible by 2\\*\\*downsample = 4"):
        pretrain_autoencoder(torch.zeros(4, 2, 3, 18, 18, dtype=torch.uint8), [], VisualPretrainConfig(**SMALL),
                             tmp_path)
    with pytest.raises(UserError, match="no training clips"):
        pretrain_autoencoder([], [], VisualPretrainConfig(**SMALL), tmp_path)


def test_epoch_order_depends_only_on_seed_and_epoch():
    assert torch.equal(epoch_order(10, 3, 2), epoch_order(10, 3, 2))
    assert not torch.equal(epoch_order(10, 3, 2), epoch_order(10, 3, 1))


def _videos(n: int) -> pd.DataFrame:
    return pd.DataFrame({"video_id": [f"v{i:02d}" for i in range(n)], "song_id": [f"s{i % 3}" for i in range(n)],
                         "create_time": pd.date_range("2020-12-01", periods=n, freq="h", tz="UTC")})


@pytest.mark.parametrize("kind", ["random", "time", "song"])
def test_with_a_graph_only_the_training_split_is_trained_on(tmp_path, kind):
    videos = _videos(30)
    videos.to_parquet(tmp_path / "videos.parquet")
    have = [v for v in videos["video_id"] if v != "v05"]  # one video failed extraction
    train, val, warning, record = select_ids(have, tmp_path, SplitConfig(kind, 7), 0.1)
    splits = make_splits(videos, SplitConfig(kind, 7))
    assert train == [v for v in splits["train"] if v != "v05"]
    assert val == [v for v in splits["val"] if v != "v05"]
    assert not set(train) & set(splits["test"]) and warning is None
    assert record == {"kind": kind, "seed": 7, "fractions": [0.7, 0.1, 0.2], "hash": split_hash(splits)}


def test_without_a_graph_everything_trains_and_a_warning_says_so():
    ids = [f"v{i}" for i in range(20)]
    train, val, warning, record = select_ids(ids, None, SplitConfig(), 0.1)
    assert len(val) == 2 and sorted(train + val) == sorted(ids) and "warning" in warning and record is None
    with pytest.raises(UserError, match="build-graph"):
        select_ids(ids, "/nonexistent-graph", SplitConfig(), 0.1)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """A real feature directory: 12 synthetic mp4 clips through `extract` (frames 2, 32x32)."""
    from mdr_graph.media.extract import ExtractConfig, run_extract
    from mdr_graph.testing.clips import write_clip

    root = tmp_path_factory.mktemp("pv")
    rows = []
    for i in range(12):
        path = write_clip(root / "clips" / f"v{i:02d}.mp4", seconds=1.0, fps=8, width=36, height=64, tone_hz=None,
                          seed=i)
        rows.append({"video_id": f"v{i:02d}", "video_path": str(path), "duration_s": 1.0})
    graph = root / "graph"
    graph.mkdir()
    videos = _videos(12).assign(video_path=[r["video_path"] for r in rows], duration_s=1.0)
    videos.to_parquet(graph / "videos.parquet")
    run_extract(graph, root / "feats", ExtractConfig(frames=2, size=32, audio_seconds=1.0, n_mels=16, n_mfcc=8))
    (root / "small.toml").write_text("[pretrain_visual]\ndownsample = 2\ngrid = 2\nlr = 0.003\nlog_images = 2\n")
    return root


def test_cli_trains_on_the_feature_store_and_resumes(extracted, tmp_path, capsys):
    root = extracted
    run = tmp_path / "run"
    args = ["pretrain-visual", "--features", str(root / "feats"), "--graph", str(root / "graph"), "--out", str(run),
            "--split", "random", "--seed", "3", "--hidden", "8", "--embed-dim", "16", "--batch-size", "4",
            "--config", str(root / "small.toml")]
    assert cli_main(args + ["--epochs", "1"]) == 0
    splits = json.loads((run / "splits.json").read_text())
    expected = make_splits(pd.read_parquet(root / "graph" / "videos.parquet"), SplitConfig("random", 3))
    assert splits["train"] == list(expected["train"]) and splits["val"] == list(expected["val"])
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_train"] == len(expected["train"]) and m["epochs"] == 1 and m["clip_shape"] == [2, 3, 32, 32]
    assert torch.load(run / "convlstm.pt", weights_only=True)["config"]["downsample"] == 2
    # a second run into the same directory is refused, --resume continues it
    assert cli_main(args + ["--epochs", "2"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli_main(args + ["--epochs", "2", "--resume"]) == 0
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_cli_without_graph_warns_and_errors_are_one_line(extracted, tmp_path, capsys):
    root = extracted
    out = tmp_path / "nograph"
    assert cli_main(["pretrain-visual", "--features", str(root / "feats"), "--out", str(out), "--epochs", "1",
                     "--hidden", "8", "--embed-dim", "16", "--config", str(root / "small.toml")]) == 0
    assert "warning: no --graph given" in capsys.readouterr().out
    assert cli_main(["pretrain-visual", "--features", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no feature directory" in err and "Traceback" not in err
