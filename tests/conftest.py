"""Test configuration shared by all nengo_fa tests.

Fixtures come from plugins that are loaded automatically once installed:
nengo's ``pytest_nengo`` (``Simulator``, the neuron-type parametrisations,
``--slow``), pytest-rng (``seed``, ``rng``), pytest-plt (``plt``; plots are
saved only with ``--plots``). Ours: ``kernels``, which runs a test once with
the compiled loops and once with the numpy stages.
"""

import matplotlib
import nengo
import pytest

from nengo_fa import settings

# Plots are written to files, never shown; this also works without a display.
matplotlib.use("Agg")

# Build every test model from scratch: a decoder cache shared between test runs
# could hide a change in how decoders are solved, and it writes to the home dir.
nengo.rc["decoder_cache"]["enabled"] = "False"


def pytest_configure(config):
    # pytest_nengo skips tests marked ``slow`` unless ``--slow`` is given. Ours are
    # learning runs that must always run (CI included); they are sized to keep
    # the suite within budget. Deselect them locally with ``-m "not slow"``.
    config.option.slow = True


@pytest.fixture(params=[True, False], ids=["kernels", "numpy"])
def kernels(request):
    """Run the test with the compiled loops, then with the numpy stages."""
    with settings.override(compiled_kernels=request.param):
        yield request.param
