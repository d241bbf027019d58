"""An example runs in Nengo GUI, driven by a real headless Chromium.

The test starts ``nengo`` (nengo-gui's server) on 127.0.0.1 with a copy of an
example, opens it in headless Chromium through Selenium and chromedriver,
presses play, and checks that simulated time advances, that the plots of the
example's layout (``NAME.py.cfg``) are drawn and their lines change as time
goes on, and that no error is shown. It saves a screenshot, ``nengo_gui.png``,
in the test's ``tmp_path``. The layouts of all examples are checked without a
browser: every line runs, and every plotted object is in the model.

It is skipped only when no Chromium or chromedriver is installed (Debian:
``apt-get install chromium chromium-driver``; ``.ci/run`` installs them in CI).
"""

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
# the seed task is small and fast; digits.py is the fallback
GUI_EXAMPLE = next(
    p for p in (EXAMPLES / "learn_product.py", EXAMPLES / "digits.py") if p.exists()
)
CHROMIUM = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)),
    None,
)
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver)",
)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gui_server(tmp_path):
    """Start nengo-gui on a copy of the example; yield its token URL."""
    # nengo-gui writes a .cfg file next to the model: keep it out of the repo
    model_file = tmp_path / GUI_EXAMPLE.name
    shutil.copy(GUI_EXAMPLE, model_file)
    shutil.copy(GUI_EXAMPLE.with_suffix(".py.cfg"), tmp_path)
    log_path = tmp_path / "nengo_gui.log"
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from nengo_gui.main import main; sys.exit(main())",
                "--no-browser",
                "--listen",
                "127.0.0.1",
                "--unsecure",  # plain http, which nengo-gui allows on 127.0.0.1
                "-P",
                str(port),
                "--auto-shutdown",
                "0",
                str(model_file),
            ],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            match = re.search(r"(http://\S+\?token=\S+)", log_path.read_text())
            if match:
                url = match.group(1).replace("localhost", "127.0.0.1")
            else:
                time.sleep(0.2)
        if url is None:
            pytest.fail(f"nengo-gui did not start:\n{log_path.read_text()}")
        yield url, log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def sim_time(driver):
    """The simulated time that the GUI's sim control shows, or None."""
    text = driver.execute_script(
        "var el = document.getElementById('ticks_tr');"
        "return el ? el.textContent : null;"
    )
    match = re.search(r"(\d+\.\d+)", text or "")
    return float(match.group(1)) if match else None


def plotted_lines(driver):
    """The ``d`` attribute (the drawn points) of every line of the Value plots."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('path.line'))"
        ".map(function (p) { return p.getAttribute('d') || ''; });"
    )


def shown_error(driver):
    return driver.execute_script(
        "var el = document.getElementById('console_error');"
        "return el ? el.textContent : '';"
    )


def test_example_runs_in_nengo_gui(gui_server, browser, tmp_path):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, log_path = gui_server
    browser.get(url)

    def status(driver):
        """The sim control's state, from its button's icon."""
        icon = driver.find_elements(By.CSS_SELECTOR, "#pause_button .glyphicon")
        cls = icon[0].get_attribute("class") if icon else ""
        for name, state in (("play", "paused"), ("pause", "running")):
            if f"glyphicon-{name}" in cls.split():
                return state
        return "build_error" if "glyphicon-remove" in cls else None

    def fail(message):
        browser.save_screenshot(str(tmp_path / "nengo_gui_failed.png"))
        pytest.fail(
            f"{message}; time shown: {sim_time(browser)}; error shown: "
            f"{shown_error(browser)!r}\nserver log:\n{log_path.read_text()}"
        )

    # once the model is built, the button shows "play" (paused)
    wait = WebDriverWait(browser, 90, poll_frequency=0.2)
    try:
        wait.until(lambda d: status(d) in ("paused", "build_error"))
    except TimeoutException:
        fail("the model was not built")
    if status(browser) != "paused":
        fail("the model failed to build")
    assert browser.find_elements(By.CSS_SELECTOR, "#netgraph g.ens, #netgraph g.node")
    assert sim_time(browser) == pytest.approx(0.0)

    browser.find_element(By.ID, "pause_button").click()
    try:
        wait.until(lambda d: (sim_time(d) or 0.0) > 0.5)
    except TimeoutException:
        fail("simulated time did not advance after pressing play")
    assert status(browser) == "running"
    t0 = sim_time(browser)
    lines0 = plotted_lines(browser)
    time.sleep(1.0)
    t1 = sim_time(browser)
    lines1 = plotted_lines(browser)
    assert t1 > t0, "simulated time stopped advancing"

    # the layout's plots: error (1 line) and output against target (2 lines),
    # each drawn through many points, and redrawn with new data as time goes on
    assert len(lines1) >= 3, lines1
    assert all(d.count("L") > 10 for d in lines1), [d[:80] for d in lines1]
    assert all(a != b for a, b in zip(lines0, lines1)), "the plots did not change"

    assert shown_error(browser).strip() == ""
    assert "Traceback" not in log_path.read_text()
    screenshot = tmp_path / "nengo_gui.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10000  # a rendered page, not a blank one


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.stem)
def test_example_gui_layout_is_valid(path, monkeypatch):
    """Each example ships a layout whose every line runs, and labels everything.

    Nengo GUI skips a layout line that fails without saying so: this runs
    each line the way it does, but lets errors through. It needs no browser.
    """
    import runpy

    import matplotlib
    import nengo_gui
    import nengo_gui.config

    monkeypatch.setenv("NENGO_FA_EXAMPLE_SCALE", "0.02")
    matplotlib.use("Agg")
    namespace = runpy.run_path(str(path), run_name="nengo_fa_example")
    namespace.update(nengo_gui=nengo_gui, _viz_config=nengo_gui.config.Config())
    cfg = path.with_suffix(".py.cfg")
    assert cfg.exists(), f"{path.name} has no Nengo GUI layout"
    for line in cfg.read_text(encoding="utf-8").splitlines():
        exec(line, namespace)  # noqa: S102 (our own layout file)
    model = namespace["model"]
    values = [
        v for v in namespace.values() if isinstance(v, nengo_gui.components.Value)
    ]
    assert len(values) >= 2, "a layout plots at least the error and the output"
    in_model = set(model.all_objects)
    assert all(v.obj in in_model for v in values)
    unlabelled = [obj for obj in model.all_ensembles + model.all_nodes if not obj.label]
    assert not unlabelled, f"{path.name}: objects without a label: {unlabelled}"
