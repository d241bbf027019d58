"""Run-time robustness: non-finite values never reach the learned state, steps
stay bounded, 32-bit precision, and clear errors for chains that cannot work.

Every case here failed on the version before these checks: NaN encoders
before a message saying they were intact, raw FloatingPointErrors, biases of
-1e51, neurons dead for good, or ``ValueError: output array is not
acceptable`` in 32 bits.
"""

import warnings

import nengo
import numpy as np
import pytest
from nengo.builder import Signal
from nengo.exceptions import BuildError, NengoWarning, SimulationError, ValidationError

import nengo_fa
from nengo_fa.builder import SimAlignmentDiagnostics, SimAlignmentTerms, SimKolenPollack
from nengo_fa.builder import kernels as _kernels
from nengo_fa.builder.hidden_layer import (
    MAX_GAIN_FRACTION,
    MAX_INTERCEPT,
    FeedbackError,
    SimHiddenLayerRule,
)
from nengo_fa.builder.numerics import rms_row_norm

DERIVATIVE_CALLS_AT_BUILD = 102  # one check, then 101 points for the scale


def overflow(value_after, t_on, before=0.0):
    """A finite Node output that a transform of 1e10 overflows to inf (Nengo
    refuses a Node that returns NaN or inf itself)."""
    return lambda t: value_after if t > t_on else before


class SwitchingDerivative:
    """G'(J) = 1 while the rule is built, then ``bad(J)`` from the first step."""

    def __init__(self, bad):
        self.bad = bad
        self.calls = 0

    def __call__(self, J):
        self.calls += 1
        return (
            np.ones_like(J) if self.calls <= DERIVATIVE_CALLS_AT_BUILD else self.bad(J)
        )


def hidden_net(
    rule="fa", n=10, seed=0, error=None, neuron_type=None, readout_rate=1e-4, **kwargs
):
    """Two sines into ``n`` neurons learned by ``rule``, a PES readout (at
    ``readout_rate``); the error the hidden rule gets is ``error(t, e)`` of
    the true one."""
    neuron_type = nengo.RectifiedLinear() if neuron_type is None else neuron_type
    # explicit rates: the cases (dt=0.05 out of the stable range) depend on them
    rates = ("learning_rate", "gain_learning_rate", "bias_learning_rate")
    kwargs = {**dict.fromkeys(rates, 3.0), **kwargs}
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.cos(np.pi * t)])
        net.hidden = nengo.Ensemble(n, 2, neuron_type=neuron_type)
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(
            net.hidden,
            out,
            function=lambda x: 0.1 * x[0],
            learning_rule_type=nengo.PES(learning_rate=readout_rate),
        )
        if rule == "bp":
            # the step itself from the first step on (test_warmup.py has the
            # warm-up, and a non-finite error during it)
            rule_type = nengo_fa.BackProp(readout, **{"warmup": None, **kwargs})
        else:
            rule_type = nengo_fa.FeedbackAlignment(1, **kwargs)
        net.layer1 = nengo.Connection(stim, net.hidden, learning_rule_type=rule_type)
        e = nengo.Node(size_in=1)
        nengo.Connection(out, e)
        nengo.Connection(stim, e, function=lambda x: -x[0] * x[1])
        nengo.Connection(e, readout.learning_rule)
        hidden_error = e if error is None else nengo.Node(error, size_in=1)
        if error is not None:
            nengo.Connection(e, hidden_error, synapse=None)
        nengo.Connection(hidden_error, net.layer1.learning_rule)
        net.rule_probes = {
            key: nengo.Probe(net.layer1.learning_rule, key, synapse=None)
            for key in ("scaled_encoders", "gain", "bias")
        }
    return net


def state(sim, net):
    ens = net.hidden
    return (
        sim.signals[sim.model.sig[ens]["encoders"]],
        sim.signals[sim.model.sig[ens]["gain"]],
        sim.signals[sim.model.sig[ens.neurons]["bias"]],
    )


def assert_finite_state(sim, net):
    for value in state(sim, net):
        assert np.all(np.isfinite(value))


# --- non-finite values --------------------------------------------------------


