"""Install the lowest versions pyproject.toml allows into a virtual environment and run a
smoke of the test suite there, so a floor that no longer works fails CI (`make test`).

    python scripts/floors.py .venv-floors tests/test_ops.py tests/test_nn.py

Every ``name>=version`` of the dependencies and of the extras named below becomes
``name==version``; gdnet itself is installed editable without dependencies, and the install
must not print setuptools' warning box (see the Makefile). The environment is kept between
runs and reinstalled only when the floors change.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# cuda12/cuda13 need a GPU machine; distributed (mpi4py, Open MPI) is tested under mpiexec by the suite
EXTRAS = ("plot", "tests")
BOX = "Editable installation"


def quiet_editable() -> dict[str, str]:
    """The environment the Makefile installs gdnet with (QUIET_EDITABLE: the filter for the
    notice setuptools prints on every editable install of a package-dir layout)."""
    makefile = (ROOT / "Makefile").read_text()
    name, value = re.search(r'^QUIET_EDITABLE := (\w+)="([^"]*)"$', makefile, re.M).groups()
    return {name: value}


def _requirements(text: str) -> list[str]:
    """The dependencies and the EXTRAS' requirements of a pyproject.toml."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = None
    if tomllib is not None:
        project = tomllib.loads(text)["project"]
        extras = project.get("optional-dependencies", {})
        return list(project["dependencies"]) + [r for name in EXTRAS for r in extras.get(name, [])]
    found = re.findall(r'^dependencies = \[(.*?)^\]', text, re.S | re.M)[0]
    for name in EXTRAS:
        found += re.findall(rf'^{name} = \[(.*?)\]', text, re.M)[0]
    return re.findall(r'"([^"]+)"', found)


def floors(text: str) -> list[str]:
    """``name==version`` for each ``name>=version`` requirement (each must have a floor)."""
    pins = []
    for requirement in _requirements(text):
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", requirement.strip())
        if match is None:
            raise SystemExit(f"floors.py: {requirement!r} has no '>=' floor; give it one (the lowest version that "
                             "works)")
        pins.append(f"{match[1]}=={match[2]}")
    return list(dict.fromkeys(pins))  # an extra may repeat another's requirement


class NoWheel(Exception):
    """pip found no release of a pinned floor for this Python (or no index to look in)."""


def run(command: list[str], env: dict | None = None) -> str:
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode and "No matching distribution found" in output:
        raise NoWheel(output.strip().splitlines()[-1])
    if done.returncode:
        raise SystemExit(f"floors.py: {' '.join(command)} failed:\n{output}")
    return output


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    target, tests = Path(argv[0]), argv[1:]
    pins = floors((ROOT / "pyproject.toml").read_text())
    python = target / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    stamp = target / "floors.txt"
    if not stamp.exists() or stamp.read_text() != "\n".join(pins):
        venv.create(target, with_pip=True, clear=True)
        try:
            run([str(python), "-m", "pip", "install", "-q", "--only-binary", ":all:", *pins])
        except NoWheel as exc:
            # a Python newer than some floor (or no package index): the floors are checked in CI
            print(f"floors.py: skipped on Python {sys.version.split()[0]}: {exc}", flush=True)
            return 0
        output = run([str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", "."], env=quiet_editable())
        if BOX in output:
            raise SystemExit(f"floors.py: the editable install printed setuptools' notice:\n{output}")
        stamp.write_text("\n".join(pins))
    print("floors:", " ".join(pins), flush=True)
    return subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests],
                          cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
