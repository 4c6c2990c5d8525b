"""Beagle under the array scheme: typed markers only in the target, DS/GP/DR2 read, gmap maps."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from impbench.bench.masking import apply_mask, make_mask
from impbench.data.simulate import simulate_matrix
from impbench.errors import ImpbenchError, ImputerNotApplicable
from impbench.genotypes import code_dosage
from impbench.imputers.base import RunContext, check_imputation
from impbench_beagle import BeagleImputer, BeagleOptions
from impbench_beagle.output import genotype_probs_to_code_probs


@pytest.fixture(scope="module")
def data():
    full = simulate_matrix(n_samples=150, sequence_length=300_000, seed=7)
    panel, truth = full.take_samples(np.arange(130)), full.take_samples(np.arange(130, 150))
    mask = make_mask(truth.codes, 0.8, 5, "array")
    return panel, truth, mask, truth.with_codes(apply_mask(truth.codes, mask))


def write_gmap(path, panel):
    with gzip.open(path, "wt") as f:
        f.write("pos\tchr\tcM\n" + "".join(f"{p}\t{panel.contig}\t{p * 1.2e-6:.6f}\n" for p in panel.positions[::10]))
    return path


@pytest.mark.beagle
def test_array_scheme_gives_real_dosages_and_dr2_with_a_gmap_map(data, tmp_path):
    panel, truth, mask, target = data
    imputer = BeagleImputer(BeagleOptions(map=str(write_gmap(tmp_path / "m.gmap.gz", panel)), timeout=120))
    ctx = RunContext(work_dir=tmp_path / "w", threads=1, seed=1)
    ctx.scheme = "array"
    imputer.fit(panel, None, ctx)
    result = check_imputation("beagle", imputer.impute(target, ctx), target)
    true = code_dosage(truth.codes)[mask]
    r2 = np.corrcoef(true, result.dosage[mask])[0, 1] ** 2
    assert r2 > 0.7 and result.covered.all()
    ds = result.dosage[mask]
    assert np.mean(np.abs(ds - np.round(ds)) > 1e-6) > 0.01
    hidden = mask.any(axis=0)
    assert np.isfinite(result.quality).all() and (result.quality[hidden] <= 1.5).all()
    run = imputer.manifest_info()["runs"][-1]
    assert run["imp_flagged"] == int(hidden.sum()) == run["imputed_from_panel"]
    info = imputer.manifest_info()
    assert info["map_format"] == "gmap" and (tmp_path / "w" / "genetic.map").read_text().startswith(f"{panel.contig}\t")


@pytest.mark.beagle
def test_phasing_only_does_not_apply_to_array(data, tmp_path):
    panel, _, _, target = data
    imputer = BeagleImputer(BeagleOptions(impute=False))
    ctx = RunContext(work_dir=tmp_path, threads=1)
    imputer.fit(panel, None, ctx)
    ctx.scheme = "array"
    with pytest.raises(ImputerNotApplicable, match="impute=false"):
        imputer.impute(target, ctx)


def test_map_in_an_unknown_format_is_one_line(data, tmp_path):
    bad = tmp_path / "hapmap.txt"
    bad.write_text("Chromosome\tPosition(bp)\tRate(cM/Mb)\tMap(cM)\nchr22\t100\t1.0\t0.0\n")
    with pytest.raises(ImpbenchError) as info:
        BeagleImputer(BeagleOptions(map=str(bad))).fit(data[0], None, RunContext(work_dir=tmp_path / "w"))
    assert "unknown format" in str(info.value) and "\n" not in str(info.value)


def test_gp_split_evenly_between_phases():
    probs = genotype_probs_to_code_probs(np.array([[0.5, 0.4, 0.1]]))
    np.testing.assert_allclose(probs, [[0.5, 0.2, 0.2, 0.1]], rtol=1e-6)