def bad_source(kind, size_out=1):
    """A Node that turns NaN or inf after 50 steps, and the transform that
    gives inf (Nengo refuses a Node function that returns NaN or inf itself,
    but not a process; a finite value is overflowed by the transform)."""
    if kind == "nan":
        return nengo.Node(nengo.processes.Piecewise({0: 0.0, 0.0505: np.nan})), 1.0
    return nengo.Node(lambda t: 1e300 if t > 0.0505 else 0.0), 1e10


def add_to_error(net, kind):
    with net:
        node, scale = bad_source(kind)
        nengo.Connection(node, net.layer1.learning_rule, transform=scale, synapse=None)


def add_to_input(net, kind):
    with net:
        node, scale = bad_source(kind)
        nengo.Connection(node, net.hidden[0], transform=scale, synapse=None)


def add_to_neurons(net, kind):
    with net:
        node, scale = bad_source(kind)
        n = net.hidden.n_neurons
        nengo.Connection(
            node, net.hidden.neurons, transform=np.full((n, 1), scale), synapse=None
        )


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("rule", ["fa", "bp"])
@pytest.mark.parametrize(
    "inject, kind, match",
    [
        (add_to_error, "inf", "the error contains NaN or inf.*connections into this"),
        (add_to_error, "nan", "the error contains NaN or inf.*connections into this"),
        (add_to_input, "inf", "input contains NaN or inf"),
        (add_to_input, "nan", "input contains NaN or inf"),
        # the readout's decoders turn inf activities into NaN, which Nengo's own
        # DotInc refuses with a FloatingPointError before the rule runs: NaN
        # only. A rectified linear G'(NaN) is 0, so the NaN reaches the rule
        # through the error, on the next step, and is traced back to J
        (add_to_neurons, "nan", "neurons' input current J"),
    ],
    ids=["error-inf", "error-nan", "input-inf", "input-nan", "neurons-nan"],
)
def test_non_finite_signal_stops_before_state_changes(
    rule, inject, kind, match, kernels
):
    net = hidden_net(rule)
    inject(net, kind)
    with nengo.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(SimulationError, match=match) as info:
            sim.run(0.2)
        assert 50 <= sim.n_steps <= 53  # at once, or through the error
        assert "finite and as the previous step left them" in str(info.value)
        assert_finite_state(sim, net)
        # the failed step's outputs are "no update": running on applies
        # nothing non-finite
        for op in sim.model.operators:
            if type(op).__name__ == "SimHiddenLayerRule":
                for sig in op.updates:
                    assert np.all(np.isfinite(sim.signals[sig]))


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda J: np.full_like(J, np.nan), "derivative G'"),
        (lambda J: np.full_like(J, np.inf), "derivative G'"),
        (lambda J: None, "returned None"),
        (lambda J: np.ones(3), r"returned shape \(3,\)"),
    ],
    ids=["nan", "inf", "none", "shape"],
)
def test_bad_derivative_at_run_time_raises(bad, match, kernels):
    net = hidden_net("fa", derivative=SwitchingDerivative(bad))
    with nengo.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(SimulationError, match=match):
            sim.run_steps(5)
        assert sim.n_steps == 0
        assert_finite_state(sim, net)


def test_message_does_not_claim_a_broken_state_intact():
    net = hidden_net("fa")
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(2)
        S, _, _ = state(sim, net)
        S[0, 0] = np.nan  # as another rule or a user might
        with pytest.raises(SimulationError) as info:
            sim.run_steps(2)
    msg = str(info.value)
    assert "encoders, already not finite" in msg
    assert "as the previous step left them" not in msg


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(learning_rate=1e308, gain_learning_rate=1e308, bias_learning_rate=1e308),
        dict(gain_learning_rate=1e308),
        dict(bias_learning_rate=1e308),
    ],
)
@pytest.mark.filterwarnings("ignore::nengo_fa.StableRangeWarning")
def test_huge_finite_rates_give_finite_state(kwargs, kernels):
    # were a raw FloatingPointError (0 * inf) or inf biases
    net = hidden_net("fa", **kwargs)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run(0.3)
        assert_finite_state(sim, net)


# --- bounded steps ------------------------------------------------------------


