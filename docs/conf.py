"""Sphinx configuration for the nengo_fa documentation.

Build the docs from the repository root with::

    sphinx-build -W -b html docs docs/_build/html

The examples are plain scripts in ``examples/`` (the single source of truth).
Before each build, this file turns each script into a notebook in
``docs/examples/`` (generated, git-ignored), which nbsphinx executes so that the
pages show the examples' plots. Set ``NENGO_FA_EXAMPLE_SCALE`` (e.g. 0.1) for a
quicker build with shorter example runs; the default is the full runs.
"""

import ast
import os
import pathlib
import re
import sys

import nbformat

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document this checkout's nengo_fa

import nengo_fa  # noqa: E402

EXAMPLES = ROOT / "examples"
GENERATED = DOCS / "examples"

# -- nbsphinx needs pandoc for markdown cells; pypandoc_binary ships one ------

try:
    import pypandoc

    _pandoc = pathlib.Path(pypandoc.get_pandoc_path()).parent
    os.environ["PATH"] = f"{_pandoc}{os.pathsep}{os.environ.get('PATH', '')}"
except (ImportError, OSError):  # a pandoc on PATH does as well
    pass

# The notebook kernels inherit this environment: they import this checkout's
# nengo_fa, draw plots inline (a test run may have set MPLBACKEND=Agg), and get
# the run scale.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
)
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
os.environ.setdefault("NENGO_FA_EXAMPLE_SCALE", "1")


# -- Examples: scripts -> notebooks ------------------------------------------


def _code_cells(source):
    """Split code at ``# %%`` lines (``# %% [markdown]`` starts a text cell)."""
    cells = []
    kind, lines = "code", []

    def flush():
        text = "\n".join(lines).strip("\n")
        if text.strip():
            if kind == "markdown":
                text = "\n".join(re.sub(r"^# ?", "", line) for line in text.split("\n"))
                cells.append(nbformat.v4.new_markdown_cell(text))
            else:
                cells.append(nbformat.v4.new_code_cell(text))

    for line in source.split("\n"):
        if line.startswith("# %%"):
            flush()
            kind = "markdown" if "[markdown]" in line else "code"
            lines = []
        else:
            lines.append(line)
    flush()
    return cells


def script_to_notebook(path):
    """A notebook from an example script.

    - the module docstring becomes a reStructuredText cell, its first line the
      page title, followed by a link to download the script;
    - the code up to ``if __name__ == "__main__":`` becomes code cells (split
      at ``# %%`` markers, if any);
    - the body of the ``__main__`` block becomes the last cell, so that the
      notebook runs what ``python examples/NAME.py`` runs.
    """
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.split("\n")

    docstring = ast.get_docstring(tree, clean=True) or path.stem
    title, _, body = docstring.partition("\n")
    title = title.strip().rstrip(".")
    rst = (
        f"{title}\n{'=' * len(title)}\n\n{body.strip()}\n\n"
        f"Download the script: :download:`{path.name} "
        f"<../../examples/{path.name}>`.\n"
    )
    intro = nbformat.v4.new_raw_cell(rst)
    intro.metadata["raw_mimetype"] = "text/restructuredtext"

    start = tree.body[0].end_lineno if ast.get_docstring(tree) else 0
    end = len(lines)
    main_body = None
    for node in tree.body:
        test = getattr(node, "test", None)
        if (
            isinstance(node, ast.If)
            and isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
        ):
            end = node.lineno - 1
            first, last = node.body[0].lineno - 1, node.body[-1].end_lineno
            block = lines[first:last]
            indent = min(len(x) - len(x.lstrip()) for x in block if x.strip())
            main_body = "\n".join(x[indent:] for x in block)
            break

    # not shown: inline plots, no progress bars in the rendered page
    setup = nbformat.v4.new_code_cell(
        "%matplotlib inline\n"
        "import nengo\n"
        "nengo.rc['progress']['progress_bar'] = 'False'"
    )
    setup.metadata["nbsphinx"] = "hidden"

    cells = [intro, setup] + _code_cells("\n".join(lines[start:end]))
    if main_body is not None:
        cells.append(nbformat.v4.new_code_cell(main_body.strip("\n")))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    return notebook


def generate_example_notebooks():
    GENERATED.mkdir(exist_ok=True)
    wanted = set()
    for path in sorted(EXAMPLES.glob("*.py")):
        target = GENERATED / f"{path.stem}.ipynb"
        wanted.add(target)
        text = nbformat.writes(script_to_notebook(path))
        # rewrite only on change, so that Sphinx rebuilds only what changed
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    for stale in GENERATED.glob("*.ipynb"):
        if stale not in wanted:
            stale.unlink()


generate_example_notebooks()


# -- API: every public name that nengo_fa exports ------------------------------


def generate_api_listing():
    """Write ``_generated/api_exports.inc``: autodoc entries for ``nengo_fa.*``.

    The public API is what ``nengo_fa/__init__.py`` exports; listing it here
    keeps the reference complete as rules are added.
    """
    from nengo.learning_rules import LearningRuleType

    from nengo_fa.feedback import FeedbackLearning

    rules, others = [], []
    for name, obj in vars(nengo_fa).items():
        if name.startswith("_") or name in ("check_nengo_version",):
            continue
        if not getattr(obj, "__module__", "").startswith("nengo_fa"):
            continue
        if isinstance(obj, type) and issubclass(obj, FeedbackLearning):
            continue  # documented with nengo_fa.feedback
        if isinstance(obj, type) and issubclass(obj, LearningRuleType):
            rules.append(f".. autoclass:: nengo_fa.{name}\n")
        elif isinstance(obj, type):
            others.append(f".. autoclass:: nengo_fa.{name}\n")
        elif callable(obj):
            others.append(f".. autofunction:: nengo_fa.{name}\n")
    text = "\n".join(rules)
    if others:
        text += "\nOther public objects\n--------------------\n\n" + "\n".join(others)
    target = DOCS / "_generated" / "api_exports.inc"
    target.parent.mkdir(exist_ok=True)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


generate_api_listing()

# -- Project information -----------------------------------------------------

project = "nengo_fa"
author = "nengo_fa contributors"
copyright = nengo_fa.__copyright__
version = ".".join(nengo_fa.__version__.split(".")[:2])
release = nengo_fa.__version__

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "nbsphinx",
    "nengo_sphinx_theme",
    "numpydoc",
]

# As in Nengo: `name` links to the Python object if it can
default_role = "py:obj"
exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints"]
templates_path = []
source_suffix = ".rst"
master_doc = "index"
pygments_style = "friendly"

autoclass_content = "both"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# doctest: the docstrings' examples assume these imports
doctest_global_setup = """
import nengo
import numpy as np
import nengo_fa
"""

nbsphinx_execute = "always"
nbsphinx_timeout = 900
nbsphinx_allow_errors = False
nbsphinx_execute_arguments = [
    "--InlineBackend.figure_formats={'svg'}",
    "--InlineBackend.rc=figure.dpi=96",
]

# -- HTML output -------------------------------------------------------------

html_theme = "nengo_sphinx_theme"
html_title = f"nengo_fa {release} docs"
html_static_path = []
html_context = {"building_version": "latest", "releases": ""}
html_theme_options = {}
