"""Ingest benchmark: ingest (VCF -> QC -> split -> HDF5) against `bcftools view`.

Simulates (msprime, fixed seed) a 1000 Genomes chr22-sized phased VCF — 2,548 samples and
about 1M variants at ``--scale 1`` — or takes ``--vcf PATH``, then measures in the same run:

* ``bcftools view -Ou -o /dev/null FILE`` (before and after, to see the machine's noise),
* ``ingest`` in a fresh Python process (so its peak RSS is its own), through ``VcfReader``'s
  bulk text path and through cyvcf2 record by record (the reader before the text path),

and prints wall time, CPU time, peak memory, the ratios to bcftools and whether both paths built
the same store (``dataset_hash``). Targets: ingest within 1.6x bcftools' wall time, at most
1 GiB peak memory. ``--check-cards sim-1kgp,1kgp-chr20`` only compares the stores of those cards.

    .venv/bin/python benchmarks/ingest.py --scale 0.1          # quick look (~100k variants)
    .venv/bin/python benchmarks/ingest.py                      # chr22-sized (minutes)
    .venv/bin/python benchmarks/ingest.py --vcf ALL.chr22.vcf.gz --sheet panel.txt

The simulated VCF is kept in ``--workdir`` (default ``.cache/bench-ingest``) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

N_SAMPLES_1KGP = 2548
N_VARIANTS_CHR22 = 1_000_000
POPULATIONS = ("YRI", "LWK", "CEU", "GBR", "CHB", "JPT")


def simulate_vcf(path: Path, n_samples: int, n_variants: int, seed: int = 1) -> None:
    """Write a phased VCF of ``n_samples`` from a constant-size coalescent with about
    ``n_variants`` biallelic sites, streaming (never the whole haplotype matrix in memory)."""
    import msprime

    from impbench.genotypes import ALLELES_CODE
    from impbench.io.vcf_write import GenotypeVcfWriter

    population_size = 10_000
    sequence_length = 35e6 * n_variants / N_VARIANTS_CHR22
    harmonic = sum(1.0 / k for k in range(1, 2 * n_samples))
    mutation_rate = n_variants / (4 * population_size * sequence_length * harmonic)
    t0 = time.time()
    ts = msprime.sim_ancestry(
        samples=n_samples, population_size=population_size, sequence_length=sequence_length,
        recombination_rate=1e-8, random_seed=seed,
    )  # fmt: skip
    ts = msprime.sim_mutations(ts, rate=mutation_rate, random_seed=seed)
    print(f"simulated {ts.num_sites:,} sites for {n_samples:,} samples in {time.time() - t0:.0f} s", file=sys.stderr)
    sample_ids = [f"SIM{i:05d}" for i in range(n_samples)]
    chunk = 4096
    block = np.empty((chunk, 2 * n_samples), dtype=np.int8)
    positions, refs, alts = [], [], []
    n_skipped = 0
    with GenotypeVcfWriter(path, "22", sample_ids, level=6) as writer:

        def flush():
            k = len(positions)
            codes = ALLELES_CODE[block[:k, 0::2], block[:k, 1::2]]
            writer.add(codes, positions, refs, alts)
            positions.clear(), refs.clear(), alts.clear()

        for variant in ts.variants(copy=False):
            if len(variant.alleles) != 2 or variant.genotypes.max() > 1:
                n_skipped += 1
                continue
            block[len(positions)] = variant.genotypes
            positions.append(int(variant.site.position) + 1)
            refs.append(variant.alleles[0])
            alts.append(variant.alleles[1])
            if len(positions) == chunk:
                flush()
        if positions:
            flush()
        writer.close()
    print(f"wrote {path} ({n_skipped:,} multiallelic sites left out) in {time.time() - t0:.0f} s", file=sys.stderr)


def write_panel(path: Path, sample_ids: list[str], seed: int = 1) -> None:
    """A 1000 Genomes-style panel file (sample pop super_pop gender)."""
    rng = np.random.default_rng(seed)
    lines = ["sample\tpop\tsuper_pop\tgender"]
    for i, sample in enumerate(sample_ids):
        pop = POPULATIONS[i % len(POPULATIONS)]
        lines.append(f"{sample}\t{pop}\t{'AFR' if pop in ('YRI', 'LWK') else 'EUR' if pop in ('CEU', 'GBR') else 'EAS'}\t{rng.choice(['male', 'female'])}")
    path.write_text("\n".join(lines) + "\n")


def time_bcftools(vcf: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(["bcftools", "view", "-Ou", "-o", "/dev/null", str(vcf)], check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_gib": None}


# text_path "1": VcfReader's bulk text path (the default); "0": cyvcf2 record by record (before)
PREPARE_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from impbench.data.ingest import IngestSettings, Source, ingest
from impbench.data.qc import QCSettings
from impbench.data.split import SplitSettings
from impbench.io import vcf_read
vcf, sheet, out, region, text_path = sys.argv[1:6]
init = vcf_read.VcfReader.__init__
vcf_read.VcfReader.__init__ = lambda self, *a, **k: init(self, *a, **{**k, "text_path": text_path == "1"})
stages = {}  # stage -> time of its last progress call
def progress(stage, done, total):
    stages[stage] = time.perf_counter()
t0 = time.perf_counter()
source = Source(Path(vcf), Path(sheet) if sheet != "-" else None)
settings = IngestSettings(QCSettings(), SplitSettings(seed=1), region if region != "-" else None)
store = ingest(source, settings, out, "bench", progress=progress)
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_gib": usage.ru_maxrss / 2**20,
                  "n_variants": store.n_variants, "n_samples": int(len(store.samples()["sample_ids"])),
                  "stages": {k: v - ([t0] + list(stages.values()))[i] for i, (k, v) in enumerate(stages.items())},
                  "finish": t0 + wall - max(stages.values()), "qc": store.qc_report, "hash": store.dataset_hash}))
"""

