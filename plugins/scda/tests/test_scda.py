"""SCDAImputer: the contract, the loss, a training step, full-length vs segmented layout, the
memory check, the manifest, and a short training that beats ``major``."""

from __future__ import annotations

import numpy as np
import pytest

from impbench.imputers.segments import SegmentLayout
import torch

from impbench.imputers.baselines import MajorImputer
from impbench.errors import ImpbenchError
from impbench.genotypes import code_dosage
from impbench.imputers.base import RunContext, make_options
from impbench.data.simulate import simulate_matrix
from impbench.testing import ImputerContract, contract_data
from impbench_scda import SCDAImputer, SCDAOptions
from impbench_scda import memory
from impbench_scda.imputer import padded_length
from impbench_scda.models import build_model

#: Fast settings for the contract: the default (cpu) preset, narrow and short.
TINY = {"epochs": 2, "width": 0.25, "batch_size": 8, "warmup_epochs": 0}


class TestSCDA(ImputerContract):
    imputer_cls = SCDAImputer
    options = TINY


class TestSCDAOriginalSegmented(ImputerContract):
    """The published ``original`` recipe (L1, Adam, all-position loss) trained on segments."""

    imputer_cls = SCDAImputer
    options = {"preset": "original", "epochs": 1, "width": 0.25, "segmented": True, "segment_length": 64, "segment_overlap": 8}


def make(values: dict) -> SCDAImputer:
    return SCDAImputer(make_options(SCDAOptions, values, "scda"))


def context(tmp_path, **kwargs) -> RunContext:
    return RunContext(work_dir=tmp_path, **{"device": "cpu", "threads": 1, "seed": 0, **kwargs})


