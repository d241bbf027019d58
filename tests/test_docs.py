"""The documentation builds with warnings as errors, examples and all, offline.

This runs the documented command, ``sphinx-build -W -b html docs
docs/_build/html``, into a temporary folder, with the examples shortened by
``NENGO_FA_EXAMPLE_SCALE`` (about a minute on two cores). The pages must need
no network: no page may load a script or stylesheet from another site, and in
headless Chromium the theory page's equations must be typeset by the bundled
MathJax, with no error in the browser's console. The ``tests`` extra
installs what this needs (the ``docs`` extra's requirements); the browser
check is skipped without Chromium and chromedriver.
"""

import functools
import http.server
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading

import pytest

import nengo_fa
from nengo_fa.feedback import FeedbackLearning

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)),
    None,
)
CHROMEDRIVER = shutil.which("chromedriver")
# a script or stylesheet that the page loads (not a link a reader may follow)
LOADED = re.compile(
    r"<(?:script[^>]*\bsrc|link[^>]*\brel=\"?(?:stylesheet|preload|icon)[^>]*\bhref"
    r"|link[^>]*\bhref[^>]*\brel=\"?(?:stylesheet|preload|icon))"
    r"=\"?([^\"\s>]+)"
)


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    """The documentation, built once for the tests of this module."""
    tmp_path = tmp_path_factory.mktemp("docs")
    out = tmp_path / "html"
    env = dict(os.environ, NENGO_FA_EXAMPLE_SCALE="0.05", MPLBACKEND="Agg")
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
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-10000:]
    return out


@pytest.mark.slow
def test_docs_build_without_warnings(html):
    for page in ("index", "getting_started", "theory", "api", "keeping", "benchmarks"):
        assert (html / f"{page}.html").exists(), page
    assert "FeedbackAlignment" in (html / "api.html").read_text(encoding="utf-8")
    assert "Release history" in (html / "changelog.html").read_text(encoding="utf-8")
    # every example is rendered by sphinx-gallery, with the figures its run drew
    for script in sorted((ROOT / "examples").glob("*.py")):
        page = (html / "examples" / f"{script.stem}.html").read_text(encoding="utf-8")
        figures = re.findall(rf"_images/sphx_glr_{script.stem}_\d+\.png", page)
        assert figures, f"{script.name}: no figure on its page"
        for figure in figures:
            assert (html / figure).stat().st_size > 10000, figure
    # the project's own identity, not the nengo.ai site's
    index = (html / "index.html").read_text(encoding="utf-8")
    assert "Applied Brain Research" not in index
    assert "NengoFPGA" not in index


@pytest.mark.slow
def test_docs_load_nothing_from_other_sites(html):
    pages = sorted(html.rglob("*.html"))
    assert len(pages) > 10
    external = {}
    for page in pages:
        for url in LOADED.findall(page.read_text(encoding="utf-8")):
            if re.match(r"(https?:)?//", url):
                external.setdefault(url, page.relative_to(html).as_posix())
    # nor does a stylesheet pull in fonts or styles from another site
    for css in html.glob("_static/**/*.css"):
        found = re.findall(
            r"(?:url\(|@import)\s*[\"']?((?:https?:)?//[^\"')\s]+)",
            css.read_text(encoding="utf-8", errors="replace"),
        )
        if found:
            external.setdefault(found[0], css.relative_to(html).as_posix())
    assert not external, external
    # MathJax is bundled, with its fonts
    mathjax = html / "_static" / "mathjax"
    assert (mathjax / "tex-chtml.js").exists()
    assert list(mathjax.rglob("*.woff"))


def test_api_reference_lists_every_public_name():
    """docs/api.rst names everything that ``nengo_fa`` exports."""
    api = (ROOT / "docs" / "api.rst").read_text(encoding="utf-8")
    public = [
        name
        for name, obj in vars(nengo_fa).items()
        if not name.startswith("_")
        and getattr(obj, "__module__", "").startswith("nengo_fa")
        and name != "check_nengo_version"
        and (isinstance(obj, type) or callable(obj))
    ]
    # the feedback-learning types are documented with nengo_fa.feedback
    missing = [
        name
        for name in public
        if f"nengo_fa.{name}" not in api
        and not (
            isinstance(vars(nengo_fa)[name], type)
            and issubclass(vars(nengo_fa)[name], FeedbackLearning)
        )
    ]
    assert not missing, f"not in docs/api.rst: {missing}"
    assert ".. automodule:: nengo_fa.feedback" in api


@pytest.fixture
def served(html):
    """Serve the built pages on 127.0.0.1, as a local web server would."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver)",
)
def test_theory_page_typesets_its_equations_offline(served, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"{served}/theory.html")
        WebDriverWait(driver, 60, poll_frequency=0.2).until(
            lambda d: d.execute_script(
                "return !!(window.MathJax && MathJax.startup && "
                "MathJax.startup.document && "
                "document.querySelectorAll('mjx-container').length > 0 && "
                "document.querySelectorAll('.math').length === "
                "document.querySelectorAll('.math mjx-container').length);"
            )
        )
        typeset = driver.execute_script(
            "return document.querySelectorAll('mjx-container').length;"
        )
        text = driver.execute_script("return document.body.innerText;")
        errors = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"
        ]
        driver.save_screenshot(str(tmp_path / "theory.png"))
    finally:
        driver.quit()
    assert typeset > 20, typeset  # the theory page has dozens of equations
    assert "\\frac" not in text and "\\delta" not in text, "raw LaTeX is shown"
    assert "ERROR" not in text, "the page shows an error (a theme or build problem)"
    assert not errors, errors


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
            "sphinx_gallery_conf.plot_gallery=0",  # the html test runs them
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
