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
``trainer`` (``Trainer``), ``checkpoint``, ``runtime`` (device, process group, precision),
``predict``, ``imputer`` (``SegmentImputer``), ``launch`` (the ``torchrun`` worker).
"""

from impbench.nn.checkpoint import BEST, LATEST
from impbench.nn.data import SegmentData, curriculum_rate, encode, input_channels, mask_batch
from impbench.nn.imputer import SegmentImputer, count_parameters
from impbench.nn.options import NNOptions
from impbench.nn.predict import call_probabilities, imputation_from_probs, predict_probs
from impbench.nn.runtime import DistEnv, precision_for, resolve_device
from impbench.nn.trainer import METRICS_CSV, SUMMARY_JSON, Trainer, TrainResult, warmup_cosine

__all__ = [
    "BEST",
    "LATEST",
    "METRICS_CSV",
    "SUMMARY_JSON",
    "DistEnv",
    "NNOptions",
    "SegmentData",
    "SegmentImputer",
    "TrainResult",
    "Trainer",
    "call_probabilities",
    "count_parameters",
    "curriculum_rate",
    "encode",
    "imputation_from_probs",
    "input_channels",
    "mask_batch",
    "precision_for",
    "predict_probs",
    "resolve_device",
    "warmup_cosine",
]
