"""Beagle's process dies with the harness: SIGKILL (parent-death signal), SIGTERM and Ctrl-C
(the process group killed), and each call has its own folder. A stand-in shell script plays
the JVM (``exec sleep``, as Debian's wrapper ``exec``s java)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from impbench.errors import ImpbenchError
from impbench_beagle.locate import BeagleTool
from impbench.imputers.tools import new_call_dir
from impbench.testing.processes import alive, kill_all, read_pid, wait_for
from impbench_beagle.process import run_beagle

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")

CHILD = """
import sys
from pathlib import Path
from impbench_beagle.locate import BeagleTool
from impbench_beagle.process import run_beagle
run_beagle(BeagleTool(argv=(sys.argv[1],), source="test", java_args_in_env=True), [], Path(sys.argv[2]))
"""


def fake_tool(folder: Path, body: str) -> Path:
    script = folder / "fake-beagle"
    script.write_text("#!/bin/sh\nPATH=/usr/bin:/bin:$PATH\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def start_harness(tmp_path: Path, body: str) -> subprocess.Popen:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tool = fake_tool(tmp_path, body)
    return subprocess.Popen([sys.executable, "-c", CHILD, str(tool), str(run_dir)], env=dict(os.environ))


def test_sigkill_of_the_harness_kills_the_tool(tmp_path):
    harness = start_harness(tmp_path, 'echo $$ > "$PWD/tool.pid"\nexec sleep 60')
    tool_pid = read_pid(tmp_path / "run" / "tool.pid")
    try:
        assert alive(tool_pid)
        harness.kill()
        harness.wait()
        assert wait_for(lambda: not alive(tool_pid), 5), "the tool outlived its SIGKILLed parent"
    finally:
        kill_all(tool_pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_kill_the_whole_group(tmp_path, sig):
    body = 'sleep 60 &\necho $! > "$PWD/grandchild.pid"\necho $$ > "$PWD/tool.pid"\nwait'
    harness = start_harness(tmp_path, body)
    tool_pid = read_pid(tmp_path / "run" / "tool.pid")
    grandchild = read_pid(tmp_path / "run" / "grandchild.pid")
    try:
        harness.send_signal(sig)
        code = harness.wait(20)
        assert code != 0
        if sig == signal.SIGTERM:
            assert code == -signal.SIGTERM  # the harness still ends by the signal
        assert wait_for(lambda: not alive(tool_pid) and not alive(grandchild), 5)
    finally:
        kill_all(tool_pid, grandchild)


def test_an_exception_while_waiting_kills_the_group(tmp_path, monkeypatch):
    """Any exception raised while waiting (here from the poll's sleep) kills the tool first."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tool = BeagleTool(argv=(str(fake_tool(tmp_path, 'echo $$ > "$PWD/tool.pid"\nexec sleep 60')),), source="test",
                      java_args_in_env=True)
    import impbench_beagle.process as process

    real_sleep = time.sleep

    def interrupted(seconds):
        if (run_dir / "tool.pid").is_file() and (run_dir / "tool.pid").read_text().strip():
            raise RuntimeError("the harness stops")
        real_sleep(seconds)

    monkeypatch.setattr(process.time, "sleep", interrupted)
    with pytest.raises(RuntimeError, match="the harness stops"):
        run_beagle(tool, [], run_dir)
    monkeypatch.setattr(process.time, "sleep", real_sleep)
    tool_pid = int((run_dir / "tool.pid").read_text())
    try:
        assert wait_for(lambda: not alive(tool_pid), 5)
    finally:
        kill_all(tool_pid)


def test_signal_handlers_are_restored(tmp_path):
    tool = BeagleTool(argv=(str(fake_tool(tmp_path, WRITES_OUTPUT)),), source="test", java_args_in_env=True)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    run_beagle(tool, [], tmp_path)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


WRITES_OUTPUT = """
for a in "$@"; do case "$a" in out=*) out="${a#out=}";; esac; done
echo "Command line: $*" > "$out.log"
sleep 0.3
echo "$PWD" | gzip > "$out.vcf.gz"
"""


def test_concurrent_calls_write_their_own_files(tmp_path):
    """Two calls for the same target at once (two runs on one run folder): each gets its own
    folder, so neither reads or removes the other's output."""
    tool = BeagleTool(argv=(str(fake_tool(tmp_path, WRITES_OUTPUT)),), source="test", java_args_in_env=True)
    work = tmp_path / "work"
    folders = [new_call_dir(work, "impute-0123456789ab") for _ in range(2)]
    assert folders[0] != folders[1] and all(f.parent == work and f.is_dir() for f in folders)
    assert all(not any(ch.isspace() for ch in f.name) and f.name.startswith("impute-0123456789ab-") for f in folders)
    runs, errors = {}, []

    def call(folder):
        try:
            runs[folder] = run_beagle(tool, [], folder)
        except ImpbenchError as err:  # pragma: no cover - the failure this test guards against
            errors.append(err)

    threads = [threading.Thread(target=call, args=(f,)) for f in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    import gzip

    outputs = {run.output_vcf for run in runs.values()}
    assert len(outputs) == 2
    for folder, run in runs.items():
        assert run.output_vcf.parent == folder
        assert gzip.decompress(run.output_vcf.read_bytes()).decode().strip() == str(folder)
