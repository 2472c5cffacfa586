"""whisper-install's machinery on a tiny model in a tmp cache: join, check, convert, verify, detect damage."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
import whisper

from mdr_graph.cli import main as cli_main
from mdr_graph.errors import UserError
from mdr_graph.media import whisper_model as wm


@pytest.fixture
def tiny_source(tmp_path, tiny_ct2):
    """A tiny model shipped like the registry's: model.bin in two part files, config.json beside part 1."""
    data = tiny_ct2[1].read_bytes()
    half = len(data) // 2
    d1, d2 = tmp_path / "pkg1", tmp_path / "pkg2"
    d1.mkdir()
    d2.mkdir()
    (d1 / "model.bin.part1").write_bytes(data[:half])
    (d2 / "model.bin.part2").write_bytes(data[half:])
    (d1 / "config.json").write_text(json.dumps({"alignment_heads": [[1, 0], [1, 3]]}))
    model = wm.RegistryModel(
        name="tiny-test",
        parts=(wm.Part("pkg1", "0", "pkg1/model.bin.part1", half), wm.Part("pkg2", "0", "pkg2/model.bin.part2",
                                                                           len(data) - half)),
        side_files=("config.json",), size=len(data), sha256=hashlib.sha256(data).hexdigest())
    return model, [d1 / "model.bin.part1", d2 / "model.bin.part2"]


def test_build_joins_converts_and_records(tmp_path, tiny_source, tiny_ct2):
    model, files = tiny_source
    cache = tmp_path / "cache"
    inst = wm.build(model, files, cache)
    assert (cache / "tiny-test-ct2" / "model.bin").read_bytes() == tiny_ct2[1].read_bytes()
    assert (cache / "tiny-test-ct2" / "config.json").is_file()
    man = json.loads((cache / "tiny-test.json").read_text())
    assert man["checkpoint"]["sha256"] == hashlib.sha256((cache / "tiny-test.pt").read_bytes()).hexdigest()
    assert man["model_bin"]["sha256"] == model.sha256 and man["alignment_heads"] == [[1, 0], [1, 3]]
    ck = torch.load(cache / "tiny-test.pt", weights_only=True)
    assert set(ck) == {"dims", "model_state_dict"} and ck["dims"]["n_text_layer"] == 2
    assert whisper.load_model(str(inst.checkpoint), device="cpu").dims.n_audio_state == 32
    again = wm.verify("tiny-test", cache, checkpoint=True, ct2=True)
    assert again.checkpoint == inst.checkpoint and again.alignment_heads == [(1, 0), (1, 3)]


@pytest.mark.parametrize("damage, message", [
    ("flip", r"corrupt \(SHA-256 mismatch\); reinstall with `mdr-graph whisper-install --force`"),
    ("truncate", r"incomplete or corrupt \(.* bytes, expected .*\); reinstall with `mdr-graph whisper-install --force`"),
])
def test_a_damaged_converted_model_is_detected(tmp_path, tiny_source, damage, message):
    model, files = tiny_source
    cache = tmp_path / "cache"
    inst = wm.build(model, files, cache)
    data = bytearray(inst.checkpoint.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) - 1000]
    inst.checkpoint.write_bytes(bytes(data))
    with pytest.raises(UserError, match=message) as e:
        wm.verify("tiny-test", cache)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="CTranslate2 model .* missing"):
        (cache / "tiny-test-ct2" / "model.bin").unlink()
        wm.verify("tiny-test", cache, checkpoint=False, ct2=True)


def test_damaged_parts_are_refused_and_leave_nothing(tmp_path, tiny_source):
    model, files = tiny_source
    data = bytearray(files[1].read_bytes())
    data[10] ^= 0xFF  # same size, other bytes: only the joined checksum can tell
    files[1].write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="do not match the published model.bin.*--force"):
        wm.build(model, files, cache)
    assert not (cache / "tiny-test-ct2" / "model.bin").exists() and not (cache / "tiny-test.json").exists()
    files[0].write_bytes(files[0].read_bytes()[:-1])  # a short part: caught by its size, before any join
    with pytest.raises(UserError, match="pkg1: .* bytes, expected .*the package is damaged"):
        wm.build(model, files, cache)


def test_half_installed_and_absent_models_say_what_to_run(tmp_path, tiny_source):
    model, files = tiny_source
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match=r"not installed in .*; run `mdr-graph whisper-install --model tiny-test`"):
        wm.verify("tiny-test", cache)
    wm.build(model, files, cache)
    (cache / "tiny-test.json").unlink()  # e.g. killed between conversion and the manifest
    with pytest.raises(UserError, match="half installed .*whisper-install --force"):
        wm.verify("tiny-test", cache)


def test_extract_without_the_model_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    # and the official openai-whisper cache has no base.pt either (same variable)
    code = cli_main(["extract", "--graph", str(tmp_path / "g"), "--out", str(tmp_path / "f"), "--whisper", "base"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "not installed" in err and "run `mdr-graph whisper-install`" in err


@pytest.mark.slow
def test_install_base_is_idempotent_and_repairs(tmp_path, capsys):
    """The real registry packages (already in the environment) into a tmp cache: no pip, no hub."""
    if wm.missing_packages(wm.MODELS["base"]):
        pytest.skip(f"needs {', '.join(wm.missing_packages(wm.MODELS['base']))} (requirements.txt)")
    cache = tmp_path / "cache"
    inst, changed = wm.install("base", cache, allow_pip=False)
    assert changed and inst.manifest["model_bin"]["sha256"] == wm.MODELS["base"].sha256
    assert inst.manifest["dims"] == dict(n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8,
                                         n_audio_layer=6, n_vocab=51865, n_text_ctx=448, n_text_state=512,
                                         n_text_head=8, n_text_layer=6)
    stamp = inst.checkpoint.stat().st_mtime_ns
    again, changed2 = wm.install("base", cache, allow_pip=False)
    assert not changed2 and again.checkpoint.stat().st_mtime_ns == stamp  # verified, nothing rewritten
    with open(inst.checkpoint, "r+b") as f:  # flip one byte in the middle
        f.seek(inst.checkpoint.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(UserError, match="SHA-256 mismatch"):
        wm.verify("base", cache)
    _, changed3 = wm.install("base", cache, allow_pip=False)  # rebuilt from the good parts
    assert changed3 and wm.verify("base", cache, ct2=True)
    assert "rebuilding" in capsys.readouterr().err
