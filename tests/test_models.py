"""Baseline fusion architectures: one forward signature, masks, contributions, checkpoints."""

from __future__ import annotations

import pytest
import torch

from mdr_graph.errors import UserError
from mdr_graph.fusion import FusionConfig, FusionModel
from mdr_graph.models import KINDS, LateFusion, SingleTransformer, build_model, load_model

SHAPES = {"vit": (2, 3, 32, 32), "mfcc": (8, 20), "whisper": (24,), "network": (10,), "meta": (12,), "text": (64,)}
MODS = ["vit", "mfcc", "whisper", "meta", "text"]


def cfg_for(mods, **kw):
    base = dict(modalities=list(mods), d_model=16, heads=2, dropout=0.0, patch=16, text_dim=64, text_features="hashed", audio_hidden=16,
                meta_hidden=16, head_hidden=16)
    base.update(kw)
    return FusionConfig(**base)


def batch(mods, b=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: (torch.randint(0, 256, (b, *SHAPES[m]), dtype=torch.uint8, generator=g) if m == "vit"
                else torch.randn((b, *SHAPES[m]), generator=g)) for m in mods}


MULTI = [k for k in KINDS if k != "unimodal"]


@pytest.mark.parametrize("kind", MULTI)
def test_every_kind_scores_masks_and_reports_contributions(kind):
    torch.manual_seed(0)
    model = build_model(kind, cfg_for(MODS), SHAPES).eval()
    assert model.kind == kind
    x = batch(MODS)
    present = torch.tensor([[1, 1, 1, 1, 1], [1, 0, 0, 1, 0], [0, 1, 1, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
                           dtype=torch.bool)
    out = model(x, present)
    assert out.pred.shape == (5,) and ((out.pred > 0) & (out.pred < 1)).all() and torch.isfinite(out.logits).all()
    if kind == "concat-mlp":
        assert out.contributions is None
    else:
        c = out.contributions
        assert c.shape == (5, 5)
        assert torch.allclose(c.sum(1)[:4], torch.ones(4), atol=1e-5) and torch.all(c[~present] == 0)
    noisy = {m: t.clone() for m, t in x.items()}
    for j, m in enumerate(MODS):
        rows = ~present[:, j]
        noisy[m][rows] = (255 - noisy[m][rows]) if m == "vit" else noisy[m][rows] * 50 - 3
    assert torch.allclose(model(noisy, present).pred, out.pred, atol=1e-6)


def test_late_fusion_is_a_learned_weighted_average_of_per_modality_predictions():
    torch.manual_seed(0)
    model = LateFusion(cfg_for(["whisper", "mfcc"]), SHAPES).eval()
    with torch.no_grad():
        model.decision_logits.copy_(torch.tensor([1.0, -0.5]))
    x = batch(["whisper", "mfcc"], b=3)
    present = torch.tensor([[True, True], [False, True], [True, False]])
    out = model(x, present)
    w = torch.softmax(torch.tensor([1.0, -0.5]), 0)
    p = out.parts
    assert torch.allclose(out.pred[0], (w * p[0]).sum())
    assert torch.allclose(out.pred[1], p[1, 1]) and torch.allclose(out.pred[2], p[2, 0])
    assert torch.allclose(out.contributions[0], w)


def test_single_transformer_contributions_are_cls_attention_mass_per_modality():
    torch.manual_seed(0)
    model = SingleTransformer(cfg_for(["vit", "meta"]), SHAPES).eval()
    out = model(batch(["vit", "meta"], b=2))
    # vit has 8 tokens and meta one; both shares are positive and sum to one
    assert (out.contributions > 0).all() and torch.allclose(out.contributions.sum(1), torch.ones(2))


def test_unimodal_is_the_fusion_model_with_one_modality():
    model = build_model("unimodal", cfg_for(["meta"]), SHAPES)
    assert isinstance(model, FusionModel) and model.kind == "unimodal"
    assert torch.allclose(model.eval()(batch(["meta"])).contributions, torch.ones(5, 1))
    with pytest.raises(UserError, match="exactly one modality"):
        build_model("unimodal", cfg_for(["meta", "text"]), SHAPES)
    with pytest.raises(UserError, match="unknown model kind 'svm'"):
        build_model("svm", cfg_for(["meta"]), SHAPES)


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoints_rebuild_every_kind_with_weights_only(kind, tmp_path):
    torch.manual_seed(0)
    mods = ["meta"] if kind == "unimodal" else ["meta", "mfcc", "text"]
    model = build_model(kind, cfg_for(mods, fusion="guided"), SHAPES)
    x = batch(mods)
    model.fit_input_stats((x, None))
    model.eval()
    torch.save(model.checkpoint(), tmp_path / "m.pt")
    ck = torch.load(tmp_path / "m.pt", weights_only=True)
    assert set(ck) == {"kind", "config", "input_shapes", "model"} and ck["kind"] == kind
    loaded = load_model(ck).eval()
    assert type(loaded) is type(model) and loaded.kind == kind and loaded.cfg.fusion == "guided"
    assert torch.allclose(loaded(x).pred, model(x).pred, atol=1e-6)
    with pytest.raises(UserError, match="not a model checkpoint"):
        load_model({"model": ck["model"]})


@pytest.mark.parametrize("kind", MULTI)
def test_every_kind_learns_a_small_batch(kind):
    mods = ["meta", "mfcc"]
    torch.manual_seed(0)
    model = build_model(kind, cfg_for(mods, d_model=32, heads=4), SHAPES)
    x = batch(mods, b=12, seed=1)
    target = torch.rand(12, generator=torch.Generator().manual_seed(2)) * 0.8 + 0.1
    model.fit_input_stats((x, None))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        loss = torch.nn.functional.mse_loss(model(x).pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
