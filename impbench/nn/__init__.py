"""``impbench.nn``: what every neural imputer needs (the only part of the core that imports torch).

A new model plugin is a model, a loss and an options class::

    from dataclasses import dataclass
    from typing import ClassVar
    from impbench import hookimpl
    from impbench.nn import NNOptions, SegmentImputer

    @dataclass
    class Options(NNOptions):
        PRESETS: ClassVar = {"cpu": {}, "paper": {"width": 32, "epochs": 160, "batch_size": 1024}}
        preset: str = "cpu"          # the defaults below are the "cpu" preset's values
        width: int = 8

    class MyImputer(SegmentImputer):
        name = "mine"
        description = "..."
        Options = Options
        length_multiple = 4          # segment lengths must divide into the model's poolings

        def build_model(self, in_channels):      # (B, in_channels, L) -> logits (B, 6, L)
            return MyNet(in_channels, self.options.width)

        def loss(self, logits, target):          # float32 (B, 6, L), int64 codes (B, L)
            return impbench.nn.losses.cross_entropy(logits, target)

    @hookimpl
    def register_imputers(register):
        register(MyImputer)

``SegmentImputer`` does the rest: segments of length/overlap from the options or the dataset
card (``impbench.imputers.segments``), a validation hold-out when the harness gives none, training by
``Trainer`` (AdamW, warm-up + cosine per epoch, clipping, a fresh mask per batch with a linear
curriculum, early stopping, ``best.pt``/``latest.pt`` with resume, a metrics CSV, progress),
``torchrun`` DDP when ``ctx.nproc > 1`` (``impbench.nn.launch``), mixed precision, and batched
prediction with reassembly that keeps observed cells.

Modules: ``options`` (``NNOptions``), ``data`` (``SegmentData``, ``encode``, ``mask_batch``,
``curriculum_rate``), ``losses`` (cross-entropy, focal with a penalty matrix, dosage MSE),
``trainer`` (``Trainer``: an epoch, the validation, the stop rule, the checkpoints),
``schedule`` (steps per epoch, the per-rank batch, learning-rate schedules in epochs or steps),
``records`` (``TrainResult``, the metrics and timing CSVs), ``checkpoint``, ``runtime`` (device, process group, precision),
``predict``, ``imputer`` (``SegmentImputer``), ``launch`` (the ``torchrun`` worker),
``validation`` (model selection on the benchmark's masked-cell minor-allele dosage R², computed
by ``impbench.scoring``), ``segment_mlp``
(``SegmentMLP``: per-segment weights, grouped). Haplotype-level training and mosaics are
options of ``NNOptions`` (``haplotypes``, ``mosaic_switches``). Only ``options`` and
``imputer`` load without torch (torch is imported when an imputer is built).
"""

import importlib
from typing import Any

#: Public name -> the submodule that defines it. Loaded on first access (PEP 562), so that
#: ``import impbench.nn.options`` (what a plugin's options class needs to register) does not
#: import torch.
_EXPORTS = {
    "BEST": "checkpoint",
    "LATEST": "checkpoint",
    "SegmentData": "data",
    "curriculum_rate": "data",
    "encode": "data",
    "input_channels": "data",
    "mask_batch": "data",
    "SegmentImputer": "imputer",
    "count_parameters": "imputer",
    "NNOptions": "options",
    "call_probabilities": "predict",
    "imputation_from_probs": "predict",
    "predict_probs": "predict",
    "DistEnv": "runtime",
    "precision_for": "runtime",
    "resolve_device": "runtime",
    "METRICS_CSV": "records",
    "TIMING_CSV": "records",
    "SUMMARY_JSON": "records",
    "Trainer": "trainer",
    "TrainResult": "records",
    "warmup_cosine": "schedule",
    "ValidationSet": "validation",
    "SegmentMLP": "segment_mlp",
    "haplotype_codes": "data",
    "genotype_probs_from_haplotypes": "data",
}
_SUBMODULES = (
    "checkpoint", "data", "imputer", "launch", "losses", "options", "predict", "records", "runtime", "schedule", "segment_mlp",
    "trainer", "validation",
)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"impbench.nn.{_EXPORTS[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"impbench.nn.{name}")
    raise AttributeError(f"module 'impbench.nn' has no attribute {name!r}")


__all__ = [
    "BEST",
    "LATEST",
    "METRICS_CSV",
    "SUMMARY_JSON",
    "TIMING_CSV",
    "DistEnv",
    "NNOptions",
    "SegmentData",
    "SegmentImputer",
    "SegmentMLP",
    "TrainResult",
    "ValidationSet",
    "Trainer",
    "call_probabilities",
    "count_parameters",
    "curriculum_rate",
    "encode",
    "genotype_probs_from_haplotypes",
    "haplotype_codes",
    "imputation_from_probs",
    "input_channels",
    "mask_batch",
    "precision_for",
    "predict_probs",
    "resolve_device",
    "warmup_cosine",
]
