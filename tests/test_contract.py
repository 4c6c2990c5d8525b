"""The contract test class: the baselines pass it, and each of its checks catches a broken imputer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from impbench.imputers.baselines import KnnImputer, MajorImputer
from impbench.genotypes import MISSING
from impbench.imputers.base import Imputation, Imputer, check_imputation, require_same_variants
from impbench.testing import ImputerContract, contract_data


class TestMajorContract(ImputerContract):
    imputer_cls = MajorImputer


class TestKnnContract(ImputerContract):
    imputer_cls = KnnImputer
    options = {"k": "5", "window": 20}


# ---------------------------------------------------------------- broken imputers
@dataclass
class _Opts:
    flaw: str = ""


class _Flawed(Imputer):
    """Copies the panel's first sample's codes into missing cells; ``flaw`` breaks one rule."""

    name = "flawed"
    Options = _Opts

    def fit(self, panel, val, ctx):
        if self.options.flaw == "mutate":
            panel.codes[0, 0] = 4 if panel.codes[0, 0] != 4 else 1
        self._panel = panel
        self._fill = panel.codes[0].copy()

    def impute(self, target, ctx):
        if self.options.flaw != "no_variant_check":
            require_same_variants(self.name, self._panel, target)
        calls = np.where(target.codes == MISSING, self._fill[None, :], target.codes).astype(np.uint8)
        if self.options.flaw == "overwrite":
            calls[:, :] = 1
        if self.options.flaw == "random":
            calls = np.random.default_rng().integers(1, 5, size=calls.shape).astype(np.uint8)
        dosage = np.array([0, 0, 1, 1, 2], dtype=np.float32)[calls]
        return Imputation(calls=calls, dosage=dosage)


def _contract_for(flaw: str) -> type[ImputerContract]:
    class Contract(ImputerContract):
        imputer_cls = _Flawed
        options = {"flaw": flaw}
        check_registered = False

    return Contract


def _run(contract: type[ImputerContract], tmp_path):
    run = contract.fit_and_impute(tmp_path / "a")
    return run, check_imputation(_Flawed.name, run.result, run.masked)


def test_sound_imputer_passes_every_check(tmp_path):
    contract = _contract_for("")
    run, imputation = _run(contract, tmp_path)
    case = contract()
    case.test_contract_class_attributes()
    case.test_contract_shapes_and_dtypes(run, imputation)
    case.test_contract_observed_cells_kept(run, imputation)
    case.test_contract_inputs_not_mutated(run)
    case.test_contract_deterministic_with_seed(run, imputation, tmp_path / "b")
    case.test_contract_rejects_target_with_other_variants(run)


def test_catches_overwritten_observed_cells(tmp_path):
    contract = _contract_for("overwrite")
    run, imputation = _run(contract, tmp_path)
    with pytest.raises(AssertionError, match="observed cells changed"):
        contract().test_contract_observed_cells_kept(run, imputation)


def test_catches_mutated_inputs(tmp_path):
    contract = _contract_for("mutate")
    run, _ = _run(contract, tmp_path)
    with pytest.raises(AssertionError, match="panel codes were modified"):
        contract().test_contract_inputs_not_mutated(run)


def test_catches_nondeterminism(tmp_path):
    contract = _contract_for("random")
    run, imputation = _run(contract, tmp_path)
    with pytest.raises(AssertionError, match="different calls"):
        contract().test_contract_deterministic_with_seed(run, imputation, tmp_path / "b")


def test_catches_missing_variant_check(tmp_path):
    contract = _contract_for("no_variant_check")
    run, _ = _run(contract, tmp_path)
    with pytest.raises((pytest.fail.Exception, ValueError)):  # no ImpbenchError: the check fails
        contract().test_contract_rejects_target_with_other_variants(run)


def test_registered_check_fails_for_unregistered_class():
    class Contract(ImputerContract):
        imputer_cls = _Flawed

    with pytest.raises(AssertionError, match="not registered"):
        Contract().test_contract_registered_through_hook()


def test_contract_data_is_small_and_consistent():
    panel, val, target, mask = contract_data()
    assert (panel.n_samples, val.n_samples, target.n_samples) == (40, 10, 10)
    assert panel.n_variants == target.n_variants == 300
    assert panel.same_variants(target) and panel.same_variants(val)
    assert mask.shape == target.codes.shape and mask[:, 5].all()
    assert 0.2 < mask.mean() < 0.35


def test_require_same_variants_names_plugin_and_reason():
    panel, _, target, _ = contract_data()
    require_same_variants("x", panel, target)
    from impbench.errors import ImputerError

    with pytest.raises(ImputerError, match=r"imputer 'x'.*293 variants, the panel has 300"):
        require_same_variants("x", panel, target.take_variants(np.arange(293)))
