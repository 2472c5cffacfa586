"""The demo runs end to end at the CI size, and resumes without redoing finished stages."""

from __future__ import annotations

import pytest

from mdr_graph.cli import main
from mdr_graph.io import read_json


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    # every stage left its result
    for f in ("corpus/metadata.json", "graph/graph.pt", "gat/gat.pt", "features/index.parquet",
              "convlstm/seed0/convlstm.pt", "compare/coattention/seed0/metrics.json", "compare/compare.json",
              "compare/report.md", "compare/report.html", "demo.json"):
        assert (out / f).exists(), f
    # the full model used every extracted modality, and the baselines ran beside it
    summary = read_json(out / "compare" / "compare.json")
    assert summary["fusion_modalities"] == ["network", "labels", "meta", "text", "gbdt", "mfcc", "vit", "convlstm"]
    ran = {m["name"] for m in summary["models"] if not m["skip"]}
    assert {"coattention", "song-mean", "meta-linear", "gat-only", "audio-mlp", "vision-only", "late-fusion",
            "concat-mlp", "single-transformer", "unimodal-average"} <= ran
    # it ends with the headline table, the report path and the TensorBoard command
    assert "| coattention |" in printed and "| Model |" in printed
    assert f"report: {out / 'compare' / 'report.md'}" in printed
    assert f"tensorboard --logdir {out}" in printed

    # re-running resumes: nothing is retrained
    stamp = (out / "compare" / "coattention" / "seed0" / "metrics.json").stat().st_mtime_ns
    assert main(["demo", "--quick", "--out", str(out), "--workers", "1"]) == 0
    assert (out / "compare" / "coattention" / "seed0" / "metrics.json").stat().st_mtime_ns == stamp
    timings = read_json(out / "demo.json")["stage_seconds"]
    assert "pretrain" not in timings and "pretrain-visual" not in timings


def test_media_root_without_data_is_a_user_error(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--media-root", str(tmp_path)]) == 2
    assert "--media-root goes with --data" in capsys.readouterr().err


def test_demo_refuses_to_mix_inputs(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "demo-inputs.json").write_text('{"data": null, "media_root": null, "videos": 60, "songs": 15, "seed": 0}')
    assert main(["demo", "--quick", "--out", str(out), "--seed", "1"]) == 2
    assert "other inputs" in capsys.readouterr().err
