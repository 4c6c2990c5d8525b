"""The example plugin's tests: the impbench contract, plus what is particular to it."""

import numpy as np

from impbench.imputers.base import RunContext
from impbench.data.simulate import simulate_matrix
from impbench.testing import ImputerContract
from impbench_example.imputer import AlleleFrequencyImputer, AlleleFrequencyOptions


class TestAlleleFrequencyContract(ImputerContract):
    imputer_cls = AlleleFrequencyImputer
    options = {"sample": "true"}


class TestAlleleFrequencyMostProbable(ImputerContract):
    imputer_cls = AlleleFrequencyImputer
    options = {"sample": "false", "pseudocount": 0}


def test_calls_follow_the_panel_frequency(tmp_path):
    sim = simulate_matrix(n_samples=200, sequence_length=50_000, seed=3)
    ctx = RunContext(work_dir=tmp_path, seed=1)
    imputer = AlleleFrequencyImputer(AlleleFrequencyOptions(pseudocount=0))
    imputer.fit(sim, None, ctx)
    target = sim.with_codes(np.zeros_like(sim.codes))  # everything missing
    result = imputer.impute(target, ctx)
    alt = np.array([0, 0, 1, 1, 2])[result.calls].mean(axis=0) / 2
    expected = np.array([0, 0, 1, 1, 2])[sim.codes].mean(axis=0) / 2
    # 200 draws per variant: the drawn frequency is within a few standard errors of the panel's
    assert np.abs(alt - expected).max() < 5 * np.sqrt(0.25 / 400)
    np.testing.assert_allclose(result.dosage, np.broadcast_to(2 * expected, result.dosage.shape), atol=1e-5)
