"""The CTranslate2 -> openai-whisper converter, on tiny Whisper models written in CT2's format by the test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper

from mdr_graph.errors import UserError
from mdr_graph.media.ct2_whisper import parse_ct2, read_ct2, to_checkpoint, to_openai

TIED = {"decoder/projection/weight": "decoder/embeddings/weight"}
DIMS = dict(n_mels=80, n_audio_ctx=50, n_audio_state=32, n_audio_head=4, n_audio_layer=2,
            n_vocab=300, n_text_ctx=16, n_text_state=32, n_text_head=4, n_text_layer=2)  # = conftest's


def _forward(model, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(1, DIMS["n_mels"], 2 * DIMS["n_audio_ctx"], generator=g)
    tokens = torch.randint(0, DIMS["n_vocab"], (1, 6), generator=g)
    with torch.no_grad():
        return model(mel, tokens)


def _load(checkpoint: dict):
    from whisper.model import ModelDimensions, Whisper

    m = Whisper(ModelDimensions(**checkpoint["dims"])).eval()
    m.load_state_dict(checkpoint["model_state_dict"], strict=True)
    return m


def test_float32_round_trip_is_exact(tmp_path, ct2):
    model = ct2.random_whisper(seed=3)
    path = ct2.write(tmp_path / "model.bin", ct2.variables(model.state_dict(), DIMS), TIED)
    ck = to_checkpoint(read_ct2(path))
    assert ck["dims"] == DIMS
    ref = model.state_dict()
    assert set(ck["model_state_dict"]) == set(ref)
    for k, v in ref.items():
        assert torch.equal(ck["model_state_dict"][k], v), k
    assert torch.equal(_forward(_load(ck)), _forward(model))


def test_float16_file_converts_and_loads_with_whisper(tmp_path, tiny_ct2, ct2):
    model, path = tiny_ct2
    ck = to_checkpoint(read_ct2(path))
    sd = ck["model_state_dict"]
    assert all(v.dtype == torch.float16 for v in sd.values())  # kept as stored (like OpenAI's own files)
    for k, v in model.state_dict().items():
        assert torch.equal(sd[k], v.half()), k
    out = tmp_path / "tiny.pt"
    torch.save(ck, out)
    assert set(torch.load(out, weights_only=True)) == {"dims", "model_state_dict"}
    loaded = whisper.load_model(str(out), device="cpu").eval()
    rounded = ct2.random_whisper(seed=1)
    with torch.no_grad():
        for t in rounded.state_dict().values():
            t.copy_(t.half().float())
    assert torch.equal(_forward(loaded), _forward(rounded))
    assert not torch.equal(_forward(loaded), _forward(ct2.random_whisper(seed=2)))  # the weights matter


def test_the_ctranslate2_library_writes_what_we_read(tmp_path, ct2):
    """CTranslate2's own WhisperSpec serializer, filled from the same variables, gives a file we convert back."""
    spec_mod = pytest.importorskip("ctranslate2.specs")
    model = ct2.random_whisper(seed=4)
    d = DIMS
    spec = spec_mod.WhisperSpec(d["n_audio_layer"], d["n_audio_head"], d["n_text_layer"], d["n_text_head"])
    variables = ct2.variables(model.state_dict(), d)
    for key, value in variables.items():
        if key.endswith(("num_heads", "activation", "pre_norm", "scale_embeddings", "alibi",
                         "start_from_zero_embedding", "alignment_heads", "alignment_layer")):
            continue  # options the spec sets itself
        obj, parts = spec, key.split("/")
        for part in parts[:-1]:
            if hasattr(obj, part):
                obj = getattr(obj, part)
            else:  # a list element: layer_3 -> .layer[3], linear_0 -> .linear[0]
                base, _, i = part.rpartition("_")
                obj = getattr(obj, base)[int(i)]
        setattr(obj, parts[-1], value)
    spec.decoder.projection.weight = variables["decoder/embeddings/weight"]  # tied, as Whisper's loader does
    spec.register_vocabulary([f"t{i}" for i in range(d["n_vocab"])])
    spec.validate()
    spec.optimize(quantization="float16")
    spec.save(str(tmp_path))
    m = read_ct2(tmp_path / "model.bin")
    assert (m.version, m.name) == (6, "WhisperSpec")
    ck = to_checkpoint(m)
    assert ck["dims"] == d
    for k, v in model.state_dict().items():
        assert torch.equal(ck["model_state_dict"][k], v.half()), k


def test_the_real_layout_facts(tiny_ct2, ct2):
    m = read_ct2(tiny_ct2[1])
    dims, sd = to_openai(m)
    n = DIMS["n_audio_state"]
    assert m.get("encoder/layer_0/self_attention/linear_0/weight").shape == (3 * n, n)
    assert "encoder.blocks.0.attn.key.bias" not in sd and "encoder.blocks.0.attn.query.bias" in sd
    assert m.aliases == TIED and m.get("decoder/projection/weight") is m.get("decoder/embeddings/weight")


def test_a_nonzero_key_bias_is_refused(tmp_path, ct2):
    model = ct2.random_whisper(seed=5)
    v = ct2.variables(model.state_dict(), DIMS)
    n = DIMS["n_text_state"]
    v["decoder/layer_1/self_attention/linear_0/bias"] = v["decoder/layer_1/self_attention/linear_0/bias"].copy()
    v["decoder/layer_1/self_attention/linear_0/bias"][n + 2] = 0.5  # inside the key third
    with pytest.raises(UserError, match="decoder/layer_1/self_attention: the key part of the fused bias"):
        to_openai(read_ct2(ct2.write(tmp_path / "model.bin", v, TIED)))


def test_untied_projection_and_unknown_variables_are_refused(tmp_path, ct2):
    v = ct2.variables(ct2.random_whisper(seed=6).state_dict(), DIMS)
    untied = dict(v, **{"decoder/projection/weight": v["decoder/embeddings/weight"] + 1})
    with pytest.raises(UserError, match="ties them"):
        to_openai(read_ct2(ct2.write(tmp_path / "a.bin", untied, {})))
    extra = dict(v, **{"decoder/something_new": np.zeros(3, np.float32)})
    with pytest.raises(UserError, match="does not map, e.g. decoder/something_new"):
        to_openai(read_ct2(ct2.write(tmp_path / "b.bin", extra, TIED)))
    with pytest.raises(UserError, match="not a complete Whisper model"):
        to_openai(read_ct2(ct2.write(tmp_path / "c.bin", {k: x for k, x in v.items()
                                                               if "layer_1/ffn/linear_0" not in k}, TIED)))


def test_bad_files_get_one_line_errors(tmp_path, tiny_ct2, ct2):
    data = tiny_ct2[1].read_bytes()
    with pytest.raises(UserError, match="truncated"):
        parse_ct2(data[: len(data) // 2])
    with pytest.raises(UserError, match="binary version 5"):
        parse_ct2(b"\x05\0\0\0" + data[4:])
    with pytest.raises(UserError, match="unexpected bytes"):
        parse_ct2(data + b"\0")
    other = ct2.write(tmp_path / "t.bin", {"x": np.zeros(2, np.float32)}, {}, name="TransformerSpec")
    with pytest.raises(UserError, match="not a WhisperSpec"):
        to_openai(read_ct2(other))
    with pytest.raises(UserError, match="cannot read"):
        read_ct2(tmp_path / "absent.bin")