def assert_bounded(sim, net, n_alive):
    """Finite gains, biases within their bounds, and at least ``n_alive``
    neurons that still fire for some input within the radius."""
    assert_finite_state(sim, net)
    _, gain, bias = state(sim, net)
    g0 = sim.data[net.hidden].gain
    g_max = MAX_GAIN_FRACTION * np.mean(g0)
    assert np.all(gain <= g_max * (1 + 1e-12))
    assert np.all(bias <= g_max * (1 + 1e-12))  # theta = 0 for RectifiedLinear
    intercepts = -bias / gain
    assert np.all(intercepts <= MAX_INTERCEPT + 1e-9)
    assert np.sum(intercepts < 1) >= n_alive


@pytest.mark.parametrize("rule", ["fa", "bp"])
@pytest.mark.parametrize("size", [1e5, 1e30, 1e307])
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_huge_error_keeps_state_bounded(rule, size, kernels):
    # before: biases -2.2e8 (1e5) or -1.9e51 (1e30), and raw errors at 1e200;
    # at 1e307, whose square overflows, FA raised numpy's FloatingPointError
    # (delta . S x: inf - inf) where it now takes bounded steps as BP does.
    # The readout does not learn: a PES readout diverges once the activities
    # of a layer held at its gain ceiling are beyond its stable rate (about
    # 1e6 here, which backprop's layer reaches in 0.3 s), and then so does
    # backprop's feedback, which is that readout
    net = hidden_net(
        rule, error=lambda t, e: e + (size if t > 0.5 else 0), readout_rate=0.0
    )
    with nengo.Simulator(net, progress_bar=False) as sim:
        with pytest.warns(nengo_fa.StableRangeWarning, match="step bounds"):
            sim.run(1.0)
        assert_bounded(sim, net, n_alive=net.hidden.n_neurons)
    # each step moves a bias by at most half the neuron's range, plus what
    # keeps its intercept within the radius when the gain shrinks
    bias, gain = sim.data[net.rule_probes["bias"]], sim.data[net.rule_probes["gain"]]
    g_min = 1e-3 * np.mean(gain[0])
    steps = np.abs(np.diff(bias, axis=0))
    assert np.all(steps <= np.maximum(gain[:-1], g_min) * (1 + 1e-9))
    assert np.max(steps / gain[:-1]) > 0.4  # the bound was reached


def test_large_dt_warns_and_keeps_neurons_alive():
    # before: no warning, 8 of 10 neurons dead for good after 5 s
    net = hidden_net("fa")
    with pytest.warns(nengo_fa.StableRangeWarning, match="dt=0.05"):
        sim = nengo.Simulator(net, dt=0.05, progress_bar=False)
    with sim:
        sim.run(5.0)
        assert_bounded(sim, net, n_alive=net.hidden.n_neurons)


@pytest.mark.filterwarnings("ignore::nengo_fa.StableRangeWarning")
def test_huge_rate_keeps_neurons_alive():
    # before: biases -2.5e7, 9 of 10 neurons dead
    net = hidden_net(
        "fa", learning_rate=1e6, gain_learning_rate=1e6, bias_learning_rate=1e6
    )
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run(1.0)
        assert_bounded(sim, net, n_alive=net.hidden.n_neurons)


def test_normal_dt_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", nengo_fa.StableRangeWarning)
        with nengo.Simulator(hidden_net("fa"), progress_bar=False) as sim:
            sim.run(0.3)


