"""The training loop shared by neural imputers.

AdamW; linear warm-up then cosine decay stepped per epoch; gradient clipping; a fresh mask per
batch with a linear curriculum (cells or whole variants); model selection and early stopping on
the imputation task (masked-cell minor-allele dosage R² of the validation split under a fixed
mask, ``impbench.nn.validation``); an epoch and a time budget; the best and the latest
checkpoint; resume from the latest; DDP when started by ``torchrun``; mixed precision.

Reproducibility: every epoch's randomness (dropout, masks) is drawn from seeds derived from
``(seed, epoch, rank)`` and the sampler shuffles with ``(seed, epoch)``, so a run resumed from
a checkpoint continues exactly as an uninterrupted run would (on CPU).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from impbench.nn import checkpoint as ckpt
from impbench.genotypes import PAD
from impbench.nn.data import SegmentData, curriculum_rate, derived_seed, encode, forward, mask_batch
from impbench.nn.options import NNOptions
from impbench.nn.runtime import DistEnv, Precision, precision_for
from impbench.nn.validation import ValidationSet, scores_from_statistics

#: ``loss_fn(logits, target)``: logits float32 (B, 6, L), target int64 codes (B, L); returns a
#: scalar tensor averaged over the positions whose true code is a call (1-4).
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

METRICS_CSV = "train_metrics.csv"
SUMMARY_JSON = "train_summary.json"
METRIC_COLUMNS = (
    "epoch", "lr", "mask_rate", "train_loss", "val_r2", "val_concordance", "seconds", "train_seconds_total", "eval_seconds", "segments_per_s",
)
#: Why a training stopped: the validation R² stopped improving for ``patience`` epochs, or the
#: epoch budget, or the time budget (``train_seconds``) was spent.
STOP_CONVERGED = "converged"
STOP_EPOCHS = "epochs"
STOP_TIME = "time"


def warmup_cosine(epoch: int, warmup_epochs: int, epochs: int, floor: float) -> float:
    """The learning-rate factor of a 0-based epoch: ``(epoch + 1) / warmup_epochs`` during the
    warm-up, then a cosine from 1 down towards ``floor`` over the remaining epochs."""
    if epoch < warmup_epochs:
        return (epoch + 1) / warmup_epochs
    span = max(1, epochs - warmup_epochs)
    progress = min(1.0, (epoch - warmup_epochs) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def time_factor(fraction: float, warmup_fraction: float, floor: float) -> float:
    """The learning-rate factor at ``fraction`` (0-1) of a time budget: linear warm-up over the
    first ``warmup_fraction``, then a cosine from 1 down to ``floor`` at the end."""
    fraction = min(1.0, max(0.0, fraction))
    if fraction < warmup_fraction:
        return max(fraction / warmup_fraction, 1e-3)
    progress = (fraction - warmup_fraction) / max(1e-12, 1.0 - warmup_fraction)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of all parameters' bytes, in order (equal on every DDP replica when in sync)."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class TrainResult:
    """What a finished training reports (epochs are 1-based)."""

    epochs_run: int
    best_epoch: int
    best_val_r2: float
    best_val_concordance: float
    stop_reason: str
    resumed_from: int | None
    world_size: int
    precision: str
    replica_digests: list[str] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    train_seconds_total: float = 0.0

    @property
    def converged(self) -> bool:
        """True when training stopped because the validation R² stopped improving."""
        return self.stop_reason == STOP_CONVERGED

    def validation_curve(self) -> list[dict[str, float]]:
        """Per epoch: cumulative training seconds, validation R² and concordance."""
        return [
            {"epoch": int(r["epoch"]), "train_seconds": round(float(r["train_seconds_total"]), 3),
             "val_r2": _rounded(r["val_r2"]), "val_concordance": _rounded(r["val_concordance"])}
            for r in self.history
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rounded(value: float, digits: int = 5) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


def _noop_progress(stage: str, completed: float, total: float | None) -> None:
    return None


class Trainer:
    """Train ``model`` with ``loss_fn`` under ``options`` in this process's ``env``.

    checkpoint_dir : where rank 0 writes ``latest.pt``, ``best.pt``, the per-epoch metrics CSV
        and the summary JSON.
    fingerprint : what a checkpoint must match to be resumed (see ``checkpoint.fingerprint``).
    progress : ``progress(stage, completed, total)``; called on rank 0 only.
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
        progress: Callable[[str, float, float | None], None] = _noop_progress,
        logger: logging.Logger | None = None,
    ):
        self.options = options
        self.env = env
        self.loss_fn = loss_fn
        self.checkpoint_dir = Path(checkpoint_dir)
        self.fingerprint = fingerprint
        self.seed = int(seed)
        self.name = name
        self.progress = progress if env.is_main else _noop_progress
        self.logger = logger or logging.getLogger("impbench.nn")
        self.precision: Precision = precision_for(options.amp, env.device)
        self.model = model.to(env.device)
        if env.distributed:
            device_ids = [env.device.index] if env.device.type == "cuda" else None
            self.ddp_model: torch.nn.Module = DistributedDataParallel(self.model, device_ids=device_ids)
        else:
            self.ddp_model = self.model
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=options.lr,
            betas=(options.beta1, options.beta2),
            weight_decay=options.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            functools.partial(warmup_cosine, warmup_epochs=options.warmup_epochs, epochs=options.epochs, floor=options.min_lr_ratio),
        )
        self.scaler = self.precision.scaler()
        self.epoch = 0  # epochs completed
        self.best_epoch = 0
        self.best_score = -math.inf
        self.bad_epochs = 0
        self.finished = False
        self.stop_reason = ""
        self.seconds_used = 0.0
        self.history: list[dict[str, float]] = []
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
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "bad_epochs": self.bad_epochs,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "seconds_used": self.seconds_used,
            "history": self.history,
        }

    def load_state(self, payload: dict[str, Any]) -> None:
        """Restore from a latest-checkpoint payload (fingerprint already checked)."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        self.epoch = int(payload["epoch"])
        self.best_epoch = int(payload["best_epoch"])
        self.best_score = float(payload["best_score"])
        self.bad_epochs = int(payload["bad_epochs"])
        self.finished = bool(payload["finished"])
        self.stop_reason = str(payload.get("stop_reason", ""))
        self.seconds_used = float(payload.get("seconds_used", 0.0))
        self.history = [dict(row) for row in payload["history"]]

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

    def _write_checkpoints(self, improved: bool) -> None:
        if not self.env.is_main:
            return
        if improved:
            ckpt.save(
                self.best_path,
                {"fingerprint": self.fingerprint, "model": self.model.state_dict(), "epoch": self.epoch, "score": self.best_score},
            )
        ckpt.save(self.latest_path, self.state())
        self._write_metrics_csv()

    def _write_metrics_csv(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
        _atomic_write_text(self.checkpoint_dir / METRICS_CSV, buffer.getvalue())

    # ------------------------------------------------------------------ loop
    def _forward_loss(
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

    def evaluate(self, val: ValidationSet, length: int, overlap: int) -> tuple[float, float]:
        """Masked-cell minor-allele dosage R² and concordance of the model on the validation
        split (its fixed mask). Each rank imputes its own slice of the samples; the
        sufficient statistics are added over ranks."""
        self.model.eval()
        rows = np.array_split(np.arange(len(val)), self.env.world_size)[self.env.rank]
        stats = val.statistics(
            self.model, rows, length=length, overlap=overlap, use_position=self.options.use_position,
            device=self.env.device, precision=self.precision, batch_size=self.options.predict_batch_size,
            haplotypes=self.options.haplotypes,
        )
        total = self.env.all_sum(torch.from_numpy(stats).to(self.env.device)).cpu().numpy()
        return scores_from_statistics(total)

    def _set_time_lr(self, seconds: float) -> None:
        """``lr_schedule="time"``: the learning rate after ``seconds`` of the time budget (rank
        0's clock under DDP, so that every replica takes the same step)."""
        opts = self.options
        if self.env.distributed:
            clock = torch.tensor([seconds], dtype=torch.float64, device=self.env.device)
            torch.distributed.broadcast(clock, 0)
            seconds = float(clock.item())
        factor = time_factor(seconds / opts.train_seconds, opts.warmup_fraction, opts.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = opts.lr * factor

    def _budget_left(self) -> bool:
        """True while neither the epoch nor the time budget is spent."""
        opts = self.options
        if self.epoch >= opts.epochs:
            return False
        return not (opts.train_seconds > 0 and self.seconds_used >= opts.train_seconds)

    def fit(self, train: SegmentData, val: ValidationSet | None, resume: bool = True) -> TrainResult:
        """Train until the epoch or time budget is spent or the validation R² stops improving
        (``patience``); leave the best weights in ``self.model`` and return the result. With
        ``resume``, continue from ``latest.pt`` (a training stopped by a budget continues when
        the budget is now larger; a converged one is reused as it is)."""
        opts = self.options
        env = self.env
        started = time.perf_counter()
        resumed_from = self.try_resume() if resume else None
        if self.stop_reason != STOP_CONVERGED:
            self.finished = not self._budget_left()
        sampler = DistributedSampler(
            range(len(train)), num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=self.seed, drop_last=False
        )
        rows_per_epoch = len(sampler) * opts.epoch_passes
        steps_per_epoch = max(1, rows_per_epoch // opts.batch_size) if opts.drop_last else math.ceil(rows_per_epoch / opts.batch_size)
        total_steps = steps_per_epoch * opts.epochs
        ramp = opts.mask_ramp_epochs if opts.mask_ramp_epochs is not None else opts.epochs - 1
        stage = "train"
        status = ""  # the last epoch's loss and score, shown while the next one runs
        while not self.finished:
            epoch = self.epoch  # 0-based index of the epoch now run
            rate = curriculum_rate(epoch, opts.mask_start, opts.mask_end, ramp)
            if opts.mask_sampling == "uniform":
                rate = 0.5 * (opts.mask_start + opts.mask_end)  # the mean of the rows' rates (logged)
            if opts.lr_schedule == "time":
                self._set_time_lr(self.seconds_used)
            lr = self.optimizer.param_groups[0]["lr"]
            torch.manual_seed(derived_seed(self.seed, epoch, env.rank))
            generator = torch.Generator(device=env.device)
            generator.manual_seed(derived_seed(self.seed, epoch, env.rank, 1))
            passes = []
            for p in range(opts.epoch_passes):
                sampler.set_epoch(epoch * opts.epoch_passes + p)
                passes.append(np.fromiter(iter(sampler), dtype=np.int64, count=len(sampler)))
            order = np.concatenate(passes)
            mosaic_rng = np.random.default_rng(derived_seed(self.seed, epoch, env.rank, 2))
            self.ddp_model.train()
            sums = torch.zeros(2, dtype=torch.float64, device=env.device)
            epoch_start = time.perf_counter()
            out_of_time = torch.zeros(1, dtype=torch.float64, device=env.device)
            for step, start in enumerate(range(0, len(order), opts.batch_size)):
                index = order[start : start + opts.batch_size]
                if opts.drop_last and len(index) < opts.batch_size and step > 0:
                    break
                groups = torch.from_numpy(index % train.n_seg).to(env.device)
                if opts.lr_schedule == "time":
                    self._set_time_lr(self.seconds_used + time.perf_counter() - epoch_start)
                row_rate: float | torch.Tensor = rate
                if opts.mask_sampling == "uniform":
                    draw = torch.rand((len(index), 1), generator=generator, device=env.device)
                    row_rate = opts.mask_start + (opts.mask_end - opts.mask_start) * draw
                batch = train.batch(index, opts.mosaic_switches, mosaic_rng)
                loss, _, _ = self._forward_loss(self.ddp_model, batch, row_rate, generator, groups, train.n_seg)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if opts.grad_clip > 0:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), opts.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                sums[0] += loss.detach().double() * len(index)
                sums[1] += len(index)
                if env.is_main:
                    done = epoch * steps_per_epoch + step + 1
                    self.progress(f"{stage} · epoch {epoch + 1}/{opts.epochs}{status}", done, total_steps)
                if opts.train_seconds > 0:
                    # Every rank must leave the epoch at the same step (DDP): rank 0's clock decides.
                    out_of_time.fill_(float(self.seconds_used + time.perf_counter() - epoch_start >= opts.train_seconds))
                    if env.distributed:
                        torch.distributed.broadcast(out_of_time, 0)
                    if out_of_time.item():
                        break
            if opts.lr_schedule == "epochs":
                self.scheduler.step()
            sums = env.all_sum(sums)
            seconds = time.perf_counter() - epoch_start
            self.seconds_used += seconds
            train_loss = float(sums[0] / sums[1])
            segments_per_s = float(sums[1]) / seconds if seconds > 0 else math.nan
            eval_start = time.perf_counter()
            if val is not None and val.n_masked:
                val_r2, val_concordance = self.evaluate(val, train.length, train.overlap)
                score = val_r2
            else:
                val_r2, val_concordance = math.nan, math.nan
                score = -train_loss  # no validation cells: select on the training loss
            eval_seconds = time.perf_counter() - eval_start
            self.epoch = epoch + 1
            improved = score > self.best_score  # NaN never improves
            if improved:
                self.best_score = score
                self.best_epoch = self.epoch
                self.bad_epochs = 0
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            else:
                self.bad_epochs += 1
            if opts.patience > 0 and self.bad_epochs >= opts.patience:
                self.stop_reason = STOP_CONVERGED
            elif self.epoch >= opts.epochs:
                self.stop_reason = STOP_EPOCHS
            elif opts.train_seconds > 0 and self.seconds_used >= opts.train_seconds:
                self.stop_reason = STOP_TIME
            else:
                self.stop_reason = ""
            self.finished = bool(self.stop_reason)
            self.history.append(
                {
                    "epoch": self.epoch,
                    "lr": lr,
                    "mask_rate": rate,
                    "train_loss": train_loss,
                    "val_r2": val_r2,
                    "val_concordance": val_concordance,
                    "seconds": seconds,
                    "train_seconds_total": self.seconds_used,
                    "eval_seconds": eval_seconds,
                    "segments_per_s": segments_per_s,
                }
            )
            self._write_checkpoints(improved)
            if env.is_main:
                status = f" · loss {train_loss:.4f} · val R² {val_r2:.4f} · {segments_per_s:,.0f} seg/s"
                self.progress(f"{stage} · epoch {self.epoch}/{opts.epochs}{status}", self.epoch * steps_per_epoch, total_steps)
                self.logger.info(
                    "%s epoch %d/%d: mask %.3f, lr %.2e, train loss %.4f, val R2 %.4f, val concordance %.4f, %.1f s (+%.1f s validation), %.0f seg/s",
                    self.name, self.epoch, opts.epochs, rate, lr, train_loss, val_r2, val_concordance, seconds, eval_seconds, segments_per_s,
                )
        # Every replica must end with the same parameters; compare a 60-bit digest prefix.
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
            seconds=time.perf_counter() - started,
            train_seconds_total=self.seconds_used,
        )
        if env.is_main:
            _atomic_write_text(self.checkpoint_dir / SUMMARY_JSON, json.dumps(result.to_dict(), indent=2, default=float) + "\n")
        env.barrier()
        return result


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
