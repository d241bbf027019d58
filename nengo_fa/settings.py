"""nengo_fa's settings, kept in Nengo's own RC system (`nengo.rc`).

nengo_fa adds a ``[nengo_fa]`` section to `nengo.rc`, so its settings are read
and written like Nengo's (``nengo.rc.set("nengo_fa", "compiled_kernels",
"False")``, or a ``[nengo_fa]`` section in a ``nengorc`` file). They are read
when a model is *built*: a simulator keeps the choice it was built with, and
pickles with it.

``inplace_encoder_update`` (default True)
    Apply an ensemble's encoder update in place, as a rank-1 update of the
    scaled encoders (`.SimHiddenLayerEncoderUpdate`), where that gives the same
    result as Nengo's generic path (an ``(n, d)`` delta signal added by a
    ``Copy``): when the rule is the only one learning that ensemble's encoders
    and the model is built from a network; and, the same way, a
    ``modifies="weights"`` rule's update of its connection's weights when it is
    the only rule on that connection. False always uses the generic path,
    the straightforward implementation the fast one is tested against.
``compiled_kernels`` (default True)
    Run the per-neuron work of the update, the derivatives, learned and sign
    feedback and the alignment diagnostics in compiled loops
    (``nengo_fa.builder.kernels``, with numba). False uses numpy code, which
    gives the same results up to rounding. Ignored (always False) when numba is
    not installed.

`override` sets them for a block of code, e.g. in tests and benchmarks::

    with nengo_fa.settings.override(compiled_kernels=False):
        sim = nengo.Simulator(model)
"""

import contextlib
import importlib.util

import nengo
from nengo.rc import RC_DEFAULTS

SECTION = "nengo_fa"

#: The settings and their defaults.
DEFAULTS = {"inplace_encoder_update": True, "compiled_kernels": True}

#: Whether numba is installed (a dependency; without it the operators use their
#: numpy code). numba itself is imported on first use, not here.
NUMBA_AVAILABLE = importlib.util.find_spec("numba") is not None


def install():
    """Add the ``[nengo_fa]`` section and its defaults to `nengo.rc`.

    Also adds them to ``nengo.rc.RC_DEFAULTS``, so that
    ``nengo.rc.reload_rc()`` keeps them. Values already set (e.g. from a
    ``nengorc`` file) are kept.
    """
    RC_DEFAULTS.setdefault(SECTION, dict(DEFAULTS))
    if not nengo.rc.has_section(SECTION):
        nengo.rc.add_section(SECTION)
    for key, value in DEFAULTS.items():
        if not nengo.rc.has_option(SECTION, key):
            nengo.rc.set(SECTION, key, str(value))


def _get(key):
    if not nengo.rc.has_option(SECTION, key):
        return DEFAULTS[key]
    return nengo.rc.getboolean(SECTION, key)


def inplace_encoder_update():
    """The ``inplace_encoder_update`` setting."""
    return _get("inplace_encoder_update")


def compiled_kernels():
    """The ``compiled_kernels`` setting (False without numba)."""
    return NUMBA_AVAILABLE and _get("compiled_kernels")


@contextlib.contextmanager
def override(**values):
    """Set nengo_fa settings (names from `DEFAULTS`) inside a ``with`` block."""
    install()
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise nengo.exceptions.ValidationError(
            f"unknown nengo_fa setting(s) {sorted(unknown)}; known: "
            f"{sorted(DEFAULTS)}",
            attr="values",
        )
    old = {key: nengo.rc.get(SECTION, key) for key in values}
    try:
        for key, value in values.items():
            nengo.rc.set(SECTION, key, str(bool(value)))
        yield
    finally:
        for key, value in old.items():
            nengo.rc.set(SECTION, key, value)
