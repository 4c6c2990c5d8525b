"""The example plugin's tests: the impbench contract, plus what is particular to it."""

import numpy as np
import pytest

from impbench.data.simulate import simulate_matrix
from impbench.errors import ImpbenchError
from impbench.genotypes import CODE_DOSAGE_CLASS
from impbench.imputers.base import RunContext, make_options
from impbench.testing import ImputerContract
from impbench_example.imputer import TagSnpImputer, TagSnpOptions, best_tags


class TestTagSnpContract(ImputerContract):
    imputer_cls = TagSnpImputer
    options = {"window": "5"}


def test_tag_is_the_best_correlated_neighbour_by_brute_force():
    sim = simulate_matrix(n_samples=60, sequence_length=30_000, seed=4)
    dosage = CODE_DOSAGE_CLASS[sim.codes].astype(float)
    tag, r2 = best_tags(dosage, np.ones_like(dosage, dtype=bool), window=3)
    for v in range(sim.n_variants):
        best_u, best_r2 = v, 0.0
        for u in range(max(0, v - 3), min(sim.n_variants, v + 4)):
            if u == v or dosage[:, u].std() == 0 or dosage[:, v].std() == 0:
                continue
            value = np.corrcoef(dosage[:, u], dosage[:, v])[0, 1] ** 2
            if value > best_r2 + 1e-12:
                best_u, best_r2 = u, value
        assert r2[v] == pytest.approx(best_r2, abs=1e-9)
        if best_r2 > 0:
            assert np.corrcoef(dosage[:, tag[v]], dosage[:, v])[0, 1] ** 2 == pytest.approx(best_r2, abs=1e-9)


def test_a_perfect_tag_gives_the_right_genotype(tmp_path):
    """Two identical variants: each tags the other, so a masked one is read off its twin."""
    sim = simulate_matrix(n_samples=80, sequence_length=20_000, seed=2)
    codes = np.repeat(sim.codes[:, :1], 2, axis=1)
    panel = sim.take_variants(np.arange(2)).with_codes(codes)
    ctx = RunContext(work_dir=tmp_path, seed=0)
    imputer = TagSnpImputer(TagSnpOptions(window=1, pseudocount=0))
    imputer.fit(panel, None, ctx)
    target = codes.copy()
    target[:, 1] = 0
    result = imputer.impute(panel.with_codes(target), ctx)
    assert np.array_equal(CODE_DOSAGE_CLASS[result.calls[:, 1]], CODE_DOSAGE_CLASS[codes[:, 1]])


def test_bad_options_are_one_line():
    with pytest.raises(ImpbenchError, match="tag-snp.window must be at least 1"):
        make_options(TagSnpOptions, {"window": "0"}, "tag-snp").check()
