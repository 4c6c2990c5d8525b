"""impbench.nn: encoding, masking curriculum, losses (against hand-computed values), the
schedule, the trainer (resume = uninterrupted, early stopping, checkpoint safety), precision,
prediction and the ``SegmentImputer`` glue. Small CPU models only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from impbench.imputers import segments as seg  # noqa: E402
from impbench.errors import ImpbenchError  # noqa: E402
from impbench.genotypes import CODE_DOSAGE, MISSING, PAD  # noqa: E402
from impbench.imputers.base import RunContext  # noqa: E402
from impbench.nn import (  # noqa: E402
    BEST,
    LATEST,
    METRICS_CSV,
    NNOptions,
    SegmentData,
    SegmentImputer,
    Trainer,
    ValidationSet,
    curriculum_rate,
    encode,
    imputation_from_probs,
    mask_batch,
    precision_for,
    resolve_device,
    warmup_cosine,
)
from impbench.nn import checkpoint as ckpt  # noqa: E402
from impbench.nn import losses  # noqa: E402
from impbench.nn.runtime import DistEnv  # noqa: E402
from impbench.data.simulate import simulate_matrix  # noqa: E402
from impbench.testing import ImputerContract  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread, as the imputers use ``ctx.threads``: small CPU models run faster
    and the tests do not fight other work on the machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- a tiny model plugin
class TinyNet(torch.nn.Module):
    """Two same-length convolutions: enough to learn something, fast to train."""

    def __init__(self, in_channels: int, width: int = 8):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv1d(in_channels, width, 5, padding=2), torch.nn.ReLU(), torch.nn.Dropout(0.1),
            torch.nn.Conv1d(width, 6, 5, padding=2),
        )

    def forward(self, x):
        return self.body(x)


@dataclass
class TinyOptions(NNOptions):
    PRESETS: ClassVar = {"default": {}, "wide": {"width": 16}}
    width: int = 8
    epochs: int = 3
    batch_size: int = 16
    segment_length: int | None = 32
    segment_overlap: int | None = 8


class TinyImputer(SegmentImputer):
    """The smallest plugin: a model, a loss and an options class."""

    name = "tiny-nn"
    Options = TinyOptions

    def build_model(self, in_channels):
        return TinyNet(in_channels, self.options.width)

    def loss(self, logits, target):
        return losses.cross_entropy(logits, target)


class TestTinyImputerContract(ImputerContract):
    """The shared machinery alone satisfies the imputer contract."""

    imputer_cls = TinyImputer
    check_registered = False
    options = {"epochs": 2}


# ---------------------------------------------------------------- encoding and masking
def test_encode_one_hot_position_and_features_against_a_loop():
    rng = np.random.default_rng(0)
    codes = torch.from_numpy(rng.integers(0, 6, size=(3, 10)).astype(np.uint8))
    position = torch.rand(3, 10)
    features = torch.rand(3, 2, 10)
    x = encode(codes, position, features)
    assert x.shape == (3, 9, 10) and x.dtype == torch.float32
    for b in range(3):
        for j in range(10):
            expected = [1.0 if c == int(codes[b, j]) else 0.0 for c in range(6)]
            expected += [float(position[b, j]), float(features[b, 0, j]), float(features[b, 1, j])]
            assert torch.allclose(x[b, :, j], torch.tensor(expected))
    assert encode(codes, None).shape == (3, 6, 10)


def test_segment_data_batches_match_the_segments_module():
    matrix = simulate_matrix(n_samples=6, sequence_length=30_000, seed=3)
    features = np.random.default_rng(1).random((matrix.n_variants, 2)).astype(np.float32)
    data = SegmentData(matrix.codes, matrix.positions, 32, 8, "cpu", features)
    n_seg = seg.n_segments(matrix.n_variants, 32, 8)
    assert data.segments.dtype == np.uint8 and data.segments.shape == (6 * n_seg, 32)
    index = np.array([0, n_seg + 1, len(data) - 1])
    codes, position, feats = data.batch(index)
    by_sample = seg.segment_codes(matrix.codes, 32, 8)
    pos_channel = seg.positional_channel(matrix.positions, 32, 8)
    variant_index, valid = seg.segment_index(matrix.n_variants, 32, 8)
    for row, i in enumerate(index):
        s, k = divmod(int(i), n_seg)
        assert np.array_equal(codes[row].numpy(), by_sample[s, k])
        assert np.array_equal(position[row].numpy(), pos_channel[k])
        for j in range(32):
            want = features[variant_index[k, j]] if valid[k, j] else np.zeros(2, np.float32)
            assert np.array_equal(feats[row, :, j].numpy(), want)


def test_mask_batch_hides_calls_only_at_about_the_rate():
    gen = torch.Generator().manual_seed(0)
    codes = torch.from_numpy(np.tile(np.array([0, 1, 2, 3, 4, 5], dtype=np.uint8), (400, 50)))
    masked = mask_batch(codes, 0.3, gen)
    hidden = (masked == MISSING) & (codes != MISSING)
    assert torch.equal(masked[~hidden], codes[~hidden])
    assert not hidden[(codes == MISSING) | (codes == PAD)].any()
    calls = (codes >= 1) & (codes <= 4)
    assert abs(hidden.sum().item() / calls.sum().item() - 0.3) < 0.01
    assert torch.equal(mask_batch(codes, 0.0, gen), codes)
    again = mask_batch(codes, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(again, masked)


def test_curriculum_schedule():
    rates = [curriculum_rate(e, 0.05, 0.25, 4) for e in range(7)]
    assert rates == pytest.approx([0.05, 0.10, 0.15, 0.20, 0.25, 0.25, 0.25])
    assert curriculum_rate(3, 0.05, 0.25, 0) == 0.25
    assert curriculum_rate(0, 0.2, 0.1, 2) == pytest.approx(0.2)  # may fall as well


def test_warmup_then_cosine_per_epoch():
    factors = [warmup_cosine(e, warmup_epochs=2, epochs=6, floor=0.0) for e in range(6)]
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert factors == pytest.approx(expected)
    assert warmup_cosine(5, 0, 6, floor=0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 6)))


# ---------------------------------------------------------------- losses
def _logits_from_probs(rows):
    """Logits (1, 6, n) whose softmax over codes 1-4 is exactly ``rows``; codes 0, 5 at -inf."""
    logits = torch.full((1, 6, len(rows)), float("-inf"))
    logits[0, 1:5] = torch.log(torch.tensor(rows, dtype=torch.float32)).T
    return logits


def test_hybrid_loss_against_hand_computed_value():
    # Position 0: p = (.1, .2, .3, .4), truth 0|1 (code 2), argmax 1|1: dosage error -> P = 3.
    # Position 1: same p, truth 1|1 (code 4) = argmax -> P = 1. Position 2: padding (ignored).
    logits = _logits_from_probs([[0.1, 0.2, 0.3, 0.4]] * 3)
    target = torch.tensor([[2, 4, PAD]])
    focal0 = 3 * (1 - 0.2) ** 2 * -math.log(0.2)
    focal1 = 1 * (1 - 0.4) ** 2 * -math.log(0.4)
    predicted_dosage = 0.2 + 0.3 + 2 * 0.4
    mse0, mse1 = (predicted_dosage - 1) ** 2, (predicted_dosage - 2) ** 2
    l_cls, l_dos = (focal0 + focal1) / 2, (mse0 + mse1) / 2
    assert losses.focal(logits, target).item() == pytest.approx(l_cls, rel=1e-6)
    assert losses.dosage_mse(logits, target).item() == pytest.approx(l_dos, rel=1e-6)
    assert losses.hybrid(logits, target).item() == pytest.approx(0.5 * l_cls + 0.5 * l_dos, rel=1e-6)
    assert losses.hybrid(logits, target, dosage_weight=0.2).item() == pytest.approx(0.8 * l_cls + 0.2 * l_dos, rel=1e-6)
    assert losses.cross_entropy(logits, target).item() == pytest.approx((-math.log(0.2) - math.log(0.4)) / 2, rel=1e-6)


def test_penalty_matrix_spares_phase_swaps():
    P = losses.dosage_penalty_matrix(3.0)
    assert P[2, 3] == 1 and P[3, 2] == 1 and P[1, 1] == 1 and P[4, 4] == 1
    assert P[1, 2] == 3 and P[2, 4] == 3 and P[4, 1] == 3 and P[3, 1] == 3


def test_phase_swap_costs_less_than_a_dosage_error():
    swap = _logits_from_probs([[0.1, 0.2, 0.6, 0.1]])  # argmax 1|0, truth 0|1
    wrong = _logits_from_probs([[0.1, 0.2, 0.1, 0.6]])  # argmax 1|1, truth 0|1
    truth = torch.tensor([[2]])
    assert losses.focal(wrong, truth).item() == pytest.approx(3 * losses.focal(swap, truth).item(), rel=1e-6)


def test_losses_ignore_non_call_targets_and_keep_gradients_finite():
    logits = torch.randn(2, 6, 8, requires_grad=True)
    masked_logits = logits.masked_fill(torch.tensor([True, False, False, False, False, True]).view(1, 6, 1), float("-inf"))
    target = torch.randint(1, 5, (2, 8))
    target[:, 5:] = PAD
    target[0, 0] = MISSING
    not_call = torch.zeros(2, 1, 8, dtype=torch.bool)
    not_call[:, :, 5:] = True
    not_call[0, :, 0] = True
    other_logits = torch.where(not_call, torch.randn(2, 6, 8) * 5, masked_logits.detach())
    for fn in (losses.cross_entropy, losses.focal, losses.dosage_mse, losses.hybrid):
        masked_logits = logits.masked_fill(torch.tensor([True, False, False, False, False, True]).view(1, 6, 1), float("-inf"))
        value = fn(masked_logits, target)
        assert torch.isfinite(value)
        assert value.item() == pytest.approx(fn(other_logits, target).item(), rel=1e-6)
        grad, = torch.autograd.grad(value, logits)
        assert torch.isfinite(grad).all() and (grad[not_call.expand_as(grad)] == 0).all()


# ---------------------------------------------------------------- runtime
def test_devices_and_precision():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ImpbenchError, match="not a device"):
        resolve_device("tpu:x")
    if not torch.cuda.is_available():
        with pytest.raises(ImpbenchError, match="device 'cuda:1'.*no usable GPU"):
            resolve_device("cuda:1")
    cpu = torch.device("cpu")
    assert precision_for("auto", cpu).dtype is None
    assert precision_for("off", cpu).dtype is None
    assert precision_for("bf16", cpu).dtype == torch.bfloat16
    assert precision_for("fp16", cpu).needs_scaler


def test_options_validation():
    with pytest.raises(ImpbenchError, match="mask_end=1.5"):
        NNOptions(mask_end=1.5)
    with pytest.raises(ImpbenchError, match="segment_overlap=32: must be smaller"):
        NNOptions(segment_length=32, segment_overlap=32)
    with pytest.raises(ImpbenchError, match="amp='fp8'"):
        NNOptions(amp="fp8")
    assert TinyOptions.from_preset("wide").width == 16
    assert "resume" not in TinyOptions().learning_fields()


# ---------------------------------------------------------------- the trainer
@pytest.fixture(scope="module")
def small_data():
    matrix = simulate_matrix(n_samples=24, sequence_length=40_000, seed=5)
    train = SegmentData(matrix.codes[:18], matrix.positions, 32, 8, "cpu")
    val = ValidationSet.build(matrix.codes[18:], matrix.codes[:18], matrix.positions, 0.2, seed=1)
    return train, val


def make_trainer(tmp_path, options, fingerprint=None, progress=None, seed=3):
    torch.manual_seed(seed)
    model = TinyNet(7)
    fp = fingerprint or ckpt.fingerprint("tiny", options.learning_fields(), "hash", "data")
    kwargs = {"progress": progress} if progress else {}
    return Trainer(model, losses.hybrid, options, DistEnv(), tmp_path, fp, seed=seed, name="tiny", **kwargs)


class _Interrupt(Exception):
    pass


def test_resume_from_latest_equals_an_uninterrupted_run(tmp_path, small_data):
    train, val = small_data
    options = TinyOptions(epochs=4, warmup_epochs=1, patience=0)
    straight = make_trainer(tmp_path / "a", options)
    straight.fit(train, val)

    def stop_after_epoch_2(stage, done, total):
        if stage.startswith("train · epoch 3/4"):  # the first step of epoch 3: lost, redone
            raise _Interrupt

    first = make_trainer(tmp_path / "b", options, progress=stop_after_epoch_2)
    with pytest.raises(_Interrupt):
        first.fit(train, val)
    saved = ckpt.load(tmp_path / "b" / LATEST)
    assert saved["epoch"] == 2 and not saved["finished"] and len(saved["history"]) == 2
    resumed = make_trainer(tmp_path / "b", options, seed=3)
    result = resumed.fit(train, val)
    assert result.resumed_from == 2 and result.epochs_run == 4
    # Identical state: weights, optimiser moments, scheduler, metrics.
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    a, b = ckpt.load(tmp_path / "a" / LATEST), ckpt.load(tmp_path / "b" / LATEST)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key])
    for p_a, p_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(p_a[k], p_b[k]) for k in ("exp_avg", "exp_avg_sq"))
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 4
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert (tmp_path / "b" / METRICS_CSV).read_text().count("\n") == 5


def test_best_checkpoint_holds_the_best_epoch_and_model_ends_with_it(tmp_path, small_data):
    train, val = small_data
    trainer = make_trainer(tmp_path, TinyOptions(epochs=3, patience=0))
    result = trainer.fit(train, val)
    scores_by_epoch = [r["val_r2"] for r in result.history]
    assert result.best_epoch == 1 + int(np.argmax(scores_by_epoch))
    assert result.best_val_r2 == max(scores_by_epoch)
    best = ckpt.load(tmp_path / BEST)
    assert best["epoch"] == result.best_epoch
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, best["model"][key])


def test_early_stopping_on_a_flat_validation_score(tmp_path, small_data):
    train, val = small_data
    frozen = TinyOptions(epochs=10, lr=1e-30, weight_decay=0.0, patience=2, warmup_epochs=0)
    result = make_trainer(tmp_path, frozen).fit(train, val)
    assert result.stop_reason == "converged" and result.converged
    assert result.epochs_run == 3 and result.best_epoch == 1
    # A converged training is not reopened by a larger epoch budget.
    again = make_trainer(tmp_path, TinyOptions(epochs=20, lr=1e-30, weight_decay=0.0, patience=2, warmup_epochs=0)).fit(train, val)
    assert again.epochs_run == 3 and again.converged


def test_more_epochs_extend_a_finished_training(tmp_path, small_data):
    """``epochs`` is a budget, not part of the fingerprint: resuming with more continues."""
    train, val = small_data
    first = make_trainer(tmp_path, TinyOptions(epochs=2, patience=0)).fit(train, val)
    assert first.stop_reason == "epochs" and not first.converged
    more = make_trainer(tmp_path, TinyOptions(epochs=4, patience=0)).fit(train, val)
    assert more.resumed_from == 2 and more.epochs_run == 4 and [r["epoch"] for r in more.history] == [1, 2, 3, 4]
    curve = more.validation_curve()
    assert [c["epoch"] for c in curve] == [1, 2, 3, 4]
    assert [c["steps"] for c in curve] == [r["steps"] for r in more.history] and curve[-1]["steps"] == more.steps
    assert all(c["train_seconds"] > 0 for c in curve) and np.all(np.diff([c["train_seconds"] for c in curve]) > 0)


def test_the_opt_in_wall_clock_cap_stops_training_and_is_reported(tmp_path, small_data, caplog):
    train, val = small_data
    with caplog.at_level("WARNING", logger="impbench.nn"):
        result = make_trainer(tmp_path, TinyOptions(epochs=50, patience=0, train_seconds=1e-9)).fit(train, val)
    assert result.stop_reason == "time" and result.epochs_run == 1 and result.steps == 1  # cut after its first step
    assert "wall-clock cap train_seconds=1e-09 fired after epoch 1 (1 steps)" in caplog.text
    assert ckpt.load(tmp_path / LATEST)["seconds_used"] == pytest.approx(result.train_seconds_total)
    # A larger time budget resumes it.
    more = make_trainer(tmp_path, TinyOptions(epochs=2, patience=0, train_seconds=1e6)).fit(train, val)
    assert more.resumed_from == 1 and more.epochs_run == 2 and more.stop_reason == "epochs"


def test_a_finished_checkpoint_is_reused_without_training(tmp_path, small_data):
    train, val = small_data
    options = TinyOptions(epochs=2)
    first = make_trainer(tmp_path, options)
    first.fit(train, val)
    calls = []
    again = make_trainer(tmp_path, options, progress=lambda *a: calls.append(a), seed=3)
    result = again.fit(train, val)
    assert result.resumed_from == 2 and calls == []
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])


def test_checkpoint_mismatch_names_the_difference(tmp_path, small_data):
    train, val = small_data
    make_trainer(tmp_path, TinyOptions(epochs=1)).fit(train, val)
    with pytest.raises(ImpbenchError, match=r"option lr: 0.001 in the checkpoint, 0.01 now"):
        make_trainer(tmp_path, TinyOptions(epochs=1, lr=0.01)).fit(train, val)
    other_data = ckpt.fingerprint("tiny", TinyOptions(epochs=1).learning_fields(), "hash", "other")
    with pytest.raises(ImpbenchError, match="training data digest: 'data' in the checkpoint, 'other' now"):
        make_trainer(tmp_path, TinyOptions(epochs=1), fingerprint=other_data).fit(train, val)


def test_unsafe_or_foreign_checkpoints_are_refused(tmp_path):
    import argparse

    torch.save({"fingerprint": {}, "model": argparse.Namespace(x=1)}, tmp_path / "evil.pt")  # any pickled object
    with pytest.raises(ImpbenchError, match="cannot be read safely"):
        ckpt.load(tmp_path / "evil.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ImpbenchError, match="not an impbench checkpoint"):
        ckpt.load(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ImpbenchError, match="junk.pt cannot be read"):
        ckpt.load(tmp_path / "junk.pt")


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_training_paths_run_on_cpu(tmp_path, small_data, amp):
    """The autocast path (and, for fp16, the gradient scaler) is the one a GPU takes."""
    train, val = small_data
    trainer = make_trainer(tmp_path, TinyOptions(epochs=2, amp=amp))
    result = trainer.fit(train, val)
    assert result.precision == amp and all(math.isfinite(r["train_loss"]) for r in result.history)
    assert trainer.scaler.is_enabled() == (amp == "fp16")
    saved = ckpt.load(tmp_path / LATEST)
    assert bool(saved["scaler"]) == (amp == "fp16")  # the scaler's state is checkpointed


# ---------------------------------------------------------------- prediction and the imputer
def test_imputation_keeps_observed_cells_and_is_consistent():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(4), size=(5, 7)).astype(np.float32)
    observed = rng.integers(0, 5, size=(5, 7)).astype(np.uint8)
    result = imputation_from_probs(observed, probs)
    seen = observed != MISSING
    assert np.array_equal(result.calls[seen], observed[seen])
    class_probs = np.stack([probs[..., 0], probs[..., 1] + probs[..., 2], probs[..., 3]], axis=-1)
    called_class = np.array([0, 0, 1, 1, 2])[result.calls]
    assert np.array_equal(called_class[~seen], np.argmax(class_probs, axis=-1)[~seen])  # Imputation.from_probs
    np.testing.assert_allclose(result.dosage[seen], CODE_DOSAGE[observed[seen]])
    np.testing.assert_allclose(result.probs.sum(-1), 1.0, atol=1e-6)


def test_prediction_chunks_do_not_change_the_answer(tmp_path, monkeypatch):
    from impbench.nn import predict

    matrix = simulate_matrix(n_samples=20, sequence_length=30_000, seed=8)
    imputer = TinyImputer(TinyOptions(epochs=1))
    ctx = RunContext(work_dir=tmp_path, seed=1)
    imputer.fit(matrix.take_samples(np.arange(14)), None, ctx)
    target = matrix.take_samples(np.arange(14, 20))
    codes = target.codes.copy()
    codes[:, ::3] = MISSING
    whole = imputer.impute(target.with_codes(codes), ctx)
    monkeypatch.setattr(predict, "CHUNK_BYTES", 1)  # one sample per chunk
    chunked = imputer.impute(target.with_codes(codes), ctx)
    np.testing.assert_array_equal(whole.calls, chunked.calls)
    np.testing.assert_allclose(whole.probs, chunked.probs, atol=1e-6)


def test_validation_hold_out_when_the_harness_gives_none(tmp_path):
    matrix = simulate_matrix(n_samples=30, sequence_length=20_000, seed=9)
    imputer = TinyImputer(TinyOptions(epochs=1, val_fraction=0.2))
    train, val = imputer._split_validation(matrix, None, seed=0)
    assert train.shape[0] == 24 and val.shape[0] == 6
    rows = {tuple(r) for r in matrix.codes}
    assert all(tuple(r) in rows for r in np.concatenate([train, val]))
    one = matrix.take_samples(np.arange(1))
    assert imputer._split_validation(one, None, seed=0)[1] is None


# ---------------------------------------------------------------- validation on the imputation task
def benchmark_overall(truth, imputation, mask, train_codes) -> tuple[float, float]:
    """The benchmark's overall masked-cell R² and concordance (``impbench.scoring``)."""
    from impbench.genotypes import alt_allele_frequency
    from impbench.scoring.metrics import score

    metrics = score(truth, imputation, mask, train_alt_freq=alt_allele_frequency(train_codes)).metrics
    overall = metrics[metrics["bin"] == "overall"].set_index("metric")["value"]
    return float(overall["r2"]), float(overall["concordance"])


