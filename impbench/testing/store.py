"""``InMemoryStore``: a ``DatasetStore`` stand-in over an in-memory matrix (tests, notebooks)."""

from __future__ import annotations

import numpy as np

from impbench.genotypes import GenotypeMatrix


class InMemoryStore:
    """A ``DatasetStore`` stand-in over an in-memory ``GenotypeMatrix`` (tests, notebooks).

    Gives what the runner reads: ``name``, ``dataset_hash`` (SHA-256 of the codes, positions
    and split labels), ``contig``, ``n_variants``, ``qc_report``, ``settings``, ``path``,
    ``cohorts()``, ``samples()`` and ``read_split(split, cohort=None)``. Samples are assigned to
    train/val/test in turn within each cohort (8:1:1 by default), deterministically.
    """

    def __init__(self, matrix: GenotypeMatrix, name: str = "memory", fractions=(0.8, 0.1, 0.1)):
        import hashlib

        self.matrix = matrix
        self.name = name
        self.contig = matrix.contig
        self.n_variants = matrix.n_variants
        self.qc_report = {"source": "in-memory", "n_samples": matrix.n_samples, "n_variants": matrix.n_variants}
        self.settings = None
        self.path = None
        labels = np.empty(matrix.n_samples, dtype=object)
        for cohort in np.unique(matrix.cohort):
            rows = np.flatnonzero(matrix.cohort == cohort)
            n = len(rows)
            n_val = int(round(n * fractions[1]))
            n_test = int(round(n * fractions[2]))
            labels[rows] = "train"
            labels[rows[n - n_val - n_test:n - n_test]] = "val"
            labels[rows[n - n_test:]] = "test"
        self.split_labels = labels
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(matrix.codes).tobytes())
        digest.update(np.ascontiguousarray(matrix.positions).tobytes())
        digest.update("|".join(labels).encode())
        self.dataset_hash = digest.hexdigest()

    def cohorts(self) -> list[str]:
        return sorted(set(map(str, self.matrix.cohort)))

    def samples(self):
        import pandas as pd

        return pd.DataFrame({"sample_id": self.matrix.sample_ids, "cohort": self.matrix.cohort,
                             "sex": self.matrix.sex, "split": self.split_labels})

    def read_split(self, split: str, cohort: str | None = None) -> GenotypeMatrix:
        keep = self.split_labels == split
        if cohort is not None:
            keep &= self.matrix.cohort == cohort
        return self.matrix.take_samples(np.flatnonzero(keep))