def weights_net(error_size):
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.cos(np.pi * t)])
        pre = nengo.Ensemble(10, 2, neuron_type=nengo.RectifiedLinear())
        net.hidden = nengo.Ensemble(10, 2, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(stim, pre)
        net.layer1 = nengo.Connection(
            pre.neurons,
            net.hidden.neurons,
            transform=np.zeros((10, 10)),
            learning_rule_type=nengo_fa.FeedbackAlignment(1, modifies="weights"),
        )
        error = nengo.Node(lambda t: error_size if t > 0.1 else 0.1)
        nengo.Connection(error, net.layer1.learning_rule)
        net.weights = nengo.Probe(net.layer1, "weights", synapse=None)
    return net


def test_weights_steps_are_bounded():
    # each row moves its neuron's current by at most half its range a step
    net = weights_net(1e30)
    with nengo.Simulator(net, progress_bar=False) as sim:
        with pytest.warns(nengo_fa.StableRangeWarning):
            sim.run(0.3)
    W = sim.data[net.weights]
    assert np.all(np.isfinite(W))
    assert np.max(np.abs(W)) < 1e3


def pre_driven_net(drive):
    """Weight learning from ``pre``, whose neurons are driven through their
    encoders (``drive`` None) or directly, through ``pre.neurons`` with a
    random transform of scale ``drive``."""
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(nengo.processes.WhiteSignal(10, high=2, rms=0.5), size_out=2)
        pre = nengo.Ensemble(50, 2, neuron_type=nengo.RectifiedLinear())
        if drive is None:
            nengo.Connection(stim, pre)
        else:
            transform = drive * np.random.RandomState(0).randn(50, 2)
            nengo.Connection(stim, pre.neurons, transform=transform)
        post = nengo.Ensemble(30, 1)
        conn = nengo.Connection(
            pre.neurons,
            post.neurons,
            transform=np.zeros((30, 50)),
            learning_rule_type=nengo_fa.FeedbackAlignment(1, modifies="weights"),
        )
        nengo.Connection(nengo.Node(np.sin), conn.learning_rule)
    return net


def test_activities_off_their_tuning_curves_warn(kernels):
    # the steps are scaled by |a|^2 over pre's tuning curves: driven through
    # pre.neurons, its rates are far from them, and so is every step
    with nengo.Simulator(pre_driven_net(1e3), progress_bar=False) as sim:
        with pytest.warns(nengo_fa.ActivityScaleWarning, match=r"7\.2e\+06 times"):
            sim.run(1.2)


def test_activities_on_their_tuning_curves_do_not_warn():
    with nengo.Simulator(pre_driven_net(None), progress_bar=False) as sim:
        with warnings.catch_warnings():
            warnings.simplefilter("error", nengo_fa.ActivityScaleWarning)
            sim.run(1.2)


# --- learned feedback and diagnostics -----------------------------------------


def run_op(op, values, steps=1):
    """Run ``op``'s step on ``values`` ({signal: array}) under Nengo's error
    settings (invalid operations raise)."""
    signals = {sig: np.array(v, dtype=float) for sig, v in values.items()}
    step = op.make_step(signals, 0.001, np.random.RandomState(0))
    with np.errstate(invalid="raise", divide="ignore"):
        for _ in range(steps):
            step()
    return signals


@pytest.mark.parametrize("compiled", [False, True])
def test_diagnostics_are_nan_when_weights_overflow(compiled):
    # was a raw FloatingPointError (inf / inf in delta_angle)
    e, B, W, J = Signal(shape=1), Signal(shape=(3, 1)), Signal(shape=(1, 3)), None
    J = Signal(shape=3)
    outs = [Signal(shape=1) for _ in range(3)]
    op = SimAlignmentDiagnostics(
        e, B, W, J, *outs, derivative=relu_derivative, compiled=compiled
    )
    values = run_op(
        op,
        {e: [1.0], B: [[1.0], [2.0], [3.0]], W: [[np.inf, 1e308, 1.0]], J: [1, 1, 1]}
        | {out: [0.0] for out in outs},
    )
    assert all(np.isnan(values[out][0]) for out in outs)


def relu_derivative(J, out):
    np.greater(J, 0, out=out)
    return out


def kolen_pollack_op(shape, decay, compiled, from_change, W, previous, B):
    """A `SimKolenPollack` giving the feedback error (e = 1) and its signals,
    reading W and its previous value or, ``from_change``, their difference
    (the delta of the readout's one learning rule)."""
    d_out, n = shape
    sig_W, sig_prev = Signal(shape=shape), Signal(shape=shape)
    sig_B = Signal(shape=(n, d_out))
    e, fe, nu = Signal(shape=d_out), Signal(shape=n), Signal(shape=1)
    kwargs = dict(tag="KP", error=e, feedback_error=FeedbackError(fe, nu))
    kwargs.update(compiled=compiled)
    if from_change:
        op = SimKolenPollack(sig_W, None, sig_B, decay, change=sig_prev, **kwargs)
        with np.errstate(over="ignore"):
            previous = np.subtract(W, previous)  # the change it is given
    else:
        op = SimKolenPollack(sig_W, sig_prev, sig_B, decay, **kwargs)
    signals = {sig_W: W, sig_prev: previous, sig_B: B}
    signals.update({e: np.ones(d_out), fe: np.zeros(n), nu: np.zeros(1)})
    return op.make_step(signals, 0.001, None), signals[sig_B], signals[sig_prev]


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("from_change", [False, True])
@pytest.mark.parametrize("bad", [np.inf, 1e308])
def test_kolen_pollack_stops_before_feedback_changes(compiled, from_change, bad):
    # 1e308 - (-1e308) overflows: the change is not finite either
    W, previous = np.array([[1.0, bad, 0.0]]), np.array([[0, -bad, 0]])
    step, B, _ = kolen_pollack_op(
        (1, 3), 0.2, compiled, from_change, W, previous, np.ones((3, 1))
    )
    # numpy warns of the overflow in W - W_prev; the operator then stops
    with np.errstate(over="ignore"):
        with pytest.raises(SimulationError, match="forward weights W.*not changed"):
            step()
    assert np.array_equal(B, np.ones((3, 1)))


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("from_change", [False, True])
@pytest.mark.parametrize("decay", [0.2, 0.0])
def test_kolen_pollack_near_overflow_stops_or_steps(compiled, from_change, decay):
    """A change of W within the largest float but beyond the bound where the
    update cannot overflow: a step if the update is finite, else a stop that
    leaves B as it was; with a decay and without (KolenPollack's default)."""
    keep = 1 - decay * 0.001
    for b, finite in ((1.7e308, True), (1.79e308, False)):
        W = np.array([[1e306, 0.0]])
        step, B, previous = kolen_pollack_op(
            (1, 2),
            decay,
            compiled,
            from_change,
            W,
            np.zeros((1, 2)),
            np.array([[b], [1.0]]),
        )
        with np.errstate(over="ignore"):  # |W - W_prev|^2, |B|^2: checks
            if finite:
                step()
                assert np.allclose(B[:, 0], [b * keep + 1e306, keep])
                # W_prev is W now (from_change: the change W - 0, as it was)
                assert np.array_equal(previous, W)
            else:
                with pytest.raises(SimulationError, match="overflow"):
                    step()
                assert B[0, 0] == b


@pytest.mark.skipif(not _kernels.AVAILABLE, reason="numba is not installed")
def test_kolen_pollack_without_decay_steps_compiled():
    """Without a decay the compiled loop bounds the update by |B| itself: it
    used to hand every step of KolenPollack's default to the numpy code
    (returning -2), at three times the cost."""
    rng = np.random.RandomState(0)
    B = rng.normal(size=(50, 3))
    W = rng.normal(size=(3, 50))
    previous = W - 1e-3 * rng.normal(size=W.shape)
    e, fe, scratch = rng.normal(size=3), np.zeros(50), np.zeros(50)
    expected_B, expected_fe = B + (W - previous).T, B @ e
    expected_nu = np.linalg.norm(B) / np.sqrt(50)
    limit = np.finfo(np.float64).max
    kolen_pollack = _kernels.compiled(_kernels.kolen_pollack)
    nu = kolen_pollack(B, W, previous, 1.0, 0.0, limit, e, fe, scratch)
    assert np.isclose(nu, expected_nu, rtol=1e-12)
    assert np.allclose(fe, expected_fe, rtol=1e-12)
    assert np.array_equal(B, expected_B)
    assert np.array_equal(previous, W)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize(
    "where, match", [("W", "forward weights"), ("a", "activities"), ("B", "overflow")]
)
def test_alignment_terms_stop_before_feedback_changes(compiled, where, match):
    W, a, B = Signal(shape=(1, 3)), Signal(shape=3), Signal(shape=(3, 1))
    e, fe, nu = Signal(shape=1), Signal(shape=3), Signal(shape=1)
    terms = nengo_fa.AlignmentTerms(decay=1.0, self_=1.0, amp=1.0, null=1.0)
    op = SimAlignmentTerms(
        W,
        a,
        B,
        terms,
        tag="AT",
        error=e,
        feedback_error=FeedbackError(fe, nu),
        compiled=compiled,
    )
    signals = {W: np.ones((1, 3)), a: np.ones(3), B: np.ones((3, 1))}
    signals.update({e: np.ones(1), fe: np.zeros(3), nu: np.zeros(1)})
    if where == "B":
        signals[W][0, 0] = signals[B][0, 0] = 1e200  # the Null term overflows
    else:
        signals[W if where == "W" else a][...] = np.nan
    before = signals[B].copy()
    step = op.make_step(signals, 0.001, None)
    with np.errstate(all="ignore"), pytest.raises(SimulationError, match=match):
        step()
    assert np.array_equal(signals[B], before)


# --- build-time checks --------------------------------------------------------


def test_chain_cycle_raises():
    with nengo.Network() as net:
        a, b = nengo.Ensemble(10, 1), nengo.Ensemble(10, 1)
        into_a = nengo.Connection(
            b, a, learning_rule_type=nengo_fa.FeedbackAlignment(1)
        )
        into_b = nengo.Connection(a, b, learning_rule_type=nengo_fa.BackProp(into_a))
        # a replaced rule closes the cycle: each takes its error from the other
        into_a.learning_rule_type = nengo_fa.FeedbackAlignment(downstream=into_b)
    with pytest.raises(BuildError, match="'downstream' connections is a cycle"):
        nengo.Simulator(net, progress_bar=False)


def test_zero_fixed_feedback_warns():
    with nengo.Network() as net:
        ens = nengo.Ensemble(10, 1)
        conn = nengo.Connection(
            nengo.Node([1]),
            ens,
            learning_rule_type=nengo_fa.FeedbackAlignment(
                1, feedback=np.zeros((10, 1))
            ),
        )
        nengo.Connection(nengo.Node([0.1]), conn.learning_rule)
    with pytest.warns(NengoWarning, match="all zero"):
        nengo.Simulator(net, progress_bar=False).close()


def test_all_zero_gains_raise():
    """An ensemble whose gains are all 0 gives the rule no direction and no
    scale: a BuildError naming it, not a numpy error at run time."""
    with nengo.Network() as net:
        ens = nengo.Ensemble(
            10,
            1,
            neuron_type=nengo.RectifiedLinear(),
            gain=np.zeros(10),
            bias=np.ones(10),
            label="zero-gain",
        )
        conn = nengo.Connection(
            nengo.Node([1]), ens, learning_rule_type=nengo_fa.FeedbackAlignment(1)
        )
        nengo.Connection(nengo.Node([0.1]), conn.learning_rule)
    with pytest.raises(BuildError, match="every gain of <Ensemble 'zero-gain'> is 0"):
        nengo.Simulator(net, progress_bar=False)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_rms_row_norm_of_tiny_and_huge_matrices(scale, rng):
    """The normalisation's RMS row norm neither underflows to 0 nor
    overflows to inf where the matrix's elements are finite and not all 0."""
    F = rng.standard_normal((30, 2))
    expected = np.sqrt(np.sum(F**2) / 30)
    assert rms_row_norm(F * scale, 30) == pytest.approx(expected * scale, rel=1e-12)
    assert rms_row_norm(np.zeros((30, 2)), 30) == 0


def test_error_into_chained_rule_says_where_its_error_comes_from():
    with nengo.Network():
        h1, h2 = nengo.Ensemble(10, 1), nengo.Ensemble(10, 1)
        readout = nengo.Connection(h2, nengo.Node(size_in=1))
        into_h2 = nengo.Connection(
            h1, h2, learning_rule_type=nengo_fa.BackProp(readout)
        )
        into_h1 = nengo.Connection(
            nengo.Node([1]), h1, learning_rule_type=nengo_fa.BackProp(into_h2)
        )
        with pytest.raises(ValidationError, match="chained: it takes its error from"):
            nengo.Connection(nengo.Node([0.1]), into_h1.learning_rule)
        # the same words appear in Nengo's other messages about the rule, so
        # they must be true there too: no instruction to connect an error
        with pytest.raises(ValidationError, match="must be of type 'Ensemble'") as e:
            nengo.Connection(
                h1.neurons,
                h2.neurons,
                transform=np.zeros((10, 10)),
                learning_rule_type=nengo_fa.BackProp(into_h2),
            )
        assert "an error connection goes to that rule, not to this one" in str(e.value)
        assert "connect the output error" not in str(e.value)


# --- 32-bit precision ---------------------------------------------------------


def precision_net(case, seed=1):
    """Sines in, a random map out; ``case`` picks the rule and mode."""
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin([1.3 * t, 2.1 * t, 2.9 * t]))
        hidden = nengo.Ensemble(40, 3, neuron_type=nengo.RectifiedLinear())
        pre, lower_rule = stim, None
        if case == "chain":
            h0 = nengo.Ensemble(40, 3, neuron_type=nengo.RectifiedLinear())
            nengo.Connection(stim, h0)
            pre = h0
        out = nengo.Node(size_in=2)
        readout = nengo.Connection(
            hidden,
            out,
            function=lambda x: [0.1, 0.1],
            learning_rule_type=nengo.PES(learning_rate=1e-3),
        )
        kwargs = {}
        if case == "unequal":
            kwargs = dict(gain_learning_rate=1.0)
        if case in ("bp", "chain", "unequal"):
            rule_type = nengo_fa.BackProp(readout, **kwargs)
        elif case == "ss":
            rule_type = nengo_fa.SignSymmetry(readout)
        elif case == "kp":
            rule_type = nengo_fa.FeedbackAlignment(
                downstream=readout,
                feedback=nengo.dists.Gaussian(0, 1e-2),
                feedback_learning=nengo_fa.KolenPollack(),
            )
        elif case == "terms":
            rule_type = nengo_fa.FeedbackAlignment(
                downstream=readout, feedback_learning=nengo_fa.ActivationAlignment()
            )
        elif case == "bd":
            rule_type = nengo_fa.FeedbackAlignment(
                downstream=readout,
                feedback_learning=nengo_fa.BidirectionalAlignment(),
            )
        elif case == "lra":
            rule_type = nengo_fa.LRA(2)
        elif case == "weights":
            pre = nengo.Ensemble(40, 3, neuron_type=nengo.RectifiedLinear())
            nengo.Connection(stim, pre)
            nengo.Connection(stim, hidden)
            rule_type = nengo_fa.BackProp(readout, modifies="weights")
        else:
            rule_type = nengo_fa.FeedbackAlignment(2)
        if case == "weights":
            layer = nengo.Connection(
                pre.neurons,
                hidden.neurons,
                transform=np.zeros((40, 40)),
                learning_rule_type=rule_type,
            )
        else:
            layer = nengo.Connection(pre, hidden, learning_rule_type=rule_type)
        if case == "chain":
            lower_rule = nengo.Connection(
                stim, h0, learning_rule_type=nengo_fa.BackProp(layer)
            ).learning_rule
        error = nengo.Node(size_in=2)
        nengo.Connection(out, error)
        nengo.Connection(stim, error, transform=rng.normal(size=(2, 3)))
        nengo.Connection(error, readout.learning_rule)
        nengo.Connection(error, layer.learning_rule)
        keys = ["delta", "bias"] + ([] if case == "weights" else ["scaled_encoders"])
        net.rule_probes = {k: nengo.Probe(layer.learning_rule, k) for k in keys}
        net.rule_probes["out"] = nengo.Probe(out)
        if lower_rule is not None:
            net.rule_probes["lower"] = nengo.Probe(lower_rule, "scaled_encoders")
    return net


