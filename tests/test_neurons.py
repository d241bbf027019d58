"""Tests of the neuron derivative registry, nengo_fa.neurons."""

import tracemalloc
import warnings

import nengo
import numpy as np
import pytest
from nengo.exceptions import BuildError, ValidationError
from nengo.neurons import (
    LIF,
    AdaptiveLIF,
    AdaptiveLIFRate,
    Direct,
    Izhikevich,
    LIFRate,
    NeuronType,
    PoissonSpiking,
    RectifiedLinear,
    RegularSpiking,
    Sigmoid,
    SpikingRectifiedLinear,
    StochasticSpiking,
    Tanh,
)

from nengo_fa import neurons as fa_neurons
from nengo_fa.neurons import (
    LIF_SIGMA,
    make_derivative,
    register_derivative,
    smoothed_lif_derivative,
)

try:
    from nengo_extras.neurons import SoftLIFRate
except ImportError:  # pragma: no cover
    SoftLIFRate = None

needs_extras = pytest.mark.skipif(SoftLIFRate is None, reason="needs nengo_extras")


class SoftplusRate(NeuronType):
    """A rate neuron with no registered derivative: G(J) = 10 log(1 + e^J)."""

    def step(self, dt, J, output):
        output[...] = 10 * np.logaddexp(0, J)


def softplus_rate_derivative(J):
    return 10 / (1 + np.exp(-J))


def exact_lif_derivative(J, tau_rc=0.02, tau_ref=0.002, amplitude=1.0):
    """G'(J) = tau_rc G(J)^2 / (amplitude J (J - 1)), for J > 1."""
    rate = amplitude / (tau_ref + tau_rc * np.log1p(1.0 / (J - 1)))
    return tau_rc * rate**2 / (amplitude * J * (J - 1))


def evaluate(neuron_type, J, gain=None, bias=None, **kwargs):
    """G'(J) through make_derivative (gain, bias default to 1, 0)."""
    J = np.asarray(J, dtype=float)
    gain = np.ones_like(J) if gain is None else gain
    bias = np.zeros_like(J) if bias is None else bias
    out = np.full_like(J, np.nan)
    make_derivative(neuron_type, gain, bias, **kwargs)(J, out)
    return out


def rates_of_current(neuron_type, J):
    return neuron_type.rates(J, 1.0, 0.0).reshape(-1)


# (neuron type, ranges of J away from kinks and thresholds)
FD_CASES = [
    (RectifiedLinear(), [(-3, -0.1), (0.1, 5)]),
    (RectifiedLinear(amplitude=0.3), [(-3, -0.1), (0.1, 5)]),
    (SpikingRectifiedLinear(amplitude=2.5), [(-3, -0.1), (0.1, 5)]),
    (Sigmoid(), [(-10, 10)]),
    (Sigmoid(tau_ref=0.01), [(-10, 10)]),
    (Tanh(), [(-4, 4)]),
    (Tanh(tau_ref=0.005), [(-4, 4)]),
    (LIFRate(), [(1.5, 20)]),
    (LIFRate(tau_rc=0.05, tau_ref=0.0, amplitude=2.0), [(1.5, 20)]),
    (LIF(tau_rc=0.03, tau_ref=0.004, amplitude=0.1), [(1.5, 20)]),
    (AdaptiveLIFRate(tau_n=0.1, inc_n=0.05, tau_rc=0.04), [(1.5, 20)]),
    (AdaptiveLIF(tau_n=0.5, inc_n=0.1, amplitude=3.0), [(1.5, 20)]),
    (RegularSpiking(LIFRate()), [(1.5, 20)]),
    (RegularSpiking(RectifiedLinear(amplitude=0.5)), [(-3, -0.1), (0.1, 5)]),
    (PoissonSpiking(Sigmoid(tau_ref=0.004)), [(-10, 10)]),
    (StochasticSpiking(Tanh()), [(-4, 4)]),
    (StochasticSpiking(LIFRate(tau_rc=0.03)), [(1.5, 20)]),
]
if SoftLIFRate is not None:
    FD_CASES += [
        (SoftLIFRate(), [(-3, 10)]),
        (SoftLIFRate(sigma=0.1, tau_rc=0.03, tau_ref=0.001, amplitude=2), [(-3, 10)]),
    ]


