"""``import nengo_fa`` loads the NengoDL builders only once nengo_dl is imported.

These tests need neither NengoDL nor TensorFlow: each runs a fresh Python with
a stand-in ``nengo_dl`` package and points the hook at a stand-in for
``nengo_fa.dl``, so they check the hook itself, in every environment.
"""

import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import sys
import nengo_fa
from nengo_fa import _dl_hook
assert "tensorflow" not in sys.modules
sys.path.insert(0, "site")
"""


def run_python(tmp_path, code):
    """Run ``code`` with stand-ins for nengo_dl and nengo_fa.dl in ``site/``.

    ``site/`` is put on the path only after ``import nengo_fa``, because
    nengo_extras (imported by nengo_fa.neurons when installed) imports
    nengo_dl itself when it can.
    """
    site = tmp_path / "site"
    (site / "nengo_dl").mkdir(parents=True)
    (site / "nengo_dl" / "__init__.py").write_text("import nengo_dl.builder\n")
    (site / "nengo_dl" / "builder.py").write_text("REGISTRY = []\n")
    (site / "fake_fa_dl.py").write_text(
        "import nengo_dl.builder\nnengo_dl.builder.REGISTRY.append('nengo_fa')\n"
    )
    script = tmp_path / "script" / "script.py"
    script.parent.mkdir()
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def check(result):
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize(
    "code",
    [
        # nengo_fa first: the builders load when nengo_dl is imported
        PRELUDE
        + """
_dl_hook._DL_MODULE = "fake_fa_dl"
assert "fake_fa_dl" not in sys.modules
import nengo_dl
assert nengo_dl.builder.REGISTRY == ["nengo_fa"]
print("OK")
""",
        # a submodule imported first imports the package, and so the builders
        PRELUDE
        + """
_dl_hook._DL_MODULE = "fake_fa_dl"
from nengo_dl.builder import REGISTRY
assert REGISTRY == ["nengo_fa"]
print("OK")
""",
        # nengo_dl first: install() loads the builders at once
        """
import sys
sys.path.insert(0, "site")
import nengo_dl
import nengo_fa._dl_hook as hook
hook._DL_MODULE = "fake_fa_dl"
hook.install()
assert nengo_dl.builder.REGISTRY == ["nengo_fa"]
print("OK")
""",
        # the finder fires once and leaves the import system as it was
        PRELUDE
        + """
_dl_hook._DL_MODULE = "fake_fa_dl"
import nengo_dl, importlib
assert _dl_hook._FINDER not in sys.meta_path
importlib.reload(nengo_dl)
assert nengo_dl.builder.REGISTRY == ["nengo_fa"]
print("OK")
""",
    ],
    ids=["nengo_fa_first", "submodule_first", "nengo_dl_first", "fires_once"],
)
def test_builders_load_with_nengo_dl(tmp_path, code):
    check(run_python(tmp_path, code))


def test_import_nengo_fa_does_not_import_tensorflow(tmp_path):
    check(
        run_python(
            tmp_path,
            PRELUDE
            + """
assert "nengo_dl" not in sys.modules and "nengo_fa.dl" not in sys.modules
print("OK")
""",
        )
    )


def test_failing_builders_do_not_break_nengo_dl(tmp_path):
    """A broken nengo_fa.dl warns; importing nengo_dl still works."""
    check(
        run_python(
            tmp_path,
            PRELUDE
            + """
import warnings
_dl_hook._DL_MODULE = "no_such_module_here"
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import nengo_dl
assert any("NengoDL builders" in str(w.message) for w in caught), caught
print("OK")
""",
        )
    )


def test_other_imports_pass_through(tmp_path):
    check(
        run_python(
            tmp_path,
            PRELUDE
            + """
assert _dl_hook._FINDER in sys.meta_path
import json, email.mime.text
assert _dl_hook._FINDER in sys.meta_path
assert _dl_hook._FINDER.find_spec("json") is None
print("OK")
""",
        )
    )
