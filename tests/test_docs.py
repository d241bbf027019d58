"""The documentation builds with warnings as errors, examples and all.

This runs the documented command, ``sphinx-build -W -b html docs
docs/_build/html``, into a temporary folder, with the examples shortened by
``NENGO_FA_EXAMPLE_SCALE``. The ``tests`` extra installs what it needs (the
``docs`` extra's requirements).
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    html = tmp_path / "html"
    env = dict(os.environ, NENGO_FA_EXAMPLE_SCALE="0.05")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            "docs",
            str(html),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-10000:]

    for page in ("index", "getting_started", "theory", "api", "benchmarks"):
        assert (html / f"{page}.html").exists(), page
    assert "FeedbackAlignment" in (html / "api.html").read_text(encoding="utf-8")
    assert "Release history" in (html / "changelog.html").read_text(encoding="utf-8")
    # every example is rendered, with the plots its run drew
    for script in sorted((ROOT / "examples").glob("*.py")):
        page = (html / "examples" / f"{script.stem}.html").read_text(encoding="utf-8")
        assert "_images/examples_" in page, f"{script.name}: no plot on its page"


@pytest.mark.slow
def test_docs_code_examples_run(tmp_path):
    """The ``testcode`` blocks (getting started, docstrings) run without error."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "doctest",
            "-D",
            "nbsphinx_execute=never",  # the examples are run by the html test
            "-d",
            str(tmp_path / "doctrees"),
            "docs",
            str(tmp_path / "doctest"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert "0 failures in tests" in result.stdout
