"""``SegmentImputer``: the ``Imputer`` base of every segment-based neural imputer.

A subclass provides a model (``build_model``), a loss (``loss``) and an options class (a
subclass of ``NNOptions``); this class does the rest: segmentation, validation hold-out,
training in this process or under ``torchrun``, checkpoints, prediction and reassembly.
"""

from __future__ import annotations

import dataclasses

import contextlib
import io
import json
import math
import os
import shlex
import subprocess
import sys
import time
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import numpy as np

from impbench.errors import ImpbenchError
from impbench.files import atomic_write
from impbench.genotypes import PAD, GenotypeMatrix, alt_allele_frequency
from impbench.imputers.base import Imputation, Imputer, RunContext, require_same_variants
from impbench.nn.options import NNOptions

# torch is imported when an imputer is built, fitted or used, never at import: registering
# the neural plugins (``impbench plugins``) must not pay for it.
if TYPE_CHECKING:
    import torch

    from impbench.nn.runtime import DistEnv
    from impbench.nn.records import TrainResult

#: Default segment length and overlap when neither the options nor the dataset card set them.
DEFAULT_LENGTH = 128
DEFAULT_OVERLAP = 16
#: Extra arguments for ``torchrun`` (e.g. ``--nnodes 2 --rdzv-backend c10d --rdzv-endpoint
#: host:29400``); without them the launch is ``--standalone`` on this node.
TORCHRUN_ARGS_ENV = "IMPBENCH_TORCHRUN_ARGS"
#: Set to 1 to train under ``torchrun`` with ``--nproc 1`` too (one process in a process group:
#: DDP and NCCL on one GPU, what ``benchmarks/gpu_check.sh`` checks).
TORCHRUN_ALWAYS_ENV = "IMPBENCH_TORCHRUN_ALWAYS"
DDP_DIR = "ddp"


