"""The project's files: the license pyproject.toml declares, the dependency floors that
scripts/floors.py installs in CI, and the Makefile's quiet editable install."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _floors_module():
    spec = importlib.util.spec_from_file_location("floors", ROOT / "scripts" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_license_file_is_the_mit_license_pyproject_declares():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) " in text and "gdnet contributors" in text
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()


def test_every_requirement_has_a_floor_that_works():
    """The floors below are the lowest versions measured to work; scripts/floors.py installs
    exactly these and runs a smoke of the suite on them."""
    pins = _floors_module().floors((ROOT / "pyproject.toml").read_text())
    for pin in ("numpy==2.1", "array-api-compat==1.12", "tqdm==4.60", "matplotlib==3.8.4", "array-api-strict==2.6",
                "pytest==8.1.1"):
        assert pin in pins
    with pytest.raises(SystemExit, match="'numpy' has no '>=' floor"):
        _floors_module().floors('[project]\ndependencies = ["numpy"]\n')


def test_the_makefile_filter_silences_the_editable_install_notice():
    """setuptools' notice, emitted as the editable install emits it, is shown without the
    Makefile's filter and not with it."""
    pytest.importorskip("setuptools.command.editable_wheel")
    code = textwrap.dedent("""
        import warnings
        from setuptools.command.editable_wheel import _TopLevelFinder
        with warnings.catch_warnings(record=True) as caught:
            _TopLevelFinder(None, "gdnet-array").__exit__(None, None, None)
        print(len(caught))
    """)
    quiet = _floors_module().quiet_editable()
    for extra, shown in (({}, "1"), (quiet, "0")):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
        done = subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [shown], extra
