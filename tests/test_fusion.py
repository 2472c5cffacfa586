"""The N-modality co-attention fusion model: shapes, masks, contributions, training, checkpoints."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mdr_graph.config import from_dict, load_toml, save_toml
from mdr_graph.encoders.convlstm import ConvLSTMAutoencoder, save_convlstm
from mdr_graph.errors import UserError
from mdr_graph.fusion import FusionConfig, FusionModel, modality_contributions
from mdr_graph.modalities import check_modality
from mdr_graph.models import load_model

ALL = ["vit", "convlstm", "mfcc", "whisper", "network", "meta", "text"]
SHAPES = {"vit": (2, 3, 32, 32), "convlstm": (2, 3, 32, 32), "mfcc": (8, 20), "fbank": (6, 20), "whisper": (24,),
          "network": (10,), "meta": (12,), "text": (64,)}


@pytest.fixture(scope="module")
def convlstm_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("convlstm") / "convlstm.pt"
    save_convlstm(path, ConvLSTMAutoencoder(hidden=8, embed_dim=16, downsample=2), (2, 3, 32, 32), epoch=1)
    return str(path)


def tiny_cfg(mods, convlstm_path=None, **kw) -> FusionConfig:
    base = dict(modalities=list(mods), d_model=16, heads=2, dropout=0.0, patch=16, text_dim=64, text_features="hashed",
                convlstm_path=convlstm_path if "convlstm" in mods else None, audio_hidden=16, meta_hidden=16,
                head_hidden=16)
    base.update(kw)
    return FusionConfig(**base)


def batch(mods, b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m in mods:
        shape = SHAPES[m]
        if check_modality(m).dtype == torch.uint8:
            out[m] = torch.randint(0, 256, (b, *shape), dtype=torch.uint8, generator=g)
        else:
            out[m] = torch.randn((b, *shape), generator=g)
    return out


@pytest.mark.parametrize("fusion", ["stacked", "guided"])
@pytest.mark.parametrize("n", range(1, 8))
def test_shapes_masks_and_contributions_for_1_to_7_modalities(fusion, n, convlstm_ckpt):
    mods = ALL[-n:] if n < 7 else ALL  # the cheap modalities first; n = 7 includes frames
    torch.manual_seed(n)
    model = FusionModel(tiny_cfg(mods, convlstm_ckpt, fusion=fusion), {m: SHAPES[m] for m in mods}).eval()
    x = batch(mods)
    present = torch.rand(6, n, generator=torch.Generator().manual_seed(n)) > 0.4
    present[0] = True
    present[1, :] = False
    present[1, 0] = True
    out = model(x, present)
    assert out.pred.shape == (6,) and ((out.pred > 0) & (out.pred < 1)).all()
    assert out.logits.shape == (6,) and torch.allclose(torch.sigmoid(out.logits), out.pred)
    assert out.contributions.shape == (6, n)
    has_any = present.any(1)
    assert torch.allclose(out.contributions.sum(1)[has_any], torch.ones(int(has_any.sum())), atol=1e-5)
    assert torch.all(out.contributions[~present] == 0)
    # a masked modality's input cannot move the prediction
    noisy = {m: t.clone() for m, t in x.items()}
    for j, m in enumerate(mods):
        rows = ~present[:, j]
        if noisy[m].dtype == torch.uint8:
            noisy[m][rows] = 255 - noisy[m][rows]
        else:
            noisy[m][rows] = noisy[m][rows] * 100 + 7
    again = model(noisy, present)
    assert torch.allclose(again.pred, out.pred, atol=1e-6)
    assert torch.allclose(again.contributions, out.contributions, atol=1e-6)


def test_present_modality_inputs_do_move_the_prediction():
    mods = ["meta", "network"]
    torch.manual_seed(0)
    model = FusionModel(tiny_cfg(mods), {m: SHAPES[m] for m in mods}).eval()
    x = batch(mods)
    y = dict(x, meta=x["meta"] + 3)
    assert not torch.allclose(model(x).pred, model(y).pred)


def test_contributions_formula_on_hand_made_scores():
    # one sample, one head, three modalities, the second missing
    r = torch.tensor([[[[1.0, 5.0, 2.0], [9.0, 9.0, 9.0], [0.5, 7.0, -1.0]]]])
    present = torch.tensor([[True, False, True]])
    c = modality_contributions(r, present)
    row0, row2 = 1.0 + 2.0, 0.5 - 1.0          # column 1 (missing) left out of the row sums
    z = math.exp(row0) + math.exp(row2)
    assert c[0].tolist() == pytest.approx([math.exp(row0) / z, 0.0, math.exp(row2) / z], abs=1e-6)
    # excluding the diagonal (guided): row i sums over present j != i
    c = modality_contributions(r, present, exclude_self=True)
    z = math.exp(2.0) + math.exp(0.5)
    assert c[0].tolist() == pytest.approx([math.exp(2.0) / z, 0.0, math.exp(0.5) / z], abs=1e-6)
    # nothing present: zeros, not NaN
    assert torch.equal(modality_contributions(r, torch.zeros(1, 3, dtype=torch.bool)), torch.zeros(1, 3))


def _by_hand(z, present, attn_of_row, heads, exclude_self=False):
    """R^h_ij = (W^Q z_i)(W^K z_j) per head with row i's attention weights; row sums over present keys;
    softmax over present rows; mean over heads."""
    b, m, d = z.shape
    dh = d // heads
    out = torch.zeros(b, m)
    for s in range(b):
        for h in range(heads):
            sl = slice(h * dh, (h + 1) * dh)
            rows = {}
            for i in range(m):
                if not present[s, i]:
                    continue
                attn = attn_of_row(i)
                q = z[s, i] @ attn.q_proj.weight.T + attn.q_proj.bias
                k = z[s] @ attn.k_proj.weight.T + attn.k_proj.bias
                rows[i] = sum(float(q[sl] @ k[j, sl]) for j in range(m)
                              if present[s, j] and not (exclude_self and i == j))
            total = sum(math.exp(v) for v in rows.values())
            for i, v in rows.items():
                out[s, i] += math.exp(v) / total / heads
    return out


@pytest.mark.parametrize("fusion", ["stacked", "guided"])
@torch.no_grad()
def test_contributions_match_a_hand_computation_on_a_tiny_model(fusion):
    mods = ["meta", "network", "whisper"]
    torch.manual_seed(1)
    model = FusionModel(tiny_cfg(mods, d_model=4, heads=2, fusion=fusion), {m: SHAPES[m] for m in mods}).eval()
    x = batch(mods, b=3)
    present = torch.tensor([[True, True, True], [True, False, True], [False, True, False]])
    out = model(x, present)
    z = model.modality_tokens(*model.check_inputs(x, present))
    if fusion == "stacked":  # one shared co-attention: every row uses its W^Q, W^K
        expected = _by_hand(z, present, lambda i: model.coattention[0].attn, heads=2)
    else:  # row i uses modality i's own guided attention, and a modality does not attend to itself
        expected = _by_hand(z, present, lambda i: model.guided[0][mods[i]].attn, heads=2, exclude_self=True)
    assert torch.allclose(out.contributions, expected, atol=1e-5)
    assert torch.allclose(out.contributions.sum(1), torch.ones(3), atol=1e-6)
    assert out.contributions[2].tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_a_sample_with_nothing_present_still_gets_a_finite_score():
    mods = ["meta", "text"]
    torch.manual_seed(0)
    for fusion in ("stacked", "guided"):
        model = FusionModel(tiny_cfg(mods, fusion=fusion), {m: SHAPES[m] for m in mods})
        out = model(batch(mods, b=2), torch.zeros(2, 2, dtype=torch.bool))
        assert torch.isfinite(out.pred).all() and torch.equal(out.contributions, torch.zeros(2, 2))
        out.pred.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("fusion", ["stacked", "guided"])
def test_a_tiny_model_overfits_a_small_batch(fusion):
    mods = ["meta", "mfcc", "text"]
    torch.manual_seed(0)
    model = FusionModel(tiny_cfg(mods, fusion=fusion, d_model=32, heads=4), {m: SHAPES[m] for m in mods})
    x = batch(mods, b=16, seed=3)
    present = torch.ones(16, 3, dtype=torch.bool)
    present[::4, 1] = False
    target = torch.rand(16, generator=torch.Generator().manual_seed(4)) * 0.8 + 0.1
    model.fit_input_stats((x, present))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(model(x, present).pred, target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    final = torch.nn.functional.mse_loss(model(x, present).pred, target).item()
    assert final < 1e-3 < first


def test_fit_input_stats_uses_present_samples_only():
    mods = ["meta", "mfcc"]
    model = FusionModel(tiny_cfg(mods), {m: SHAPES[m] for m in mods})
    x = batch(mods, b=8)
    x["meta"][4:] = 1e6  # absent rows: must not count
    present = torch.ones(8, 2, dtype=torch.bool)
    present[4:, 0] = False
    assert model.fit_input_stats([(x, present)]) == ["meta", "mfcc"]
    std = model.encoders["meta"].standardizer
    assert torch.allclose(std.mean, x["meta"][:4].mean(0), atol=1e-5)
    assert torch.allclose(model.encoders["mfcc"].standardizer.mean.squeeze(-1), x["mfcc"].mean(dim=(0, 2)), atol=1e-5)


def test_input_checks_name_the_modality_and_shapes():
    mods = ["meta", "text"]
    model = FusionModel(tiny_cfg(mods), {m: SHAPES[m] for m in mods})
    x = batch(mods, b=2)
    with pytest.raises(UserError, match="input 'text' has shape"):
        model(dict(x, text=torch.zeros(2, 32)))
    with pytest.raises(UserError, match=r"present must be \[batch, 2\]"):
        model(x, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(UserError, match="'text' is missing"):
        model({"meta": x["meta"]}, torch.ones(2, 2, dtype=torch.bool))
    # a modality absent from the whole batch may be left out of the inputs
    present = torch.tensor([[True, False], [True, False]])
    assert torch.allclose(model.eval()({"meta": x["meta"]}, present).pred, model(x, present).pred)


def test_config_validation():
    with pytest.raises(UserError, match="at least one modality"):
        FusionModel(tiny_cfg([]), {})
    with pytest.raises(UserError, match="unknown modality 'audio'"):
        FusionModel(tiny_cfg(["audio"]), {"audio": (3,)})
    with pytest.raises(UserError, match="must not repeat"):
        FusionModel(tiny_cfg(["meta", "meta"]), SHAPES)
    with pytest.raises(UserError, match="multiple of heads"):
        FusionModel(tiny_cfg(["meta"], d_model=10, heads=4), SHAPES)
    with pytest.raises(UserError, match="unknown fusion"):
        FusionModel(tiny_cfg(["meta"], fusion="late"), SHAPES)
    with pytest.raises(UserError, match="no input shape for modality text"):
        FusionModel(tiny_cfg(["meta", "text"]), {"meta": (12,)})


@pytest.mark.parametrize("fusion", ["stacked", "guided"])
def test_checkpoint_loads_with_weights_only_and_without_the_convlstm_file(fusion, tmp_path):
    torch.manual_seed(0)
    ck_path = tmp_path / "convlstm.pt"
    save_convlstm(ck_path, ConvLSTMAutoencoder(hidden=8, embed_dim=16, downsample=2), (2, 3, 32, 32), epoch=1)
    mods = ["convlstm", "meta", "mfcc"]
    model = FusionModel(tiny_cfg(mods, str(ck_path), fusion=fusion), {m: SHAPES[m] for m in mods})
    x = batch(mods)
    model.fit_input_stats((x, None))
    model.eval()
    ref = model(x)
    torch.save(model.checkpoint(), tmp_path / "model.pt")
    ck_path.unlink()  # the frozen encoder's weights travel inside the model
    loaded = load_model(torch.load(tmp_path / "model.pt", weights_only=True)).eval()
    out = loaded(x)
    assert torch.allclose(out.pred, ref.pred, atol=1e-6) and torch.allclose(out.contributions, ref.contributions)
    assert loaded.cfg.convlstm_path == str(ck_path) and loaded.cfg.convlstm_arch["hidden"] == 8


def test_fusion_config_round_trips_through_toml(tmp_path, convlstm_ckpt):
    cfg = tiny_cfg(["convlstm", "meta"], convlstm_ckpt)
    model = FusionModel(cfg, {m: SHAPES[m] for m in cfg.modalities})
    save_toml(tmp_path / "c.toml", {"fusion": model.cfg})
    back = from_dict(FusionConfig, load_toml(tmp_path / "c.toml")["fusion"])
    assert dataclasses.asdict(back) == dataclasses.asdict(model.cfg)
    assert cfg.convlstm_arch is None  # building resolved a copy; the caller's config is untouched


@pytest.mark.parametrize("fusion", ["stacked", "guided"])
def test_deeper_fusion_and_no_per_modality_blocks_keep_the_contract(fusion):
    mods = ["meta", "network", "text"]
    torch.manual_seed(0)
    model = FusionModel(tiny_cfg(mods, fusion=fusion, coattention_layers=2, layers=0, ff_mult=0),
                        {m: SHAPES[m] for m in mods}).eval()
    x = batch(mods, b=4)
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 0]], dtype=torch.bool)
    out = model(x, present)
    assert torch.allclose(out.contributions.sum(1), torch.ones(4), atol=1e-6)
    noisy = dict(x, network=torch.where(present[:, 1:2], x["network"], x["network"] + 9))
    assert torch.allclose(model(noisy, present).pred, out.pred, atol=1e-6)
