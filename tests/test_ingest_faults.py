"""Bad and damaged inputs at ingest, a full disk, killed prepares and damaged stores: each one
line naming the file and the problem (exit 2 at ``prepare``, 1 for a refused write elsewhere),
never a traceback and never a partial store."""

from __future__ import annotations

import errno
import gzip
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from impbench.cli import main
from impbench.data import store as store_module
from impbench.data.cards import parse_card
from impbench.data.ingest import IngestSettings, Source, ingest
from impbench.data.prepare import prepare, store_path
from impbench.data.simulate import simulate_matrix
from impbench.data.store import DatasetStore, StoreWriter, store_lock
from impbench.errors import ImpbenchError
from impbench.io.bgzf import _BGZF_BLOCK, _BGZF_EOF, _bgzf_block
from impbench.io.vcf_write import write_vcf

N_SAMPLES = 30


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("IMPBENCH_DATASETS", raising=False)
    monkeypatch.setenv("IMPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture(scope="module")
def vcf_text(tmp_path_factory) -> str:
    """A good phased VCF (30 samples, a few thousand SNPs) as text."""
    matrix = simulate_matrix(n_samples=N_SAMPLES, sequence_length=1_000_000, seed=5)
    path = write_vcf(matrix, tmp_path_factory.mktemp("good") / "good.vcf.gz", index=False)
    return gzip.decompress(path.read_bytes()).decode()


def split_header(text: str) -> tuple[list[str], list[str]]:
    lines = text.splitlines(keepends=True)
    n_header = sum(line.startswith("#") for line in lines)
    return lines[:n_header], lines[n_header:]


def bgzf(data: bytes, *, eof: bool = True) -> bytes:
    blocks = b"".join(_bgzf_block(data[i : i + _BGZF_BLOCK], 6) for i in range(0, len(data), _BGZF_BLOCK))
    return blocks + (_BGZF_EOF if eof else b"")


def with_records(text: str, edit) -> str:
    header, records = split_header(text)
    return "".join(header + edit(records))


def with_chrom_line(text: str, edit) -> str:
    header, records = split_header(text)
    columns = header[-1].rstrip("\n").split("\t")
    return "".join(header[:-1] + ["\t".join(edit(columns)) + "\n"] + records)


def rename_contig(text: str, name: str) -> str:
    header, records = split_header(text)
    return "".join(header + [name + line[line.index("\t") :] for line in records])


def _dup_sample(columns):
    columns[11] = columns[9]
    return columns


def _cut_at_record(text: str) -> bytes:
    """BGZF blocks that end exactly at a record boundary, without the EOF marker: htslib
    reads the first half of the records and only warns."""
    data = text.encode()
    cut = data.index(b"\n", len(data) // 2) + 1
    return bgzf(data[:cut], eof=False)


#: name -> (file name, bytes from the good VCF's text, what the one line must say)
BAD_VCFS = {
    "duplicated sample, plain": ("dup.vcf", lambda t: with_chrom_line(t, _dup_sample).encode(),
                                 "the header names sample 's0000' more than once (duplicated sample id)"),
    "duplicated sample, bgzf": ("dup.vcf.gz", lambda t: bgzf(with_chrom_line(t, _dup_sample).encode()),
                                "the header names sample 's0000' more than once (duplicated sample id)"),
    "empty sample id": ("empty.vcf", lambda t: with_chrom_line(t, lambda c: c[:10] + [""] + c[11:]).encode(),
                        "the #CHROM line has an empty sample id (column 11)"),
    "no #CHROM line": ("nochrom.vcf", lambda t: "".join(l for l in t.splitlines(True) if not l.startswith("#CHROM")).encode(),
                       "the header has no #CHROM line before the first record"),
    "wrong fixed columns": ("cols.vcf", lambda t: with_chrom_line(t, lambda c: c[:1] + ["START"] + c[2:]).encode(),
                            "the #CHROM line's columns are not #CHROM POS ID REF ALT QUAL FILTER INFO FORMAT <samples>"),
    "truncated gzip": ("cut.vcf.gz", lambda t: gzip.compress(t.encode())[: -len(t) // 40],
                       "truncated or corrupt gzip data (the file was cut short or damaged)"),
    "bgzf without EOF marker, cut at a record": ("noeof.vcf.gz", _cut_at_record, "truncated: no BGZF EOF marker"),
    "bgzf cut inside a block": ("midblock.vcf.gz", lambda t: bgzf(t.encode())[: len(bgzf(t.encode())) * 2 // 3],
                                "truncated: no BGZF EOF marker"),
    "contig with a space": ("space.vcf", lambda t: rename_contig(t, "22 out=x").encode(),
                            "contig name '22 out=x' holds whitespace or '='"),
    "contig with '='": ("equals.vcf", lambda t: rename_contig(t, "chr=22").encode(),
                        "contig name 'chr=22' holds whitespace or '='"),
    "position not a number": ("pos.vcf", lambda t: with_records(t, lambda r: r[:7] + [r[7].replace("\t", "\tX", 1)] + r[8:]).encode(),
                              "cannot read record 8: the record at 22:X"),
    "genotype columns missing": ("short.vcf", lambda t: with_records(t, lambda r: r[:3] + ["\t".join(r[3].split("\t")[:12]) + "\n"] + r[4:]).encode(),
                                 "cannot read record 4: the record at 22:"),
}


@pytest.fixture(scope="module")
def bad_vcfs(vcf_text, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    paths = {}
    for case, (file_name, make, _) in BAD_VCFS.items():
        path = folder / file_name
        path.write_bytes(make(vcf_text))
        paths[case] = path
    return paths


@pytest.mark.parametrize("case", list(BAD_VCFS))
def test_bad_vcf_is_one_line_naming_the_file_and_leaves_no_store(case, bad_vcfs, tmp_path):
    path = bad_vcfs[case]
    out = tmp_path / "stores" / "x.h5"
    with pytest.raises(ImpbenchError) as info:
        ingest(Source(path), IngestSettings(), out, "x")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert BAD_VCFS[case][2] in message
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_the_record_errors_say_what_is_wrong(bad_vcfs):
    """The figures the messages give are those of the damaged line."""
    for case, expected in [("position not a number", "has position 'X"),
                           ("genotype columns missing", f"has 3 genotype columns for {N_SAMPLES} samples")]:
        with pytest.raises(ImpbenchError, match=expected):
            ingest(Source(bad_vcfs[case]), IngestSettings(), bad_vcfs[case].with_suffix(".h5"), "x")


def run_cli(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_line(err: str) -> str:
    """The one error line, the last of stderr (a progress bar drawn before it may stay)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("impbench: error: "), err
    assert sum("error" in line.lower() for line in lines) == 1 and "Traceback" not in err, err
    return lines[-1]


def file_card(folder: Path, name: str, vcf: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(f'description = "test"\nvcf = "{vcf}"\n')
    return folder


def test_every_bad_vcf_at_the_cli(bad_vcfs, tmp_path, capsys):
    """impbench prepare: exit 2, one line naming the file and the problem, no store; the
    figure of issue 17 (bad inputs clean / tried)."""
    clean = []
    for case, path in bad_vcfs.items():
        cards = file_card(tmp_path / "cards", "bad", path)
        code, _, err = run_cli(["prepare", "--dataset", "bad", "--cards", cards], capsys)
        line = one_line(err)
        stores = tmp_path / "cache" / "stores"
        if code == 2 and str(path) in line and BAD_VCFS[case][2] in line and not (stores.exists() and any(stores.iterdir())):
            clean.append(case)
    assert clean == list(bad_vcfs)


# ---------------------------------------------------------------------------- killed prepares
@pytest.fixture
def good_card(vcf_text, tmp_path):
    vcf = tmp_path / "data" / "good.vcf.gz"
    vcf.parent.mkdir()
    vcf.write_bytes(bgzf(vcf_text.encode()))
    return parse_card(file_card(tmp_path / "cards", "good", vcf) / "good.toml")


def test_stale_temp_files_of_a_killed_prepare_are_removed(good_card):
    out = store_path(good_card)
    out.parent.mkdir(parents=True)
    stale = [out.parent / f".{out.name}.{tag}.tmp" for tag in ("k1ll3d", "x_y")]
    for path in stale:
        path.write_bytes(b"half a store")
    other = out.parent / f".other-{out.name}.abc.tmp"  # another store's: not ours to remove
    other.write_bytes(b"")
    store = prepare(good_card)
    assert store.path == out and out.is_file()
    assert not any(path.exists() for path in stale) and other.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, other.name])


def test_a_prepare_killed_by_sigkill_is_cleaned_by_the_next(good_card, tmp_path):
    """A real kill: a child process stops inside StoreWriter.finish (the temporary store is on
    disk) and is SIGKILLed; the next prepare removes its file and builds the store."""
    out = store_path(good_card)
    script = (
        "import os, signal, sys\n"
        "from impbench.data import store\n"
        "from impbench.data.cards import parse_card\n"
        "from impbench.data.prepare import prepare\n"
        "def stop(self, **kw):\n"
        "    print('writing', flush=True); signal.pause()\n"
        "store.StoreWriter.finish = stop\n"
        f"prepare(parse_card({str(good_card.path)!r}))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert child.stdout.readline().strip() == "writing"
        leftovers = list(out.parent.glob(f".{out.name}.*.tmp"))
        assert len(leftovers) == 1
    finally:
        child.kill()
        child.wait()
    assert leftovers[0].exists()  # the kill left it
    store = prepare(good_card)
    assert store.n_variants > 0
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_store_lock_serialises_builds(tmp_path):
    path = tmp_path / "s.h5"
    order = []
    first_in = threading.Event()

    def first():
        with store_lock(path):
            first_in.set()
            time.sleep(0.3)
            order.append("first done")

    def second():
        first_in.wait()
        with store_lock(path):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert order == ["first done", "second in"]
    assert list(tmp_path.iterdir()) == []  # the lock file goes with the lock


# ---------------------------------------------------------------------------- a full disk
def test_disk_full_while_writing_the_store(good_card, monkeypatch, capsys):
    """ENOSPC from inside the HDF5 writer: exit 1 at prepare (the disk's fault, not the
    input's), one line naming the store and the reason, no temporary file left."""
    real_drain = StoreWriter._drain

    def full(self, max_pending=0):
        real_drain(self, max_pending)
        raise OSError(errno.ENOSPC, "Can't write data (file write failed: errno = 28)")

    monkeypatch.setattr(StoreWriter, "_drain", full)
    out = store_path(good_card)
    code, _, err = run_cli(["prepare", "--dataset", "good", "--cards", good_card.path.parent], capsys)
    line = one_line(err)
    assert code == 1
    assert line == f"impbench: error: {out}: cannot write the dataset store (No space left on device)"
    assert list(out.parent.iterdir()) == []


def test_disk_full_creating_the_store_file(good_card, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[0]) if args else None)

    monkeypatch.setattr(store_module.tempfile, "mkstemp", lambda *a, **k: full(k.get("dir")))
    code, _, err = run_cli(["prepare", "--dataset", "good", "--cards", good_card.path.parent], capsys)
    assert code == 1 and "cannot write the dataset store (No space left on device)" in one_line(err)


def test_h5py_runtime_error_at_close_is_a_full_disk_line(good_card, monkeypatch, capsys):
    """h5py reports a full disk at close as ``RuntimeError`` (not ``OSError``): one line, exit 1,
    no temporary file left."""
    import h5py

    real_close = h5py.File.close
    calls = []

    def failing_close(self):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Disable slist on flush dest failure failed (file write failed: time = x\n, "
                               "filename = 'x', file descriptor = 5, errno = 28, error message = 'No space left "
                               "on device', buf = 0x1, total write size = 4032)")
        real_close(self)

    monkeypatch.setattr(h5py.File, "close", failing_close)
    out = store_path(good_card)
    code, _, err = run_cli(["prepare", "--dataset", "good", "--cards", good_card.path.parent], capsys)
    assert code == 1 and calls
    assert one_line(err) == f"impbench: error: {out}: cannot write the dataset store (No space left on device)"
    assert list(out.parent.iterdir()) == []


def _tmpfs(tmp_path, size: str):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 192 KiB tmpfs (root only; skipped elsewhere): a real full disk."""
    yield from _tmpfs(tmp_path, "192k")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 4 MiB tmpfs (root only), to be filled up to what a test leaves free."""
    yield from _tmpfs(tmp_path, "4m")


def test_a_real_full_disk_at_prepare(good_card, tiny_tmpfs, monkeypatch, capsys):
    monkeypatch.setenv("IMPBENCH_CACHE", str(tiny_tmpfs))
    out = store_path(good_card)
    code, _, err = run_cli(["prepare", "--dataset", "good", "--cards", good_card.path.parent], capsys)
    assert code == 1
    assert one_line(err) == f"impbench: error: {out}: cannot write the dataset store (No space left on device)"
    assert list(out.parent.iterdir()) == []


def test_a_real_full_disk_while_writing_the_store_does_not_crash(small_tmpfs, tmp_path):
    """The issue's probe: a cache with room for the simulation but not for the store, so HDF5
    fails while writing or closing the file. Before: h5py's RuntimeError as a traceback, then
    a segfault at exit (139). Now: one line, exit 1, no temporary file (run as a process: the
    crash came at exit)."""
    tiny_tmpfs = small_tmpfs
    import subprocess
    import sys

    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "mid.toml").write_text(
        'description = "mid"\n[simulation]\nmodel = "OutOfAfrica_3G09"\nsamples = { YRI = 40, CEU = 40 }\n'
        "length = 400_000\nseed = 4\n"
    )
    env = dict(os.environ, IMPBENCH_CACHE=str(tiny_tmpfs), IMPBENCH_LOAD_PLUGINS="")
    simulated = subprocess.run([sys.executable, "-m", "impbench.cli", "simulate", "--dataset", "mid", "--cards",
                                str(cards), "--out", str(tmp_path / "probe")], env=env, capture_output=True, text=True)
    assert simulated.returncode == 0, simulated.stderr
    sizes = sum(p.stat().st_size for p in (tmp_path / "probe").iterdir())
    free = os.statvfs(tiny_tmpfs)
    room = sizes + 48 * 1024  # the simulation fits; the store (about its VCF's size) does not
    (tiny_tmpfs / "filler").write_bytes(b"x" * max(0, free.f_bavail * free.f_frsize - room))
    proc = subprocess.run([sys.executable, "-m", "impbench.cli", "prepare", "--dataset", "mid", "--cards", str(cards)],
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stderr.splitlines()  # without the timestamped progress lines
             if line.strip() and not re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line)]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].endswith("(No space left on device)"), proc.stderr[-3000:]
    stores = tiny_tmpfs / "stores"
    assert not stores.exists() or list(stores.iterdir()) == []


def test_a_real_full_disk_at_simulate_is_exit_1(tiny_tmpfs, tmp_path, capsys):
    """simulate writes outside prepare: main turns ENOSPC into one line naming the path, exit 1,
    and nothing half-written stays."""
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "small.toml").write_text(
        'description = "small"\n[simulation]\nmodel = "OutOfAfrica_3G09"\nsamples = { YRI = 200, CEU = 200 }\n'
        "length = 400_000\nseed = 4\n"
    )
    free = os.statvfs(tiny_tmpfs)
    (tiny_tmpfs / "filler").write_bytes(b"x" * (free.f_bavail * free.f_frsize - 24 * 1024))  # 24 KiB left
    code, _, err = run_cli(["simulate", "--dataset", "small", "--cards", cards, "--out", tiny_tmpfs / "sim"], capsys)
    line = one_line(err)
    assert code == 1 and line.endswith(": No space left on device") and str(tiny_tmpfs) in line
    assert [p.name for p in (tiny_tmpfs / "sim").iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")] == []


@pytest.mark.parametrize("code_errno", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES])
def test_main_turns_refused_writes_into_one_line(code_errno, tmp_path, monkeypatch, capsys):
    from impbench.cli import data as data_cli

    target = tmp_path / "sim" / "x.vcf.gz"

    def refused(*args, **kwargs):
        raise OSError(code_errno, os.strerror(code_errno), str(target))

    monkeypatch.setattr(data_cli, "simulate_dataset", refused)
    code, _, err = run_cli(["simulate", "--dataset", "sim-los", "--out", tmp_path / "sim"], capsys)
    assert code == 1
    assert one_line(err) == f"impbench: error: {target}: {os.strerror(code_errno)}"


def test_other_os_errors_are_not_hidden(tmp_path, monkeypatch):
    from impbench.cli import data as data_cli

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(data_cli, "simulate_dataset", broken)
    with pytest.raises(OSError, match="Input/output error"):
        main(["simulate", "--dataset", "sim-los", "--out", str(tmp_path / "sim")])


# ---------------------------------------------------------------------------- damaged stores
def test_a_truncated_store_suggests_force(good_card, capsys):
    store = prepare(good_card)
    data = store.path.read_bytes()
    store.path.write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(["prepare", "--dataset", "good", "--cards", good_card.path.parent], capsys)
    line = one_line(err)
    assert code == 2 and str(store.path) in line
    assert line.endswith("rebuild it: impbench prepare --dataset good --force")
    code, out, _ = run_cli(["prepare", "--dataset", "good", "--cards", good_card.path.parent, "--force"], capsys)
    assert code == 0 and out.strip().splitlines()[-1] == str(store.path)
    assert DatasetStore.open(store.path).dataset_hash == store.dataset_hash


def test_damaged_codes_suggest_force(good_card):
    store = prepare(good_card)
    data = bytearray(store.path.read_bytes())
    # overwrite the middle of the file (compressed genotype chunks) with garbage
    middle = len(data) // 2
    data[middle - 4000 : middle + 4000] = np.random.default_rng(0).integers(0, 256, 8000, dtype=np.uint8).tobytes()
    store.path.write_bytes(bytes(data))
    damaged = DatasetStore.open(store.path)
    with pytest.raises(ImpbenchError, match="rebuild it: impbench prepare --dataset good --force") as info:
        for split in ("train", "val", "test"):
            damaged.read_split(split)
    assert str(info.value).startswith(f"{store.path}: corrupt dataset store (") and "\n" not in str(info.value)
