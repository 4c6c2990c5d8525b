"""The leaderboard in a real browser: a page of the standard suite's size (7 scenarios, 6
imputers, one n/a) rendered by headless Chromium at 1,280 px. The standings must be on the
first screen (results first) and the page must not overflow horizontally. Skipped without
chromium, failing under ``CI=true``."""

from __future__ import annotations

import os
import re

import pytest

from impbench.report.leaderboard import build_leaderboard
from impbench.testing.browser import find_chromium, run_chromium, with_probe
from impbench.testing.synthetic import write_synthetic_run

WIDTH = 1280
PROBE = """<script>
window.addEventListener('load', function () {
  var table = document.querySelector('#standings table');
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = 'standings_bottom=' + Math.round(table.getBoundingClientRect().bottom + window.scrollY)
    + ' scroll_width=' + document.documentElement.scrollWidth + ' client_width=' + document.documentElement.clientWidth;
  document.body.appendChild(out);
});
</script>"""
SCENARIOS = ("sim-1kgp-uniform", "sim-1kgp-array", "1kgp-chr20-array", "sim-los-aa", "sim-los-ca-to-aa", "sim-sgdp",
             "sim-1kgp-ceu-to-yri")


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI=true): run scripts/system-deps.sh as root")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    imputers = ("major", "allele-freq", "knn", "minimac4", "beagle", "biunet")
    for i, name in enumerate(SCENARIOS):
        levels = (0.88,) if "array" in name else (0.05, 0.15, 0.25)
        write_synthetic_run(root / "standard" / "ds" / name, imputers=imputers, levels=levels, seed=i,
                            tied=(("beagle", "biunet"),), failed={"biunet": 1} if i == 3 else None)
    built = build_leaderboard([root / "standard"], root / "board")
    return built


def test_standings_on_the_first_screen_and_no_horizontal_overflow(board, chromium, tmp_path):
    html = board.files["html"].read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(with_probe(html, PROBE), encoding="utf-8")
    done = run_chromium(chromium, tmp_path / "profile", f"--window-size={WIDTH},1000", "--dump-dom", probe.as_uri())
    found = re.search(r"standings_bottom=(\d+) scroll_width=(\d+) client_width=(\d+)", done.stdout)
    assert found, f"no measurement from chromium (exit {done.returncode}): {done.stderr[-2000:]}"
    bottom, scroll, client = map(int, found.groups())
    assert bottom <= 1000, f"the standings end at {bottom} px, below the first screen"
    assert scroll <= client, f"horizontal overflow: {scroll} > {client}"


def test_screenshot_renders(board, chromium, tmp_path):
    shot = tmp_path / "board.png"
    done = run_chromium(chromium, tmp_path / "profile", f"--window-size={WIDTH},2400", f"--screenshot={shot}",
                        board.files["html"].as_uri())
    assert shot.is_file() and shot.stat().st_size > 20_000, done.stderr[-2000:]
    if os.environ.get("IMPBENCH_KEEP_SCREENSHOT"):
        shot.replace(os.environ["IMPBENCH_KEEP_SCREENSHOT"])
