"""The GPU path on CPU: every preset of every registered neural imputer (every
``SegmentImputer``: BiU-Net, hapmlp, SCDA, ...) trains one short epoch and validates under CPU
autocast, bfloat16 and float16 (what ``--device cuda`` runs, with fp16's gradient scaler), the
haplotype paths included; then the model imputes under the same precision.

Main before this test (issue 21) raised ``Index put requires the source and destination dtypes
match`` here (``SegmentMLP`` under autocast) and mixed dtypes in the haplotype ``index_add``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from impbench.data.simulate import simulate_matrix  # noqa: E402
from impbench.genotypes import MISSING  # noqa: E402
from impbench.imputers.base import RunContext  # noqa: E402
from impbench.imputers.registry import get_imputers  # noqa: E402
from impbench.nn.imputer import SegmentImputer  # noqa: E402

#: What every preset is cut down to: one epoch of two small steps, short segments.
SMALL = {"epochs": 1, "batch_size": 8, "epoch_passes": 1, "predict_batch_size": 64, "segment_length": 32, "segment_overlap": 8}


def neural_presets() -> list[tuple[str, str]]:
    cases = []
    for name, info in sorted(get_imputers().items()):
        if issubclass(info.cls, SegmentImputer):
            cases += [(name, preset) for preset in info.cls.Options.PRESETS]
    return cases


CASES = neural_presets()


def test_every_neural_plugin_is_covered():
    names = {name for name, _ in CASES}
    assert {"biunet", "hapmlp", "scda"} <= names, names
    assert ("biunet", "paper") in CASES and ("biunet", "paper-text") in CASES


@pytest.fixture(scope="module")
def panel():
    full = simulate_matrix(n_samples=16, sequence_length=12_000, seed=11)
    return full.take_samples(np.arange(12)), full.take_samples(np.arange(12, 16))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("name,preset", CASES)
def test_preset_trains_and_imputes_under_cpu_autocast(tmp_path, panel, name, preset, amp):
    train, target = panel
    cls = get_imputers()[name].cls
    fields = set(cls.Options.__dataclass_fields__)
    values = {**cls.Options.from_preset(preset).as_dict(), **{k: v for k, v in SMALL.items() if k in fields}, "amp": amp}
    if values.get("segmented") is False:  # full-length SCDA: the whole panel is one segment
        values.pop("segment_length"), values.pop("segment_overlap")
    imputer = cls(cls.Options(**values))
    ctx = RunContext(work_dir=tmp_path, device="cpu", threads=1, seed=0)
    imputer.fit(train, None, ctx)
    result = imputer.result
    assert result.precision == amp
    assert all(math.isfinite(row["train_loss"]) for row in result.history)
    masked = target.codes.copy()
    masked[:, ::3] = MISSING
    out = imputer.impute(target.with_codes(masked), ctx)
    assert np.isfinite(out.dosage).all() and ((out.calls >= 1) & (out.calls <= 4)).all()
