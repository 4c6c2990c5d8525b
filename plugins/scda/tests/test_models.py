"""The SCDA networks: parameter counts against a hand count, shapes, no output activation."""

import pytest
import torch
from torch import nn

from impbench_scda.models import ARCHITECTURES, ConvDenoisingAutoencoder, build_model, count_parameters


def conv_parameters(c_in: int, c_out: int, kernel: int) -> int:
    """Weights plus biases of one Conv1d."""
    return c_in * c_out * kernel + c_out


def hand_count(encoder, decoder, kernel, n_codes=6) -> int:
    channels = [n_codes, *encoder]
    total = sum(conv_parameters(a, b, kernel) for a, b in zip(channels[:-1], channels[1:]))
    channels = [encoder[-1], *decoder]
    total += sum(conv_parameters(a, b, kernel) for a, b in zip(channels[:-1], channels[1:]))
    return total + conv_parameters(decoder[-1], n_codes, kernel)


def test_paper6_parameter_count():
    model = build_model("paper6")
    assert count_parameters(model) == hand_count((32, 64, 128, 256, 512, 1024), (1024, 512, 256, 128, 64), 7)
    assert count_parameters(model) == 17_110_886  # "about 17.1 million" (BiU-Net paper)


def test_original_parameter_count():
    model = build_model("original")
    assert count_parameters(model) == hand_count((32, 64, 128), (64, 32), 5)
    # Chen & Shi's Keras summary for 3 input/output classes: 103,683; with six codes:
    assert count_parameters(model) == 104_646
    three_classes = ConvDenoisingAutoencoder((32, 64, 128), (64, 32), 5, 0.25, in_channels=3, n_codes=3)
    assert count_parameters(three_classes) == 103_683


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_shapes_and_raw_logits(name):
    torch.manual_seed(0)
    model = build_model(name, width=0.125).eval()
    length = 2 * model.length_multiple
    x = torch.zeros(3, 6, length)
    x[:, 1] = 1.0
    logits = model(x)
    assert logits.shape == (3, 6, length)
    assert (logits < 0).any(), "logits must not pass through a ReLU"
    assert not isinstance(list(model.modules())[-1], (nn.ReLU, nn.Softmax))
    assert isinstance(model.head, nn.Conv1d)


def test_length_must_be_a_multiple_of_the_pooling():
    model = build_model("paper6", width=0.125)
    assert model.length_multiple == 32 and build_model("original").length_multiple == 4
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.zeros(1, 6, 48))


def test_paper6_layout():
    model = build_model("paper6")
    convs = [m for m in model.encoder if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 512, 1024]
    assert all(c.kernel_size == (7,) for c in convs)
    assert sum(isinstance(m, nn.MaxPool1d) for m in model.encoder) == 5
    assert sum(isinstance(m, nn.Dropout) for m in model.encoder) == 5
    decoder = [m for m in model.decoder if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels) for c in decoder] == [
        (1024, 1024), (1024, 512), (512, 256), (256, 128), (128, 64)]
    kinds = [type(m) for m in model.decoder][:4]
    assert kinds == [nn.Conv1d, nn.ReLU, nn.Upsample, nn.Dropout]
    assert (model.head.in_channels, model.head.out_channels) == (64, 6)


def test_hidden_weights_exclude_head_and_biases():
    model = build_model("original")
    hidden = model.hidden_weights()
    assert len(hidden) == 5 and all(w.dim() == 3 for w in hidden)
    assert all(w is not model.head.weight for w in hidden)


def test_width_scales_channels():
    model = build_model("paper6", width=0.25)
    convs = [m for m in model.encoder if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 128, 256]