# ---------------------------------------------------------------------- loss and a training step
def reference_cross_entropy(logits: np.ndarray, target: np.ndarray) -> float:
    """Mean of -log softmax(logits)[target] over positions whose target is 1-4, in float64."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    total, count = 0.0, 0
    for b in range(target.shape[0]):
        for pos in range(target.shape[1]):
            if 1 <= target[b, pos] <= 4:
                total -= log_p[b, target[b, pos], pos]
                count += 1
    return total / count


@pytest.mark.parametrize("l1", [0.0, 1e-4])
def test_loss_is_cross_entropy_plus_l1_on_hidden_kernels(l1):
    imputer = make({"preset": "original", "l1": l1})
    torch.manual_seed(0)
    imputer.model = imputer.build_model(6)
    logits = torch.randn(3, 6, 20)
    target = torch.randint(1, 5, (3, 20))
    target[0, :4] = 5  # padding never counts
    target[1, 7] = 0
    expected = reference_cross_entropy(logits.numpy(), target.numpy())
    penalty = 0.0
    for name, parameter in imputer.model.named_parameters():
        if name.endswith("weight") and not name.startswith("head"):
            penalty += float(parameter.detach().abs().sum())
    assert float(imputer.loss(logits, target).detach()) == pytest.approx(expected + l1 * penalty, rel=1e-5)


@pytest.mark.parametrize("preset", ["cpu", "original", "paper6"])
def test_one_training_step_moves_every_parameter(preset):
    width = 0.125 if preset == "paper6" else 1.0
    imputer = make({"preset": preset, "width": width})
    torch.manual_seed(0)
    in_channels = 7 if imputer.options.frequency_channel else 6
    imputer.model = imputer.build_model(in_channels)
    model = imputer.model.train()
    length = 2 * imputer.length_multiple
    x = torch.zeros(4, in_channels, length)
    codes = torch.randint(1, 5, (4, length))
    x.scatter_(1, codes.unsqueeze(1), 1.0)
    before = [p.detach().clone() for p in model.parameters()]
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = imputer.loss(model(x), codes)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    optimiser.step()
    changed = [not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters())]
    assert all(changed)


# ---------------------------------------------------------------------- layout and modes
def test_full_length_layout_is_one_padded_segment_per_sample(tmp_path):
    assert padded_length(300, 32) == 320 and padded_length(320, 32) == 320 and padded_length(1, 4) == 4
    ctx = context(tmp_path, segment_layout=SegmentLayout(128, 16))
    assert make({"preset": "paper6"}).segment_layout(1000, ctx) == (1024, 0)
    assert make({"preset": "original"}).segment_layout(1001, ctx) == (1004, 0)
    assert make({"preset": "paper6", "segmented": True}).segment_layout(1000, ctx) == (128, 16)
    with pytest.raises(ImpbenchError, match="multiple of 32"):
        make({"preset": "paper6", "segmented": True, "segment_length": 100}).segment_layout(1000, ctx)


@pytest.mark.parametrize("segmented, mode", [(False, "full-length"), (True, "segmented")])
def test_manifest_records_the_training_mode(tmp_path, segmented, mode):
    panel, val, truth, mask = contract_data()
    imputer = make({**TINY, "epochs": 1, "segmented": segmented, "segment_length": 64, "segment_overlap": 8})
    imputer.fit(panel, val, context(tmp_path))
    info = imputer.manifest_info()
    assert info["training"] == mode
    assert info["architecture"] == "original" and info["preset"] == "cpu"
    assert info["epochs_run"] == 1 and info["params"] == sum(p.numel() for p in imputer.model.parameters())
    if segmented:
        assert (info["segment_length"], info["segment_overlap"]) == (64, 8)
        assert "padded_length" not in info and "memory_estimate" not in info
    else:
        assert info["padded_length"] == info["segment_length"] == padded_length(panel.n_variants, 4)
        assert info["memory_estimate"]["train_bytes"] > 0


# ---------------------------------------------------------------------- memory
def test_activation_profile_matches_a_hand_count():
    # original network, per position: input 6; conv 32, relu 32, pool 16, dropout 16;
    # conv 64/2, relu 32, pool 16, dropout 16; bridge conv 128/4, relu 32;
    # decoder conv 64/4, relu 16, upsample 32, dropout 32; conv 32/2, relu 16, upsample 32,
    # dropout 32; head 6.
    all_layers, largest = memory.activation_profile(build_model("original"), 6, 4)
    assert all_layers == 6 + (32 + 32 + 16 + 16) + (32 + 32 + 16 + 16) + (32 + 32) + (16 + 16 + 32 + 32) * 2 + 6
    assert largest == 32 + 32  # the first ReLU: its input and its output at full length


def test_memory_estimate_grows_linearly_with_length_and_batch():
    model = build_model("paper6", width=0.25)
    n_parameters = sum(p.numel() for p in model.parameters())
    fixed = n_parameters * 4 * memory.PARAMETER_COPIES
    one, _ = memory.full_length_bytes(model, 6, 32, 1024, 1, 1)
    four, _ = memory.full_length_bytes(model, 6, 32, 2048, 2, 1)
    assert four - fixed == pytest.approx(4 * (one - fixed), rel=1e-6)


def test_paper6_chromosome_scale_estimate_is_gigabytes():
    # 1000 Genomes chr22 has about a million SNPs: one sequence is several GiB to train.
    train, predict = memory.full_length_bytes(build_model("paper6"), 6, 32, padded_length(1_000_000, 32), 1, 1)
    assert 2 * 2**30 < train < 64 * 2**30 and predict < train


def test_available_memory_reads_the_host(monkeypatch):
    available, source = memory.available_memory(torch.device("cpu"))
    assert available > 0 and source


def test_full_length_run_that_does_not_fit_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda device: (8 * 2**20, "test"))
    panel, val, _, _ = contract_data()
    imputer = make({"preset": "paper6", "epochs": 1})
    with pytest.raises(ImpbenchError) as info:
        imputer.fit(panel, val, context(tmp_path))
    message = str(info.value)
    assert "--opt scda.segmented=true" in message and "8.0 MiB" in message and "\n" not in message
    assert imputer.model is None and not any(tmp_path.iterdir()), "nothing may be trained or written"


def test_segmented_run_skips_the_full_length_check(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda device: (8 * 2**20, "test"))
    panel, val, _, _ = contract_data()
    imputer = make({**TINY, "epochs": 1, "segmented": True, "segment_length": 64, "segment_overlap": 8})
    imputer.fit(panel, val, context(tmp_path))
    assert imputer.manifest_info()["training"] == "segmented"


def test_processes_share_host_memory(tmp_path, monkeypatch):
    imputer = make({**TINY, "predict_batch_size": 1})
    need, predict = memory.full_length_bytes(imputer.build_model(7), 7, 4, padded_length(300, 4), 8, 1)
    assert predict < need
    monkeypatch.setattr(memory, "available_memory", lambda device: (int(1.5 * need / 0.9), "test"))
    imputer.check_full_length_memory(300, context(tmp_path))  # one process fits
    with pytest.raises(ImpbenchError, match="2 processes"):
        imputer.check_full_length_memory(300, context(tmp_path, nproc=2))


# ---------------------------------------------------------------------- accuracy
def test_short_training_beats_major(tmp_path):
    full = simulate_matrix(n_samples=100, sequence_length=150_000, seed=2)
    panel = full.take_samples(np.arange(80))
    truth = full.take_samples(np.arange(80, 100))
    mask = np.random.default_rng(0).random(truth.codes.shape) < 0.2
    codes = truth.codes.copy()
    codes[mask] = 0
    target = truth.with_codes(codes)

    def dosage_r2(imputation) -> float:
        return float(np.corrcoef(code_dosage(truth.codes[mask]), imputation.dosage[mask])[0, 1] ** 2)

    major = MajorImputer()
    major.fit(panel, None, context(tmp_path / "major"))
    major_r2 = dosage_r2(major.impute(target, context(tmp_path / "major")))
    scda = make({"epochs": 40, "patience": 0})  # the default (cpu) preset, otherwise as is
    scda.fit(panel, None, context(tmp_path / "scda", threads=2))
    scda_r2 = dosage_r2(scda.impute(target, context(tmp_path / "scda", threads=2)))
    assert scda_r2 > major_r2 + 0.05, (scda_r2, major_r2)


def test_training_batch_is_bounded_by_the_panel(tmp_path, monkeypatch):
    imputer = make({**TINY, "batch_size": 64, "predict_batch_size": 1})
    model = imputer.build_model(7)
    ten, _ = memory.full_length_bytes(model, 7, 4, 300, 10, 1)
    sixty_four, _ = memory.full_length_bytes(model, 7, 4, 300, 64, 1)
    monkeypatch.setattr(memory, "available_memory", lambda device: (int((ten + sixty_four) / 2 / 0.9), "test"))
    imputer.check_full_length_memory(300, context(tmp_path), n_samples=10)  # 10 samples: batches of 10
    assert imputer.memory_estimate["train_bytes"] == ten
    with pytest.raises(ImpbenchError, match="batch 64"):
        imputer.check_full_length_memory(300, context(tmp_path))
