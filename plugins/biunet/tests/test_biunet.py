"""BiU-Net plugin tests: the network as the reference describes it, options and presets,
training that beats the ``major`` baseline, DDP, checkpoints, bad input, and the contract."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from impbench.imputers.segments import SegmentLayout
import torch

from impbench.errors import ImpbenchError
from impbench.genotypes import CODE_DOSAGE, MISSING, PAD
from impbench.imputers.base import RunContext, make_options
from impbench.nn import BEST, LATEST, METRICS_CSV, SUMMARY_JSON, TIMING_CSV, count_parameters
from impbench.data.simulate import simulate_matrix
from impbench.testing import ImputerContract
from impbench_biunet import BiUNet, BiUNetImputer, Options

#: Tiny settings: the contract and most tests train in a second or two.
TINY = {"base_channels": 4, "depth": 3, "epochs": 2, "batch_size": 32, "segment_length": 32, "segment_overlap": 8, "epoch_passes": 1}


def tiny_options(**extra) -> Options:
    return make_options(Options, {**TINY, **extra}, "biunet")


def context(tmp_path, **extra) -> RunContext:
    return RunContext(work_dir=tmp_path, threads=extra.pop("threads", 1), seed=extra.pop("seed", 0), **extra)


# ---------------------------------------------------------------- the network
def conv_params(c_in: int, c_out: int, k: int = 7) -> int:
    return c_in * c_out * k + c_out


def test_paper_network_has_the_published_parameter_count():
    model = BiUNet(in_channels=7, base_channels=32, depth=6, kernel_size=7)
    widths = [7, 32, 64, 128, 256, 512, 1024]
    expected = sum(conv_params(a, b) for a, b in zip(widths[:-1], widths[1:]))  # encoder
    expected += sum(conv_params(b, a) for a, b in zip(widths[1:-1], widths[2:]))  # decoder 1024->...->32
    expected += conv_params(32, 6)  # head
    assert count_parameters(model) == expected == 9_783_078
    assert 9_700_000 <= count_parameters(model) <= 9_800_000


@pytest.mark.parametrize("preset", ["paper", "paper-text"])
def test_paper_presets_build_the_paper_network(preset):
    imputer = BiUNetImputer(Options.from_preset(preset))
    model = imputer.build_model(imputer.n_input_channels())
    assert imputer.n_input_channels() == 7  # one-hot over 6 codes + positional channel
    assert count_parameters(model) == 9_783_078
    assert [m.kernel_size[0] for m in model.modules() if isinstance(m, torch.nn.Conv1d)] == [7] * 12
    assert imputer.length_multiple == 32


@pytest.mark.parametrize("preset", ["cpu", "paper", "paper-text"])
def test_every_preset_builds_the_u_net(preset):
    """Presets change width, depth and recipe; the network is always the U-Net."""
    imputer = BiUNetImputer(Options.from_preset(preset))
    model = imputer.build_model(imputer.n_input_channels())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    o = imputer.options
    assert len(convs) == 2 * o.depth and [m.in_channels for m in model.encoder][1:] == [o.base_channels * 2**i for i in range(o.depth - 1)]
    assert set(dict(model.named_children())) == {"encoder", "decoder", "head", "pool", "upsample", "dropout"}


def test_cpu_preset_is_the_width_8_u_net_on_haplotype_rows():
    imputer = BiUNetImputer(Options())
    imputer.features = imputer.variant_features(np.full((4, 10), 2, dtype=np.uint8))  # what fit() sets
    assert imputer.n_input_channels() == 8  # one-hot, position, allele frequency
    assert count_parameters(imputer.build_model(imputer.n_input_channels())) == 612_558 + 8 * 7  # 612,558 with 7 inputs
    model = BiUNet(in_channels=7, base_channels=4, depth=3, haplotypes=True)
    logits = model(torch.randn(2, 7, 16))
    assert torch.isinf(logits[:, [0, 2, 3, 5]]).all() and torch.isfinite(logits[:, [1, 4]]).all()


def test_weighted_dosage_term_against_hand_computed_value():
    from impbench.nn import losses

    logits = torch.tensor([[[-1e9], [0.0], [1.0], [0.0], [2.0], [-1e9]]])  # one position
    target = torch.tensor([[2]])  # 0|1: true dosage 1
    p = torch.softmax(torch.tensor([0.0, 1.0, 0.0, 2.0]), 0)
    d = float(p[1] + p[2] + 2 * p[3]) - 1.0
    assert losses.dosage_error(logits, target, weighted=True).item() == pytest.approx((1 + abs(d)) * d * d, rel=1e-5)
    assert losses.dosage_error(logits, target).item() == pytest.approx(d * d, rel=1e-5)


def test_network_shapes_skips_and_never_predicted_codes():
    model = BiUNet(in_channels=7, base_channels=4, depth=4)
    x = torch.randn(3, 7, 64)
    logits = model(x)
    assert logits.shape == (3, 6, 64)
    assert torch.isinf(logits[:, MISSING]).all() and torch.isinf(logits[:, PAD]).all()
    assert torch.isfinite(logits[:, 1:5]).all()
    # Additive skips: the decoder's last block keeps the first encoder width.
    assert model.decoder[-1].out_channels == model.encoder[0].out_channels == 4


def test_forward_backward_step_changes_every_layer():
    torch.manual_seed(0)
    imputer = BiUNetImputer(tiny_options(haplotypes=False, use_position=True, frequency_channel=True))
    model = imputer.build_model(imputer.n_input_channels())
    codes = torch.randint(1, 5, (4, 32))
    x = torch.nn.functional.one_hot(codes, 6).permute(0, 2, 1).float()
    x = torch.cat([x, torch.rand(4, imputer.n_input_channels() - 6, 32)], dim=1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = imputer.loss(model(x), codes)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    torch.optim.AdamW(model.parameters(), lr=1e-2).step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("loss", ["hybrid", "focal", "ce"])
def test_loss_options_select_the_loss(loss):
    from impbench.nn import losses

    torch.manual_seed(1)
    logits = torch.randn(2, 6, 16)
    target = torch.randint(1, 5, (2, 16))
    got = BiUNetImputer(tiny_options(loss=loss, focal_gamma=1.5, penalty=2.0, dosage_weight=0.3)).loss(logits, target)
    expected = {
        "hybrid": losses.hybrid(logits, target, gamma=1.5, penalty=2.0, dosage_weight=0.3),
        "focal": losses.focal(logits, target, gamma=1.5, penalty=2.0),
        "ce": losses.cross_entropy(logits, target),
    }[loss]
    assert torch.allclose(got, expected)


def test_position_and_frequency_channels_are_options():
    assert BiUNetImputer(tiny_options(frequency_channel=False, use_position=True)).n_input_channels() == 7
    assert BiUNetImputer(tiny_options(frequency_channel=False, use_position=False)).n_input_channels() == 6
    imputer = BiUNetImputer(tiny_options(use_position=False, frequency_channel=True))
    imputer.features = np.zeros((10, 1), dtype=np.float32)
    assert imputer.n_input_channels() == 7  # 6 codes + allele frequency


# ---------------------------------------------------------------- options and presets
def test_presets_and_overrides():
    # paper = the authors' archived 1000 Genomes run config
    paper = make_options(Options, {"preset": "paper", "epochs": "20"}, "biunet")
    assert paper.preset == "paper" and paper.base_channels == 32 and paper.depth == 6 and paper.epochs == 20
    assert paper.batch_size == 1024 and paper.drop_last and paper.loss == "hybrid" and paper.weighted_dosage
    assert paper.focal_gamma == 2.0 and paper.dosage_weight == 0.5 and paper.dropout == 0.0
    assert paper.lr == 1e-3 and (paper.beta1, paper.beta2) == (0.9, 0.99) and paper.weight_decay == 0.01
    assert paper.grad_clip == 1.0 and paper.mask_start == paper.mask_end == 0.5 and paper.warmup_epochs == 10
    assert Options.from_preset("paper").epochs == 400 and paper.seed == 42 and paper.amp == "fp16-cuda"
    assert not paper.frequency_channel and paper.loss_positions == "all" and paper.use_position
    # paper-text = the paper's text: curriculum 5 % -> 25 %, plain MSE dosage term
    text = Options.from_preset("paper-text")
    assert (text.mask_start, text.mask_end) == (0.05, 0.25) and not text.weighted_dosage and text.loss == "hybrid"
    assert text.base_channels == 32 and text.loss_positions == "all" and text.batch_size == 1024
    assert Options() == Options.from_preset("cpu")
    cpu = Options()  # the U-Net at width 8 on haplotype rows (not the paper's recipe)
    assert cpu.haplotypes and cpu.mosaic_switches == -1 and cpu.base_channels == 8 and cpu.depth == 6 and cpu.use_position
    assert cpu.mask_sampling == "uniform" and (cpu.mask_start, cpu.mask_end) == (0.05, 0.5) and cpu.lr_schedule == "steps"
    assert cpu.loss == "ce" and cpu.loss_positions == "masked" and cpu.train_seconds == 0  # reproducible budget
    assert set(Options.PRESETS) == {"cpu", "paper", "paper-text"}
    assert make_options(Options, {}, "biunet").preset == "cpu"
    with pytest.raises(ImpbenchError, match="unknown preset 'gpu'.*cpu, paper"):
        make_options(Options, {"preset": "gpu"}, "biunet")
    with pytest.raises(ImpbenchError, match="loss='mse'"):
        make_options(Options, {"loss": "mse"}, "biunet")
    with pytest.raises(ImpbenchError, match="unknown option"):
        make_options(Options, {"widht": 3}, "biunet")


def test_options_recorded_in_manifest_info(tmp_path):
    panel = simulate_matrix(n_samples=20, sequence_length=30_000, seed=2)
    imputer = BiUNetImputer(tiny_options())
    imputer.fit(panel, None, context(tmp_path))
    info = json.loads(json.dumps(imputer.manifest_info()))
    assert info["preset"] == "cpu" and info["mode"] == "single process" and info["device"] == "cpu"
    assert info["epochs_run"] == 2 and 1 <= info["best_epoch"] <= 2 and info["epochs"] == 2
    assert info["stop_reason"] == "epochs" and info["converged"] is False
    assert [c["epoch"] for c in info["validation_curve"]] == [1, 2]
    assert info["best_val_r2"] == max(c["val_r2"] for c in info["validation_curve"])
    assert info["params"] == count_parameters(imputer.model)
    assert (info["segment_length"], info["segment_overlap"]) == (32, 8)
    departures = info["departures_from_paper"]
    assert "haplotypes=True (paper: False)" in departures and "base_channels=4 (paper: 32)" in departures
    assert not any(d.startswith(("preset=", "epochs=", "train_seconds=")) for d in departures)
    assert BiUNetImputer(Options.from_preset("paper")).departures_from_paper() == []


# ---------------------------------------------------------------- bad input
def test_segment_length_must_fit_the_poolings(tmp_path):
    panel = simulate_matrix(n_samples=10, sequence_length=20_000, seed=2)
    with pytest.raises(ImpbenchError, match="segment_length=42: must be a multiple of 4"):
        BiUNetImputer(tiny_options(segment_length=42)).fit(panel, None, context(tmp_path))


def test_card_segment_layout_is_used_when_options_leave_it(tmp_path):
    panel = simulate_matrix(n_samples=10, sequence_length=20_000, seed=2)
    imputer = BiUNetImputer(tiny_options(segment_length=None, segment_overlap=None, epochs=1))
    imputer.fit(panel, None, context(tmp_path, segment_layout=SegmentLayout(64, 32)))
    assert imputer.layout == (64, 32)


def test_cuda_without_gpu_fails_clearly(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    panel = simulate_matrix(n_samples=10, sequence_length=20_000, seed=2)
    with pytest.raises(ImpbenchError, match="device 'cuda'.*no usable GPU"):
        BiUNetImputer(tiny_options()).fit(panel, None, context(tmp_path, device="cuda"))


def test_fewer_variants_than_one_segment(tmp_path):
    full = simulate_matrix(n_samples=30, sequence_length=20_000, seed=4)
    full = full.take_variants(np.arange(min(full.n_variants, 11)))
    panel, target = full.take_samples(np.arange(24)), full.take_samples(np.arange(24, 30))
    imputer = BiUNetImputer(tiny_options())
    imputer.fit(panel, None, context(tmp_path))
    masked = target.codes.copy()
    masked[:, ::3] = MISSING
    result = imputer.impute(target.with_codes(masked), context(tmp_path))
    assert result.calls.shape == target.codes.shape
    assert ((result.calls >= 1) & (result.calls <= 4)).all()
    observed = masked != MISSING
    assert np.array_equal(result.calls[observed], masked[observed])


def test_checkpoint_from_other_options_or_data_is_refused(tmp_path):
    full = simulate_matrix(n_samples=30, sequence_length=30_000, seed=2)
    panel = full.take_samples(np.arange(20))
    BiUNetImputer(tiny_options()).fit(panel, None, context(tmp_path, dataset_hash="aaa"))
    assert (tmp_path / LATEST).exists() and (tmp_path / BEST).exists()
    with pytest.raises(ImpbenchError, match=r"option base_channels: 4 in the checkpoint, 8 now") as info:
        BiUNetImputer(tiny_options(base_channels=8)).fit(panel, None, context(tmp_path, dataset_hash="aaa"))
    assert "\n" not in str(info.value) and "resume=false" in str(info.value)
    with pytest.raises(ImpbenchError, match="dataset hash: 'aaa' in the checkpoint, 'bbb' now"):
        BiUNetImputer(tiny_options()).fit(panel, None, context(tmp_path, dataset_hash="bbb"))
    with pytest.raises(ImpbenchError, match="training data digest"):
        BiUNetImputer(tiny_options()).fit(full.take_samples(np.arange(10, 30)), None, context(tmp_path, dataset_hash="aaa"))
    # resume=false trains afresh over the old checkpoint; the same settings then reuse it.
    BiUNetImputer(tiny_options(base_channels=8, resume=False)).fit(panel, None, context(tmp_path, dataset_hash="aaa"))
    again = BiUNetImputer(tiny_options(base_channels=8))
    again.fit(panel, None, context(tmp_path, dataset_hash="aaa"))
    assert again.result.resumed_from == 2 and again.result.epochs_run == 2


def test_training_writes_metrics_csv_and_summary(tmp_path):
    import csv

    panel = simulate_matrix(n_samples=20, sequence_length=30_000, seed=2)
    calls = []
    imputer = BiUNetImputer(tiny_options(epochs=3, mask_start=0.05, mask_end=0.25, mask_sampling="curriculum"))
    imputer.fit(panel, None, context(tmp_path, progress=lambda *a: calls.append(a)))
    rows = list(csv.DictReader(open(tmp_path / METRICS_CSV)))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [round(float(r["mask_rate"]), 6) for r in rows] == [0.05, 0.15, 0.25]
    assert all(math.isfinite(float(r["train_loss"])) for r in rows) and "segments_per_s" not in rows[0]
    timing = list(csv.DictReader(open(tmp_path / TIMING_CSV)))
    assert [int(r["epoch"]) for r in timing] == [1, 2, 3] and all(float(r["segments_per_s"]) > 0 for r in timing)
    assert all(0.0 <= float(r["val_r2"]) <= 1.0 and 0.0 <= float(r["val_concordance"]) <= 1.0 for r in rows)
    summary = json.loads((tmp_path / SUMMARY_JSON).read_text())
    assert summary["epochs_run"] == 3 and summary["world_size"] == 1
    stages = [c[0] for c in calls]
    assert any(s.startswith("train · epoch 3/3 · loss ") and "seg/s" in s for s in stages)
    assert calls[-1][1] == calls[-1][2]  # the last report is complete


# ---------------------------------------------------------------- learning
def dosage_r2(truth: np.ndarray, dosage: np.ndarray, mask: np.ndarray) -> float:
    return float(np.corrcoef(CODE_DOSAGE[truth[mask]], dosage[mask])[0, 1] ** 2)


def major_dosage(panel_codes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The ``major`` baseline computed directly: each variant's most frequent panel code."""
    counts = np.stack([(panel_codes == code).sum(axis=0) for code in (1, 2, 3, 4)])
    major_code = np.argmax(counts, axis=0) + 1
    return np.broadcast_to(CODE_DOSAGE[major_code], shape)