@pytest.fixture(scope="module")
def scored_case():
    """A panel, a validation split under its fixed mask, and a trained tiny model."""
    matrix = simulate_matrix(n_samples=40, sequence_length=60_000, seed=12)
    train_codes, val_codes = matrix.codes[:30], matrix.codes[30:]
    val = ValidationSet.build(val_codes, train_codes, matrix.positions, 0.2, seed=4)
    torch.manual_seed(0)
    model = TinyNet(7)
    return train_codes, val, model


PREDICT = dict(length=32, overlap=8, use_position=True, device=torch.device("cpu"), batch_size=64)


def test_validation_r2_is_the_benchmarks_r2_on_the_same_cells(scored_case):
    """Validation scores the model's ``Imputation.from_probs`` with ``impbench.scoring``: the
    validation R² and concordance equal the benchmark's overall values to 1e-12, also when the
    summaries come from two ranks' halves of the samples."""
    from impbench.nn.validation import scores_from_summaries

    train_codes, val, model = scored_case
    precision = precision_for("off", torch.device("cpu"))
    rows = np.arange(len(val))
    imputation = val.imputation(model, rows, precision=precision, **PREDICT)
    want = benchmark_overall(val.truth, imputation, val.mask, train_codes)
    assert 0.0 < want[0] < 1.0
    got = scores_from_summaries(val.summary(model, rows, precision=precision, **PREDICT))
    assert got == pytest.approx(want, abs=1e-12)
    halves = np.stack([val.summary(model, part, precision=precision, **PREDICT) for part in np.array_split(rows, 2)])
    assert scores_from_summaries(halves) == pytest.approx(want, abs=1e-12)
    # The trainer's evaluate() is the same number.
    trainer = Trainer(model, losses.cross_entropy, TinyOptions(), DistEnv(), Path("unused"), {}, name="t")
    assert trainer.evaluate(val, 32, 8) == pytest.approx(want, abs=1e-12)


