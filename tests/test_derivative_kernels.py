"""The compiled derivatives (nengo_fa.derivative_kernels) give what the numpy
derivatives give, up to rounding, and their exp and log1p are numpy's to the
last place."""

import nengo
import numpy as np
import pytest
from nengo.neurons import (
    LIF,
    AdaptiveLIF,
    AdaptiveLIFRate,
    Izhikevich,
    LIFRate,
    PoissonSpiking,
    RectifiedLinear,
    RegularSpiking,
    Sigmoid,
    SpikingRectifiedLinear,
    Tanh,
)

from nengo_fa import derivative_kernels
from nengo_fa.builder import kernels
from nengo_fa.neurons import make_derivative

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="needs numba")

SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, -1e-300, 5e-324]


def elementwise(function):
    """A compiled loop applying the compiled ``function`` to each element."""
    import numba

    compiled_function = kernels.compiled(function)

    @numba.njit(error_model="numpy")
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = compiled_function(x[i])

    return loop


def ulps(value, reference):
    """The largest difference in units of the last place, where the reference
    is finite and not 0 (elsewhere the two must be equal)."""
    finite = np.isfinite(reference) & (reference != 0)
    assert np.array_equal(value[~finite], reference[~finite], equal_nan=True)
    spacing = np.spacing(np.abs(reference[finite]))
    return np.max(np.abs(value[finite] - reference[finite]) / spacing)


def test_exp_is_numpys_to_the_last_place(rng):
    x = np.concatenate(
        [
            rng.uniform(-750, 712, 100000),
            rng.uniform(-1, 1, 10000),
            rng.uniform(-1e-8, 1e-8, 1000),
            [709.78, 709.79, -708.39, -745.1, -745.2, -746.0] + SPECIAL,
        ]
    )
    out = np.empty_like(x)
    elementwise(derivative_kernels.exp)(x, out)
    with np.errstate(over="ignore"):
        reference = np.exp(x)
    normal = ~(np.abs(reference) < np.finfo(float).tiny)  # and NaN
    assert ulps(out[normal], reference[normal]) <= 1
    # subnormal results: within the smallest subnormal
    assert np.max(np.abs(out[~normal] - reference[~normal])) <= 5e-324


def test_log1p_is_numpys_to_the_last_place(rng):
    x = np.concatenate(
        [
            rng.uniform(0, 1, 100000),
            10 ** rng.uniform(-320, 308, 100000),
            rng.uniform(-0.999, 0, 10000),
            # around the ends of k = 0, sqrt(2) / 2 <= 1 + x < sqrt(2)
            [np.sqrt(2) - 1, np.nextafter(np.sqrt(2) - 1, 1), -0.29289, -0.2928933],
            [1e308, 2.0**53, 2.0**53 + 2, 1.0] + SPECIAL[:4] + SPECIAL[5:],
        ]
    )
    out = np.empty_like(x)
    elementwise(derivative_kernels.log1p)(x, out)
    assert ulps(out, np.log1p(x)) <= 1


def test_exp_and_log1p_run_as_python():
    # the same code, uncompiled (where it is read, and without numba)
    assert derivative_kernels.exp(1.3) == np.exp(1.3)
    assert abs(derivative_kernels.log1p(0.7) - np.log1p(0.7)) <= np.spacing(0.6)
    assert np.isnan(derivative_kernels.exp(np.nan))
    assert derivative_kernels.log1p(np.inf) == np.inf


def currents(rng, n=20000):
    """Currents over every branch: far below, around and far above the
    thresholds (0 and 1), the clipped range and NaN."""
    return np.concatenate(
        [
            rng.uniform(-5, 8, n),
            1 + rng.uniform(-1, 1, n) * 0.1,
            rng.normal(0, 1e3, 100),
            [0.0, 1.0, 1 - 30 * 0.02, 1e29, 1e31, -1e31, np.inf, -np.inf, np.nan],
        ]
    )


@pytest.mark.parametrize(
    "neuron_type",
    [
        RectifiedLinear(),
        RectifiedLinear(amplitude=0.3),
        SpikingRectifiedLinear(amplitude=2.5),
        Sigmoid(),
        Tanh(tau_ref=0.01),
        LIF(),
        LIFRate(tau_rc=0.05, tau_ref=0.004, amplitude=0.5),
        AdaptiveLIF(),
        AdaptiveLIFRate(),
        RegularSpiking(LIFRate(), amplitude=2.0),
        PoissonSpiking(Tanh()),
        Izhikevich(),
    ],
    ids=repr,
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_derivative_equals_numpy(neuron_type, dtype, rng):
    J = currents(rng).astype(dtype)
    gain = np.full(J.shape, 20.0)  # so that Izhikevich fires in its table
    derivative = make_derivative(neuron_type, gain, np.full(J.shape, 0.5))
    loop, args = kernels.derivative_loop(derivative)
    out = np.empty_like(J)
    loop(J, out, *args)
    reference = np.empty_like(J)
    derivative(J, reference)
    assert np.array_equal(np.isnan(out), np.isnan(reference))
    finite = np.isfinite(reference)
    assert np.array_equal(np.isfinite(out), finite)
    # a few units of the last place, from a different summation of the same
    # steps (exp and log1p to one unit each, the scale folded in)
    eps = np.finfo(dtype).eps
    assert np.allclose(out[finite], reference[finite], rtol=16 * eps, atol=0)


def test_user_derivative_has_no_compiled_form():
    derivative = make_derivative(
        nengo.LIF(), np.ones(3), np.zeros(3), derivative=np.ones_like
    )
    assert derivative.compiled_form is None
    assert kernels.derivative_loop(derivative) is None