# a card's store built through each read path: the same dataset_hash?
CARD_CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
from impbench.data.cards import get_card
from impbench.data.ingest import ingest
from impbench.data.prepare import ingest_settings, resolve_source
from impbench.io import vcf_read
name, text_path = sys.argv[1], sys.argv[2] == "1"
init = vcf_read.VcfReader.__init__
vcf_read.VcfReader.__init__ = lambda self, *a, **k: init(self, *a, **{**k, "text_path": text_path})
card = get_card(name)
source, settings = resolve_source(card), ingest_settings(card)
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.process_time()
    store = ingest(source, settings, Path(tmp) / "store.h5", name)
    print(json.dumps({"hash": store.dataset_hash, "n_variants": store.n_variants, "cpu": time.process_time() - t0}))
"""


def time_prepare(vcf: Path, sheet: Path | None, out: Path, region: str | None, text_path: bool = True) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PREPARE_CHILD, str(vcf), str(sheet) if sheet else "-", str(out), region or "-",
         "1" if text_path else "0"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_cards(names: list[str]) -> int:
    """Ingest each card through both read paths; print the store hashes. Exit 1 if any differ."""
    same = True
    for name in names:
        results = {}
        for text_path in (True, False):
            run = subprocess.run([sys.executable, "-c", CARD_CHILD, name, "1" if text_path else "0"],
                                 check=True, capture_output=True, text=True)  # fmt: skip
            results[text_path] = json.loads(run.stdout.strip().splitlines()[-1])
        ok = results[True]["hash"] == results[False]["hash"]
        same &= ok
        print(f"{name}: text path {results[True]['hash'][:16]} ({results[True]['cpu']:.1f} s CPU), cyvcf2 "
              f"{results[False]['hash'][:16]} ({results[False]['cpu']:.1f} s CPU), {results[True]['n_variants']:,} "
              f"variants: {'same store' if ok else 'DIFFERENT'}")
    return 0 if same else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vcf", type=Path, help="use this VCF instead of simulating one")
    parser.add_argument("--sheet", type=Path, help="sample sheet for --vcf (default: none)")
    parser.add_argument("--region", help="restrict to a region")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the ~1M chr22 variants to simulate")
    parser.add_argument("--samples", type=int, default=N_SAMPLES_1KGP, help="samples to simulate (default 2548)")
    parser.add_argument("--workdir", type=Path, default=Path(".cache/bench-ingest"))
    parser.add_argument("--check-cards", metavar="NAMES", help="only check that both read paths build the same "
                        "store for these cards (comma-separated, e.g. sim-1kgp,1kgp-chr20)")
    args = parser.parse_args(argv)
    if args.check_cards:
        return check_cards(args.check_cards.split(","))
    if shutil.which("bcftools") is None:
        parser.error("bcftools is not installed")
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.vcf is None:
        n_variants = int(round(N_VARIANTS_CHR22 * args.scale))
        vcf = args.workdir / f"sim-{args.samples}x{n_variants}.vcf.gz"
        if not vcf.exists():
            simulate_vcf(vcf, args.samples, n_variants)
        sheet = vcf.with_suffix("").with_suffix(".panel")
        if not sheet.exists():
            write_panel(sheet, [f"SIM{i:05d}" for i in range(args.samples)])
    else:
        vcf, sheet = args.vcf, args.sheet
    out = args.workdir / "bench.h5"

    bcf_before = time_bcftools(vcf)
    prep = time_prepare(vcf, sheet, out, args.region)
    old = time_prepare(vcf, sheet, out, args.region, text_path=False)
    bcf_after = time_bcftools(vcf)
    bcf_wall = (bcf_before["wall"] + bcf_after["wall"]) / 2
    bcf_cpu = (bcf_before["cpu"] + bcf_after["cpu"]) / 2
    records = prep["qc"]["steps"][0]["variants_left"]

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ingest: {vcf.name} ({vcf.stat().st_size / 2**20:,.0f} MiB, {records:,} records, "
                  f"{prep['n_samples']:,} samples kept, {prep['n_variants']:,} variants kept; {os.cpu_count()} CPUs)")  # fmt: skip
    for column in ("step", "wall s", "CPU s", "peak GiB", "wall / bcftools", "CPU / bcftools"):
        table.add_column(column, justify="left" if column == "step" else "right")
    table.add_row("bcftools view -Ou (before)", f"{bcf_before['wall']:.1f}", f"{bcf_before['cpu']:.1f}", "", "", "")
    table.add_row("bcftools view -Ou (after)", f"{bcf_after['wall']:.1f}", f"{bcf_after['cpu']:.1f}", "", "", "")
    table.add_row(
        "ingest, cyvcf2 record by record (before)", f"{old['wall']:.1f}", f"{old['cpu']:.1f}", f"{old['peak_gib']:.2f}",
        f"{old['wall'] / bcf_wall:.2f}x", f"{old['cpu'] / bcf_cpu:.2f}x",
    )  # fmt: skip
    table.add_row(
        "ingest, text path (read, QC, split, HDF5)", f"{prep['wall']:.1f}", f"{prep['cpu']:.1f}", f"{prep['peak_gib']:.2f}",
        f"{prep['wall'] / bcf_wall:.2f}x", f"{prep['cpu'] / bcf_cpu:.2f}x",
    )  # fmt: skip
    for stage, seconds in prep["stages"].items():
        table.add_row(f"  until end of stage {stage}", f"{seconds:.1f}", "", "", "", "")
    table.add_row("  finish (tables, hash, rename)", f"{prep['finish']:.1f}", "", "", "", "")
    console = Console(width=150)
    console.print(table)
    ok_time = prep["wall"] <= 1.6 * bcf_wall
    ok_memory = prep["peak_gib"] <= 1
    console.print(f"target wall <= 1.6x bcftools: {'met' if ok_time else 'NOT met'}; peak <= 1 GiB: "
                  f"{'met' if ok_memory else 'NOT met'}; same store both paths: {'yes' if prep['hash'] == old['hash'] else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