def test_short_training_beats_major(tmp_path):
    full = simulate_matrix(n_samples=160, sequence_length=400_000, seed=5)
    panel, val, test = full.take_samples(np.arange(120)), full.take_samples(np.arange(120, 140)), full.take_samples(np.arange(140, 160))
    rng = np.random.default_rng(0)
    mask = rng.random(test.codes.shape) < 0.15
    masked = np.where(mask, MISSING, test.codes).astype(np.uint8)
    # The cpu preset, narrow (width 4, depth 4, 64-SNP segments) and short (30 epochs of 19
    # steps); on this small panel the allele-frequency channel gives it the per-variant prior.
    options = {"epochs": 30, "lr": 5e-3, "frequency_channel": True, "base_channels": 4, "depth": 4, "segment_length": 64, "segment_overlap": 16}
    imputer = BiUNetImputer(make_options(Options, options, "biunet"))
    ctx = context(tmp_path)
    imputer.fit(panel, val, ctx)
    result = imputer.impute(test.with_codes(masked), ctx)
    major_r2 = dosage_r2(test.codes, major_dosage(panel.codes, test.codes.shape), mask)
    biunet_r2 = dosage_r2(test.codes, result.dosage, mask)
    print(f"dosage R2 at masked cells: biunet {biunet_r2:.4f}, major {major_r2:.4f}")
    assert biunet_r2 > major_r2 + 0.05, (biunet_r2, major_r2)