def run_in(bits, case, steps=300):
    old = nengo.rc.get("precision", "bits")
    nengo.rc.set("precision", "bits", bits)
    try:
        net = precision_net(case)
        with nengo.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(steps)
        return {k: sim.data[p] for k, p in net.rule_probes.items()}, sim
    finally:
        nengo.rc.set("precision", "bits", old)


#: float32 against float64: largest difference over 300 steps, relative to the
#: probe's largest value. float32 rounds to 6e-8 of a value; learning feeds the
#: rounding back into the next steps, most in the local error: measured 1e-7 to
#: 6e-7 for encoders, biases and outputs and up to 5e-6 for delta (learned
#: feedback), numpy and compiled alike. 1e-4 leaves a factor of 20 for other
#: BLAS libraries and summation orders.
PRECISION_RTOL = 1e-4


@pytest.mark.parametrize(
    "case",
    ["fa", "bp", "ss", "kp", "terms", "bd", "lra", "unequal", "chain", "weights"],
)
def test_32_bit_matches_64_bit(case, kernels):
    ref, _ = run_in("64", case)
    low, sim = run_in("32", case)
    assert low["bias"].dtype == np.float32
    for key, value in ref.items():
        scale = np.max(np.abs(value))
        assert scale > 0, key
        assert np.max(np.abs(low[key] - value)) <= PRECISION_RTOL * scale, key
    # learning happened, so the comparison means something
    first = ref["scaled_encoders" if "scaled_encoders" in ref else "bias"]
    assert not np.allclose(first[-1], first[0])


