"""hapmlp: the contract, the network (per-segment weights, allele-frequency start), the size
bound that refuses a model too large for the machine, and a short training that beats
``major``."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from impbench.data.simulate import simulate_matrix  # noqa: E402
from impbench.errors import ImpbenchError  # noqa: E402
from impbench.genotypes import CODE_DOSAGE, MISSING  # noqa: E402
from impbench.imputers.base import RunContext, make_options  # noqa: E402
from impbench.nn import count_parameters  # noqa: E402
from impbench.testing import ImputerContract  # noqa: E402
from impbench_hapmlp import HapMLP, HapMLPImputer, Options  # noqa: E402
from impbench_hapmlp import imputer as imputer_module  # noqa: E402
from impbench_hapmlp.model import parameter_count  # noqa: E402

TINY = {"hidden": 16, "epochs": 2, "batch_size": 64, "epoch_passes": 1, "segment_length": 32, "segment_overlap": 8}


class TestHapMLPContract(ImputerContract):
    imputer_cls = HapMLPImputer
    options = dict(TINY)


def context(tmp_path, **extra) -> RunContext:
    return RunContext(work_dir=tmp_path, device="cpu", threads=1, seed=0, **extra)


def test_network_predicts_alleles_from_per_segment_weights_and_starts_at_the_frequencies():
    model = HapMLP(n_segments=3, length=16, hidden=8)
    assert count_parameters(model) == parameter_count(3, 16, 8) == 3 * (2 * 16 * 8 + 8 + 8 * 16 + 16)
    freq = np.random.default_rng(0).uniform(0.05, 0.95, size=(3, 16))
    model.start_from_frequencies(freq)
    with torch.no_grad():
        model.dense.w2.zero_()
    codes = torch.randint(0, 2, (6, 16)) * 3 + 1  # haplotypes: 1 = REF, 4 = ALT
    x = torch.nn.functional.one_hot(codes, 6).permute(0, 2, 1).float()
    segment = torch.tensor([0, 1, 2, 2, 1, 0])
    logits = model(x, segment)
    assert torch.isinf(logits[:, [0, 2, 3, 5]]).all() and torch.isfinite(logits[:, [1, 4]]).all()
    p_alt = torch.softmax(logits[:, [1, 4]], dim=1)[:, 1]
    np.testing.assert_allclose(p_alt.detach().numpy(), freq[segment.numpy()], atol=1e-5)


def test_options_are_reproducible_budgets_and_haplotype_rows():
    o = Options()
    assert o.haplotypes and o.lr_schedule == "steps" and o.train_seconds == 0 and o.epochs >= 1
    with pytest.raises(ImpbenchError, match="hapmlp.hidden=0"):
        make_options(Options, {"hidden": 0}, "hapmlp")
    with pytest.raises(ImpbenchError, match="haplotype model"):
        make_options(Options, {"haplotypes": False}, "hapmlp")


def test_a_model_too_large_for_the_machine_is_refused_in_one_line(tmp_path, monkeypatch):
    """Before training: parameters, gradients and both AdamW moments against the memory."""
    panel = simulate_matrix(n_samples=12, sequence_length=20_000, seed=1)
    imputer = HapMLPImputer(make_options(Options, dict(TINY, hidden=64), "hapmlp"))
    layout = imputer.segment_layout(panel.n_variants, context(tmp_path))
    need = imputer_module.training_bytes(imputer.parameter_count(panel.n_variants, layout))
    assert need == 16 * imputer.parameter_count(panel.n_variants, layout)
    monkeypatch.setattr("impbench.nn.runtime.available_memory", lambda device: (need, "test"))  # 0.5 x that is too little
    with pytest.raises(ImpbenchError) as info:
        imputer.fit(panel, None, context(tmp_path))
    message = str(info.value)
    assert "\n" not in message and "--opt hapmlp.hidden" in message and "at most 32 fits" in message
    assert not (tmp_path / "best.pt").exists()  # nothing trained
    monkeypatch.setattr("impbench.nn.runtime.available_memory", lambda device: (4 * need, "test"))
    imputer.fit(panel, None, context(tmp_path))
    assert imputer.result.epochs_run == 2


def test_short_training_beats_major(tmp_path):
    full = simulate_matrix(n_samples=160, sequence_length=400_000, seed=5)
    panel, val, test = full.take_samples(np.arange(120)), full.take_samples(np.arange(120, 140)), full.take_samples(np.arange(140, 160))
    mask = np.random.default_rng(0).random(test.codes.shape) < 0.15
    masked = np.where(mask, MISSING, test.codes).astype(np.uint8)
    imputer = HapMLPImputer(make_options(Options, {"epochs": 8, "hidden": 128}, "hapmlp"))
    imputer.fit(panel, val, context(tmp_path))
    result = imputer.impute(test.with_codes(masked), context(tmp_path))
    counts = np.stack([(panel.codes == code).sum(axis=0) for code in (1, 2, 3, 4)])
    major = np.broadcast_to(CODE_DOSAGE[np.argmax(counts, axis=0) + 1], test.codes.shape)
    r2 = lambda d: float(np.corrcoef(CODE_DOSAGE[test.codes[mask]], d[mask])[0, 1] ** 2)  # noqa: E731
    print(f"masked dosage R2: hapmlp {r2(result.dosage):.4f}, major {r2(major):.4f}")
    assert r2(result.dosage) > r2(major) + 0.05


def test_torchrun_with_one_process_trains_in_a_process_group(tmp_path, monkeypatch):
    """``IMPBENCH_TORCHRUN_ALWAYS=1`` (what ``benchmarks/gpu_check.sh`` sets to check NCCL on
    one GPU) trains under torchrun with ``--nproc 1``: a world of one in a process group (gloo
    here), DDP wrapper and collectives included."""
    monkeypatch.setenv("IMPBENCH_TORCHRUN_ALWAYS", "1")
    full = simulate_matrix(n_samples=24, sequence_length=30_000, seed=6)
    imputer = HapMLPImputer(make_options(Options, TINY, "hapmlp"))
    imputer.fit(full.take_samples(np.arange(20)), None, context(tmp_path))
    assert imputer.mode == "ddp x1 (torchrun)" and imputer.result.world_size == 1 and imputer.result.epochs_run == 2
    masked = full.codes[20:].copy()
    masked[:, ::3] = MISSING
    out = imputer.impute(full.take_samples(np.arange(20, 24)).with_codes(masked), context(tmp_path))
    assert ((out.calls >= 1) & (out.calls <= 4)).all()
