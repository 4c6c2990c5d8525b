"""``score_unit``: the ``paper`` protocol scores what the tool returned at every cell (raw
calls, re-phased observed hets included), ``standard`` the kept calls at masked cells."""

from __future__ import annotations

import numpy as np
import pytest

from impbench.bench.masking import make_mask
from impbench.scoring.metrics import DEFAULT_BIN_EDGES
from impbench.bench.unit import paper_view, score_unit
from impbench.data.simulate import simulate_matrix
from impbench.genotypes import HET_01, HET_10, MISSING, alt_allele_frequency, code_dosage
from impbench.imputers.base import Imputation


def test_paper_scores_raw_calls_and_standard_the_kept_ones():
    truth = simulate_matrix(n_samples=30, sequence_length=60_000, seed=5)
    mask = make_mask(truth.codes, 0.2, 3)
    calls = truth.codes.copy()  # a perfect imputer that keeps observed cells
    raw = calls.copy()
    swap = (~mask) & ((raw == HET_01) | (raw == HET_10))  # it re-phased every observed het
    raw[swap] = np.where(raw[swap] == HET_01, HET_10, HET_01)
    assert swap.sum() > 20
    imputation = Imputation(calls=calls, dosage=code_dosage(calls).astype(np.float32), raw_calls=raw)
    assert np.array_equal(paper_view(imputation).calls, raw)
    keys = {"imputer": "x", "level": 0.2, "replicate": 0}
    scores = score_unit(truth.with_codes(truth.codes), imputation, mask, alt_allele_frequency(truth.codes),
                        protocols=("standard", "paper"), bin_edges=DEFAULT_BIN_EDGES, min_variant_cells=5,
                        keys=keys, variant_quality=True)
    rows = {(r["protocol"], r["bin"], r["metric"]): r["value"] for r in scores.rows["replicates"]}
    assert rows[("standard", "overall", "phased_accuracy")] == 1.0  # masked cells: all right
    n_scored = truth.codes.size
    assert rows[("paper", "overall", "accuracy")] == pytest.approx(1.0 - swap.sum() / n_scored)
    assert set(scores.stats) == {"standard", "paper"}
    assert {r["replicate"] for r in scores.rows["variant_quality"]} == {0}
    assert not (truth.codes == MISSING).any()
