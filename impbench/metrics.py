"""MAF-stratified imputation metrics (both protocols). API:

- ``DEFAULT_BIN_EDGES``, ``PROTOCOLS = ("standard", "paper")``
- ``bin_labels(edges) -> list[str]``; ``maf_bins(maf, edges) -> int64 (n_variants,)``
- ``score(truth, imputation, mask, maf, protocol="standard", bin_edges=DEFAULT_BIN_EDGES) -> Scores``
"""
