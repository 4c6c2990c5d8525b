"""``VcfReader``'s bulk text path (``impbench.io.vcf_text``) reads the same batches, counts and
errors as cyvcf2 record by record, and hands over to cyvcf2 at a record it does not parse."""

from __future__ import annotations

import numpy as np
import pytest

from impbench.errors import ImpbenchError
from impbench.io import vcf_text
from impbench.io.vcf_read import VcfReader
from impbench.io.vcf_text import code_raw_genotypes, parse_text_lines

SAMPLES = ["a", "b", "c"]


def _read(path, text_path, **kw):
    reader = VcfReader(path, text_path=text_path, **kw)
    batches = list(reader.batches())
    return reader, batches


def _same_reads(path, **kw):
    """Read through both paths; assert equal batches and counts; return the text-path reader."""
    fast, fast_batches = _read(path, True, **kw)
    slow, slow_batches = _read(path, False, **kw)
    assert len(fast_batches) == len(slow_batches)
    for a, b in zip(fast_batches, slow_batches):
        for name in ("codes", "positions", "ref", "alt", "variant_ids"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert fast.counts == slow.counts and fast.contig == slow.contig
    return fast


def _records(rng, n, start=100):
    gts = ["0|0", "0|1", "1|0", "1|1", ".|.", "0|.", "./.", "0/0", "1/1"]
    refs = ["A", "C", "G", "T"]
    lines = []
    for i in range(n):
        ref = refs[i % 4]
        alt = {7: "A,C", 11: ".", 13: "AT", 17: "<DEL>"}.get(i % 19, refs[(i + 1) % 4])
        pos = start + i - (1 if i % 23 == 5 else 0)  # duplicated positions now and then
        lines.append(f"{pos} {ref} {alt} " + " ".join(rng.choice(gts, size=len(SAMPLES))))
    return lines


@pytest.mark.parametrize("compress", ["bgzip", "gzip", "none"])
def test_text_path_reads_what_cyvcf2_reads(text_vcf, compress):
    rng = np.random.default_rng(1)
    path = text_vcf(SAMPLES, _records(rng, 300), compress=compress)
    reader = _same_reads(path, batch_size=16)
    assert not reader.text_fallback
    assert reader.counts.n_no_alt and reader.counts.n_multiallelic and reader.counts.n_duplicate_position


@pytest.mark.parametrize("odd", [
    "GT:DS\t0|1:1\t1|1:2\t0|0:0",   # another FORMAT field
    "GT\t0|1\t1\t0|0",                # haploid
    "GT\t0|1\t0|0\t10|1",             # a two-digit allele
])
def test_text_path_hands_over_to_cyvcf2_at_a_record_it_cannot_parse(text_vcf, monkeypatch, odd):
    monkeypatch.setattr(vcf_text, "TEXT_CHUNK_BYTES", 512)  # many chunks: the odd record is past the first
    rng = np.random.default_rng(2)
    records = _records(rng, 200)
    records.insert(150, "\t".join(["22", "1000", ".", "A", "G", ".", "PASS", "."]) + "\t" + odd)
    records = [r for r in records if not r.startswith("1000 ")]
    path = text_vcf(SAMPLES, sorted(records, key=lambda r: int(r.split()[0] if "\t" not in r else r.split("\t")[1])))
    try:
        reader = _same_reads(path, batch_size=8)
    except ImpbenchError as error:  # haploid / multi-digit: both paths fail, with the same line
        with pytest.raises(ImpbenchError) as slow:
            _read(path, False, batch_size=8)
        with pytest.raises(ImpbenchError) as fast:
            _read(path, True, batch_size=8)
        assert str(fast.value) == str(slow.value) == str(error)
    else:
        assert reader.text_fallback


def test_text_path_errors_match_cyvcf2(text_vcf):
    cases = {
        "unphased": ["100 A C 0|1 0/1 0|0"],
        "unsorted": ["200 A C 0|1 0|1 0|0", "100 A C 0|1 0|1 0|0"],
        "two contigs": ["100 A C 0|1 0|1 0|0", "\t".join(["23", "200", ".", "A", "C", ".", ".", ".", "GT", "0|0", "0|0", "0|0"])],
        "allele 2": ["100 A C 0|2 0|1 0|0"],
    }
    for name, records in cases.items():
        path = text_vcf(SAMPLES, records, name=f"{name.replace(' ', '_')}.vcf.gz")
        messages = []
        for text_path in (True, False):
            with pytest.raises(ImpbenchError) as error:
                _read(path, text_path)
            messages.append(str(error.value))
        assert messages[0] == messages[1], name


def test_parse_text_lines_refuses_lines_that_do_not_fit():
    good = b"22\t100\trs1\tA\tC\t.\tPASS\t.\tGT\t0|1\t1/0\t.|1\n"
    metas, coded = parse_text_lines(good, 3)
    assert metas == [("22", 100, "A", ["C"], "rs1")]
    cyvcf2_arrays = np.array([[[0, 1, 1], [1, 0, 0], [-1, 1, 1]]], dtype=np.int16)  # what genotype.array() gives
    assert coded.tolist() == code_raw_genotypes(cyvcf2_arrays).tolist()
    assert coded.tolist() == [[2, 3 | 0x80, 0]]  # 0|1; 1/0 an unphased het (flagged); .|1 missing
    for bad in (
        good.replace(b"GT\t", b"GT:DS\t"),
        good.replace(b"\t.|1", b"\t.|x"),
        good.replace(b"0|1\t1/0", b"0|1 1/0"),
        good.replace(b"\t100\t", b"\t1e2\t"),
        good.replace(b"\n", b"\r\n"),
    ):
        assert parse_text_lines(bad, 3) is None, bad
