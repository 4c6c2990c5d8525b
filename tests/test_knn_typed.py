"""knn under the array scheme: the distance uses typed (observed) sites only."""

import numpy as np

from impbench.bench.masking import make_mask
from impbench.imputers.baselines import knn_vote_probs


def test_knn_neighbours_ignore_hidden_variants():
    rng = np.random.default_rng(4)
    panel = rng.integers(1, 5, size=(40, 120), dtype=np.uint8)
    truth = rng.integers(1, 5, size=(6, 120), dtype=np.uint8)
    mask = make_mask(truth, 0.7, 3, "array")
    target = np.where(mask, 0, truth).astype(np.uint8)
    hidden = np.flatnonzero(mask.any(axis=0))
    probs = knn_vote_probs(panel, target, k=5, window=10)
    for v in hidden[::9]:
        # scramble the panel at every other hidden variant: the vote at v must not move
        scrambled = panel.copy()
        others = hidden[hidden != v]
        scrambled[:, others] = rng.integers(1, 5, size=(40, len(others)), dtype=np.uint8)
        again = knn_vote_probs(scrambled, target, k=5, window=10)
        np.testing.assert_array_equal(again[:, v], probs[:, v])
    # and scrambling a typed variant in the window does move some vote (the test can fail)
    typed = np.flatnonzero(~mask.any(axis=0))
    scrambled = panel.copy()
    scrambled[:, typed] = rng.integers(1, 5, size=(40, len(typed)), dtype=np.uint8)
    assert not np.array_equal(knn_vote_probs(scrambled, target, k=5, window=10)[:, hidden], probs[:, hidden])