class ConstantNet(torch.nn.Module):
    """The same logits at every position, heterozygous: dosage 1 on either allele, a constant
    predictor in the benchmark's minor-allele orientation too."""

    def forward(self, x):
        logits = torch.tensor([0.0, -math.inf, 0.3, 0.1, -math.inf, 0.0]).view(1, 6, 1)
        return logits.expand(x.shape[0], 6, x.shape[2]).clone()


def test_a_constant_predictor_scores_zero_as_in_the_benchmark(scored_case):
    """A constant prediction explains none of the truth's variance: R² 0, as
    ``pooled.Moments.r2`` gives (not NaN); truth scores 1."""
    from impbench.imputers.base import Imputation
    from impbench.nn.validation import scores_from_summaries, summary

    train_codes, val, _ = scored_case
    precision = precision_for("off", torch.device("cpu"))
    rows = np.arange(len(val))
    r2, concordance = scores_from_summaries(val.summary(ConstantNet(), rows, precision=precision, **PREDICT))
    want = benchmark_overall(val.truth, val.imputation(ConstantNet(), rows, precision=precision, **PREDICT), val.mask, train_codes)
    assert r2 == 0.0 and want[0] == 0.0 and concordance == pytest.approx(want[1], abs=1e-12)
    probs = np.eye(4, dtype=np.float32)[np.clip(val.truth.astype(int) - 1, 0, 3)]
    perfect = summary(val.truth, Imputation.from_probs(probs, val.masked), val.mask, val.train_alt_freq)
    assert scores_from_summaries(perfect) == (1.0, 1.0)
    assert all(math.isnan(v) for v in scores_from_summaries(np.zeros(22)))  # no cells