@contextlib.contextmanager
def torch_threads(n_threads: int) -> Iterator[None]:
    """Use ``n_threads`` intra-op threads inside the block, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n_threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable parameters of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class SegmentImputer(Imputer):
    """Base class of a neural imputer trained on genotype segments.

    Subclasses set ``name``, ``description``, ``Options`` (a subclass of ``NNOptions``) and
    implement ``build_model`` and ``loss``; ``length_multiple`` when the model needs segment
    lengths divisible by some number (a U-Net with five poolings needs 32).
    """

    Options: ClassVar[type] = NNOptions
    reference_free: ClassVar[bool] = True
    uses_gpu: ClassVar[bool] = True
    #: The segment length must be a multiple of this.
    length_multiple: ClassVar[int] = 1

    def __init__(self, options: Any = None):
        super().__init__(options)
        import torch  # noqa: F401  (building an imputer loads torch; registering it does not)

        self.model: torch.nn.Module | None = None
        self.layout: tuple[int, int] | None = None
        #: The panel's variants (no samples), for checking targets.
        self.variants: GenotypeMatrix | None = None
        #: Per-variant input channels (float32 (n_variants, k)) or None; see ``variant_features``.
        self.features: np.ndarray | None = None
        #: float64 (n_variants,): the training rows' ALT allele frequency (0 where nothing is
        #: called), set before ``build_model`` in training (a model may start from it).
        self.train_alt_frequency: np.ndarray | None = None
        self.result: TrainResult | None = None
        #: Variants of the training panel (known before the model is built; a model may have
        #: weights per segment of the chromosome).
        self.n_variants: int | None = None
        self.mode = ""
        self.device_used = ""

    # ------------------------------------------------------------------ what a plugin writes
    @abstractmethod
    def build_model(self, in_channels: int) -> torch.nn.Module:
        """A fresh model: input float32 ``(B, in_channels, L)`` (one-hot over the six codes,
        then the positional channel when ``options.use_position``), output logits float
        ``(B, 6, L)`` over codes 0-5."""

    @abstractmethod
    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """A scalar loss: logits float32 ``(B, 6, L)``, target int64 codes ``(B, L)``; average
        over the positions whose true code is a call (1-4); padding never counts."""

    def variant_features(self, train_codes: np.ndarray) -> np.ndarray | None:
        """Per-variant input channels computed from the training codes (uint8 (n, m)):
        float32 (m, k), or None. Here: the ALT allele frequency when
        ``options.frequency_channel`` (0 where nothing is called)."""
        if not getattr(self.options, "frequency_channel", False):
            return None
        return np.nan_to_num(alt_allele_frequency(train_codes), nan=0.0).astype(np.float32)[:, None]

    def n_input_channels(self) -> int:
        from impbench.nn.data import input_channels

        return input_channels(self.options.use_position, 0 if self.features is None else self.features.shape[1])

    def training_seed(self, ctx: RunContext) -> int:
        """The option ``seed`` when set (a preset that follows a published run), else the run's."""
        seed = getattr(self.options, "seed", None)
        return int(ctx.seed if seed is None else seed)

    # ------------------------------------------------------------------ layout and checks
    def segment_layout(self, n_variants: int, ctx: RunContext) -> tuple[int, int]:
        """Segment length and overlap: the options, else the dataset card's
        (``ctx.segment_layout``), else 128/16."""
        card = ctx.segment_layout
        length = self.options.segment_length or (card.length if card is not None else DEFAULT_LENGTH)
        overlap = self.options.segment_overlap
        if overlap is None:
            overlap = card.overlap if card is not None else DEFAULT_OVERLAP
        if length % self.length_multiple:
            raise ImpbenchError(f"option {self.name}.segment_length={length}: must be a multiple of {self.length_multiple} for this model")
        if not 0 <= overlap < length:
            raise ImpbenchError(f"option {self.name}.segment_overlap={overlap}: must be in [0, segment_length={length})")
        return int(length), int(overlap)

    def _learning_fingerprint(self, data_digest: str, ctx: RunContext) -> dict[str, Any]:
        from impbench.nn import checkpoint as ckpt

        length, overlap = self.layout  # type: ignore[misc]
        fields = self.options.learning_fields()
        fields.update(segment_length=length, segment_overlap=overlap, seed=self.training_seed(ctx))
        return ckpt.fingerprint(self.name, fields, ctx.dataset_hash, data_digest, world_size=max(1, int(ctx.nproc)))

    def _split_validation(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Training and validation codes: ``val`` when given, else a seeded hold-out of
        ``val_fraction`` of the panel's samples (none when the panel is too small)."""
        if val is not None:
            if not val.same_variants(panel):
                raise ImpbenchError(f"{self.name}: the validation split has other variants than the panel")
            return panel.codes, val.codes
        n_val = int(round(self.options.val_fraction * panel.n_samples))
        if n_val < 1 or panel.n_samples - n_val < 1:
            return panel.codes, None
        order = np.random.default_rng(np.random.SeedSequence([int(seed), 7])).permutation(panel.n_samples)
        val_rows = np.sort(order[:n_val])
        train_rows = np.sort(order[n_val:])
        return panel.codes[train_rows], panel.codes[val_rows]

    # ------------------------------------------------------------------ fit
    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        from impbench.nn import checkpoint as ckpt
        from impbench.nn.runtime import in_torchrun, resolve_device, setup, teardown

        if panel.n_variants == 0 or panel.n_samples == 0:
            raise ImpbenchError(f"{self.name}: the panel is empty ({panel.n_samples} samples x {panel.n_variants} variants)")
        if panel.codes.size and int(panel.codes.max()) >= PAD:
            raise ImpbenchError(f"{self.name}: the panel holds padding codes (5); it must hold genotype codes 0-4")
        device = resolve_device(ctx.device)
        if self.options.mask_mode == "auto":  # train as the run masks: whole variants under "array"
            mode = "variants" if getattr(ctx, "scheme", "uniform") == "array" else "cells"
            self.options = dataclasses.replace(self.options, mask_mode=mode)
        self.layout = self.segment_layout(panel.n_variants, ctx)
        self.n_variants = int(panel.n_variants)
        self.variants = panel.take_samples(np.arange(0))
        train_codes, val_codes = self._split_validation(panel, val, self.training_seed(ctx))
        self.features = self.variant_features(train_codes)
        data_digest = ckpt.array_digest(train_codes, val_codes, panel.positions)
        fingerprint = self._learning_fingerprint(data_digest, ctx)
        if (ctx.nproc > 1 or os.environ.get(TORCHRUN_ALWAYS_ENV) == "1") and not in_torchrun():
            self._fit_torchrun(train_codes, val_codes, panel.positions, fingerprint, ctx)
            self.mode = f"ddp x{max(1, ctx.nproc)} (torchrun)"
        else:
            with torch_threads(ctx.threads):
                env = setup(ctx.device)
                try:
                    self.result = self.train_process(train_codes, val_codes, panel.positions, fingerprint, ctx, env)
                finally:
                    teardown(env)
            self.mode = "single process" if not env.distributed else f"ddp x{env.world_size}"
        self.device_used = str(device)

    def train_process(
        self,
        train_codes: np.ndarray,
        val_codes: np.ndarray | None,
        positions: np.ndarray,
        fingerprint: dict[str, Any],
        ctx: RunContext,
        env: DistEnv,
    ) -> TrainResult:
        """Train in this process (one of ``env.world_size``); the model is left in ``self.model``
        with the best weights. Called directly in one process and by each ``torchrun`` worker.
        Validation: ``val_codes`` under a fixed mask of ``val_mask_rate`` seeded by the run's
        seed (the same cells on every rank and every epoch)."""
        from impbench.nn.data import SegmentData, haplotype_codes
        from impbench.nn.runtime import seed_everything
        from impbench.nn.trainer import Trainer
        from impbench.nn.validation import ValidationSet

        length, overlap = self.layout  # type: ignore[misc]
        seed = self.training_seed(ctx)
        seed_everything(seed)
        self.n_variants = int(train_codes.shape[1])
        self.features = self.variant_features(train_codes)
        self.train_alt_frequency = np.nan_to_num(alt_allele_frequency(train_codes), nan=0.0)
        self.model = self.build_model(self.n_input_channels())
        opts = self.options
        # Haplotype mode: the 2n haplotypes are the training rows; validation still scores
        # genotypes (predict_probs combines a target's two haplotypes).
        rows = haplotype_codes(train_codes) if opts.haplotypes else train_codes
        train = SegmentData(rows, positions, length, overlap, env.device, self.features)
        val = None
        if val_codes is not None:
            val = ValidationSet.build(val_codes, train_codes, positions, opts.val_mask_rate, seed, opts.mask_mode, self.features)
        trainer = Trainer(
            self.model,
            self.loss,
            self.options,
            env,
            checkpoint_dir=ctx.work_dir,
            fingerprint=fingerprint,
            seed=seed,
            name=self.name,
            progress=ctx.progress,
            logger=ctx.logger,
        )
        result = trainer.fit(train, val, resume=self.options.resume)
        self.model = trainer.model
        return result

    def _fit_torchrun(
        self,
        train_codes: np.ndarray,
        val_codes: np.ndarray | None,
        positions: np.ndarray,
        fingerprint: dict[str, Any],
        ctx: RunContext,
    ) -> None:
        """Save the data, run ``python -m torch.distributed.run --nproc_per_node N -m
        impbench.nn.launch SPEC``, then load the best checkpoint it wrote."""
        from impbench.nn import checkpoint as ckpt
        from impbench.nn.records import SUMMARY_JSON, TrainResult

        ddp_dir = Path(ctx.work_dir) / DDP_DIR
        ddp_dir.mkdir(parents=True, exist_ok=True)
        data_path = ddp_dir / "panel.npz"
        arrays = {"train": train_codes, "positions": np.asarray(positions, dtype=np.int64)}
        if val_codes is not None:
            arrays["val"] = val_codes
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(data_path, buffer.getvalue())
        threads = max(1, int(ctx.threads) // max(1, int(ctx.nproc)))
        spec = {
            "imputer": f"{type(self).__module__}:{type(self).__qualname__}",
            "options": self.options.as_dict(),
            "layout": list(self.layout),  # type: ignore[arg-type]
            "fingerprint": fingerprint,
            "data": data_path.name,
            "work_dir": str(Path(ctx.work_dir).resolve()),
            "device": ctx.device,
            "threads": threads,
            "seed": int(ctx.seed),
            "dataset": ctx.dataset,
            "dataset_hash": ctx.dataset_hash,
        }
        spec_path = ddp_dir / "spec.json"
        atomic_write(spec_path, json.dumps(spec, indent=2) + "\n")
        progress_path = ddp_dir / "progress.json"
        progress_path.unlink(missing_ok=True)
        launcher = shlex.split(os.environ.get(TORCHRUN_ARGS_ENV, "")) or ["--standalone"]
        nproc = max(1, int(ctx.nproc))
        command = [sys.executable, "-m", "torch.distributed.run", *launcher, "--nproc_per_node", str(nproc), "-m", "impbench.nn.launch", str(spec_path.resolve())]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        log_path = ddp_dir / "torchrun.log"
        ctx.logger.info("%s: training under torchrun: %s (log %s)", self.name, shlex.join(command), log_path)
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            last = None
            while process.poll() is None:
                time.sleep(0.5)
                last = _relay_progress(progress_path, ctx, last)
            _relay_progress(progress_path, ctx, last)
        if process.returncode != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"torchrun training of {self.name} failed (exit {process.returncode}); log {log_path}:\n" + "\n".join(tail))
        best = ckpt.load(Path(ctx.work_dir) / ckpt.BEST, map_location="cpu")
        ckpt.check(Path(ctx.work_dir) / ckpt.BEST, best["fingerprint"], fingerprint, self.name)
        self.model = self.build_model(self.n_input_channels())
        self.model.load_state_dict(best["model"])
        summary = json.loads((Path(ctx.work_dir) / SUMMARY_JSON).read_text())
        self.result = TrainResult(**summary)
        data_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ impute
    def impute(self, target: GenotypeMatrix, ctx: RunContext) -> Imputation:
        from impbench.nn.predict import imputation_from_probs, predict_probs
        from impbench.nn.runtime import precision_for, resolve_device

        if self.model is None or self.layout is None or self.variants is None:
            raise ImpbenchError(f"{self.name}: impute() called before fit()")
        require_same_variants(self.name, self.variants, target)
        if target.codes.size and int(target.codes.max()) >= PAD:
            raise ImpbenchError(f"{self.name}: the target holds padding codes (5); it must hold genotype codes 0-4")
        device = resolve_device(ctx.device)
        self.model.to(device)
        length, overlap = self.layout
        with torch_threads(ctx.threads):
            probs = predict_probs(
                self.model,
                target.codes,
                target.positions,
                length,
                overlap,
                use_position=self.options.use_position,
                device=device,
                precision=precision_for(self.options.amp, device),
                batch_size=self.options.predict_batch_size,
                features=self.features,
                progress=lambda done, total: ctx.progress("predict", done, total),
                haplotypes=self.options.haplotypes,
            )
        return imputation_from_probs(target.codes, probs)

    def manifest_info(self) -> dict:
        info: dict[str, Any] = {"preset": getattr(self.options, "preset", "")}
        if self.layout is not None:
            info.update(segment_length=self.layout[0], segment_overlap=self.layout[1])
        if self.model is not None:
            info["params"] = count_parameters(self.model)
        if self.result is not None:
            r = self.result
            info.update(
                mode=self.mode,
                device=self.device_used,
                precision=r.precision,
                world_size=r.world_size,
                batch_size=r.batch_size,
                rank_batch_size=r.rank_batch_size,
                epochs=self.options.epochs,
                steps=r.steps,
                train_seconds_budget=self.options.train_seconds,
                time_cap_fired=r.stop_reason == "time",
                epochs_run=r.epochs_run,
                best_epoch=r.best_epoch,
                selection="validation masked minor-allele dosage R2" if r.history and not math.isnan(r.best_val_r2) else "training loss (no validation cells)",
                best_val_r2=None if math.isnan(r.best_val_r2) else round(r.best_val_r2, 5),
                best_val_concordance=None if math.isnan(r.best_val_concordance) else round(r.best_val_concordance, 5),
                stop_reason=r.stop_reason,
                converged=r.converged,
                resumed_from_epoch=r.resumed_from,
                train_seconds=round(r.train_seconds_total, 3),
                fit_seconds=round(r.seconds, 3),
                validation_curve=r.validation_curve(),
            )
        return info


def _relay_progress(path: Path, ctx: RunContext, last: Any) -> Any:
    """Pass the progress a ``torchrun`` worker wrote to ``path`` on to ``ctx.progress``."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return last
    if record != last:
        ctx.progress(record["stage"], record["completed"], record["total"])
    return record


def file_progress(path: Path, min_interval: float = 0.5):
    """A progress callback for a ``torchrun`` worker: writes the latest call to ``path`` (at
    most every ``min_interval`` seconds, always for the last unit of a stage)."""
    state = {"t": 0.0}

    def progress(stage: str, completed: float, total: float | None) -> None:
        now = time.monotonic()
        if now - state["t"] < min_interval and completed != total:
            return
        state["t"] = now
        atomic_write(path, json.dumps({"stage": stage, "completed": completed, "total": total}))

    return progress