@pytest.mark.parametrize(
    "neuron_type, ranges", FD_CASES, ids=[repr(c[0]) for c in FD_CASES]
)
def test_derivative_matches_finite_difference(neuron_type, ranges, rng, plt):
    J = np.sort(np.concatenate([rng.uniform(lo, hi, size=40) for lo, hi in ranges]))
    h = 1e-6 * np.maximum(1, np.abs(J))
    fd = (
        rates_of_current(neuron_type, J + h) - rates_of_current(neuron_type, J - h)
    ) / (2 * h)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = evaluate(neuron_type, J)

    plt.plot(J, fd, "k", label="finite difference of rates")
    plt.plot(J, d, "r--", label="make_derivative")
    plt.xlabel("J")
    plt.legend()

    assert np.allclose(d, fd, rtol=1e-4, atol=1e-6 * np.max(np.abs(fd)))
    # guard against a vacuous comparison (e.g. both zero)
    assert np.max(np.abs(fd)) > 0


@needs_extras
@pytest.mark.parametrize("sigma", [LIF_SIGMA, 0.3, 1.0])
def test_soft_lif_rate_matches_nengo_extras_derivative(sigma):
    neuron_type = SoftLIFRate(sigma=sigma, tau_rc=0.03, tau_ref=0.001, amplitude=2)
    J = np.linspace(-5, 10, 301)
    # nengo_extras' derivative is with respect to x, so gain 1 and bias 0 make
    # it the derivative with respect to J
    expected = neuron_type.derivative(J, 1.0, 0.0)
    d = evaluate(neuron_type, J)
    assert np.allclose(d, expected, rtol=1e-10, atol=0)
    assert np.allclose(
        smoothed_lif_derivative(J, 0.03, 0.001, 2, sigma=sigma), expected, rtol=1e-10
    )


def test_rates_to_spikes_derivative_scales_with_amplitude(Simulator, seed):
    """The mean spiking output is amplitude * base rate; so is the derivative."""
    amplitude = 0.25
    neuron_type = RegularSpiking(RectifiedLinear(), amplitude=amplitude)
    J = np.array([20.0, 40.0])
    with nengo.Network(seed=seed) as net:
        ens = nengo.Ensemble(2, 1, neuron_type=neuron_type, gain=np.ones(2), bias=J)
        probe = nengo.Probe(ens.neurons)
    with Simulator(net) as sim:
        sim.run(1.0)
    mean_rates = sim.data[probe].mean(axis=0)
    measured_slope = (mean_rates[1] - mean_rates[0]) / (J[1] - J[0])

    d = evaluate(neuron_type, J)
    assert np.allclose(d, amplitude)
    assert np.allclose(measured_slope, d, rtol=0.1)


@pytest.mark.filterwarnings("error")
def test_lif_surrogate_finite_at_threshold():
    eps = np.array([1e-15, 1e-12, 1e-9, 1e-6, 1e-3])
    J = np.concatenate([1 - eps, [1.0], 1 + eps])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = smoothed_lif_derivative(J)
        d_lif = evaluate(LIF(), J)

    assert np.all(np.isfinite(d)) and np.all(d > 0)
    assert np.array_equal(d, d_lif)
    # continuous across the threshold, with a bounded peak
    assert np.allclose(d, d[len(eps)], rtol=0.01)
    assert np.max(d) < 200
    # the exact derivative diverges here; the surrogate does not
    assert exact_lif_derivative(1 + 1e-6) > 1e5


