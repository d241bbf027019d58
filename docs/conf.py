"""Sphinx configuration for the nengo_fa documentation.

Build the docs from the repository root with::

    sphinx-build -W -b html docs docs/_build/html

The pages need no network: the theme (furo) and MathJax (bundled by
sphinx-mathjax-offline) are copied into the build. sphinx-gallery runs the
scripts in ``examples/`` and renders them, with their figures, into
``docs/examples/`` (generated); autosummary writes the API pages into
``docs/generated/``. Set ``NENGO_FA_EXAMPLE_SCALE`` (e.g. 0.1) for a quicker
build with shorter example runs; the default is the full runs.
"""

import pathlib
import sys

import nengo
from sphinx.ext.autodoc.mock import ismock

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # document this checkout's nengo_fa

import nengo_fa  # noqa: E402

# The examples run in this process: no progress bars in the rendered pages
nengo.rc["progress"]["progress_bar"] = "False"

# -- Project information -----------------------------------------------------

project = "nengo_fa"
author = "nengo_fa contributors"
copyright = nengo_fa.__copyright__
version = ".".join(nengo_fa.__version__.split(".")[:2])
release = nengo_fa.__version__

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
    "numpydoc",
    # copies MathJax into _static and points mathjax_path at it
    "sphinx-mathjax-offline",
]

# As in Nengo: `name` links to the Python object if it can
default_role = "py:obj"

# Every reference must resolve (tests/test_docs.py builds with -W): a `name`
# that links nowhere is an error, except the names of other projects, which
# the pages do not link to (no intersphinx: the build is offline). Each pattern
# must match the whole target; none may match a nengo_fa name. (numpydoc does
# not link the types in "Parameters" sections: numpydoc_xref_param_type is off.)
nitpicky = True
nitpick_ignore_regex = [
    # Nengo, NengoDL and the libraries they build on
    (r"py:.*", r"(nengo|nengo_dl|nengo_extras|numpy|np|tensorflow|tf)(\..+)?"),
    # Python's builtins and standard library
    (
        r"py:.*",
        r"(builtins\.)?(int|float|bool|str|bytes|list|tuple|dict|set|object"
        r"|type|callable|None|True|False|Exception|ValueError|TypeError|RuntimeError"
        r"|Warning|UserWarning|RuntimeWarning)",
    ),
    (
        r"py:.*",
        r"(sys|os|math|functools|collections|importlib|pathlib|warnings"
        r"|pickle|typing)(\..+)?",
    ),
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
master_doc = "index"
pygments_style = "friendly"

autosummary_generate = True
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# nengo_fa.dl (NengoDL's builders) imports NengoDL and TensorFlow, which the
# docs do not need: its pages show what it says of itself, with or without them
autodoc_mock_imports = ["nengo_dl", "tensorflow"]

# doctest: the docstrings' examples assume these imports
doctest_global_setup = """
import nengo
import numpy as np
import nengo_fa
"""

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "examples",
    # every script is an example, and is run (not only plot_*.py)
    "filename_pattern": r"\.py$",
    "abort_on_example_error": True,
    # sphinx-gallery reuses a script's output while the script is unchanged,
    # even if NENGO_FA_EXAMPLE_SCALE has changed: always run them
    "run_stale_examples": True,
    # the examples define classes and register a builder: a fresh
    # matplotlib state is enough, and the scripts' own __main__ block runs
    "reset_modules": ("matplotlib",),
    "download_all_examples": False,
    "write_computation_times": False,
    "show_memory": False,
    "min_reported_time": 1e9,  # no run times on the pages
    "image_scrapers": ("matplotlib",),
}

# -- HTML output -------------------------------------------------------------

html_theme = "furo"
html_title = f"nengo_fa {release}"
html_static_path = ["_static"]
# a page without an icon makes browsers request /favicon.ico, a 404 offline
html_favicon = "_static/nengo_fa.svg"
html_show_sourcelink = False
# (furo shows each page's contents beside it: pages need no `contents` directive)
html_theme_options = {
    # furo's default footer links to its own and Sphinx's sites: the pages
    # are this project's, and should name only it
    "footer_icons": [],
}


def _skip_member(app, what, name, obj, skip, options):
    """Members that the pages leave out.

    - The attributes and properties in autosummary's tables on the class
      pages: its class template lists them (a class's Nengo parameters) in a
      table that links to nothing, since the pages do not document each one;
      the class's docstring describes them. autosummary asks with ``what`` set
      to the member's type; autodoc asks with the type of the object whose
      members it documents ("module", "class"), and is not affected.
    - The methods of nengo_fa.dl's builder classes: with NengoDL mocked, the
      classes' names are bound to the mocked ``Builder.register`` decorator,
      through which autodoc cannot import their methods (it still shows the
      classes).
    """
    if what in ("attribute", "property"):
        return True
    owner = sys.modules.get(getattr(obj, "__module__", None) or "")
    if (
        what == "class"
        and owner is not None
        and owner.__name__.startswith("nengo_fa.dl.")
    ):
        cls_name = getattr(obj, "__qualname__", "").split(".")[0]
        if ismock(getattr(owner, cls_name, None)):
            return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