def test_seeded_validation_mask_cells_and_variants():
    from impbench.nn.validation import seeded_mask

    codes = np.random.default_rng(0).integers(0, 5, size=(40, 300)).astype(np.uint8)
    cells = seeded_mask(codes, 0.3, seed=1)
    assert np.array_equal(cells, seeded_mask(codes, 0.3, seed=1)) and not np.array_equal(cells, seeded_mask(codes, 0.3, seed=2))
    assert not cells[codes == 0].any() and abs(cells[codes > 0].mean() - 0.3) < 0.03
    variants = seeded_mask(codes, 0.3, seed=1, mode="variants")
    hidden_columns = variants.any(axis=0)
    assert np.array_equal(variants, hidden_columns[None, :] & (codes > 0))  # a whole variant or nothing
    assert 0.2 < hidden_columns.mean() < 0.4


def test_variant_masking_hides_whole_columns_per_segment():
    gen = torch.Generator().manual_seed(0)
    codes = torch.from_numpy(np.random.default_rng(1).integers(1, 5, size=(12, 40)).astype(np.uint8))
    groups = torch.tensor([0, 1, 2] * 4)
    masked = mask_batch(codes, 0.4, gen, groups, 3)
    hidden = masked == MISSING
    for g in range(3):
        rows = hidden[groups == g]
        assert torch.equal(rows, rows[:1].expand_as(rows))  # the same variants in every sample
    assert 0.2 < hidden.float().mean().item() < 0.6
    assert not torch.equal(hidden[0], hidden[1])


