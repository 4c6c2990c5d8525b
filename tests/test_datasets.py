"""Dataset cards: loading and validation, user card folders, path templates, missing-file
messages, store and simulation cache paths, and prepare end to end."""

from __future__ import annotations

import dataclasses
import os
import textwrap
from pathlib import Path

import pytest

from impbench.data import cards
from impbench.data import cards as cards_module
from impbench.data.cards import (
    DatasetCard,
    builtin_card_dir,
    cache_dir,
    card_dirs,
    expand_template,
    get_card,
    load_cards,
    parse_card,
)
from impbench.data.prepare import card_status, resolve_source, simulation_dir, store_path
from impbench.errors import ImpbenchError
from impbench.data.qc import QCSettings
from impbench.data.split import SplitSettings

BUILTIN = {"sim-1kgp", "sim-los", "sim-sgdp", "1kgp", "sgdp", "sgdp-hla", "los", "1kgp-chr20"}
REAL_VARS = ["IMPBENCH_1KGP_VCF", "IMPBENCH_1KGP_SAMPLES", "IMPBENCH_SGDP_VCF", "IMPBENCH_SGDP_HLA_VCF",
             "IMPBENCH_SGDP_SAMPLES", "IMPBENCH_LOS_VCF", "IMPBENCH_LOS_SAMPLES", "IMPBENCH_DATA"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No user card folders, real-data variables or shared cache leak into these tests."""
    monkeypatch.delenv("IMPBENCH_DATASETS", raising=False)
    for name in REAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("IMPBENCH_DATA", str(tmp_path / "no-data"))


def write_card(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    return path


SMALL_SIM = """\
    description = "a small test simulation"
    [simulation]
    model = "OutOfAfrica_3G09"
    samples = { YRI = 20, CEU = 20 }
    length = 60_000
    seed = 4
    [split]
    fractions = [0.8, 0.1, 0.1]
    seed = 1
    """


# --- the built-in cards -------------------------------------------------------------------


def test_builtin_cards_load_and_validate():
    cards = load_cards()
    assert set(cards) == BUILTIN
    assert builtin_card_dir() == (Path(cards_module.__file__).resolve().parents[2] / "datasets")
    for card in cards.values():
        assert isinstance(card.qc, QCSettings) and isinstance(card.split, SplitSettings)
        assert card.path.parent == builtin_card_dir() and card.description
        if card.kind == "simulated":
            assert card.sample_columns == {"id": "sample", "cohort": "cohort", "sex": "sex"}
            assert card.vcf is None and card.mirrors is None
        else:
            assert card.vcf and card.mirrors in cards and cards[card.mirrors].kind == "simulated"
            # every real card has a sample sheet, but 1kgp-chr20 (one cohort of unknown sex)
            assert card.samples or card.name == "1kgp-chr20"
    assert cards["sim-1kgp"].simulation["model"] == "OutOfAfrica_3G09"
    assert set(cards["sim-1kgp"].simulation["samples"]) == {"YRI", "CEU", "CHB"}
    assert set(cards["sim-los"].simulation["samples"]) == {"AA", "CA"}
    hla = cards["sgdp-hla"]
    assert hla.region == "chr6:28510120-33480577" and hla.segment_overlap == 64
    assert cards["1kgp"].segment_overlap == 16 and cards["1kgp"].segment_length == 128
    assert cards["los"].mirrors == "sim-los" and cards["1kgp"].mirrors == "sim-1kgp"
    assert cards["1kgp"].sample_columns == {}  # the 1000 Genomes panel, read as is
    assert "beagle" in cards["1kgp"].imputers
    assert cards["sim-1kgp"].qc == QCSettings() and cards["sim-1kgp"].split == SplitSettings()


def test_get_card_unknown_lists_valid_names():
    with pytest.raises(ImpbenchError) as info:
        get_card("sim-1kg")
    message = str(info.value)
    assert "'sim-1kg'" in message and "\n" not in message
    for name in BUILTIN:
        assert name in message


# --- bad cards ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ('description = "x"\n[simulation\n', "not valid TOML"),
        ('description = "x"\nvcf = "a.vcf.gz"\ncolour = 3\n', "unknown key 'colour'"),
        ('vcf = "a.vcf.gz"\n', "description"),
        ('description = "x"\n', "needs 'vcf'"),
        ('description = "x"\nvcf = "a.vcf"\n[qc]\nhwe = 1e-6\n', "unknown key qc.hwe"),
        ('description = "x"\nvcf = "a.vcf"\n[qc]\nmin_maf = "low"\n', "qc.min_maf must be"),
        ('description = "x"\nvcf = "a.vcf"\n[qc]\nper_split = 1\n', "qc.per_split must be bool"),
        ('description = "x"\nvcf = "a.vcf"\n[split]\nfractions = [0.5, 0.1]\n', "3 values"),
        ('description = "x"\nvcf = "a.vcf"\n[split]\nfractions = [0.5, 0.1, 0.1]\n', "summing to 1"),
        ('description = "x"\nvcf = "a.vcf"\nsegment_overlap = 128\n', "segment_overlap"),
        ('description = "x"\nvcf = "a.vcf"\nregion = "chr6:1-2-3"\n', "region"),
        ('description = "x"\nvcf = "a.vcf"\n[sample_columns]\nid = "s"\n', "no 'samples' sheet"),
        ('description = "x"\nvcf = "a.vcf"\nsamples = "s.tsv"\n[sample_columns]\npop = "p"\n',
         "unknown key sample_columns.pop"),
        ('description = "x"\nvcf = "a.vcf"\n[simulation]\nmodel = "OutOfAfrica_3G09"\n', "kind|simulated"),
        ('description = "x"\n[simulation]\nmodel = "OutOfAfrica_3G09"\nsamples = {YRI = 2}\nsed = 1\n',
         "unknown key simulation.sed"),
        ('name = "other"\ndescription = "x"\nvcf = "a.vcf"\n', "differs from the file name"),
        ('description = "x"\nvcf = "a.vcf"\nkind = "remote"\n', "kind must be"),
    ],
)
def test_bad_card_fails_naming_the_file(tmp_path, text, message):
    path = write_card(tmp_path / "cards", "bad", text)
    with pytest.raises(ImpbenchError, match=message) as info:
        parse_card(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ImpbenchError, match=message):
        load_cards([tmp_path / "cards"])


def test_mirror_must_name_a_simulated_card(tmp_path):
    write_card(tmp_path / "cards", "mine", 'description = "x"\nvcf = "a.vcf"\nmirrors = "1kgp"\n')
    with pytest.raises(ImpbenchError, match="mirrors '1kgp', which is not a simulated card"):
        load_cards([tmp_path / "cards"])


# --- user folders -------------------------------------------------------------------------


def test_user_folder_through_the_variable_and_extra_dirs(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    write_card(first, "mine-a", SMALL_SIM)
    write_card(second, "mine-b", 'description = "b"\nvcf = "b.vcf.gz"\n')
    monkeypatch.setenv("IMPBENCH_DATASETS", os.pathsep.join([str(first), ""]))
    cards = load_cards()
    assert "mine-a" in cards and "mine-b" not in cards and BUILTIN <= set(cards)
    cards = load_cards([second])
    assert {"mine-a", "mine-b"} <= set(cards)
    assert card_dirs([second])[-2:] == [first, second]
    assert get_card("mine-b", [second]).vcf == "b.vcf.gz"


def test_user_card_replaces_a_builtin_of_the_same_name(tmp_path):
    write_card(tmp_path / "cards", "sim-1kgp", SMALL_SIM)
    card = get_card("sim-1kgp", [tmp_path / "cards"])
    assert card.path == tmp_path / "cards" / "sim-1kgp.toml"
    assert card.simulation["samples"] == {"YRI": 20, "CEU": 20}


def test_missing_card_folders_are_errors(tmp_path, monkeypatch):
    with pytest.raises(ImpbenchError, match="does not exist"):
        load_cards([tmp_path / "nowhere"])
    monkeypatch.setenv("IMPBENCH_DATASETS", str(tmp_path / "gone"))
    with pytest.raises(ImpbenchError, match="IMPBENCH_DATASETS"):
        load_cards()


# --- path templates and missing files -----------------------------------------------------


def test_expand_template(tmp_path, monkeypatch):
    folder = tmp_path / "cards"
    monkeypatch.setenv("A_VAR", "/data/x.vcf.gz")
    monkeypatch.delenv("B_VAR", raising=False)
    assert expand_template("${A_VAR}", folder).path == Path("/data/x.vcf.gz")
    assert expand_template("rel/y.vcf", folder).path == folder / "rel/y.vcf"
    assert expand_template("~/z.vcf", folder).path == Path.home() / "z.vcf"
    resolved = expand_template("${B_VAR:-${A_VAR}}", folder)
    assert resolved.path == Path("/data/x.vcf.gz") and resolved.variables == ("B_VAR", "A_VAR")
    resolved = expand_template("${B_VAR:-${C_UNSET_VAR:-here}/f.vcf}", folder)
    assert resolved.path == folder / "here/f.vcf" and resolved.variables[0] == "B_VAR"
    resolved = expand_template("${A_VAR}/${B_VAR:-b}", folder)
    assert resolved.variables == ("A_VAR", "B_VAR") and resolved.path == Path("/data/x.vcf.gz/b")
    resolved = expand_template("${B_VAR}", folder)
    assert resolved.path is None and resolved.unset == ("B_VAR",)


def test_private_card_without_variables_names_them_and_the_mirror():
    card = get_card("los")
    status = card_status(card)
    assert status.startswith("needs") and "$IMPBENCH_LOS_VCF" in status and "sim-los" in status
    with pytest.raises(ImpbenchError) as info:
        resolve_source(card)
    message = str(info.value)
    assert "\n" not in message
    for part in ("IMPBENCH_LOS_VCF", "IMPBENCH_LOS_SAMPLES", "sim-los", "los.toml"):
        assert part in message


def test_public_card_names_the_missing_path_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPBENCH_1KGP_VCF", str(tmp_path / "absent.vcf.gz"))
    card = get_card("1kgp")
    with pytest.raises(ImpbenchError) as info:
        resolve_source(card)
    message = str(info.value)
    assert str(tmp_path / "absent.vcf.gz") in message and "$IMPBENCH_1KGP_VCF" in message
    assert "sim-1kgp" in message and "$IMPBENCH_1KGP_SAMPLES" in message
    assert "absent.vcf.gz" in card_status(card) and "and 1 more file" in card_status(card)


def test_file_card_with_its_files_is_ready(tmp_path, monkeypatch):
    vcf = tmp_path / "los.vcf.gz"
    sheet = tmp_path / "los.tsv"
    vcf.write_bytes(b"x")
    sheet.write_text("sample\tcohort\tsex\n")
    monkeypatch.setenv("IMPBENCH_LOS_VCF", str(vcf))
    monkeypatch.setenv("IMPBENCH_LOS_SAMPLES", str(sheet))
    card = get_card("los")
    assert card_status(card) == "ready"
    again = resolve_source(card)
    assert (again.vcf, again.sheet) == (vcf, sheet)
    # Only the sheet missing: the message names the sheet's variable, not the VCF's.
    sheet.unlink()
    with pytest.raises(ImpbenchError, match="IMPBENCH_LOS_SAMPLES") as info:
        resolve_source(card)
    assert "IMPBENCH_LOS_VCF" not in str(info.value)


def test_relative_paths_are_relative_to_the_card(tmp_path):
    folder = tmp_path / "cards"
    write_card(folder, "mine", 'description = "x"\nvcf = "data/mine.vcf.gz"\n')
    (folder / "data").mkdir()
    (folder / "data" / "mine.vcf.gz").write_bytes(b"x")
    card = get_card("mine", [folder])
    source = resolve_source(card)
    assert (source.vcf, source.sheet) == (folder / "data" / "mine.vcf.gz", None)


# --- cache and store paths ----------------------------------------------------------------


def test_cache_dir_follows_the_variable(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("IMPBENCH_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "impbench"


def test_store_path_depends_on_settings_and_source(tmp_path, monkeypatch):
    card = get_card("sim-1kgp")
    path = store_path(card)
    assert path.parent == tmp_path / "cache" / "stores" and path.name.startswith("sim-1kgp-")
    assert path.suffix == ".h5" and store_path(card) == path
    assert store_path(dataclasses.replace(card, qc=QCSettings(min_maf=0.01))) != path
    assert store_path(dataclasses.replace(card, split=SplitSettings(seed=9))) != path
    assert store_path(dataclasses.replace(card, region="22:1-100")) != path
    assert store_path(dataclasses.replace(card, simulation={**card.simulation, "seed": 9})) != path
    # Segment settings and imputer defaults do not change the store.
    assert store_path(dataclasses.replace(card, segment_overlap=64, imputers={"x": {}})) == path
    # A file card's store changes when its file does.
    vcf = tmp_path / "a.vcf.gz"
    vcf.write_bytes(b"one")
    write_card(tmp_path / "cards", "mine", f'description = "x"\nvcf = "{vcf}"\n')
    mine = get_card("mine", [tmp_path / "cards"])
    before = store_path(mine)
    vcf.write_bytes(b"two!")
    assert store_path(mine) != before


def test_simulated_source_is_cached(tmp_path, monkeypatch):
    write_card(tmp_path / "cards", "mine", SMALL_SIM)
    card = get_card("mine", [tmp_path / "cards"])
    source = resolve_source(card)
    vcf, sheet = source.vcf, source.sheet
    assert vcf.parent == simulation_dir(card) and vcf.parent.parent == tmp_path / "cache" / "sim"
    assert vcf.is_file() and sheet.is_file()
    assert card_status(card) == "ready"

    def boom(*args, **kwargs):
        raise AssertionError("simulated again")

    monkeypatch.setattr("impbench.data.simulate.simulate_genotypes", boom)
    again = resolve_source(card)
    assert (again.vcf, again.sheet) == (vcf, sheet)
    other = dataclasses.replace(card, simulation={**card.simulation, "seed": 5})
    assert simulation_dir(other) != simulation_dir(card)


def test_card_is_frozen():
    card = get_card("sim-1kgp")
    assert isinstance(card, DatasetCard)
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.name = "x"  # type: ignore[misc]


# --- prepare end to end -------------------------------------------------------------------


def test_prepare_simulated_card_end_to_end(tmp_path, monkeypatch):
    import numpy as np

    from impbench.data.prepare import prepare
    from impbench.data.simulate import simulate_genotypes

    write_card(tmp_path / "cards", "mine", SMALL_SIM)
    card = get_card("mine", [tmp_path / "cards"])
    store = prepare("mine", extra_dirs=[tmp_path / "cards"])
    assert store.path == store_path(card) and store.path.is_file()
    assert card_status(card) == "prepared"
    sizes = store.split_sizes()
    assert sizes == {"train": 32, "val": 4, "test": 4}
    assert store.cohorts() == ["CEU", "YRI"] and store.n_variants > 100
    # The store holds the simulated genotypes at the variants QC kept.
    truth = simulate_genotypes(card.simulation).matrix
    train = store.read_split("train")
    rows = np.array([list(truth.sample_ids).index(s) for s in train.sample_ids])
    cols = np.searchsorted(truth.positions, train.positions)
    np.testing.assert_array_equal(truth.positions[cols], train.positions)
    np.testing.assert_array_equal(truth.codes[np.ix_(rows, cols)], train.codes)
    assert list(train.sex) == list(truth.sex[rows]) and list(train.cohort) == list(truth.cohort[rows])

    # A second call reuses the store without ingesting; force rebuilds it.
    calls = []

    def counting_ingest(*args, **kwargs):
        calls.append(args[2])
        return real_ingest(*args, **kwargs)

    import impbench.data.prepare as prepare_module

    real_ingest = prepare_module.ingest
    monkeypatch.setattr(prepare_module, "ingest", counting_ingest)
    again = prepare(card)
    assert again.path == store.path and again.dataset_hash == store.dataset_hash and calls == []
    rebuilt = prepare(card, force=True)
    assert calls == [store.path] and rebuilt.dataset_hash == store.dataset_hash


def test_prepare_missing_file_fails_before_writing_anything(tmp_path):
    from impbench.data.prepare import prepare

    with pytest.raises(ImpbenchError, match="IMPBENCH_LOS_VCF"):
        prepare("los")
    assert not (tmp_path / "cache").exists()


def test_imputer_options_expand_path_templates(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_REF", "/panels/ref.vcf.gz")
    monkeypatch.delenv("MY_UNSET_REF", raising=False)
    text = """\
        description = "x"
        vcf = "a.vcf.gz"
        [imputers.beagle]
        ref = "${MY_REF}"
        map = "${MY_MAP:-maps/plink.map}"
        other = "${MY_UNSET_REF}"
        ne = 20000
        note = "plain text"
        """
    card = parse_card(write_card(tmp_path / "cards", "mine", text))
    assert card.imputers["beagle"] == {
        "ref": "/panels/ref.vcf.gz",
        "map": str(tmp_path / "cards" / "maps/plink.map"),
        "other": "${MY_UNSET_REF}",
        "ne": 20000,
        "note": "plain text",
    }


@pytest.mark.parametrize("stem", ["..", ".hidden", "a b", "-dash", "x" * 65, "é"])
def test_card_names_must_be_safe(tmp_path, stem):
    folder = tmp_path / "cards"
    folder.mkdir()
    path = folder / f"{stem}.toml"
    path.write_text('description = "d"\nvcf = "x.vcf.gz"\n')
    with pytest.raises(ImpbenchError, match="is not a usable dataset name") as info:
        cards.parse_card(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ImpbenchError, match="is not a usable dataset name"):
        load_cards([folder])


@pytest.mark.parametrize("stem", ["sim-1kgp", "1kgp_chr20", "los.v2", "A"])
def test_safe_card_names_load(tmp_path, stem):
    path = tmp_path / f"{stem}.toml"
    path.write_text('description = "d"\nvcf = "x.vcf.gz"\n')
    assert cards.parse_card(path).name == stem
