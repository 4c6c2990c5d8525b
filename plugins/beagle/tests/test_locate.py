"""Finding Beagle, its version line, the Java heap, and the missing-Beagle message."""

from __future__ import annotations

import os
import stat

import pytest

from impbench.errors import ImpbenchError
from impbench_beagle.locate import BeagleTool, _probe, beagle_version, check_heap, find_beagle, parse_version


@pytest.fixture
def empty_path(tmp_path, monkeypatch):
    """PATH with no beagle and no java; BEAGLE_JAR unset."""
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.delenv("BEAGLE_JAR", raising=False)
    _probe.cache_clear()
    yield bare
    _probe.cache_clear()


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def test_missing_beagle_is_one_line_naming_what_and_how(empty_path):
    with pytest.raises(ImpbenchError) as info:
        find_beagle()
    message = str(info.value)
    assert "\n" not in message
    assert "no `beagle` command on PATH" in message and "BEAGLE_JAR is not set" in message
    assert "apt-get install beagle" in message and "BEAGLE_JAR=" in message


def test_beagle_jar_that_is_not_a_file(empty_path, monkeypatch):
    monkeypatch.setenv("BEAGLE_JAR", "/nowhere/beagle.jar")
    with pytest.raises(ImpbenchError, match=r"BEAGLE_JAR=/nowhere/beagle.jar is not a file.*apt-get install beagle"):
        find_beagle()


def test_beagle_jar_without_java(empty_path, monkeypatch, tmp_path):
    jar = tmp_path / "beagle.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setenv("BEAGLE_JAR", str(jar))
    with pytest.raises(ImpbenchError) as info:
        find_beagle()
    assert "Java not found" in str(info.value) and "apt-get install default-jre" in str(info.value)
    assert "\n" not in str(info.value)


def test_jar_option_wins_and_runs_under_java(empty_path, tmp_path, monkeypatch):
    java = executable(empty_path / "java", "#!/bin/sh\nexit 0\n")
    jar = tmp_path / "b.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setenv("BEAGLE_JAR", "/nowhere/else.jar")
    tool = find_beagle(beagle_jar=str(jar))
    assert tool.argv == (str(java), "-jar", str(jar)) and tool.source == "beagle.beagle_jar"
    argv, env = tool.command(["gt=a.vcf.gz"], "4g")
    assert argv == [str(java), "-Xmx4g", "-jar", str(jar), "gt=a.vcf.gz"]


def test_wrapper_gets_heap_through_jdk_java_options(monkeypatch):
    monkeypatch.setenv("JDK_JAVA_OPTIONS", "-Dx=1")
    tool = BeagleTool(argv=("/usr/bin/beagle",), source="PATH", java_args_in_env=True)
    argv, env = tool.command(["gt=a"], "512m")
    assert argv == ["/usr/bin/beagle", "gt=a"]
    assert env["JDK_JAVA_OPTIONS"] == "-Dx=1 -Xmx512m"
    argv, env = tool.command(["gt=a"], None)
    assert env["JDK_JAVA_OPTIONS"] == "-Dx=1"


@pytest.mark.parametrize("heap", ["4g", "512m", "4096", "2G"])
def test_heap_sizes_accepted(heap):
    check_heap(heap)


@pytest.mark.parametrize("heap", ["4 GB", "-Xmx4g", "lots"])
def test_heap_sizes_refused(heap):
    with pytest.raises(ImpbenchError, match="java_heap"):
        check_heap(heap)


def test_parse_version_skips_java_notes():
    text = "NOTE: Picked up JDK_JAVA_OPTIONS: -Xmx1g\nbeagle.22Jul22.46e.jar (version 5.4)\nCopyright (C) 2014-2022 Brian L. Browning\n"
    version = parse_version(text)
    assert version.build == "beagle.22Jul22.46e.jar" and version.version == "5.4"
    assert str(version) == "5.4 (beagle.22Jul22.46e.jar)"
    assert parse_version("Usage: something else\n") is None


def test_fake_beagle_on_path_version_probe(empty_path):
    executable(empty_path / "beagle", "#!/bin/sh\necho 'beagle.01Jan99.abc.jar (version 5.9)'\necho usage\n")
    tool = find_beagle()
    assert tool.source == "PATH" and tool.java_args_in_env
    assert beagle_version(tool).version == "5.9"


def test_command_that_is_not_beagle(empty_path):
    executable(empty_path / "beagle", "#!/bin/sh\necho 'hello'\nexit 3\n")
    with pytest.raises(ImpbenchError, match=r"does not look like Beagle 5 \(exit 3; first line: 'hello'\)"):
        beagle_version(find_beagle())


def test_wrapper_without_java(empty_path):
    # What Debian's wrapper prints when java is not installed.
    executable(empty_path / "beagle", "#!/bin/sh\necho 'beagle: 5: exec: java: not found' >&2\nexit 127\n")
    with pytest.raises(ImpbenchError, match="Java not found.*apt-get install default-jre"):
        beagle_version(find_beagle())


@pytest.mark.beagle
def test_installed_beagle_reports_version():
    _probe.cache_clear()
    version = beagle_version(find_beagle())
    assert version.version.startswith("5."), version
    assert version.build.endswith(".jar")
    assert os.environ.get("PATH")


def test_require_beagle_skips_locally_and_fails_under_ci(empty_path, monkeypatch):
    from impbench_beagle.testing import require_beagle

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Beagle not found"):
        require_beagle()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and Beagle is missing: Beagle not found"):
        require_beagle()


def test_require_beagle_passes_when_present(empty_path, monkeypatch):
    from impbench_beagle.testing import require_beagle

    executable(empty_path / "beagle", "#!/bin/sh\necho 'beagle.x.jar (version 5.4)'\n")
    monkeypatch.setenv("CI", "true")
    require_beagle()