def test_variants_mask_mode_trains(tmp_path, small_data):
    train, _ = small_data
    matrix = simulate_matrix(n_samples=24, sequence_length=40_000, seed=5)
    val = ValidationSet.build(matrix.codes[18:], matrix.codes[:18], matrix.positions, 0.2, seed=1, mode="variants")
    assert np.array_equal(val.mask, val.mask.any(axis=0)[None, :] & (val.truth > 0))
    result = make_trainer(tmp_path, TinyOptions(epochs=1, mask_mode="variants")).fit(train, val)
    assert result.epochs_run == 1 and math.isfinite(result.history[0]["train_loss"])
    with pytest.raises(ImpbenchError, match="mask_mode='rows'"):
        TinyOptions(mask_mode="rows")


def test_segment_layout_from_the_run_context(tmp_path):
    from impbench.imputers.segments import SegmentLayout

    imputer = TinyImputer(TinyOptions(segment_length=None, segment_overlap=None))
    ctx = RunContext(work_dir=tmp_path, segment_layout=SegmentLayout(48, 12))
    assert imputer.segment_layout(1000, ctx) == (48, 12)
    # neural option names in card_options mean nothing: the layout is a typed field
    ctx = RunContext(work_dir=tmp_path, card_options={"segment_length": 64, "segment_overlap": 4})
    assert imputer.segment_layout(1000, ctx) == (128, 16)
    options = TinyImputer(TinyOptions(segment_length=32, segment_overlap=8))
    assert options.segment_layout(1000, RunContext(work_dir=tmp_path, segment_layout=SegmentLayout(48, 12))) == (32, 8)


