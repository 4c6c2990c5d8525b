"""HDF5 store: round trip per split, cohort subsets, content hash, split isolation, atomicity."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from impbench.errors import ImpbenchError
from impbench.data.simulate import simulate_matrix
from impbench.data.split import SPLITS, SplitSettings, assign_splits
from impbench.data.store import CHUNK_VARIANTS, DatasetStore, StoreWriter


def write_store(path, matrix, split, batch=1000, name="toy"):
    with StoreWriter(
        path, name=name, contig=matrix.contig, sample_ids=matrix.sample_ids, cohort=matrix.cohort,
        sex=matrix.sex, split=split, n_variants=matrix.n_variants,
    ) as writer:  # fmt: skip
        for start in range(0, matrix.n_variants, batch):
            cols = slice(start, start + batch)
            writer.add(matrix.codes[:, cols].T, matrix.positions[cols], matrix.ref[cols], matrix.alt[cols], matrix.variant_ids[cols])
        return writer.finish(qc_report={"steps": []}, settings={"seed": 0}, inputs={"vcf": "x"})


@pytest.fixture(scope="module")
def matrix():
    m = simulate_matrix(n_samples=150, sequence_length=1_500_000, seed=4)
    assert m.n_variants > CHUNK_VARIANTS  # more than one chunk of variants
    return m


@pytest.fixture(scope="module")
def split(matrix):
    return assign_splits(matrix.cohort, matrix.sex, SplitSettings(seed=2), sample_ids=matrix.sample_ids)


def test_round_trip_every_split(tmp_path, matrix, split):
    store = write_store(tmp_path / "toy.h5", matrix, split, batch=777)
    assert store.n_variants == matrix.n_variants and store.contig == matrix.contig and store.name == "toy"
    assert store.settings == {"seed": 0} and store.qc_report == {"steps": []}
    samples = store.samples()
    assert list(samples["sample_ids"]) == list(matrix.sample_ids) and list(samples["split"]) == list(split)
    assert store.cohorts() == ["A", "B"]
    for s in SPLITS:
        part = store.read_split(s)
        rows = np.nonzero(split == s)[0]
        np.testing.assert_array_equal(part.codes, matrix.codes[rows])
        assert list(part.sample_ids) == list(matrix.sample_ids[rows])
        np.testing.assert_array_equal(part.positions, matrix.positions)
        assert list(part.ref) == list(matrix.ref) and list(part.variant_ids) == list(matrix.variant_ids)
        aa = store.read_split(s, cohort="A")
        rows_a = rows[matrix.cohort[rows] == "A"]
        np.testing.assert_array_equal(aa.codes, matrix.codes[rows_a])
        assert set(aa.cohort) == {"A"}
    with h5py.File(store.path) as handle:
        codes = handle["splits/train/codes"]
        assert codes.chunks == (64, CHUNK_VARIANTS) and codes.compression == "gzip"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_hash_is_content_hash(tmp_path, matrix, split):
    a = write_store(tmp_path / "a.h5", matrix, split, batch=500)
    b = write_store(tmp_path / "b.h5", matrix, split, batch=4096, name="toy")
    assert a.dataset_hash == b.dataset_hash and len(a.dataset_hash) == 64
    changed = matrix.with_codes(matrix.codes.copy())
    changed.codes[3, 5000] = 1 if changed.codes[3, 5000] != 1 else 2
    assert write_store(tmp_path / "c.h5", changed, split).dataset_hash != a.dataset_hash
    other_split = np.roll(split, 1)
    assert write_store(tmp_path / "d.h5", matrix, other_split).dataset_hash != a.dataset_hash


def test_reading_one_split_reads_no_other(tmp_path, matrix, split, monkeypatch):
    store = write_store(tmp_path / "toy.h5", matrix, split)
    store.samples(), store.variants()
    touched = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        touched.append(self.name)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    store.read_split("test")
    assert [n for n in touched if n.startswith("/splits/")] == ["/splits/test/sample_index", "/splits/test/codes"]


def test_bad_names_list_valid_ones(tmp_path, matrix, split):
    store = write_store(tmp_path / "toy.h5", matrix, split)
    with pytest.raises(ImpbenchError, match=r"unknown split 'dev'; valid: train, val, test"):
        store.read_split("dev")
    with pytest.raises(ImpbenchError, match=r"unknown cohort 'Z'; valid: A, B"):
        store.read_split("test", cohort="Z")


def test_failure_leaves_nothing(tmp_path, matrix, split):
    with pytest.raises(ValueError):
        with StoreWriter(
            tmp_path / "x.h5", name="x", contig="22", sample_ids=matrix.sample_ids, cohort=matrix.cohort,
            sex=matrix.sex, split=split, n_variants=matrix.n_variants,
        ) as writer:  # fmt: skip
            writer.add(matrix.codes[:, :100].T, matrix.positions[:100], matrix.ref[:100], matrix.alt[:100], matrix.variant_ids[:100])
            writer.add(matrix.codes[:5, :100].T, [], [], [], [])  # wrong shape
    assert list(tmp_path.iterdir()) == []


def test_open_errors(tmp_path):
    with pytest.raises(ImpbenchError, match="store not found"):
        DatasetStore.open(tmp_path / "none.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(ImpbenchError, match="junk.h5: not a readable HDF5"):
        DatasetStore.open(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(ImpbenchError, match="empty.h5: not an impbench dataset store"):
        DatasetStore.open(tmp_path / "empty.h5")
