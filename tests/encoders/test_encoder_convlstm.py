"""ConvLSTM cell and autoencoder, its checkpoint, and the frozen `convlstm` modality encoder."""

from __future__ import annotations

import pytest
import torch

from mdr_graph.encoders.convlstm import (ConvLSTMAutoencoder, ConvLSTMCell, ConvLSTMEmbedding,
                                         load_convlstm_autoencoder, load_convlstm_encoder, save_convlstm)
from mdr_graph.errors import UserError

TINY = dict(hidden=8, embed_dim=16, downsample=2, grid=2)


def test_cell_follows_the_lstm_equations():
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, kernel_size=1)  # a 1x1 kernel makes the convolution a matrix product per pixel
    x, h, c = torch.randn(1, 2, 1, 1), torch.randn(1, 3, 1, 1), torch.randn(1, 3, 1, 1)
    h2, c2 = cell(x, (h, c))
    w = cell.conv.weight[:, :, 0, 0]
    z = w @ torch.cat([x, h], 1).flatten() + cell.conv.bias
    i, f, o, g = z.split(3)
    c_ref = torch.sigmoid(f) * c.flatten() + torch.sigmoid(i) * torch.tanh(g)
    h_ref = torch.sigmoid(o) * torch.tanh(c_ref)
    assert torch.allclose(c2.flatten(), c_ref, atol=1e-6) and torch.allclose(h2.flatten(), h_ref, atol=1e-6)


def test_cell_keeps_map_size_and_starts_from_zero_state():
    cell = ConvLSTMCell(4, 6, 3)
    h, c = cell(torch.randn(2, 4, 5, 7))
    assert h.shape == c.shape == (2, 6, 5, 7)
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(4, 6, 2)


@pytest.mark.parametrize("frames,size", [(2, 32), (3, 16)])
def test_autoencoder_reconstructs_the_input_shape_and_encodes_to_a_vector(frames, size):
    model = ConvLSTMAutoencoder(**TINY).eval()
    x = torch.randint(0, 256, (3, frames, 3, size, size), dtype=torch.uint8)
    rec = model(x)
    assert rec.shape == x.shape and rec.dtype == torch.float32
    assert rec.min() >= 0 and rec.max() <= 1
    assert model.encode(x).shape == (3, 16)
    assert torch.allclose(model.encode(x), model.encode(x.float() / 255))


def test_frame_size_must_survive_the_downsampling():
    model = ConvLSTMAutoencoder(**TINY)
    with pytest.raises(UserError, match="divisible by 4"):
        model(torch.zeros(1, 2, 3, 30, 30))


def test_the_bottleneck_is_the_only_path_from_input_to_reconstruction():
    torch.manual_seed(0)
    model = ConvLSTMAutoencoder(**TINY).eval()
    a, b = torch.rand(1, 2, 3, 16, 16), torch.rand(1, 2, 3, 16, 16)
    code = model.encode(a)
    assert torch.allclose(model(a), model.decoder(code, 2, (16, 16)))
    assert not torch.allclose(model(a), model(b))


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    torch.manual_seed(0)
    model = ConvLSTMAutoencoder(**TINY)
    path = tmp_path / "convlstm.pt"
    save_convlstm(path, model, (2, 3, 16, 16), epoch=3)
    raw = torch.load(path, weights_only=True)
    assert raw["epoch"] == 3 and raw["input_shape"] == [2, 3, 16, 16] and raw["config"]["hidden"] == 8
    enc = load_convlstm_encoder(path)
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    x = torch.rand(2, 2, 3, 16, 16)
    assert torch.allclose(enc(x), model.eval().encode(x))
    assert torch.allclose(load_convlstm_autoencoder(path)(x), model(x))


def test_missing_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="pretrain-visual"):
        load_convlstm_encoder(tmp_path / "nope.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a ConvLSTM checkpoint"):
        load_convlstm_encoder(tmp_path / "other.pt")


def test_embedding_keeps_the_pretrained_encoder_frozen(tmp_path):
    torch.manual_seed(0)
    model = ConvLSTMAutoencoder(**TINY)
    save_convlstm(tmp_path / "c.pt", model, (2, 3, 16, 16), epoch=1)
    emb = ConvLSTMEmbedding((2, 3, 16, 16), 12, path=tmp_path / "c.pt")
    emb.train()
    assert not emb.encoder.training
    x = torch.randint(0, 256, (4, 2, 3, 16, 16), dtype=torch.uint8)
    out = emb(x)
    assert out.shape == (4, 1, 12)
    out.sum().backward()
    assert all(p.grad is None for p in emb.encoder.parameters())
    assert emb.proj[0].weight.grad is not None
    # the encoder weights are in the module's state_dict, so the file is not needed to rebuild it
    again = ConvLSTMEmbedding((2, 3, 16, 16), 12, arch=emb.arch)
    again.load_state_dict(emb.state_dict())
    assert torch.allclose(again.eval()(x), emb.eval()(x))
    with pytest.raises(UserError, match="pretrain-visual"):
        ConvLSTMEmbedding((2, 3, 16, 16), 12)