# ---------------------------------------------------------------- distributed
def test_ddp_two_processes_gloo_end_in_sync(tmp_path):
    """``ctx.nproc = 2`` launches the fit under torchrun (gloo on CPU): both ranks end with the
    same parameters, rank 0's checkpoint is loaded, and the imputer then imputes."""
    full = simulate_matrix(n_samples=40, sequence_length=40_000, seed=6)
    panel, target = full.take_samples(np.arange(32)), full.take_samples(np.arange(32, 40))
    imputer = BiUNetImputer(tiny_options(epochs=2))
    ctx = context(tmp_path, nproc=2, threads=2)
    imputer.fit(panel, None, ctx)
    result = imputer.result
    assert result.world_size == 2 and len(result.replica_digests) == 2
    assert result.replica_digests[0] == result.replica_digests[1]
    assert result.epochs_run == 2
    assert imputer.manifest_info()["mode"] == "ddp x2 (torchrun)"
    masked = target.codes.copy()
    masked[:, ::4] = MISSING
    out = imputer.impute(target.with_codes(masked), context(tmp_path))
    assert ((out.calls >= 1) & (out.calls <= 4)).all()
    # Each rank trained on a different half of the segments: the loaded model differs from its
    # random initialisation, and matches the best checkpoint rank 0 wrote.
    best = torch.load(tmp_path / BEST, weights_only=True)["model"]
    assert all(torch.equal(best[k], v) for k, v in imputer.model.state_dict().items())