@pytest.mark.filterwarnings("error")
def test_lif_surrogate_is_stable_for_extreme_currents():
    J = np.array([-np.inf, -1e300, -1e30, -1e6, -1e3, 1e3, 1e6, 1e30, 1e300, np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = smoothed_lif_derivative(J)
        d_wide = smoothed_lif_derivative(J, sigma=1e3, tau_ref=0)
    assert np.all(np.isfinite(d)) and np.all(d >= 0)
    assert np.all(np.isfinite(d_wide)) and np.all(d_wide >= 0)
    assert np.isnan(smoothed_lif_derivative(np.nan))


@pytest.mark.parametrize(
    "sigma, rtol", [(LIF_SIGMA, 1e-8), (0.1, 0.03), (0.5 / 25, 1e-8)]
)
def test_lif_surrogate_approaches_exact_above_threshold(sigma, rtol, plt):
    tau_rc, tau_ref, amplitude = 0.05, 0.001, 3.0
    J = np.linspace(1.5, 100, 500)
    exact = exact_lif_derivative(J, tau_rc, tau_ref, amplitude)
    d = smoothed_lif_derivative(J, tau_rc, tau_ref, amplitude, sigma=sigma)

    Jp = np.linspace(0, 3, 301)
    plt.plot(Jp, smoothed_lif_derivative(Jp, tau_rc, tau_ref, amplitude, sigma))
    plt.plot(J[J < 3], exact[J < 3], "k--")
    plt.xlabel("J")

    assert np.allclose(d, exact, rtol=rtol, atol=0)


def test_lif_surrogate_decays_below_threshold():
    tau_rc, tau_ref, amplitude, sigma = 0.02, 0.002, 1.0, LIF_SIGMA
    J = np.linspace(-1e3, 1, 20001)
    d = smoothed_lif_derivative(J, tau_rc, tau_ref, amplitude, sigma)

    assert np.all(np.diff(d) > 0)  # falls monotonically going down from threshold
    reference = smoothed_lif_derivative(2.0)
    assert smoothed_lif_derivative(-1.0) < 0.01 * reference
    assert smoothed_lif_derivative(-1e6) < 1e-10 * reference
    # asymptote a sigma / (tau_rc (1 - J)^2)
    far = np.array([-1e4, -1e6])
    asymptote = amplitude * sigma / (tau_rc * (1 - far) ** 2)
    assert np.allclose(smoothed_lif_derivative(far), asymptote, rtol=1e-2)


def test_lif_surrogate_continuous_across_tail_switch():
    # the asymptotic form takes over at (J - 1) / sigma = -30
    for sigma in (LIF_SIGMA, 1.0, 1e3):
        y_switch = -30 - max(np.log(sigma), 0)
        J = 1 + sigma * y_switch * (1 + np.array([-1e-9, 1e-9]))
        d = smoothed_lif_derivative(J, sigma=sigma)
        assert np.allclose(d[0], d[1], rtol=1e-7)


@pytest.mark.parametrize(
    "kwargs, attr",
    [
        (dict(sigma=0), "sigma"),
        (dict(sigma=-1), "sigma"),
        (dict(tau_rc=0), "tau_rc"),
        (dict(tau_ref=-0.001), "tau_ref"),
        (dict(amplitude=np.nan), "amplitude"),
    ],
)
def test_lif_surrogate_invalid_parameters_raise(kwargs, attr):
    with pytest.raises(ValidationError, match="must be finite") as info:
        smoothed_lif_derivative(np.zeros(3), **kwargs)
    assert info.value.attr == attr


def test_lif_surrogate_writes_into_out():
    J = np.linspace(-1, 3, 10)
    out = np.empty(10)
    result = smoothed_lif_derivative(J, out=out)
    assert result is out
    assert np.array_equal(out, smoothed_lif_derivative(J))
    with pytest.raises(ValidationError, match="shape"):
        smoothed_lif_derivative(J, out=np.empty(3))


def test_numerical_derivative_matches_analytic(rng, plt):
    n = 50
    gain = rng.uniform(0.5, 3, size=n)
    bias = rng.uniform(-2, 2, size=n)
    step = make_derivative(SoftplusRate(), gain, bias)

    x = rng.uniform(-1, 1, size=n)
    J = gain * x + bias
    out = np.empty(n)
    step(J, out)
    expected = softplus_rate_derivative(J)

    order = np.argsort(J)
    plt.plot(J[order], expected[order], "k")
    plt.plot(J[order], out[order], "r--")

    assert np.allclose(out, expected, atol=1e-4 * expected.max(), rtol=0)


def test_numerical_derivative_clamps_outside_grid():
    gain = np.array([1.0, 2.0])
    bias = np.array([-1.0, 0.5])
    lo = np.min(bias - 1.5 * gain)  # -2.5
    hi = np.max(bias + 1.5 * gain)  # 3.5
    step = make_derivative(SoftplusRate(), gain, bias)

    def at(J):
        return step(np.asarray(J, dtype=float), np.empty(2))

    edges = at([lo, hi])
    assert np.allclose(edges, softplus_rate_derivative(np.array([lo, hi])), rtol=1e-3)
    assert np.array_equal(at([lo - 5, hi + 5]), edges)
    assert np.array_equal(at([-np.inf, np.inf]), edges)
    assert np.array_equal(at([-1e300, 1e300]), edges)
    assert np.all(np.isnan(at([np.nan, np.nan])))


def test_numerical_derivative_warns_when_zero():
    class Silent(NeuronType):
        def step(self, dt, J, output):
            output[...] = 0

    with pytest.warns(UserWarning, match="zero everywhere"):
        make_derivative(Silent(), np.ones(3), np.zeros(3))


ALLOCATION_CASES = [
    RectifiedLinear(amplitude=2),
    SpikingRectifiedLinear(),
    Sigmoid(),
    Tanh(),
    LIFRate(),
    LIF(amplitude=0.5),
    AdaptiveLIF(),
    RegularSpiking(LIFRate(), amplitude=2),
    Izhikevich(),
    SoftplusRate(),
]
if SoftLIFRate is not None:
    ALLOCATION_CASES.append(SoftLIFRate(sigma=0.5))


@pytest.mark.parametrize("neuron_type", ALLOCATION_CASES, ids=repr)
def test_step_works_in_place_without_allocating(neuron_type, rng):
    n = 100_000
    gain = rng.uniform(1, 50, size=n)
    bias = rng.uniform(-20, 20, size=n)
    J = gain * rng.uniform(-1, 1, size=n) + bias
    step = make_derivative(neuron_type, gain, bias)
    out = np.full(n, np.nan)
    step(J, out)  # warm up
    expected = out.copy()
    assert np.all(np.isfinite(expected))

    tracemalloc.start()
    try:
        result = step(J, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result is out
    assert np.array_equal(out, expected)
    assert peak < 0.05 * J.nbytes, f"step allocated {peak} bytes"


@pytest.mark.parametrize("neuron_type", [LIF(), Tanh(), SoftplusRate()], ids=repr)
def test_step_writes_float32_out(neuron_type):
    J = np.linspace(-1, 3, 20)
    gain, bias = np.ones(20), np.zeros(20)
    step = make_derivative(neuron_type, gain, bias)
    out64 = step(J, np.empty(20))
    out32 = np.empty(20, dtype=np.float32)
    step(J, out32)
    assert np.allclose(out32, out64, rtol=1e-6)


def test_izhikevich_derivative_above_threshold(rng, plt):
    neuron_type = Izhikevich()
    n = 40
    gain, bias = neuron_type.gain_bias(
        rng.uniform(50, 150, size=n), rng.uniform(-0.9, 0.9, size=n)
    )
    step = make_derivative(neuron_type, gain, bias)

    # up to J ~ 45 (about 100 Hz) the tuning curve rises steadily; above, the
    # discrete-time curve has flat stretches, where the derivative dips
    J = np.linspace(8, 45, n)
    d = step(J, np.empty(n))
    # secant slopes of the (1 Hz quantised) tuning curve, over a wide window
    h = 5.0
    secant = (
        rates_of_current(neuron_type, J + h) - rates_of_current(neuron_type, J - h)
    ) / (2 * h)
    below = step(np.linspace(-20, -5, n), np.empty(n))

    plt.plot(J, secant, "k", label="secant of rates")
    plt.plot(J, d, "r--", label="make_derivative")
    plt.legend()

    assert np.all(np.isfinite(d))
    assert np.all(d > 0.5)
    assert np.all((d > 0.5 * secant) & (d < 2 * secant))
    assert 0.8 < np.mean(d) / np.mean(secant) < 1.25
    assert np.all(np.abs(below) < 0.05 * np.mean(d))


def test_izhikevich_below_threshold_warns():
    # With gain 1 and bias 0, x in [-1, 1] never reaches the threshold (J ~ 3.8):
    # the tabulated derivative is zero, which is what a naive table gave.
    with pytest.warns(UserWarning, match="zero everywhere"):
        make_derivative(Izhikevich(), np.ones(4), np.zeros(4))


def test_user_derivative_overrides_registry():
    J = np.linspace(-2, 3, 6)
    gain, bias = np.ones(6), np.zeros(6)
    calls = []

    def derivative(J):
        calls.append(J.shape)
        return 2 * J

    step = make_derivative(LIF(), gain, bias, derivative=derivative)
    assert calls == [(6,)]  # checked once at build time
    out = np.empty(6)
    assert step(J, out) is out
    assert np.array_equal(out, 2 * J)
    assert not np.allclose(out, evaluate(LIF(), J))


@pytest.mark.parametrize(
    "derivative, match",
    [
        (lambda J: np.ones(len(J) + 1), "shape"),
        (lambda J: 1.0, "shape"),
        (lambda J: np.full(J.shape, np.nan), "non-finite"),
        ("not callable", "callable"),
        (lambda J: 1 / 0, "failed"),
    ],
)
def test_invalid_user_derivative_raises(derivative, match):
    with pytest.raises(BuildError, match=match):
        make_derivative(LIF(), np.ones(5), np.zeros(5), derivative=derivative)


@pytest.mark.parametrize("derivative", [None, np.ones_like])
def test_direct_raises(derivative):
    with pytest.raises(BuildError, match="no neurons"):
        make_derivative(Direct(), np.ones(2), np.zeros(2), derivative=derivative)


def test_gain_bias_shape_mismatch_raises():
    with pytest.raises(BuildError, match="same shape"):
        make_derivative(LIF(), np.ones(3), np.zeros(4))


@pytest.fixture
def registry(monkeypatch):
    """A copy of the registry, so registrations made by a test are undone."""
    copy = dict(fa_neurons._DERIVATIVES)
    monkeypatch.setattr(fa_neurons, "_DERIVATIVES", copy)
    return copy


def test_register_derivative_and_mro_lookup(registry):
    class Custom(NeuronType):
        def step(self, dt, J, output):
            output[...] = J

    class CustomChild(Custom):
        pass

    class MyLIF(LIFRate):
        pass

    @register_derivative(Custom)
    def custom_derivative(neuron_type, gain, bias):
        def step(J, out):
            out.fill(7.0)
            return out

        return step

    assert registry[Custom] is custom_derivative
    J = np.linspace(1.5, 3, 4)
    assert np.array_equal(evaluate(Custom(), J), np.full(4, 7.0))
    assert np.array_equal(evaluate(CustomChild(), J), np.full(4, 7.0))
    # unregistered subclasses of core types use their parent's derivative
    assert np.array_equal(evaluate(MyLIF(), J), smoothed_lif_derivative(J))

    @register_derivative(CustomChild)
    def child_derivative(neuron_type, gain, bias):
        def step(J, out):
            out.fill(-1.0)
            return out

        return step

    assert np.array_equal(evaluate(CustomChild(), J), np.full(4, -1.0))
    assert np.array_equal(evaluate(Custom(), J), np.full(4, 7.0))

    with pytest.warns(UserWarning, match="Overwriting"):
        register_derivative(Custom)(child_derivative)


def test_register_derivative_rejects_non_neuron_types(registry):
    with pytest.raises(ValidationError, match="NeuronType subclass"):
        register_derivative(LIF())
    with pytest.raises(ValidationError, match="NeuronType subclass"):
        register_derivative(int)
