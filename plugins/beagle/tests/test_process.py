"""Running a Beagle process: failures quote the log, hung runs are stopped (fake Beagles)."""

from __future__ import annotations

import stat
import time

import pytest

from impbench.errors import ImpbenchError
from impbench_beagle.locate import BeagleTool
from impbench_beagle.process import log_tail, run_beagle


def fake_tool(tmp_path, body: str) -> BeagleTool:
    script = tmp_path / "fake-beagle"
    script.write_text("#!/bin/sh\nPATH=/usr/bin:/bin:$PATH\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return BeagleTool(argv=(str(script),), source="test", java_args_in_env=True)


# Writes ``<out>.vcf.gz`` and ``<out>.log`` from the out= argument, like Beagle.
WRITES_OUTPUT = """
for a in "$@"; do case "$a" in out=*) out="${a#out=}";; esac; done
echo "beagle.fake.jar (version 5.4)"
echo "Command line: $*" > "$out.log"
printf 'x' | gzip > "$out.vcf.gz"
"""


def test_success_returns_paths_time_and_memory(tmp_path):
    run = run_beagle(fake_tool(tmp_path, WRITES_OUTPUT), ["gt=t.vcf.gz", "seed=3"], tmp_path, java_heap="1g")
    assert run.output_vcf == tmp_path / "out.vcf.gz" and run.output_vcf.is_file()
    assert run.log == tmp_path / "out.log"
    assert "seed=3" in run.log.read_text() and "out=out" in run.log.read_text()
    assert "version 5.4" in run.console.read_text()
    assert run.wall_s >= 0 and run.peak_rss_mb > 0


def test_nonzero_exit_quotes_last_lines_without_stack_frames(tmp_path):
    body = WRITES_OUTPUT + """
echo 'java.lang.IllegalArgumentException: '
echo ''
echo 'Marker window contains no reference markers.'
echo '	at vcf.RefTargSlidingWindow$Reader.window(RefTargSlidingWindow.java:321)'
echo 'Terminating program.'
exit 1
"""
    with pytest.raises(ImpbenchError) as info:
        run_beagle(fake_tool(tmp_path, body), [], tmp_path)
    message = str(info.value)
    assert message.startswith("beagle failed (exit 1)") and "\n" not in message
    assert "Marker window contains no reference markers. | Terminating program." in message
    assert "RefTargSlidingWindow.java" not in message
    assert str(tmp_path / "out.console.txt") in message


def test_missing_output_is_an_error(tmp_path):
    (tmp_path / "out.vcf.gz").write_bytes(b"stale")  # a stale output from an earlier run is not taken
    with pytest.raises(ImpbenchError, match=r"beagle wrote no out.vcf.gz.*all done"):
        run_beagle(fake_tool(tmp_path, "echo 'all done'"), [], tmp_path)


def test_timeout_stops_a_hung_run(tmp_path):
    start = time.monotonic()
    with pytest.raises(ImpbenchError, match=r"stopped after 1 s \(beagle.timeout\).*started"):
        run_beagle(fake_tool(tmp_path, "echo started\nsleep 60"), [], tmp_path, timeout=1)
    assert time.monotonic() - start < 15


def test_main_thread_exception_that_hangs_is_stopped(tmp_path):
    # Beagle 5.4 prints this and never exits when chrom= names a contig the panel lacks.
    body = """
echo 'Exception in thread "main" java.lang.IllegalArgumentException: No VCF records found in the specified interval.'
echo 'Check chromosome identifier and interval: 22'
echo '	at vcf.IntervalVcfIt.<init>(IntervalVcfIt.java:55)'
sleep 60
"""
    start = time.monotonic()
    with pytest.raises(ImpbenchError, match=r"Java exception.*Check chromosome identifier and interval: 22"):
        run_beagle(fake_tool(tmp_path, body), [], tmp_path)
    assert time.monotonic() - start < 15


def test_log_tail_falls_back_to_the_next_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    log = tmp_path / "b.log"
    log.write_text("one\ntwo\n")
    assert log_tail(tmp_path / "absent", empty, log) == "one | two"
    assert log_tail(tmp_path / "absent") == "(no output)"