def shrinking_gains_net(n):
    """``benchmarks/dl_speed.py``'s network: FA on ``n`` rectified linear
    neurons, a PES readout from the neurons that starts at zero. Over 800
    steps a few gains shrink a thousandfold, to the floor."""
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)])
        net.hidden = nengo.Ensemble(n, 2, neuron_type=nengo.RectifiedLinear())
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(
            net.hidden.neurons,
            out,
            transform=np.zeros((1, n)),
            learning_rule_type=nengo.PES(learning_rate=1e-4 / n),
        )
        layer1 = nengo.Connection(
            stim,
            net.hidden,
            learning_rule_type=nengo_fa.FeedbackAlignment(
                out, learning_rate=3.0, gain_learning_rate=3.0, bias_learning_rate=3.0
            ),
        )
        net.layer_rule = layer1.learning_rule
        error = nengo.Node(size_in=1)
        nengo.Connection(out, error)
        nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
        nengo.Connection(error, readout.learning_rule)
        nengo.Connection(error, layer1.learning_rule)
    return net


def test_32_bit_gains_stay_the_row_norms(kernels):
    """In float32, the gains stay r |S_i| when they shrink a thousandfold.

    The gain step keeps g = r |S_i| through m^2 = g^2 + t, which carries the
    rounding error of g^2 made while g was large; before the gains were
    measured from S below float64, that error had become 31-33% of the gains
    that shrank to the floor here (and 45% in NengoDL, where the earlier row
    rescaling made it grow without bound: the float32 divergence at n=50000).
    """
    net = shrinking_gains_net(10000)
    old = nengo.rc.get("precision", "bits")
    nengo.rc.set("precision", "bits", "32")
    try:
        with nengo.Simulator(net, progress_bar=False) as sim:
            g0 = sim.signals[sim.model.sig[net.hidden]["gain"]].copy()
            sim.run_steps(800)
            S, gain, _ = state(sim, net)
    finally:
        nengo.rc.set("precision", "bits", old)
    assert np.min(gain / g0) < 0.01  # the case that drifted
    rows = np.linalg.norm(S.astype(float), axis=1) * net.hidden.radius
    assert np.max(np.abs(rows - gain) / gain) < 1e-5


