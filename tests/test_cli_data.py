"""``impbench datasets``, ``prepare`` and ``simulate`` through ``impbench.cli.main``: exit
codes, one-line errors, tables and written files."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

import pytest

from impbench.cli import main

REAL_VARS = ["IMPBENCH_1KGP_VCF", "IMPBENCH_1KGP_SAMPLES", "IMPBENCH_SGDP_VCF", "IMPBENCH_SGDP_HLA_VCF",
             "IMPBENCH_SGDP_SAMPLES", "IMPBENCH_LOS_VCF", "IMPBENCH_LOS_SAMPLES"]

SMALL_SIM = """\
    description = "a small test simulation"
    [simulation]
    model = "OutOfAfrica_3G09"
    samples = { YRI = 20, CEU = 20 }
    length = 60_000
    seed = 4
    """


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("IMPBENCH_DATASETS", raising=False)
    for name in REAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("IMPBENCH_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("COLUMNS", "250")  # rich tables unwrapped


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_line_error(code: int, err: str) -> str:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("impbench: error: "), err
    return lines[0]


def test_datasets_lists_every_card_with_its_status(capsys):
    code, out, err = run_cli(["datasets"], capsys)
    assert code == 0, err
    for name in ("sim-1kgp", "sim-los", "sim-sgdp", "1kgp", "sgdp", "sgdp-hla", "los"):
        assert name in out
    los_line = next(line for line in out.splitlines() if line.startswith("│ los "))
    assert "needs" in los_line and "IMPBENCH_LOS_VCF" in los_line and "sim-los" in los_line
    sim_line = next(line for line in out.splitlines() if line.startswith("│ sim-1kgp "))
    assert "ready" in sim_line and "simulated" in sim_line


def test_datasets_with_a_user_folder(tmp_path, capsys):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "mine.toml").write_text(textwrap.dedent(SMALL_SIM))
    code, out, _ = run_cli(["datasets", "--cards", str(cards)], capsys)
    assert code == 0 and "mine" in out and "a small test simulation" in out
    code, _, err = run_cli(["datasets", "--cards", str(tmp_path / "none")], capsys)
    assert "does not exist" in assert_one_line_error(code, err)


def test_bad_card_in_a_user_folder_is_one_line(tmp_path, capsys):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "broken.toml").write_text("description = 'x'\n[qc\n")
    code, _, err = run_cli(["datasets", "--cards", str(cards)], capsys)
    line = assert_one_line_error(code, err)
    assert "broken.toml" in line and "not valid TOML" in line


def test_prepare_unknown_dataset_lists_valid_names(capsys):
    code, _, err = run_cli(["prepare", "--dataset", "sim-1kg"], capsys)
    line = assert_one_line_error(code, err)
    assert "unknown dataset 'sim-1kg'" in line
    for name in ("sim-1kgp", "sim-los", "sim-sgdp", "los"):
        assert name in line


def test_prepare_missing_file_names_the_variable_and_the_mirror(capsys):
    code, _, err = run_cli(["prepare", "--dataset", "los"], capsys)
    line = assert_one_line_error(code, err)
    assert "$IMPBENCH_LOS_VCF" in line and "$IMPBENCH_LOS_SAMPLES" in line and "sim-los" in line


def test_simulate_writes_vcf_and_sheet(tmp_path, capsys):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "mine.toml").write_text(textwrap.dedent(SMALL_SIM))
    out_dir = tmp_path / "out"
    code, out, err = run_cli(["simulate", "--dataset", "mine", "--out", str(out_dir),
                              "--cards", str(cards)], capsys)
    assert code == 0, err
    vcf = out_dir / "mine.vcf.gz"
    sheet = out_dir / "mine.samples.tsv"
    assert out.split() == [str(vcf), str(sheet)]
    with gzip.open(vcf, "rt") as handle:
        header = next(line for line in handle if line.startswith("#CHROM"))
    assert header.rstrip("\n").split("\t")[9:] == [
        line.split("\t")[0] for line in sheet.read_text().splitlines()[1:]
    ]
    assert "40 samples" in err
    # No temporary files are left behind.
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


def test_simulate_refuses_a_file_card(tmp_path, capsys):
    code, _, err = run_cli(["simulate", "--dataset", "los", "--out", str(tmp_path / "x")], capsys)
    line = assert_one_line_error(code, err)
    assert "not simulated" in line and "sim-los" in line
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", ["datasets", "prepare", "simulate"])
def test_help(command, capsys):
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0 and "--cards" in out
    if command != "datasets":
        assert "--dataset" in out


def test_prepare_a_small_card_prints_the_qc_table_and_the_store(tmp_path, capsys):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "mine.toml").write_text(textwrap.dedent(SMALL_SIM))
    code, out, err = run_cli(["prepare", "--dataset", "mine", "--cards", str(cards)], capsys)
    assert code == 0, err
    store = Path(out.strip().splitlines()[-1])
    assert store.is_file() and store.parent == tmp_path / "cache" / "stores"
    assert "QC report" in err and "HWE" in err and "train 32" in err
    code, out2, err2 = run_cli(["prepare", "--dataset", "mine", "--cards", str(cards)], capsys)
    assert code == 0 and out2 == out and "reusing" in err2
    code, listing, _ = run_cli(["datasets", "--cards", str(cards)], capsys)
    assert code == 0
    assert "prepared" in next(line for line in listing.splitlines() if line.startswith("│ mine "))


def test_prepare_a_bad_vcf_is_one_line_and_leaves_nothing(tmp_path, capsys):
    cards = tmp_path / "cards"
    cards.mkdir()
    bad = tmp_path / "bad.vcf.gz"
    bad.write_text("this is not a VCF\n")
    (cards / "broken.toml").write_text(f'description = "a broken VCF"\nvcf = "{bad}"\n')
    code, _, err = run_cli(["prepare", "--dataset", "broken", "--cards", str(cards)], capsys)
    line = assert_one_line_error(code, err)
    assert str(bad) in line
    stores = tmp_path / "cache" / "stores"
    assert not stores.exists() or not any(stores.iterdir())
