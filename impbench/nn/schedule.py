"""The training plan of a ``Trainer``: optimiser steps per epoch, the per-rank batch, and the
learning-rate schedules (all in steps or epochs, never seconds, so that a training is the same
on a loaded and on a quiet machine).

``batch_size`` is the global batch: under DDP each of ``world_size`` ranks takes
``batch_size / world_size`` rows per step (it must divide), and the gradients are averaged over
the ranks, so one step sees ``batch_size`` rows whatever the world size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from impbench.errors import ImpbenchError


def warmup_cosine(epoch: int, warmup_epochs: int, epochs: int, floor: float) -> float:
    """The learning-rate factor of a 0-based epoch (or step): ``(epoch + 1) / warmup_epochs``
    during the warm-up, then a cosine from 1 down towards ``floor`` over the remaining ones."""
    if epoch < warmup_epochs:
        return (epoch + 1) / warmup_epochs
    span = max(1, epochs - warmup_epochs)
    progress = min(1.0, (epoch - warmup_epochs) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class EpochPlan:
    """How an epoch is cut into optimiser steps on every rank.

    rows_per_rank : training rows one rank sees per epoch (all ``epoch_passes``; the
        ``DistributedSampler`` pads the ranks to equal shares).
    rank_batch : rows per step on one rank (``batch_size / world_size``).
    steps_per_epoch : optimiser steps per epoch (equal on every rank).
    total_steps : ``steps_per_epoch * epochs``: the step budget.
    warmup_steps : ``lr_schedule="steps"``: steps of linear warm-up (``warmup_fraction`` of
        ``total_steps``).
    """

    rows_per_rank: int
    rank_batch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int

    def batches(self, n_rows: int) -> range:
        """Start offsets of an epoch's batches in an order of ``n_rows`` rows (the last,
        partial batch is dropped by ``steps_per_epoch`` when ``drop_last``)."""
        return range(0, min(n_rows, self.steps_per_epoch * self.rank_batch), self.rank_batch)


def plan(options, rows_per_rank_pass: int, world_size: int) -> EpochPlan:
    """The ``EpochPlan`` of ``options`` (an ``NNOptions``) for ``rows_per_rank_pass`` rows per
    rank and pass. Raises ``ImpbenchError`` when ``batch_size`` does not split over the ranks."""
    if options.batch_size % world_size:
        raise ImpbenchError(
            f"option batch_size={options.batch_size} is the global batch: it must be a multiple of the "
            f"world size {world_size} (each rank takes batch_size / world_size rows per step)"
        )
    rank_batch = options.batch_size // world_size
    rows = rows_per_rank_pass * options.epoch_passes
    if options.drop_last:
        steps = max(1, rows // rank_batch)
    else:
        steps = max(1, math.ceil(rows / rank_batch))
    total = steps * options.epochs
    return EpochPlan(rows, rank_batch, steps, total, int(round(options.warmup_fraction * total)))


def lr_factor(options, plan_: EpochPlan):
    """The ``LambdaLR`` factor function of ``options.lr_schedule``: ``epochs`` (warm-up over
    ``warmup_epochs``, cosine to ``min_lr_ratio`` over ``epochs``, stepped once per epoch) or
    ``steps`` (the same shape over ``plan_.total_steps`` optimiser steps, warm-up over
    ``warmup_fraction`` of them, stepped after every step)."""
    if options.lr_schedule == "steps":
        return lambda step: warmup_cosine(step, plan_.warmup_steps, plan_.total_steps, options.min_lr_ratio)
    return lambda epoch: warmup_cosine(epoch, options.warmup_epochs, options.epochs, options.min_lr_ratio)