def test_gains_at_the_floor_stay_the_row_norms(kernels):
    """In float64, a gain held at its floor stays r |S_i|.

    A constant error and input keep shrinking the rows whose local error has
    the sign of S x, down to the gain floor (the bias floor keeps those
    neurons active, so the steps go on). Each step at the floor scales the row
    by g' / m; with m inferred from the gain signal, a rounding difference
    between g and r |S_i| grew by g^2 / m^2 a step: 10-20% here in 1000 steps,
    and a row 14,000 times longer than its gain after 35 s of the 1-D
    ``white1`` benchmark task (that network's output blew up with it). Rows
    at a bound are now scaled by their measured length.
    """
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(1.0)
        net.hidden = nengo.Ensemble(20, 1, neuron_type=nengo.RectifiedLinear())
        out = nengo.Node(size_in=1)
        nengo.Connection(net.hidden, out)
        layer1 = nengo.Connection(
            stim, net.hidden, learning_rule_type=nengo_fa.FeedbackAlignment(out)
        )
        net.layer_rule = layer1.learning_rule
        nengo.Connection(nengo.Node(1.0), layer1.learning_rule)
    with nengo.Simulator(net, progress_bar=False) as sim:
        g0 = sim.signals[sim.model.sig[net.hidden]["gain"]].copy()
        sim.run_steps(1000)
        S, gain, _ = state(sim, net)
        (rule_op,) = [
            op for op in sim.model.operators if isinstance(op, SimHiddenLayerRule)
        ]
        _, x_seen, Sx_seen = (sim.signals[sig] for sig in rule_op.seen)
    min_gain = nengo_fa.builder.MIN_GAIN_FRACTION * np.mean(g0)
    assert np.any(gain <= min_gain * (1 + 1e-9))  # the case that drifted
    rows = np.linalg.norm(S, axis=1) * net.hidden.radius
    assert np.max(np.abs(rows - gain) / gain) < 1e-9
    # S x-bar, which the step keeps from step to step, has not drifted either
    # (rows scaled up at the floor multiply a rounding error every step)
    assert np.allclose(Sx_seen, S @ x_seen, rtol=1e-9, atol=1e-12)
