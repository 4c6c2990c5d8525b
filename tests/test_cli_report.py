"""``impbench report`` on the command line: output path, one-line errors (exit 2)."""

from __future__ import annotations

import pytest

from impbench.cli import main
from impbench.testing.synthetic import write_synthetic_run

SMALL = dict(levels=(0.05,), replicates=2, bin_edges=(0, 0.05, 0.5), n_samples=4)


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_report_prints_html_path(tmp_path, capsys):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major",), **SMALL)
    code, out, err = _run(["report", str(run), "--format", "html,md"], capsys)
    assert code == 0, err
    html_path = run / "report" / "report.html"
    assert out.strip().splitlines()[-1] == str(html_path)
    assert html_path.stat().st_size > 0 and (run / "report" / "report.md").is_file()
    assert not (run / "report" / "summary.csv").exists()


def test_report_out_and_csv_only(tmp_path, capsys):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major",), **SMALL)
    code, out, err = _run(["report", str(run), "--out", str(tmp_path / "o"), "--format", "csv"], capsys)
    assert code == 0, err
    assert out.strip() == str(tmp_path / "o")
    assert (tmp_path / "o" / "summary.csv").is_file()


@pytest.mark.parametrize("argv, message", [
    (["report", "{tmp}/absent"], "no such folder"),
    (["report", "{tmp}"], "not a run folder (no manifest.json"),
    (["report", "{run}", "--format", "pdf"], "unknown report format(s) pdf"),
    (["report", "{run}", "{run}"], "report takes one run folder, got 2"),
    (["report", "--compare", "{run}"], "--compare takes two or more run folders"),
])
def test_user_mistakes_are_one_line_errors(tmp_path, capsys, argv, message):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major",), **SMALL)
    argv = [a.format(tmp=tmp_path, run=run) for a in argv]
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("impbench: error: ") and message in err
    assert "Traceback" not in err


def test_compare_prints_html_path(tmp_path, capsys):
    run_a = write_synthetic_run(tmp_path / "syn" / "a", imputers=("major",), seed=1, **SMALL)
    run_b = write_synthetic_run(tmp_path / "syn" / "b", imputers=("major",), seed=2, **SMALL)
    code, out, err = _run(["report", "--compare", str(run_a), str(run_b), "--format", "html"], capsys)
    assert code == 0, err
    path = out.strip().splitlines()[-1]
    assert path == str(run_a / "report" / "compare-synthetic-b" / "compare.html")


def test_compare_of_three_runs_writes_one_page_per_run_against_the_first(tmp_path, capsys):
    runs = [write_synthetic_run(tmp_path / "syn" / name, imputers=("major",), seed=i, **SMALL)
            for i, name in enumerate(("a", "b", "c"))]
    code, out, err = _run(["report", "--compare", *map(str, runs), "--format", "html,csv"], capsys)
    assert code == 0, err
    assert out.strip().splitlines() == [str(runs[0] / "report" / f"compare-synthetic-{n}" / "compare.html")
                                        for n in ("b", "c")]
    code, out, err = _run(["report", "--compare", *map(str, runs), "--format", "csv", "--out", str(tmp_path / "o")],
                          capsys)
    assert code == 0, err
    assert (tmp_path / "o" / "compare-synthetic-b" / "compare.csv").is_file()
    assert (tmp_path / "o" / "compare-synthetic-c" / "compare.csv").is_file()
    code, out, err = _run(["report", "--compare", str(runs[0]), str(runs[1]), str(runs[0])], capsys)
    assert code == 2 and "a run folder is given twice" in err
