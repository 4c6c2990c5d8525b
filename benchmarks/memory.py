"""Peak memory of turning probabilities into an answer: ``Imputation.from_probs`` and the
baselines ``major`` and ``knn``, blocked (the code) against the unblocked reference
(``impbench.testing.reference_imputation``, the conversion before it was blocked).

Each case runs in a fresh Python process on random data of the same seed: the inputs are built
first, then ``tracemalloc`` (numpy reports its buffers to it) measures the peak of what the step
allocates beyond them. The table prints that peak over the answer's own arrays (calls uint8,
dosage float32 and probs float32 (n, m, 4): 21 bytes a cell) and over one float32 (n, m, 4)
array, and the process's peak RSS. Target: peak <= 1.5x the answer's arrays.

    .venv/bin/python benchmarks/memory.py                        # 300 targets x 40k variants, 200 panel samples
    .venv/bin/python benchmarks/memory.py --variants 10000       # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
from pathlib import Path
import tempfile
from impbench.genotypes import CALL_CODES, GenotypeMatrix
from impbench.imputers.base import Imputation, RunContext
from impbench.imputers.baselines import KnnImputer, KnnOptions, MajorImputer, knn_vote_probs
from impbench.testing.reference_imputation import reference_from_probs

case, path, n_target, n_panel, n_variants, mask_rate = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:7])
n_target, n_panel, n_variants = int(n_target), int(n_panel), int(n_variants)
rng = np.random.default_rng(1)

def matrix(codes):
    n, m = codes.shape
    return GenotypeMatrix(codes=codes, positions=np.arange(1, m + 1), contig="1", ref=np.full(m, "A", object),
                          alt=np.full(m, "C", object), variant_ids=np.full(m, ".", object),
                          sample_ids=np.array([f"s{i}" for i in range(n)], object))

# haplotype-like panel: a few founders copied with errors, so that neighbours exist
founders = rng.integers(1, 5, size=(20, n_variants), dtype=np.uint8)
panel_codes = founders[rng.integers(0, 20, size=n_panel)]
noise = rng.random(panel_codes.shape) < 0.05
panel_codes[noise] = rng.integers(1, 5, size=int(noise.sum()), dtype=np.uint8)
truth = founders[rng.integers(0, 20, size=n_target)]
target_codes = np.where(rng.random(truth.shape) < mask_rate, 0, truth).astype(np.uint8)
panel, target = matrix(panel_codes), matrix(target_codes)
ctx = RunContext(work_dir=Path(tempfile.mkdtemp()))
if case.startswith("from_probs"):
    probs = rng.random((n_target, n_variants, 4), dtype=np.float32)
    probs /= probs.sum(-1, keepdims=True)
if case.startswith("major"):
    imputer = MajorImputer()
if case.startswith("knn"):
    imputer = KnnImputer(KnnOptions())
if case in ("major", "knn"):
    imputer.fit(panel, None, ctx)
if case == "major-before":
    counts = (panel_codes[..., None] == CALL_CODES).astype(np.float32).sum(axis=0)
    major_probs = np.eye(4, dtype=np.float32)[np.argmax(counts, axis=1)]

tracemalloc.start()
start = tracemalloc.get_traced_memory()[0]
t0 = time.process_time()
if case == "from_probs":
    answer = Imputation.from_probs(probs, target_codes)
elif case == "from_probs-overwrite":
    answer = Imputation.from_probs(probs, target_codes, overwrite=True)
elif case == "from_probs-before":
    answer = reference_from_probs(probs, target_codes)
elif case in ("major", "knn"):
    answer = imputer.impute(target, ctx)
elif case == "major-fit":
    imputer.fit(panel, None, ctx)
    answer = None
elif case == "major-fit-before":
    counts = (panel_codes[..., None] == CALL_CODES).astype(np.float32).sum(axis=0)
    answer = None
elif case == "major-before":
    answer = reference_from_probs(np.broadcast_to(major_probs, target_codes.shape + (4,)), target_codes)
elif case == "knn-before":
    answer = reference_from_probs(knn_vote_probs(panel_codes, target_codes, 5, 30), target_codes)
cpu = time.process_time() - t0
peak = tracemalloc.get_traced_memory()[1] - start
tracemalloc.stop()
out = {"peak": peak, "cpu": cpu, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
if answer is not None:
    out["answer"] = answer.calls.nbytes + answer.dosage.nbytes + answer.probs.nbytes
    np.savez(path, calls=answer.calls, dosage=answer.dosage, probs=answer.probs)
print(json.dumps(out))
"""

CASES = [
    ("from_probs", "from_probs-before", "Imputation.from_probs"),
    ("from_probs-overwrite", "from_probs-before", "from_probs(overwrite=True)"),
    ("major", "major-before", "major.impute"),
    ("knn", "knn-before", "knn.impute (k 5, window 30)"),
    ("major-fit", "major-fit-before", "major.fit (panel counts)"),
]


def run_case(case: str, path: str, args) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, case, path, str(args.targets), str(args.panel), str(args.variants), str(args.mask)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=300, help="target samples (rows of the answer)")
    parser.add_argument("--panel", type=int, default=200, help="panel samples")
    parser.add_argument("--variants", type=int, default=40_000)
    parser.add_argument("--mask", type=float, default=0.25, help="fraction of target cells masked")
    args = parser.parse_args(argv)

    import tempfile
    from pathlib import Path

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    cells = args.targets * args.variants
    answer_bytes = 21 * cells
    probs_bytes = 16 * cells
    panel_probs_bytes = 16 * args.panel * args.variants
    table = Table(title=f"peak memory: {args.targets} targets x {args.variants:,} variants "
                        f"({args.panel} panel samples, {args.mask:.0%} masked); answer {answer_bytes / 2**20:,.0f} MiB")  # fmt: skip
    for column in ("step", "version", "peak MiB", "peak / answer", "peak / one (n,m,4)", "RSS MiB", "CPU s", "same answer"):
        table.add_column(column, justify="left" if column in ("step", "version") else "right")
    met = True
    with tempfile.TemporaryDirectory() as tmp:
        for case, before, label in CASES:
            after_path, before_path = f"{tmp}/{case}.npz", f"{tmp}/{before}.npz"
            new = run_case(case, after_path, args)
            old = run_case(before, before_path, args)
            same = ""
            if "answer" in new:
                with np.load(after_path) as a, np.load(before_path) as b:
                    same = "yes" if all(np.array_equal(a[k], b[k]) for k in ("calls", "dosage", "probs")) else "NO"
            floor = answer_bytes if "answer" in new else panel_probs_bytes
            for version, result in (("before (unblocked)", old), ("after (blocked)", new)):
                ratio = result["peak"] / floor
                table.add_row(label if version.startswith("before") else "", version, f"{result['peak'] / 2**20:,.0f}",
                              f"{ratio:.2f}x" if "answer" in new else "", f"{result['peak'] / (probs_bytes if 'answer' in new else panel_probs_bytes):.2f}x",
                              f"{result['rss'] / 2**20:,.0f}", f"{result['cpu']:.1f}", same if version.startswith("after") else "")  # fmt: skip
            if "answer" in new:
                met &= new["peak"] <= 1.5 * answer_bytes and same == "yes"
    console = Console(width=160)
    console.print(table)
    console.print("(major.fit: peak over one float32 (n_panel, m, 4) array, what the unblocked count allocated)")
    console.print(f"target peak <= 1.5x the answer's arrays, same answer: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
