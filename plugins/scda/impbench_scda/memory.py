"""Memory estimate of full-length training, and the memory the device has.

Full-length training holds every layer's activations for ``batch_size`` whole sequences; on a
chromosome of a million SNPs the six-level network needs gigabytes per sequence. ``fit`` checks
the estimate against ``available_memory`` before it trains and fails with advice instead of
being killed (or thrashing) half-way.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from impbench.nn.runtime import available_memory, format_bytes

__all__ = ["activation_profile", "available_memory", "format_bytes"]

#: bytes per float32 element
FLOAT_BYTES = 4
#: Training holds each saved activation and, during the backward pass, a gradient of it.
TRAIN_ACTIVATION_FACTOR = 2.0
#: Parameters, their gradients and two Adam moments.
PARAMETER_COPIES = 4


def activation_profile(model: nn.Module, in_channels: int, length_multiple: int) -> tuple[float, float]:
    """Activation elements per sequence position, measured: (all layers, largest layer pair).

    Runs the model once on a short zero input (batch 1, length ``4 * length_multiple``) with
    forward hooks on its leaf modules; activations scale linearly with the length, so a count
    divided by the length is the per-position cost. The first number sums every layer output
    and the input (what training keeps for the backward pass); the second is the largest
    input + output of one layer (the peak of inference, where each activation is freed once
    the next layer has consumed it).
    """
    length = 4 * length_multiple
    total = [float(in_channels * length)]
    largest = [0.0]

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            total[0] += output.numel()
            consumed = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))
            largest[0] = max(largest[0], consumed + output.numel())

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros((1, in_channels, length), device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total[0] / length, largest[0] / length


def full_length_bytes(
    model: nn.Module, in_channels: int, length_multiple: int, length: int, batch_size: int, predict_batch_size: int
) -> tuple[int, int]:
    """Estimated peak bytes of full-length training and of prediction: (train, predict).

    train: one step on ``batch_size`` sequences of ``length``: every activation (float32,
    kept for the backward pass, plus its gradient) + the parameters with their gradients and
    Adam's two moments. predict: one forward pass on ``predict_batch_size`` sequences (the
    largest layer's input and output) + the parameters. Mixed precision would need less; the
    estimate stays float32 so that it errs towards "does not fit".
    """
    all_layers, largest_layer = activation_profile(model, in_channels, length_multiple)
    n_parameters = sum(p.numel() for p in model.parameters())
    train = all_layers * batch_size * length * FLOAT_BYTES * TRAIN_ACTIVATION_FACTOR
    train += n_parameters * FLOAT_BYTES * PARAMETER_COPIES
    predict = largest_layer * predict_batch_size * length * FLOAT_BYTES + n_parameters * FLOAT_BYTES
    return int(math.ceil(train)), int(math.ceil(predict))
