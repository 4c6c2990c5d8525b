"""Shared fixtures and helpers for the core tests."""

from __future__ import annotations

import gzip
import os
import subprocess
import shutil
from pathlib import Path
from typing import Sequence

import pytest


def write_text_vcf(
    path: Path,
    samples: Sequence[str],
    records: Sequence[str],
    *,
    contig: str = "22",
    compress: str = "bgzip",
    extra_header: Sequence[str] = (),
) -> Path:
    """Write a small VCF from text records (``"POS REF ALT GT GT ..."`` whitespace-separated,
    or full tab-separated lines starting with the contig) and return its path.

    compress : "bgzip" (bgzip when installed, else gzip), "gzip" or "none".
    """
    lines = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={contig}>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        *extra_header,
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]),
    ]
    for record in records:
        if "\t" in record:
            lines.append(record)
            continue
        pos, ref, alt, *gts = record.split()
        lines.append("\t".join([contig, pos, ".", ref, alt, ".", "PASS", ".", "GT", *gts]))
    text = ("\n".join(lines) + "\n").encode()
    path = Path(path)
    if compress == "none":
        path.write_bytes(text)
    elif compress == "bgzip" and shutil.which("bgzip"):
        path.write_bytes(subprocess.run(["bgzip", "-c"], input=text, capture_output=True, check=True).stdout)
    else:
        path.write_bytes(gzip.compress(text))
    return path


@pytest.fixture
def text_vcf(tmp_path):
    """``text_vcf(samples, records, name="in.vcf.gz", **kw)``: a tiny VCF in tmp_path."""

    def make(samples, records, name="in.vcf.gz", **kw):
        return write_text_vcf(tmp_path / name, samples, records, **kw)

    return make


def pytest_runtest_setup(item):
    """Tests marked ``slurm`` need a Slurm that takes jobs (``scripts/slurm-local.sh start``, then
    ``SLURM_CONF``): skipped without one, failed under ``CI=true`` (``.ci/run`` starts it)."""
    if item.get_closest_marker("slurm") is None:
        return
    from impbench.bench.exec.slurm import slurm_available

    reason = slurm_available()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"CI=true and Slurm is not available: {reason}", pytrace=False)
    pytest.skip(f"Slurm is not available: {reason}")