def test_registering_the_neural_plugins_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from impbench.imputers.registry import get_imputers\n"
        "names = get_imputers()\n"
        "assert {'biunet', 'scda'} <= set(names), sorted(names)\n"
        "assert 'torch' not in sys.modules, 'torch imported at registration'\n"
        "names['biunet'].cls.Options.from_preset('paper'); names['scda'].cls(None)\n"
        "assert 'torch' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- haplotypes, mosaics, per-segment weights
def test_haplotype_codes_against_a_loop_and_back():
    from impbench.genotypes import ALLELES_CODE
    from impbench.nn.data import genotype_probs_from_haplotypes, haplotype_codes

    rng = np.random.default_rng(4)
    codes = rng.integers(0, 5, size=(5, 9)).astype(np.uint8)
    haps = haplotype_codes(codes)
    assert haps.shape == (10, 9) and haps.dtype == np.uint8
    allele_of = {1: (0, 0), 2: (0, 1), 3: (1, 0), 4: (1, 1)}
    for i in range(5):
        for j in range(9):
            if codes[i, j] == MISSING:
                assert haps[2 * i, j] == haps[2 * i + 1, j] == MISSING
            else:
                first, second = allele_of[int(codes[i, j])]
                assert (haps[2 * i, j], haps[2 * i + 1, j]) == (1 + 3 * first, 1 + 3 * second)
    # One-hot haplotype predictions combine back into the one-hot of the original code.
    one_hot = np.eye(4, dtype=np.float32)[np.clip(haps.astype(int) - 1, 0, 3)]
    probs = genotype_probs_from_haplotypes(one_hot)
    called = codes != MISSING
    assert probs.shape == (5, 9, 4)
    assert np.array_equal(probs.argmax(-1)[called] + 1, codes[called])
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
    # Independent haplotypes: P(code) is the product of the two allele probabilities.
    alt = rng.random((4, 3))
    hap_probs = np.stack([1 - alt, np.zeros_like(alt), np.zeros_like(alt), alt], axis=-1)
    combined = genotype_probs_from_haplotypes(hap_probs)
    for i in range(2):
        for j in range(3):
            for a0 in (0, 1):
                for a1 in (0, 1):
                    want = (alt[2 * i, j] if a0 else 1 - alt[2 * i, j]) * (alt[2 * i + 1, j] if a1 else 1 - alt[2 * i + 1, j])
                    assert combined[i, j, ALLELES_CODE[a0, a1] - 1] == pytest.approx(want, abs=1e-6)


