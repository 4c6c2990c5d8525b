"""The real 1kgp-chr20 card (Debian's shapeit4-example): prepared offline as one cohort of
unknown sex, and its scaffold types part of its variants. Skipped when the package is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from impbench.data.cards import get_card
from impbench.data.prepare import prepare
from impbench.data.split import assign_splits
from impbench.io.gmap import write_plink_map
from impbench.io.sites import match_typed_sites, read_typed_sites

EXAMPLES = Path("/usr/share/doc/shapeit4/examples/test")
needs_package = pytest.mark.skipif(
    not (EXAMPLES / "reference.vcf.gz").is_file(), reason="shapeit4-example is not installed"
)


def test_split_handles_one_cohort_of_unknown_sex():
    n = 300
    labels = assign_splits(np.full(n, "all", dtype=object), np.full(n, "unknown", dtype=object))
    assert [int((labels == s).sum()) for s in ("train", "val", "test")] == [240, 30, 30]


@needs_package
def test_prepared_offline_as_one_cohort_of_unknown_sex_and_typed_by_its_scaffold(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPBENCH_CACHE", str(tmp_path))
    store = prepare(get_card("1kgp-chr20"))
    assert store.cohorts() == ["all"]
    samples = store.samples()
    assert set(map(str, samples["sex"])) == {"unknown"}
    splits = [int((np.asarray(samples["split"]) == s).sum()) for s in ("train", "val", "test")]
    assert splits == [240, 30, 30]
    test = store.read_split("test")
    assert test.contig == "20" and test.n_variants > 15_000
    match = match_typed_sites(read_typed_sites(EXAMPLES / "scaffold.vcf.gz"), test.contig, test.positions)
    assert 1000 < match.n_matched < test.n_variants // 5
    rows = write_plink_map(EXAMPLES / "chr20.b37.gmap.gz", test.contig, tmp_path / "chr20.map").read_text().splitlines()
    assert rows[0].startswith("20\t")