# ---------------------------------------------------------------- the contract
class TestBiUNetContract(ImputerContract):
    imputer_cls = BiUNetImputer
    options = dict(TINY)


# ---------------------------------------------------------------- haplotype rows (cpu preset)
def test_cpu_preset_trains_on_haplotype_mosaics(tmp_path):
    full = simulate_matrix(n_samples=40, sequence_length=60_000, seed=3)
    panel, target = full.take_samples(np.arange(32)), full.take_samples(np.arange(32, 40))
    options = {**TINY, "epochs": 3, "mosaic_switches": 2, "batch_size": 128}
    imputer = BiUNetImputer(make_options(Options, options, "biunet"))  # the cpu preset, small, with mosaics
    imputer.fit(panel, None, context(tmp_path))
    info = imputer.manifest_info()
    assert info["stop_reason"] == "epochs" and info["epochs_run"] == 3 and info["steps"] == 3 * imputer.result.history[0]["steps"]
    masked = target.codes.copy()
    masked[:, ::3] = MISSING
    result = imputer.impute(target.with_codes(masked), context(tmp_path))
    observed = masked != MISSING
    assert np.array_equal(result.calls[observed], masked[observed])
    np.testing.assert_allclose(result.probs.sum(-1), 1.0, atol=1e-5)