def test_mosaics_copy_pieces_of_panel_rows_of_the_same_segment():
    n_samples, n_variants = 4, 70
    constant = np.repeat(np.arange(1, 5, dtype=np.uint8)[:, None], n_variants, axis=1)  # row i is all i + 1
    data = SegmentData(constant, np.arange(n_variants) * 10, 16, 4, "cpu")
    index = np.arange(len(data))
    rng = np.random.default_rng(0)
    for switches in (0, 1, 3):
        rows = data.mosaic_rows(index, switches, rng)
        valid = rows != PAD
        changes = ((rows[:, 1:] != rows[:, :-1]) & valid[:, 1:]).sum(axis=1)
        assert changes.max() <= switches
        if switches:
            assert changes.max() > 0
        assert np.array_equal(valid, data.segments[index] != PAD)  # the padded tail stays padding
    # Distinct rows: a mosaic without switches is one panel row of the same segment.
    matrix = simulate_matrix(n_samples=6, sequence_length=30_000, seed=3)
    data = SegmentData(matrix.codes, matrix.positions, 32, 8, "cpu")
    index = np.arange(len(data))
    rows = data.mosaic_rows(index, 0, np.random.default_rng(1))
    for row, i in zip(rows, index):
        same_segment = data.segments[i % data.n_seg :: data.n_seg]
        assert any(np.array_equal(row, other) for other in same_segment)
    codes, _, _ = data.batch(index[:5], 2, np.random.default_rng(2))
    assert codes.shape == (5, 32) and codes.dtype == torch.uint8


def test_segment_mlp_matches_per_row_weights():
    from impbench.nn.segment_mlp import SegmentMLP

    torch.manual_seed(0)
    mlp = SegmentMLP(n_segments=5, in_features=6, hidden=4, out_features=3)
    x = torch.randn(11, 6, requires_grad=True)
    segment = torch.tensor([4, 0, 0, 2, 4, 4, 1, 0, 3, 2, 4])
    out = mlp(x, segment)
    want = torch.stack([
        torch.relu(x[b] @ mlp.w1[k] + mlp.b1[k, 0]) @ mlp.w2[k] + mlp.b2[k, 0] for b, k in enumerate(segment.tolist())
    ])
    torch.testing.assert_close(out, want)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(mlp.w1.grad).all()
    assert torch.count_nonzero(mlp.w1.grad[[0, 1, 2, 3, 4]].flatten(1).abs().sum(1)) == 5


