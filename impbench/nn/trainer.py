"""The training loop shared by neural imputers.

AdamW; linear warm-up then cosine decay, per epoch or per optimiser step
(``impbench.nn.schedule``); gradient clipping; a fresh mask per batch with a linear curriculum
(cells or whole variants); model selection and early stopping on the imputation task (the
benchmark's masked-cell minor-allele dosage R² of the validation split under a fixed mask,
``impbench.nn.validation``); an epoch budget and an opt-in wall-clock cap; the best and the
latest checkpoint; resume from the latest; DDP when started by ``torchrun``; mixed precision.

``fit`` is four steps repeated: ``run_epoch`` (the optimiser steps of one epoch),
``validate`` (score the model), ``stop_reason_after`` (the stop rule, decided on every rank
alike) and ``write_checkpoints``.

Reproducibility: budgets are epochs of a fixed number of steps; every epoch's randomness
(dropout, masks, mosaics) is drawn from seeds derived from ``(seed, epoch, rank)`` and the
sampler shuffles with ``(seed, epoch)``. The same options, data and thread count therefore give
the same ``best.pt`` and the same ``train_metrics.csv`` on a loaded and on a quiet machine, and
a run resumed from a checkpoint continues exactly as an uninterrupted one (on CPU). Wall-clock
measurements go to ``train_timing.csv`` only. The opt-in cap ``train_seconds`` breaks this (it
stops wherever the clock says) and is logged and recorded (``stop_reason="time"``) when it fires.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from impbench.files import atomic_write
from impbench.genotypes import PAD
from impbench.nn import checkpoint as ckpt
from impbench.nn.data import SegmentData, curriculum_rate, derived_seed, encode, forward, mask_batch
from impbench.nn.options import NNOptions
from impbench.nn.runtime import DistEnv, Precision, precision_for
from impbench.nn.schedule import EpochPlan, lr_factor, plan, warmup_cosine
from impbench.nn.records import (
    METRIC_COLUMNS, METRICS_CSV, STOP_CONVERGED, STOP_EPOCHS, STOP_TIME, SUMMARY_JSON, TIMING_COLUMNS, TIMING_CSV, EpochOutcome,
    TrainResult, csv_text,
)
from impbench.nn.validation import SUMMARY_SIZE, ValidationSet, scores_from_summaries

#: ``loss_fn(logits, target)``: logits float32 (B, 6, L), target int64 codes (B, L); returns a
#: scalar tensor averaged over the positions whose true code is a call (1-4).
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = [
    "METRICS_CSV", "TIMING_CSV", "SUMMARY_JSON", "STOP_CONVERGED", "STOP_EPOCHS", "STOP_TIME",
    "Trainer", "TrainResult", "parameter_digest", "warmup_cosine",
]


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of all parameters' bytes, in order (equal on every DDP replica when in sync)."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def noop_progress(stage: str, completed: float, total: float | None) -> None:
    return None


class Trainer:
    """Train ``model`` with ``loss_fn`` under ``options`` in this process's ``env``.

    checkpoint_dir : where rank 0 writes ``latest.pt``, ``best.pt``, the metrics and timing
        CSVs and the summary JSON.
    fingerprint : what a checkpoint must match to be resumed (see ``checkpoint.fingerprint``).
    progress : ``progress(stage, completed, total)``; called on rank 0 only.
    clock : seconds, for the opt-in wall-clock cap and the timing CSV (``time.perf_counter``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        options: NNOptions,
        env: DistEnv,
        checkpoint_dir: Path,
        fingerprint: dict[str, Any],
        seed: int = 0,
        name: str = "model",
        progress: Callable[[str, float, float | None], None] = noop_progress,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] | None = None,
    ):
        self.options = options
        self.env = env
        self.loss_fn = loss_fn
        self.checkpoint_dir = Path(checkpoint_dir)
        self.fingerprint = fingerprint
        self.seed = int(seed)
        self.name = name
        self.progress = progress if env.is_main else noop_progress
        self.logger = logger or logging.getLogger("impbench.nn")
        self.clock = clock or time.perf_counter
        self.precision: Precision = precision_for(options.amp, env.device)
        self.model = model.to(env.device)
        if env.distributed:
            device_ids = [env.device.index] if env.device.type == "cuda" else None
            self.ddp_model: torch.nn.Module = DistributedDataParallel(self.model, device_ids=device_ids)
        else:
            self.ddp_model = self.model
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=options.lr, betas=(options.beta1, options.beta2), weight_decay=options.weight_decay,
        )
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None  # built by ``fit`` from the plan
        self.scaler = self.precision.scaler()
        self.epoch = 0  # epochs completed
        self.steps = 0  # optimiser steps taken
        self.best_epoch = 0
        self.best_score = -math.inf
        self.bad_epochs = 0
        self.finished = False
        self.stop_reason = ""
        self.seconds_used = 0.0
        self.history: list[dict[str, float]] = []
        self.timing: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ checkpoints
    @property
    def latest_path(self) -> Path:
        return self.checkpoint_dir / ckpt.LATEST

    @property
    def best_path(self) -> Path:
        return self.checkpoint_dir / ckpt.BEST

    def state(self) -> dict[str, Any]:
        """The latest checkpoint's payload: everything needed to resume."""
        return {
            "fingerprint": self.fingerprint,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "epoch": self.epoch,
            "steps": self.steps,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "bad_epochs": self.bad_epochs,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "seconds_used": self.seconds_used,
            "history": self.history,
            "timing": self.timing,
        }

    def load_state(self, payload: dict[str, Any]) -> None:
        """Restore from a latest-checkpoint payload (fingerprint already checked)."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        self.epoch = int(payload["epoch"])
        self.steps = int(payload.get("steps", 0))
        self.best_epoch = int(payload["best_epoch"])
        self.best_score = float(payload["best_score"])
        self.bad_epochs = int(payload["bad_epochs"])
        self.finished = bool(payload["finished"])
        self.stop_reason = str(payload.get("stop_reason", ""))
        self.seconds_used = float(payload.get("seconds_used", 0.0))
        self.history = [dict(row) for row in payload["history"]]
        self.timing = [dict(row) for row in payload.get("timing", [])]

    def try_resume(self) -> int | None:
        """Continue from ``latest.pt`` when it exists (every rank reads it); return the epoch
        resumed after, or None. A checkpoint from other options or data raises
        ``ImpbenchError`` naming the mismatch."""
        if not self.latest_path.exists():
            return None
        payload = ckpt.load(self.latest_path, map_location=self.env.device)
        ckpt.check(self.latest_path, payload["fingerprint"], self.fingerprint, self.name)
        self.load_state(payload)
        if self.best_path.exists():
            best = ckpt.load(self.best_path, map_location="cpu")
            ckpt.check(self.best_path, best["fingerprint"], self.fingerprint, self.name)
            self.best_state = best["model"]
        return self.epoch

    def write_checkpoints(self, improved: bool) -> None:
        """Rank 0: ``best.pt`` when the epoch improved, ``latest.pt``, the metrics and timing CSVs."""
        if not self.env.is_main:
            return
        if improved:
            ckpt.save(
                self.best_path,
                {"fingerprint": self.fingerprint, "model": self.model.state_dict(), "epoch": self.epoch, "score": self.best_score},
            )
        ckpt.save(self.latest_path, self.state())
        atomic_write(self.checkpoint_dir / METRICS_CSV, csv_text(METRIC_COLUMNS, self.history))
        atomic_write(self.checkpoint_dir / TIMING_CSV, csv_text(TIMING_COLUMNS, self.timing))

    # ------------------------------------------------------------------ one epoch
    def forward_loss(
        self,
        model: torch.nn.Module,
        batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None],
        rate: float | torch.Tensor,
        generator: torch.Generator,
        groups: torch.Tensor | None = None,
        n_groups: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mask, encode, forward a batch from ``SegmentData.batch``; returns (loss, logits
        float32, masked input codes). ``rate``: a float or float32 (B, 1), one per row.
        ``groups``: int64 (B,) the segment index of each row (for ``mask_mode="variants"``
        and models that take it)."""
        codes, position, features = batch
        masked = mask_batch(codes, rate, generator, groups if self.options.mask_mode == "variants" else None, n_groups)
        x = encode(masked, position if self.options.use_position else None, features)
        with self.precision.autocast():
            logits = forward(model, x, groups)
        logits = logits.float()
        target = codes.long()
        if self.options.loss_positions == "masked":
            # Score the hidden cells only: every other position gets the padding code, which
            # every loss leaves out.
            target = torch.where(masked != codes, target, torch.full_like(target, PAD))
        return self.loss_fn(logits, target), logits, masked

    def epoch_order(self, sampler: DistributedSampler, epoch: int) -> np.ndarray:
        """This rank's training rows of an epoch, int64: ``epoch_passes`` shuffled passes."""
        passes = []
        for p in range(self.options.epoch_passes):
            sampler.set_epoch(epoch * self.options.epoch_passes + p)
            passes.append(np.fromiter(iter(sampler), dtype=np.int64, count=len(sampler)))
        return np.concatenate(passes)

    def optimiser_step(self, loss: torch.Tensor) -> None:
        """Backward, clip, step (with the gradient scaler under fp16); a per-step schedule steps."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.options.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.steps += 1
        if self.options.lr_schedule == "steps":
            self.scheduler.step()

    def out_of_time(self, seconds_this_epoch: float) -> bool:
        """The opt-in wall-clock cap: True on every rank when any rank's clock says the
        ``train_seconds`` are spent (all-reduced, so that every rank leaves at the same step)."""
        if self.options.train_seconds <= 0:
            return False
        return self.env.any_rank(self.seconds_used + seconds_this_epoch >= self.options.train_seconds)

    def run_epoch(self, train: SegmentData, sampler: DistributedSampler, epoch_plan: EpochPlan, status: str) -> EpochOutcome:
        """The optimiser steps of epoch ``self.epoch`` (0-based) on this rank's rows."""
        opts, env, epoch = self.options, self.env, self.epoch
        ramp = opts.mask_ramp_epochs if opts.mask_ramp_epochs is not None else opts.epochs - 1
        rate = curriculum_rate(epoch, opts.mask_start, opts.mask_end, ramp)
        if opts.mask_sampling == "uniform":
            rate = 0.5 * (opts.mask_start + opts.mask_end)  # the mean of the rows' rates (logged)
        lr = self.optimizer.param_groups[0]["lr"]
        torch.manual_seed(derived_seed(self.seed, epoch, env.rank))
        generator = torch.Generator(device=env.device)
        generator.manual_seed(derived_seed(self.seed, epoch, env.rank, 1))
        order = self.epoch_order(sampler, epoch)
        mosaic_rng = np.random.default_rng(derived_seed(self.seed, epoch, env.rank, 2))
        self.ddp_model.train()
        sums = torch.zeros(2, dtype=torch.float64, device=env.device)
        started = self.clock()
        steps = 0
        timed_out = False
        for step, start in enumerate(epoch_plan.batches(len(order))):
            index = order[start : start + epoch_plan.rank_batch]
            groups = torch.from_numpy(index % train.n_seg).to(env.device)
            row_rate: float | torch.Tensor = rate
            if opts.mask_sampling == "uniform":
                draw = torch.rand((len(index), 1), generator=generator, device=env.device)
                row_rate = opts.mask_start + (opts.mask_end - opts.mask_start) * draw
            batch = train.batch(index, opts.mosaic_switches, mosaic_rng)
            loss, _, _ = self.forward_loss(self.ddp_model, batch, row_rate, generator, groups, train.n_seg)
            self.optimiser_step(loss)
            steps += 1
            sums[0] += loss.detach().double() * len(index)
            sums[1] += len(index)
            self.progress(f"train · epoch {epoch + 1}/{opts.epochs}{status}", epoch * epoch_plan.steps_per_epoch + step + 1, epoch_plan.total_steps)
            if self.out_of_time(self.clock() - started):
                timed_out = True
                break
        if opts.lr_schedule == "epochs":
            self.scheduler.step()
        sums = env.all_sum(sums)
        return EpochOutcome(lr, rate, float(sums[0] / sums[1]), float(sums[1]), steps, self.clock() - started, timed_out)

    # ------------------------------------------------------------------ validation
    def evaluate(self, val: ValidationSet, length: int, overlap: int) -> tuple[float, float]:
        """The benchmark's masked-cell minor-allele dosage R² and concordance of the model on
        the validation split (its fixed mask). Each rank imputes its own slice of the samples;
        the summaries are gathered from every rank and pooled."""
        self.model.eval()
        rows = np.array_split(np.arange(len(val)), self.env.world_size)[self.env.rank]
        own = val.summary(
            self.model, rows, length=length, overlap=overlap, use_position=self.options.use_position,
            device=self.env.device, precision=self.precision, batch_size=self.options.predict_batch_size,
            haplotypes=self.options.haplotypes,
        )
        assert own.shape == (SUMMARY_SIZE,)
        gathered = self.env.all_gather(torch.from_numpy(own).to(self.env.device))
        return scores_from_summaries(np.stack([g.cpu().numpy() for g in gathered]))

    def validate(self, val: ValidationSet | None, train: SegmentData, train_loss: float) -> tuple[float, float, float]:
        """(validation R², concordance, selection score): the R² when the split has masked
        cells, else NaN, NaN and minus the training loss."""
        if val is not None and val.n_masked:
            val_r2, val_concordance = self.evaluate(val, train.length, train.overlap)
            return val_r2, val_concordance, val_r2
        return math.nan, math.nan, -train_loss

    def record_best(self, score: float) -> bool:
        """Keep the weights when ``score`` beats the best so far (NaN never does)."""
        improved = score > self.best_score
        if improved:
            self.best_score = score
            self.best_epoch = self.epoch
            self.bad_epochs = 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return improved

    # ------------------------------------------------------------------ the stop rule
    def stop_reason_after(self, out_of_time: bool) -> str:
        """Why training stops after the epoch just completed ("" = go on): ``patience`` epochs
        without a better score, the epoch budget, or the wall-clock cap. Every input is the same
        on every rank (scores are pooled over ranks, the cap is all-reduced), and the decision
        is all-reduced once more so that no rank can leave alone."""
        opts = self.options
        if opts.patience > 0 and self.bad_epochs >= opts.patience:
            reason = STOP_CONVERGED
        elif self.epoch >= opts.epochs:
            reason = STOP_EPOCHS
        elif out_of_time or (opts.train_seconds > 0 and self.seconds_used >= opts.train_seconds):
            reason = STOP_TIME
        else:
            reason = ""
        if self.env.any_rank(bool(reason)) and not reason:
            reason = STOP_TIME  # only a rank's clock can disagree
        return reason

    def budget_left(self) -> bool:
        """True while neither the epoch budget nor the wall-clock cap is spent (all ranks agree)."""
        opts = self.options
        spent = self.epoch >= opts.epochs or (opts.train_seconds > 0 and self.seconds_used >= opts.train_seconds)
        return not self.env.any_rank(spent)

    # ------------------------------------------------------------------ fit
    def fit(self, train: SegmentData, val: ValidationSet | None, resume: bool = True) -> TrainResult:
        """Train until the epoch budget is spent, the validation R² stops improving
        (``patience``) or the opt-in wall-clock cap fires; leave the best weights in
        ``self.model`` and return the result. With ``resume``, continue from ``latest.pt`` (a
        training stopped by a budget continues when the budget is now larger; a converged one
        is reused as it is)."""
        opts, env = self.options, self.env
        started = self.clock()
        sampler = DistributedSampler(
            range(len(train)), num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=self.seed, drop_last=False
        )
        epoch_plan = plan(opts, len(sampler), env.world_size)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(opts, epoch_plan))
        resumed_from = self.try_resume() if resume else None
        if self.stop_reason != STOP_CONVERGED:
            self.finished = not self.budget_left()
        status = ""  # the last epoch's loss and score, shown while the next one runs
        while not self.finished:
            outcome = self.run_epoch(train, sampler, epoch_plan, status)
            self.seconds_used += outcome.seconds
            eval_start = self.clock()
            val_r2, val_concordance, score = self.validate(val, train, outcome.train_loss)
            eval_seconds = self.clock() - eval_start
            self.epoch += 1
            improved = self.record_best(score)
            self.stop_reason = self.stop_reason_after(outcome.out_of_time)
            self.finished = bool(self.stop_reason)
            if self.stop_reason == STOP_TIME:
                self.logger.warning(
                    "%s: the wall-clock cap train_seconds=%g fired after epoch %d (%d steps): this training depends on the machine's load",
                    self.name, opts.train_seconds, self.epoch, self.steps,
                )
            self.history.append(
                {"epoch": self.epoch, "steps": self.steps, "lr": outcome.lr, "mask_rate": outcome.mask_rate,
                 "train_loss": outcome.train_loss, "val_r2": val_r2, "val_concordance": val_concordance}
            )
            segments_per_s = outcome.rows / outcome.seconds if outcome.seconds > 0 else math.nan
            self.timing.append(
                {"epoch": self.epoch, "seconds": outcome.seconds, "train_seconds_total": self.seconds_used,
                 "eval_seconds": eval_seconds, "segments_per_s": segments_per_s}
            )
            self.write_checkpoints(improved)
            status = f" · loss {outcome.train_loss:.4f} · val R² {val_r2:.4f} · {segments_per_s:,.0f} seg/s"
            self.progress(f"train · epoch {self.epoch}/{opts.epochs}{status}", self.epoch * epoch_plan.steps_per_epoch, epoch_plan.total_steps)
            if env.is_main:
                self.logger.info(
                    "%s epoch %d/%d: mask %.3f, lr %.2e, train loss %.4f, val R2 %.4f, val concordance %.4f, %.1f s (+%.1f s validation), %.0f seg/s",
                    self.name, self.epoch, opts.epochs, outcome.mask_rate, outcome.lr, outcome.train_loss, val_r2, val_concordance,
                    outcome.seconds, eval_seconds, segments_per_s,
                )
        return self.finish(resumed_from, epoch_plan, started)

    def finish(self, resumed_from: int | None, epoch_plan: EpochPlan, started: float) -> TrainResult:
        """Check that every replica holds the same parameters, load the best weights, write
        the summary (rank 0) and return the result."""
        env = self.env
        own_digest = torch.tensor(int(parameter_digest(self.model)[:15], 16), dtype=torch.int64, device=env.device)
        digests = [f"{int(t.item()):015x}" for t in env.all_gather(own_digest)]
        if len(set(digests)) > 1:
            raise RuntimeError(f"DDP replicas ended with different parameters: {digests}")
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        best_row = next((row for row in self.history if row["epoch"] == self.best_epoch), {})
        result = TrainResult(
            epochs_run=self.epoch,
            best_epoch=self.best_epoch,
            best_val_r2=float(best_row.get("val_r2", math.nan)),
            best_val_concordance=float(best_row.get("val_concordance", math.nan)),
            stop_reason=self.stop_reason,
            resumed_from=resumed_from,
            world_size=env.world_size,
            precision=self.precision.name,
            replica_digests=digests,
            history=self.history,
            timing=self.timing,
            seconds=self.clock() - started,
            train_seconds_total=self.seconds_used,
            batch_size=self.options.batch_size,
            rank_batch_size=epoch_plan.rank_batch,
            steps=self.steps,
        )
        if env.is_main:
            atomic_write(self.checkpoint_dir / SUMMARY_JSON, json.dumps(result.to_dict(), indent=2, default=float) + "\n")
        env.barrier()
        return result
