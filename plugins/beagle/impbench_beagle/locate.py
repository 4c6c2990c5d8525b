"""Finding Beagle and reading its version.

Where Beagle comes from, in order:

1. the ``beagle_jar`` option (a path to ``beagle.jar``), run as ``JAVA -Xmx.. -jar JAR``;
2. the ``BEAGLE_JAR`` environment variable, run the same way;
3. the ``beagle`` command on ``PATH`` (Debian's and bioconda's shell wrappers), whose Java heap
   is set through ``JDK_JAVA_OPTIONS`` since the wrapper passes no Java options.

``JAVA`` is the ``java`` option (default ``java`` found on ``PATH``).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from impbench.errors import ImpbenchError

INSTALL_HINT = "install it (apt-get install beagle, or conda install -c bioconda beagle) or set BEAGLE_JAR=/path/to/beagle.jar"
JAVA_HINT = "install a Java runtime (apt-get install default-jre)"
_VERSION_LINE = re.compile(r"^(?P<build>\S+\.jar)\s+\(version\s+(?P<version>[^)]+)\)")
_HEAP = re.compile(r"^[0-9]+[kKmMgGtT]?$")


@dataclass(frozen=True)
class BeagleTool:
    """A runnable Beagle: the argv prefix and how to give it a Java heap.

    argv : the command up to (not including) Beagle's own ``key=value`` arguments.
    source : how it was found ("beagle_jar option", "BEAGLE_JAR", "PATH").
    java_args_in_env : True for a wrapper command that takes Java options only through
        ``JDK_JAVA_OPTIONS``.
    """

    argv: tuple[str, ...]
    source: str
    java_args_in_env: bool = False
    jar: str | None = None

    def command(self, beagle_args: list[str], java_heap: str | None) -> tuple[list[str], dict[str, str]]:
        """The full argv and the environment for one run with ``beagle_args`` (``key=value``)."""
        check_heap(java_heap)
        env = dict(os.environ)
        argv = list(self.argv)
        if java_heap:
            if self.java_args_in_env:
                current = env.get("JDK_JAVA_OPTIONS", "").strip()
                env["JDK_JAVA_OPTIONS"] = f"{current} -Xmx{java_heap}".strip()
            else:
                argv.insert(1, f"-Xmx{java_heap}")
        return argv + list(beagle_args), env


@dataclass(frozen=True)
class BeagleVersion:
    """Beagle's version as its usage text states it: build ``beagle.22Jul22.46e.jar``, version ``5.4``."""

    build: str
    version: str

    def __str__(self) -> str:
        return f"{self.version} ({self.build})"


def check_heap(java_heap: str | None) -> None:
    """Raise ``ImpbenchError`` unless ``java_heap`` is None or like ``512m``, ``4g``, ``4096``."""
    if java_heap and not _HEAP.match(java_heap):
        raise ImpbenchError(f"beagle.java_heap={java_heap!r} is not a Java heap size such as 512m or 4g")


def _java(java: str | None) -> str:
    name = java or "java"
    found = shutil.which(name)
    if found is None:
        where = f"java={name!r} (beagle.java option)" if java else "the `java` command on PATH"
        raise ImpbenchError(f"Java not found: {where} is missing; {JAVA_HINT}")
    return found


def _jar_tool(jar: str, source: str, java: str | None) -> BeagleTool:
    path = Path(os.path.expanduser(jar))
    if not path.is_file():
        raise ImpbenchError(f"Beagle not found: {source}={jar} is not a file; {INSTALL_HINT}")
    return BeagleTool(argv=(_java(java), "-jar", str(path)), source=source, jar=str(path))


def find_beagle(beagle_jar: str | None = None, java: str | None = None) -> BeagleTool:
    """The Beagle to run (see the module docstring for the order); ``ImpbenchError`` if none.

    The error is one line naming what is missing and how to install it.
    """
    if beagle_jar:
        return _jar_tool(beagle_jar, "beagle.beagle_jar", java)
    env_jar = os.environ.get("BEAGLE_JAR", "").strip()
    if env_jar:
        return _jar_tool(env_jar, "BEAGLE_JAR", java)
    command = shutil.which("beagle")
    if command is None:
        raise ImpbenchError(f"Beagle not found: no `beagle` command on PATH and BEAGLE_JAR is not set; {INSTALL_HINT}")
    return BeagleTool(argv=(command,), source="PATH", java_args_in_env=True)


def parse_version(usage_text: str) -> BeagleVersion | None:
    """Beagle's version from its usage text (first line ``beagle.22Jul22.46e.jar (version 5.4)``).

    Lines before it (``NOTE: Picked up JDK_JAVA_OPTIONS ...``) are skipped; None if absent.
    """
    for line in usage_text.splitlines():
        match = _VERSION_LINE.match(line.strip())
        if match:
            return BeagleVersion(build=match["build"], version=match["version"].strip())
    return None


@functools.lru_cache(maxsize=8)
def _probe(argv: tuple[str, ...]) -> BeagleVersion:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
    except OSError as err:
        raise ImpbenchError(f"Beagle could not start: {' '.join(argv)}: {err.strerror}; {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise ImpbenchError(f"Beagle did not answer within 120 s: {' '.join(argv)}") from None
    text = done.stdout + "\n" + done.stderr
    version = parse_version(text)
    if version is None:
        if "java" in text and ("not found" in text or "No such file" in text):
            raise ImpbenchError(f"Java not found: `{' '.join(argv)}` could not start java; {JAVA_HINT}")
        first = next((line for line in text.splitlines() if line.strip()), "(no output)")
        raise ImpbenchError(
            f"`{' '.join(argv)}` does not look like Beagle 5 (exit {done.returncode}; first line: {first.strip()!r}); {INSTALL_HINT}"
        )
    return version


def beagle_version(tool: BeagleTool) -> BeagleVersion:
    """Run Beagle without arguments (it prints its usage) and read its version; cached per command."""
    return _probe(tool.argv)
