"""Genetic maps (PLINK, gmap -> PLINK) and typed sites (VCF or table, matched with counts)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from impbench.errors import ImpbenchError
from impbench.io.gmap import detect_map_format, read_genetic_map, write_plink_map
from impbench.io.sites import match_typed_sites, read_typed_sites

GMAP_ROWS = [(61795, "20", 0.0), (63231, "20", 0.001056), (63231, "20", 0.001056), (70000, "20", 0.0125)]


def write_gmap(path: Path, rows=GMAP_ROWS, gz=True) -> Path:
    text = "pos\tchr\tcM\n" + "".join(f"{p}\t{c}\t{cm}\n" for p, c, cm in rows)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def read_plink_lines(path: Path):
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_gmap_converts_to_plink_with_the_dataset_contig_name(tmp_path):
    gmap = write_gmap(tmp_path / "chr20.gmap.gz")
    assert detect_map_format(gmap) == "gmap"
    out = write_plink_map(gmap, "chr20", tmp_path / "out.map")
    rows = read_plink_lines(out)
    # repeated position dropped, columns chrom id cM bp, contig spelled as the dataset does
    assert [r[0] for r in rows] == ["chr20"] * 3
    assert [int(r[3]) for r in rows] == [61795, 63231, 70000]
    assert [float(r[2]) for r in rows] == [0.0, 0.001056, 0.0125]


def test_plink_map_round_trips_and_selects_the_contig(tmp_path):
    plink = tmp_path / "in.map"
    plink.write_text("21 rs1 0.5 100\n20 rs2 1.5 300\n20 rs3 1.0 200\n")
    assert detect_map_format(plink) == "plink"
    genetic_map = read_genetic_map(plink)
    assert genetic_map.contig_names() == ["21", "20"]
    rows = read_plink_lines(write_plink_map(plink, "20", tmp_path / "out.map"))
    assert [(int(r[3]), float(r[2])) for r in rows] == [(200, 1.0), (300, 1.5)]


def test_the_real_shapeit4_example_map_when_installed(tmp_path):
    real = Path("/usr/share/doc/shapeit4/examples/test/chr20.b37.gmap.gz")
    if not real.is_file():
        pytest.skip("shapeit4-example is not installed")
    rows = read_plink_lines(write_plink_map(real, "20", tmp_path / "chr20.map"))
    positions = np.array([int(r[3]) for r in rows])
    cm = np.array([float(r[2]) for r in rows])
    assert len(rows) > 1000 and (np.diff(positions) > 0).all() and (np.diff(cm) >= 0).all()


@pytest.mark.parametrize(
    "text",
    [
        "Chromosome\tPosition(bp)\tRate(cM/Mb)\tMap(cM)\nchr20\t100\t1.0\t0.0\n",  # HapMap format
        "20 100 0.5\n",  # three unnamed columns
        "just some words here\n",
        "",
    ],
)
def test_unknown_map_format_is_one_line(tmp_path, text):
    path = tmp_path / "weird.map"
    path.write_text(text)
    with pytest.raises(ImpbenchError) as info:
        read_genetic_map(path)
    message = str(info.value)
    assert "unknown format" in message and str(path) in message and "\n" not in message


def test_map_errors(tmp_path):
    with pytest.raises(ImpbenchError, match="no such file"):
        read_genetic_map(tmp_path / "absent.map")
    with pytest.raises(ImpbenchError, match=r"no row on contig '22' \(it has 20\)"):
        write_plink_map(write_gmap(tmp_path / "m.gz"), "22", tmp_path / "o.map")
    bad = tmp_path / "bad.map"
    bad.write_text("20 a 0.5 100\n20 b 0.2 200\n")
    with pytest.raises(ImpbenchError, match="cM decreases"):
        write_plink_map(bad, "20", tmp_path / "o.map")
    malformed = tmp_path / "malformed.map"
    malformed.write_text("20 a 0.5 100\n20 b x 200\n")
    with pytest.raises(ImpbenchError, match="malformed plink rows"):
        read_genetic_map(malformed)


# ---------------------------------------------------------------------------------------------
# typed sites
# ---------------------------------------------------------------------------------------------

DATASET_POSITIONS = np.arange(1000, 2000, 10, dtype=np.int64)  # 100 variants


def test_table_with_header_and_chr_prefix(tmp_path):
    path = tmp_path / "manifest.tsv"
    path.write_text("chrom\tpos\tname\n" + "".join(f"chr20\t{p}\tsnp{p}\n" for p in DATASET_POSITIONS[::4]))
    sites = read_typed_sites(path)
    match = match_typed_sites(sites, "20", DATASET_POSITIONS)
    np.testing.assert_array_equal(match.typed, np.arange(100) % 4 == 0)
    assert match.n_matched == 25 and "25 of 100 variants typed" in match.describe()


def test_vcf_sites(tmp_path):
    from impbench.data.simulate import simulate_matrix
    from impbench.io.vcf_write import write_vcf

    matrix = simulate_matrix(n_samples=6, sequence_length=50_000, seed=3)
    every_third = matrix.take_variants(np.arange(0, matrix.n_variants, 3))
    path = write_vcf(every_third, tmp_path / "scaffold.vcf.gz")
    match = match_typed_sites(read_typed_sites(path), matrix.contig, matrix.positions)
    expected = np.isin(matrix.positions, every_third.positions)
    np.testing.assert_array_equal(match.typed, expected)


def write_sites(tmp_path, contig, positions) -> Path:
    path = tmp_path / "sites.csv"
    path.write_text("".join(f"{contig},{p}\n" for p in positions))
    return path


def test_sites_matching_no_variant(tmp_path):
    path = write_sites(tmp_path, "20", DATASET_POSITIONS + 3)
    with pytest.raises(ImpbenchError) as info:
        match_typed_sites(read_typed_sites(path), "20", DATASET_POSITIONS)
    message = str(info.value)
    assert "0 of its 100 sites match" in message and "genome build" in message and "\n" not in message


def test_sites_matching_every_variant(tmp_path):
    path = write_sites(tmp_path, "20", DATASET_POSITIONS)
    with pytest.raises(ImpbenchError, match="matches all 100 of the dataset's variants"):
        match_typed_sites(read_typed_sites(path), "20", DATASET_POSITIONS)


def test_sites_on_another_contig(tmp_path):
    path = write_sites(tmp_path, "21", DATASET_POSITIONS[::2])
    with pytest.raises(ImpbenchError) as info:
        match_typed_sites(read_typed_sites(path), "20", DATASET_POSITIONS)
    message = str(info.value)
    assert "none of its 50 sites is on contig '20'" in message and "21" in message


def test_sites_on_another_build_say_how_many_matched(tmp_path):
    # 3 of 60 sites in the span coincide with a variant by chance: refused, with the count
    positions = np.concatenate([DATASET_POSITIONS[:3], np.arange(1001, 1600, 10)[:57]])
    path = write_sites(tmp_path, "20", positions)
    with pytest.raises(ImpbenchError, match=r"only 3 of its 60 sites .* match a variant.*genome build"):
        match_typed_sites(read_typed_sites(path), "20", DATASET_POSITIONS)


def test_sites_file_errors(tmp_path):
    with pytest.raises(ImpbenchError, match="no such file"):
        read_typed_sites(tmp_path / "absent.tsv")
    empty = tmp_path / "empty.tsv"
    empty.write_text("# nothing\n")
    with pytest.raises(ImpbenchError, match="lists no site"):
        read_typed_sites(empty)
    bad = tmp_path / "bad.tsv"
    bad.write_text("20\t100\n20\tabc\n")
    with pytest.raises(ImpbenchError, match="line 2: position 'abc' is not an integer"):
        read_typed_sites(bad)