def test_mask_batch_with_a_rate_per_row():
    codes = torch.full((3, 4000), 1, dtype=torch.uint8)
    rate = torch.tensor([[0.0], [0.3], [0.9]])
    hidden = (mask_batch(codes, rate, torch.Generator().manual_seed(0)) == MISSING).float().mean(1)
    assert hidden[0] == 0.0
    assert abs(float(hidden[1]) - 0.3) < 0.04 and abs(float(hidden[2]) - 0.9) < 0.04


def test_step_schedule_warms_up_then_decays_to_the_floor():
    from impbench.nn.schedule import lr_factor, plan

    options = NNOptions(lr_schedule="steps", epochs=4, batch_size=10, warmup_fraction=0.25, min_lr_ratio=0.1)
    epoch_plan = plan(options, 95, world_size=1)
    assert (epoch_plan.steps_per_epoch, epoch_plan.total_steps, epoch_plan.warmup_steps) == (10, 40, 10)
    factor = lr_factor(options, epoch_plan)
    assert factor(4) == pytest.approx(0.5) and factor(9) == pytest.approx(1.0)
    assert factor(39) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 29 / 30)))
    assert factor(30) < factor(20) < 1.0


def test_batch_size_is_the_global_batch_split_over_the_ranks():
    from impbench.nn.schedule import plan

    one = plan(NNOptions(batch_size=16), 100, world_size=1)
    two = plan(NNOptions(batch_size=16), 50, world_size=2)  # the sampler gives each rank half
    assert (one.rank_batch, two.rank_batch) == (16, 8) and one.steps_per_epoch == two.steps_per_epoch == 7
    with pytest.raises(ImpbenchError, match="batch_size=15 is the global batch: it must be a multiple of the world size 2"):
        plan(NNOptions(batch_size=15), 50, world_size=2)


def test_haplotype_options_validation():
    with pytest.raises(ImpbenchError, match="mosaic_switches=-2"):
        NNOptions(mosaic_switches=-2)
    with pytest.raises(ImpbenchError, match="lr_schedule='time': the wall-clock schedule was removed"):
        NNOptions(lr_schedule="time", train_seconds=60)
    with pytest.raises(ImpbenchError, match="mask_sampling='random'"):
        NNOptions(mask_sampling="random")
    with pytest.raises(ImpbenchError, match="mask_start"):
        NNOptions(mask_sampling="uniform", mask_start=0.6, mask_end=0.5)
    with pytest.raises(ImpbenchError, match="epoch_passes=0"):
        NNOptions(epoch_passes=0)


def test_haplotype_training_with_mosaics_imputes_both_haplotypes(tmp_path):
    """A haplotype model trains on mosaics with per-row mask rates and a step schedule; its
    imputation of a target is the product of its two haplotypes' predictions."""
    from impbench.nn.data import genotype_probs_from_haplotypes, haplotype_codes
    from impbench.nn.predict import predict_probs
    from impbench.nn.runtime import precision_for

    matrix = simulate_matrix(n_samples=20, sequence_length=30_000, seed=8)
    options = TinyOptions(
        epochs=2, haplotypes=True, mosaic_switches=2, mask_sampling="uniform", mask_start=0.05, mask_end=0.5,
        lr_schedule="steps", epoch_passes=2,
    )
    imputer = TinyImputer(options)
    ctx = RunContext(work_dir=tmp_path, seed=1)
    imputer.fit(matrix.take_samples(np.arange(14)), None, ctx)
    assert imputer.result.epochs_run == 2
    target = matrix.take_samples(np.arange(14, 20))
    codes = target.codes.copy()
    codes[:, ::3] = MISSING
    result = imputer.impute(target.with_codes(codes), ctx)
    seen = codes != MISSING
    assert np.array_equal(result.calls[seen], codes[seen])
    length, overlap = imputer.layout
    hap_probs = predict_probs(
        imputer.model, haplotype_codes(codes), target.positions, length, overlap, use_position=True,
        device=torch.device("cpu"), precision=precision_for("off", torch.device("cpu")), batch_size=64,
    )
    np.testing.assert_allclose(result.probs[~seen], genotype_probs_from_haplotypes(hap_probs)[~seen], atol=1e-5)


@pytest.mark.parametrize("scheme, expected", [("uniform", "cells"), ("per-variant", "cells"), ("array", "variants")])
def test_auto_mask_mode_follows_the_run_scheme(tmp_path, scheme, expected):
    matrix = simulate_matrix(n_samples=16, sequence_length=20_000, seed=3)
    imputer = TinyImputer(TinyOptions(epochs=1))
    assert imputer.options.mask_mode == "auto"
    imputer.fit(matrix, None, RunContext(work_dir=tmp_path, seed=1, scheme=scheme))
    assert imputer.options.mask_mode == expected
