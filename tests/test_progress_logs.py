"""Logs without a terminal: plain timestamped lines for every stage, fit and unit (start, end,
seconds) and a heartbeat of a long stage, for ``prepare``, ``run`` and ``report`` (a fake clock:
no test here waits for the heartbeat's wall-clock interval)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

from impbench.bench.runner import Runner
from impbench.bench.settings import RunSettings
from impbench.cli import main
from impbench.imputers import registry
from impbench.progress import RichProgress

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_heartbeat_of_a_long_fit_carries_epoch_and_validation_score():
    out, clock = io.StringIO(), FakeClock()
    progress = RichProgress(plain=True, out=out, clock=clock, heartbeat_s=30)
    progress.update("biunet fit · starting", 0, None)
    clock.now += 31
    progress.update("biunet fit · train · epoch 3/12 · loss 0.2100 · val R² 0.9130", 30, 120)
    progress.heartbeat()
    clock.now += 10
    progress.heartbeat()  # 10 s since the last line: quiet
    clock.now += 25
    progress.heartbeat()
    clock.now += 4
    progress.finish("biunet fit", "ok")
    lines = out.getvalue().splitlines()
    assert all(re.match(STAMP, line) for line in lines), lines
    text = [line[20:] for line in lines]
    assert text[0] == "biunet fit: started"
    assert text[1] == "biunet fit · train · epoch 3/12 · loss 0.2100 · val R² 0.9130 · 30/120 · running for 31 s"
    assert text[2].endswith("running for 66 s") and len(text) == 4
    assert text[3] == "biunet fit: ok after 70.0 s"


def test_plain_stages_say_start_and_end_with_seconds():
    out, clock = io.StringIO(), FakeClock()
    progress = RichProgress(plain=True, out=out, clock=clock)
    progress.update("prepare sim read", 10, None)
    clock.now += 2.5
    progress.update("prepare sim read", 100, 100)
    progress.print("a message")
    progress.finish("knn L0.1 r0", "timed_out")
    text = [line[20:] for line in out.getvalue().splitlines()]
    assert text == ["prepare sim read: started", "prepare sim read: done in 2.5 s", "a message", "knn L0.1 r0: timed out"]


def test_the_heartbeat_thread_runs_without_a_terminal():
    out = io.StringIO()
    with RichProgress(plain=True, out=out, heartbeat_s=0.05) as progress:
        progress.update("slow fit · fit", 0, 1)
        import time

        deadline = time.monotonic() + 60  # an event (a line), not a fixed wait
        while "running for" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "slow fit · fit · 0/1 · running for" in out.getvalue()


@pytest.fixture
def store():
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    sim = simulate_matrix(n_samples=40, sequence_length=40_000, seed=2)
    return InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 80))), name="mem")


def test_a_run_logs_every_fit_and_unit(store, tmp_path, monkeypatch):
    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "")
    registry.reset()
    out = io.StringIO()
    settings = RunSettings(dataset="mem", imputers=["major", "knn"], levels=(0.1,), replicates=2, out=tmp_path,
                           run_name="t", device="cpu", threads=1, n_boot=10)
    with RichProgress(plain=True, out=out) as progress:
        Runner(settings, store, progress=progress).run()
    text = [line[20:] for line in out.getvalue().splitlines()]
    for label in ("major fit", "knn fit", "major L0.1 r0", "major L0.1 r1", "knn L0.1 r0", "knn L0.1 r1"):
        assert f"{label}: started" in text, text
        assert any(re.fullmatch(rf"{label}: ok after \d+\.\d s", line) for line in text), text
    assert "units: started" in text and any(line.startswith("units: done in") for line in text)


def test_prepare_and_report_log_lines_when_output_is_redirected(tmp_path, monkeypatch, capsys):
    """In-process with captured (non-terminal) output: prepare's stages and report's steps come
    as timestamped lines, no bars."""
    monkeypatch.setenv("IMPBENCH_CACHE", str(tmp_path / "cache"))
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "small.toml").write_text('description = "small"\n[simulation]\nmodel = "OutOfAfrica_3G09"\n'
                                      'samples = { YRI = 20, CEU = 20 }\nlength = 100_000\nseed = 3\n')
    with pytest.raises(SystemExit) as info:
        main(["prepare", "--dataset", "small", "--cards", str(cards)])
    err = capsys.readouterr().err
    assert info.value.code == 0
    assert not any(re.search(r" \d+:\d\d:\d\d$", line) for line in err.splitlines()), err  # no bar's elapsed time
    stamped = [line[20:] for line in err.splitlines() if re.match(STAMP, line)]
    assert any(line.startswith("simulate: started") or line.startswith("genotypes: started") for line in stamped), err
    assert any(re.search(r": done in \d+\.\d s$", line) for line in stamped), err

    from impbench.testing.synthetic import write_synthetic_run

    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major",), levels=(0.05,), replicates=2)
    with pytest.raises(SystemExit) as info:
        main(["report", str(run), "--format", "md"])
    err = capsys.readouterr().err
    assert info.value.code == 0, err
    stamped = [line[20:] for line in err.splitlines() if re.match(STAMP, line)]
    assert len(stamped) > 2 and stamped[0].startswith("writing report: ") and re.fullmatch(r"writing report: done in \d+\.\d s", stamped[-1])
