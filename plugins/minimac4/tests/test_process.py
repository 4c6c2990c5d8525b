"""Minimac4's process dies with the harness: SIGKILL (parent-death signal), SIGTERM and Ctrl-C
(the process group killed), and each call has its own folder. ``sleep`` plays Minimac4."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from impbench.errors import ImpbenchError
from impbench.imputers.tools import new_call_dir
from impbench.testing.processes import alive, kill_all, read_pid, wait_for
from impbench_minimac4.process import run_tool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")

CHILD = """
import sys
from pathlib import Path
from impbench_minimac4.process import run_tool
run_dir = Path(sys.argv[1])
run_tool(["/bin/sh", "-c", sys.argv[2]], run_dir, run_dir / "console.txt", "imputation")
"""


def start_harness(run_dir: Path, script: str) -> subprocess.Popen:
    run_dir.mkdir()
    return subprocess.Popen([sys.executable, "-c", CHILD, str(run_dir), script], env=dict(os.environ))


def test_sigkill_of_the_harness_kills_the_tool(tmp_path):
    harness = start_harness(tmp_path / "run", 'echo $$ > tool.pid; exec sleep 60')
    tool_pid = read_pid(tmp_path / "run" / "tool.pid")
    try:
        harness.kill()
        harness.wait()
        assert wait_for(lambda: not alive(tool_pid), 5), "the tool outlived its SIGKILLed parent"
    finally:
        kill_all(tool_pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_kill_the_whole_group(tmp_path, sig):
    harness = start_harness(tmp_path / "run", 'sleep 60 & echo $! > grandchild.pid; echo $$ > tool.pid; wait')
    tool_pid = read_pid(tmp_path / "run" / "tool.pid")
    grandchild = read_pid(tmp_path / "run" / "grandchild.pid")
    try:
        harness.send_signal(sig)
        code = harness.wait(20)
        assert code != 0
        if sig == signal.SIGTERM:
            assert code == -signal.SIGTERM
        assert wait_for(lambda: not alive(tool_pid) and not alive(grandchild), 5)
    finally:
        kill_all(tool_pid, grandchild)


def test_timeout_kills_the_tool(tmp_path):
    with pytest.raises(ImpbenchError, match=r"stopped after 0.5 s \(minimac4.timeout\)"):
        run_tool(["/bin/sh", "-c", "echo $$ > tool.pid; exec sleep 60"], tmp_path, tmp_path / "c.txt", "imputation", 0.5)
    tool_pid = int((tmp_path / "tool.pid").read_text())
    assert wait_for(lambda: not alive(tool_pid), 5)


def test_concurrent_calls_write_their_own_files(tmp_path):
    work = tmp_path / "work"
    folders = [new_call_dir(work, "impute-0123456789ab") for _ in range(2)]
    assert folders[0] != folders[1] and all(f.parent == work and f.is_dir() for f in folders)
    errors = []

    def call(folder):
        try:
            run_tool(["/bin/sh", "-c", 'sleep 0.3; pwd > out.txt'], folder, folder / "console.txt", "imputation")
        except ImpbenchError as err:  # pragma: no cover
            errors.append(err)

    threads = [threading.Thread(target=call, args=(f,)) for f in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert [(f / "out.txt").read_text().strip() for f in folders] == [str(f) for f in folders]
