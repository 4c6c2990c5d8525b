"""Pure statistics of imputation accuracy (numpy): per-bin scores, pooled moments, the bootstrap,
calibration, aggregation into CIs and paired differences, and the MAF classes. Used by the
benchmark (``impbench.bench``) and by neural validation (``impbench.nn``) alike, so a model is
selected on the score it is benchmarked on. Imports nothing from ``impbench.bench``."""
