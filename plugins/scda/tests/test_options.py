"""SCDA options: presets, defaults, overrides, bad values."""

import dataclasses

import pytest

from impbench.errors import ImpbenchError
from impbench.imputers.base import make_options
from impbench_scda import SCDAImputer, SCDAOptions
from impbench_scda.models import count_parameters
from impbench_scda.options import DEFAULT_PRESET, PRESETS


def test_defaults_are_the_default_preset():
    assert SCDAOptions() == SCDAOptions.from_preset(DEFAULT_PRESET)
    assert SCDAOptions().preset == DEFAULT_PRESET == "cpu"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_records_its_name(name):
    options = SCDAOptions.from_preset(name)
    assert options.preset == name
    for field, value in PRESETS[name].items():
        assert getattr(options, field) == value, field
    assert options.use_position is False


def test_make_options_applies_preset_then_overrides():
    options = make_options(SCDAOptions, {"preset": "original", "epochs": "3", "segmented": "true"}, "scda")
    assert options.preset == "original" and options.epochs == 3 and options.segmented is True
    assert options.l1 == 1e-4 and options.batch_size == 32 and options.architecture == "original"
    assert options.frequency_channel is False and options.loss_positions == "all"


def test_original_preset_is_plain_adam_at_a_constant_rate():
    options = SCDAOptions.from_preset("original")
    assert options.weight_decay == 0.0  # AdamW without decay is Adam
    assert (options.beta1, options.beta2) == (0.9, 0.999)
    assert options.lr == 1e-3 and options.min_lr_ratio == 1.0 and options.warmup_epochs == 0
    assert options.grad_clip == 0.0
    assert options.mask_start == options.mask_end == 0.1
    assert options.dropout == 0.25 and options.batch_size == 32


def test_paper6_preset_follows_the_archived_run():
    options = SCDAOptions.from_preset("paper6")
    assert options.loss == "focal" and options.dropout == 0.0 and options.batch_size == 512
    assert options.lr == 7.2e-4 and options.mask_start == options.mask_end == 0.15 and options.epochs == 1000
    assert options.segmented is False and options.l1 == 0.0 and options.loss_positions == "all"


@pytest.mark.parametrize("preset, expected", [("paper6", 17_110_886), ("original", 104_646)])
def test_preset_parameter_counts(preset, expected):
    imputer = SCDAImputer(SCDAOptions.from_preset(preset))
    assert count_parameters(imputer.build_model(6)) == expected


def test_length_multiple_follows_the_architecture():
    assert SCDAImputer(SCDAOptions.from_preset("paper6")).length_multiple == 32
    assert SCDAImputer(SCDAOptions.from_preset("original")).length_multiple == 4


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ImpbenchError, match="cpu.*paper6.*original|valid"):
        make_options(SCDAOptions, {"preset": "huge"}, "scda")


@pytest.mark.parametrize(
    "values, field",
    [
        ({"architecture": "unet"}, "architecture"),
        ({"width": "0"}, "width"),
        ({"dropout": "1.0"}, "dropout"),
        ({"l1": "-1e-4"}, "l1"),
        ({"use_position": "true"}, "use_position"),
    ],
)
def test_bad_values_name_the_field(values, field):
    with pytest.raises(ImpbenchError, match=field):
        make_options(SCDAOptions, values, "scda")


def test_options_are_json_able():
    import json

    for name in PRESETS:
        json.dumps(dataclasses.asdict(SCDAOptions.from_preset(name)))


def test_cpu_preset_adds_the_frequency_channel_and_scores_hidden_cells():
    options = SCDAOptions.from_preset("cpu")
    assert options.architecture == "original" and options.segmented is False
    assert options.frequency_channel is True and options.loss_positions == "masked"
    for name in ("paper6", "original"):  # the published recipes keep neither
        published = SCDAOptions.from_preset(name)
        assert published.frequency_channel is False and published.loss_positions == "all"
    # one more input channel: 32 more kernel weights of width 5 in the first convolution
    imputer = SCDAImputer(options)
    assert count_parameters(imputer.build_model(7)) == 104_646 + 32 * 5
