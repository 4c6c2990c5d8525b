"""Segmentation of genotype sequences and reassembly of predictions (shared by neural plugins).

Length ``L``, overlap ``O``, stride ``L - O``; ``n_seg = max(1, ceil((N - O) / (L - O)))``;
the tail is padded with code 5 (PAD). API (implemented by the evaluation-core work):

- ``n_segments(n_variants, length, overlap) -> int``
- ``segment_starts(n_variants, length, overlap) -> int64 (n_seg,)``
- ``segment_codes(codes, length, overlap) -> uint8 (n_samples, n_seg, length)``
- ``positional_channel(positions, length, overlap) -> float32 (n_seg, length)``: positions
  min-max normalised within each segment, padding excluded (0 there), constant segment -> 0.
- ``reassemble(probs, n_variants, length, overlap) -> float32 (n_samples, n_variants, C)``:
  for each cell, the probability vector of the overlapping segment whose maximum probability
  is highest. ``probs``: float32 (n_samples, n_seg, length, C).
- ``keep_observed(observed, calls) -> uint8``: ``calls`` with every non-zero observed code kept.
"""
