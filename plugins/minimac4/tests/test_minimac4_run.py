"""Real Minimac4 runs on simulated data under the array scheme; refusals and bad input."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from impbench.bench.masking import apply_mask, make_mask
from impbench.data.simulate import simulate_matrix
from impbench.errors import ImpbenchError, ImputerNotApplicable
from impbench.genotypes import code_dosage
from impbench.imputers.base import RunContext, check_imputation
from impbench.imputers.baselines import MajorImputer
from impbench_minimac4 import Minimac4Imputer, Minimac4Options
from impbench_minimac4.output import haplotype_dosage_probs


@pytest.fixture(scope="module")
def data():
    full = simulate_matrix(n_samples=150, sequence_length=300_000, seed=7)
    panel, truth = full.take_samples(np.arange(130)), full.take_samples(np.arange(130, 150))
    mask = make_mask(truth.codes, 0.8, 5, "array")
    return panel, truth, mask, truth.with_codes(apply_mask(truth.codes, mask))


def context(tmp_path, scheme="array"):
    ctx = RunContext(work_dir=tmp_path, threads=1, seed=1)
    ctx.scheme = scheme
    return ctx


def r2(truth, dosage, mask):
    return float(np.corrcoef(code_dosage(truth.codes)[mask], dosage[mask])[0, 1] ** 2)


@pytest.mark.minimac4
def test_array_imputation_beats_major_with_probabilities_and_r2(data, tmp_path):
    panel, truth, mask, target = data
    imputer = Minimac4Imputer(Minimac4Options(timeout=120))
    ctx = context(tmp_path / "m")
    imputer.fit(panel, None, ctx)
    result = check_imputation("minimac4", imputer.impute(target, ctx), target)
    major = MajorImputer()
    major.fit(panel, None, ctx)
    r2_minimac, r2_major = r2(truth, result.dosage, mask), r2(truth, major.impute(target, ctx).dosage, mask)
    print(f"hidden-cell dosage r2: minimac4 {r2_minimac:.3f}, major {r2_major:.3f}")
    assert r2_minimac > r2_major + 0.3 and result.covered.all()
    ds = result.dosage[mask]
    assert np.mean(np.abs(ds - np.round(ds)) > 1e-6) > 0.01  # real probabilities, not hard calls
    hidden = mask.any(axis=0)
    assert np.isfinite(result.quality[hidden]).all() and result.quality.shape == (truth.n_variants,)
    np.testing.assert_array_equal(result.calls[~mask], truth.codes[~mask])
    info = imputer.manifest_info()
    assert info["minimac4_version"].startswith("4.") and info["compress_reference"]["n_samples"] == 130
    assert info["runs"][-1]["typed_variants"] == int((~hidden).sum())


def test_hds_probabilities_multiply_haplotypes():
    probs = haplotype_dosage_probs(np.array([[0.2, 0.9]]))
    np.testing.assert_allclose(probs, [[0.8 * 0.1, 0.8 * 0.9, 0.2 * 0.1, 0.2 * 0.9]], rtol=1e-6)


@pytest.mark.minimac4
def test_sporadic_scheme_refused_in_one_line(data, tmp_path):
    panel, truth, _, _ = data
    with pytest.raises(ImputerNotApplicable) as info:
        Minimac4Imputer().fit(panel, None, context(tmp_path, "uniform"))
    message = str(info.value)
    assert "does not restore sporadic missing genotypes" in message and "\n" not in message
    # the default context is a sporadic (uniform) run
    with pytest.raises(ImputerNotApplicable, match="'uniform'"):
        Minimac4Imputer().fit(panel, None, RunContext(work_dir=tmp_path / "p"))


def test_missing_minimac4_is_one_line(data, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MINIMAC4", raising=False)
    with pytest.raises(ImpbenchError) as info:
        Minimac4Imputer().fit(data[0], None, context(tmp_path / "w"))
    assert "minimac4 not found" in str(info.value) and "apt-get install minimac4" in str(info.value)
    monkeypatch.setenv("MINIMAC4", str(tmp_path / "absent"))
    with pytest.raises(ImpbenchError, match="MINIMAC4 names .*not an executable"):
        Minimac4Imputer().fit(data[0], None, context(tmp_path / "w"))


def test_timeout_kills_the_process_group(data, tmp_path):
    fake = tmp_path / "minimac4"
    pid_file = tmp_path / "child.pid"
    fake.write_text(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'minimac v4.9.9'; exit 0; fi\n"
        f"sleep 60 & echo $! > {pid_file}\nwait\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    imputer = Minimac4Imputer(Minimac4Options(minimac4=str(fake), timeout=1))
    with pytest.raises(ImpbenchError, match=r"stopped after 1 s \(minimac4.timeout\)"):
        imputer.fit(data[0], None, context(tmp_path / "w"))
    child = int(pid_file.read_text())
    assert not alive(child), "the grandchild survived the group kill"


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for init to reap it counts as gone)."""
    import time

    for _ in range(40):
        try:
            with open(f"/proc/{pid}/status") as f:
                state = next(line for line in f if line.startswith("State:"))
        except (FileNotFoundError, ProcessLookupError):
            return False
        if "Z" in state.split()[1]:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.minimac4
def test_gmap_map_is_converted_and_used(data, tmp_path):
    import gzip

    panel, truth, mask, target = data
    gmap = tmp_path / "map.gmap.gz"
    with gzip.open(gmap, "wt") as f:
        f.write("pos\tchr\tcM\n" + "".join(f"{p}\t{panel.contig}\t{p * 1.2e-6:.6f}\n" for p in panel.positions[::10]))
    imputer = Minimac4Imputer(Minimac4Options(map=str(gmap)))
    ctx = context(tmp_path / "w")
    imputer.fit(panel, None, ctx)
    result = imputer.impute(target, ctx)
    assert imputer.manifest_info()["map"]["format"] == "gmap"
    assert (tmp_path / "w" / "genetic.map").read_text().startswith(f"{panel.contig}\t.\t")
    assert r2(truth, result.dosage, mask) > 0.5
