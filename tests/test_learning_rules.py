import copy
import pickle

import nengo
import numpy as np
import pytest
from nengo.exceptions import BuildError, ReadonlyError, SimulationError, ValidationError

import nengo_fa
from nengo_fa import settings
from nengo_fa.builder import SimHiddenLayerRule
from nengo_fa.builder.warmup import readout_time_constant
from nengo_fa.learning_rules import HiddenLayerRule
from nengo_fa.neurons import make_derivative

from .networks import filtered, product_net, train_freeze_test


def one_layer(
    rule, seed, neuron_type, n_neurons=8, d=3, d_out=2, feedback=None, **rule_kwargs
):
    """A rate network with fixed random readout weights D, for exact checks.

    Every connection has ``synapse=None``, so input, output, error and the
    rule's local error all belong to the same time step.
    """
    # the rule pairs its error with the current and input of the same step
    rule_kwargs.setdefault("pre_synapse", None)
    rng = np.random.RandomState(seed)
    x_value = rng.uniform(-0.7, 0.7, size=d)
    target = rng.uniform(-0.5, 0.5, size=d_out)
    D = rng.normal(scale=1e-2, size=(d_out, n_neurons))
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(x_value)
        hidden = nengo.Ensemble(n_neurons, d, neuron_type=neuron_type)
        out = nengo.Node(size_in=d_out)
        readout = nengo.Connection(hidden.neurons, out, transform=D, synapse=None)
        if rule == "bp":
            rule_type = nengo_fa.BackProp(readout, **rule_kwargs)
        else:
            rule_type = nengo_fa.FeedbackAlignment(
                d_out,
                feedback=nengo.Default if feedback is None else feedback,
                **rule_kwargs,
            )
        layer1 = nengo.Connection(
            stim, hidden, synapse=None, learning_rule_type=rule_type
        )
        error = nengo.Node(size_in=d_out)
        nengo.Connection(out, error, synapse=None)
        nengo.Connection(nengo.Node(-target), error, synapse=None)
        nengo.Connection(error, layer1.learning_rule, synapse=None)
        net.rule_probes = {
            key: nengo.Probe(layer1.learning_rule, key, synapse=None)
            for key in ("error", "delta", "scaled_encoders", "gain", "bias")
        }
    net.x_value, net.target, net.D = x_value, target, D
    net.hidden, net.layer1 = hidden, layer1
    return net


@pytest.mark.parametrize("tau", [0.005, 0.02])
def test_error_is_paired_with_filtered_current_and_input(Simulator, seed, tau):
    """The local error takes G' at the current filtered by ``pre_synapse``,
    and the encoder step is along the input filtered alike: not the current
    and input of the step the error arrives on."""
    n, d, dt = 8, 2, 0.001
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(40 * t), np.cos(23 * t)])
        hidden = nengo.Ensemble(n, d, neuron_type=nengo.Tanh())
        out = nengo.Node(size_in=1)
        D = np.random.RandomState(seed).normal(scale=0.1, size=(1, n))
        nengo.Connection(hidden.neurons, out, transform=D, synapse=None)
        rule = nengo_fa.FeedbackAlignment(1, pre_synapse=nengo.Lowpass(tau))
        layer1 = nengo.Connection(stim, hidden, synapse=None, learning_rule_type=rule)
        nengo.Connection(out, layer1.learning_rule, synapse=None)
        nengo.Connection(stim[0], layer1.learning_rule, synapse=None, transform=-1)
        p_J = nengo.Probe(hidden.neurons, "input", synapse=None)
        p_x = nengo.Probe(stim, synapse=None)
        p_e = nengo.Probe(layer1.learning_rule, "error", synapse=None)
        p_delta = nengo.Probe(layer1.learning_rule, "delta", synapse=None)
        p_S = nengo.Probe(layer1.learning_rule, "scaled_encoders", synapse=None)
    with Simulator(net, dt=dt) as sim:
        sim.run_steps(200)
    built = sim.data[hidden]
    F = sim.data[layer1.learning_rule].feedback
    derivative = make_derivative(hidden.neuron_type, built.gain, built.bias)
    J = sim.data[p_J]
    J_seen, x_seen = filtered(J, tau, dt), filtered(sim.data[p_x], tau, dt)
    gp, gp_raw = np.zeros_like(J), np.zeros_like(J)
    for k in range(len(J)):
        derivative(J_seen[k], gp[k])
        derivative(J[k], gp_raw[k])
    fe = sim.data[p_e] @ F.T
    delta = sim.data[p_delta]
    assert np.allclose(delta, fe * gp, atol=1e-9, rtol=1e-9)
    assert not np.allclose(delta, fe * gp_raw, atol=1e-3)
    # each step of S (equal encoder and gain rates: rank 1) is along x_seen
    dS = np.diff(sim.data[p_S], axis=0)[50:]
    xs = x_seen[50:-1]
    along = np.einsum("kij,kj->ki", dS, xs)
    norms = np.linalg.norm(dS, axis=2) * np.linalg.norm(xs, axis=1)[:, None]
    # a difference of two S rows has a rounding error of about 1e-16 |S|:
    # only steps well above it have a measurable direction
    moved = np.linalg.norm(dS, axis=2) > 1e-8 * np.abs(sim.data[p_S]).max()
    assert np.count_nonzero(moved) > 100
    assert np.allclose(np.abs(along[moved]) / norms[moved], 1, atol=1e-6)


def test_other_pre_synapse_filters_through_nengo(seed, kernels):
    """A ``pre_synapse`` that is no ``Lowpass`` is applied by Nengo's synapse
    operators: the rule reads the filtered current (the derivative is taken
    there) and computes S x-bar itself, the same in both step paths."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(40 * t), np.cos(23 * t)])
        hidden = nengo.Ensemble(8, 2, neuron_type=nengo.Tanh())
        out = nengo.Node(size_in=1)
        nengo.Connection(hidden, out, function=lambda x: 0.1 * x[0])
        rule = nengo_fa.FeedbackAlignment(1, pre_synapse=nengo.Alpha(0.005))
        layer1 = nengo.Connection(stim, hidden, learning_rule_type=rule)
        nengo.Connection(out, layer1.learning_rule)
        nengo.Connection(stim[0], layer1.learning_rule, transform=-1)
        p_e = nengo.Probe(layer1.learning_rule, "error", synapse=None)
        p_delta = nengo.Probe(layer1.learning_rule, "delta", synapse=None)
    with nengo.Simulator(net, progress_bar=False) as sim:
        (op,) = [o for o in sim.model.operators if isinstance(o, SimHiddenLayerRule)]
        assert op.seen is None and not op.projection_from_current
        assert op.current is not sim.model.sig[hidden.neurons]["in"]
        seen = []
        for _ in range(100):
            sim.step()
            seen.append(sim.signals[op.current].copy())
    built = sim.data[hidden]
    derivative = make_derivative(hidden.neuron_type, built.gain, built.bias)
    gp = np.zeros((100, 8))
    for k in range(100):
        derivative(seen[k], gp[k])
    fe = sim.data[p_e] @ sim.data[layer1.learning_rule].feedback.T
    assert np.abs(sim.data[p_delta]).max() > 0
    assert np.allclose(sim.data[p_delta], fe * gp, atol=1e-9, rtol=1e-9)


def test_lowpass_zero_pre_synapse_is_no_filter(seed):
    """``pre_synapse=Lowpass(0)`` passes its input through, as in Nengo: the
    rule runs exactly as with ``pre_synapse=None``."""

    def run(pre_synapse):
        with nengo.Network(seed=seed) as net:
            stim = nengo.Node(lambda t: [np.sin(40 * t), np.cos(23 * t)])
            hidden = nengo.Ensemble(8, 2, neuron_type=nengo.Tanh(), seed=seed)
            out = nengo.Node(size_in=1)
            nengo.Connection(hidden, out, function=lambda x: 0.1 * x[0])
            rule = nengo_fa.FeedbackAlignment(1, pre_synapse=pre_synapse)
            layer1 = nengo.Connection(stim, hidden, learning_rule_type=rule, seed=seed)
            nengo.Connection(out, layer1.learning_rule)
            nengo.Connection(stim[0], layer1.learning_rule, transform=-1)
            p_delta = nengo.Probe(layer1.learning_rule, "delta", synapse=None)
        with nengo.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(50)
        return sim.data[p_delta]

    unfiltered = run(None)
    assert np.abs(unfiltered).max() > 0
    assert np.array_equal(run(nengo.Lowpass(0)), unfiltered)
    assert not np.allclose(run(nengo.Lowpass(0.005)), unfiltered)


@pytest.mark.parametrize(
    "neuron_type", [nengo.RectifiedLinear(), nengo.Sigmoid(), nengo.Tanh()]
)
def test_bp_matches_analytic_gradient(Simulator, seed, neuron_type):
    """BP's first update of S, b and g is -c * the gradient of |e|^2 / 2.

    Checked against central finite differences of the loss of a rate network,
    for neuron types whose derivative is exact (LIF's is a surrogate, and
    nengo-extras' SoftLIFRate runs as plain LIFRate in nengo 4's simulator).
    """
    # the gain update is compared to first order: a small rate keeps the
    # second-order terms below the tolerance
    net = one_layer(
        "bp",
        seed,
        neuron_type,
        learning_rate=1e-4,
        gain_learning_rate=1e-4,
        bias_learning_rate=1e-4,
    )
    with Simulator(net) as sim:
        sim.step()
        sim.step()  # the update computed on step 1 is applied on step 2
    hidden, x, D, target = net.hidden, net.x_value, net.D, net.target
    built = sim.data[hidden]
    r = hidden.radius
    S0, b0 = built.scaled_encoders, built.bias
    g0 = r * np.linalg.norm(S0, axis=1)

    def loss(S, b):
        J = S @ x + b
        a = neuron_type.rates(np.zeros(1), np.ones_like(J), J)[0]
        return 0.5 * np.sum((D @ a - target) ** 2)

    # fourth-order central finite differences of the loss on a rate network
    # (error O(h^4) plus rounding of about 1e-16 L / h: the second-order
    # difference at h = 1e-6 missed by up to 6e-9 on some seeds)
    h = 1e-5

    def slope(f):
        return (f(-2 * h) - 8 * f(-h) + 8 * f(h) - f(2 * h)) / (12 * h)

    grad_S = np.zeros_like(S0)
    for idx in np.ndindex(*S0.shape):
        unit = np.zeros_like(S0)
        unit[idx] = 1.0
        grad_S[idx] = slope(lambda step, unit=unit: loss(S0 + step * unit, b0))
    grad_b = np.array(
        [slope(lambda step, ei=ei: loss(S0, b0 + step * ei)) for ei in np.eye(len(b0))]
    )
    # dL/dg_i = dL/dS_i . dS_i/dg_i, with S_i = (g_i / r) E_i
    grad_g = np.sum(grad_S * S0, axis=1) / g0

    # the local error is the backpropagated error: delta = dL/db
    # (to the differences' rounding, which scales with the largest gradient)
    delta = sim.data[net.rule_probes["delta"]][0]
    assert np.allclose(delta, grad_b, rtol=1e-7, atol=1e-9 * np.abs(grad_b).max())

    # the documented scale: dt * gain_scale / (nu * derivative_scale)
    info = sim.data[net.layer1.learning_rule]
    nu = np.linalg.norm(D) / np.sqrt(hidden.n_neurons)
    c = sim.dt * info.gain_scale / (nu * info.derivative_scale)
    rule = net.layer1.learning_rule_type
    dS = sim.data[net.rule_probes["scaled_encoders"]][1] - S0
    db = sim.data[net.rule_probes["bias"]][1] - b0
    dg = sim.data[net.rule_probes["gain"]][1] - g0
    assert np.abs(grad_S).max() > 0
    assert np.allclose(db, -rule.bias_learning_rate * c * grad_b, rtol=1e-5)
    assert np.allclose(dg, -rule.gain_learning_rate * c * r * grad_g, rtol=1e-5)
    # with equal encoder and gain rates, S follows the preconditioned gradient
    # exactly (up to the finite differences)
    assert rule.learning_rate == rule.gain_learning_rate
    expected_dS = -rule.learning_rate * c * grad_S / r**2
    assert np.allclose(dS, expected_dS, rtol=1e-6, atol=1e-8 * np.abs(dS).max())


def test_fa_with_transposed_weights_equals_bp(Simulator, seed):
    """FeedbackAlignment with F = D^T gives exactly BackProp's updates (at
    the same rates: their defaults differ)."""
    results = {}
    rates = dict(learning_rate=0.3, gain_learning_rate=0.3, bias_learning_rate=0.3)
    for rule in ("bp", "fa"):
        net = one_layer(rule, seed, nengo.RectifiedLinear(), **rates)
        if rule == "fa":
            net = one_layer(
                rule, seed, nengo.RectifiedLinear(), feedback=net.D.T, **rates
            )
        with Simulator(net) as sim:
            sim.run_steps(20)
        results[rule] = {k: sim.data[p] for k, p in net.rule_probes.items()}

    for key in results["bp"]:
        assert np.allclose(results["fa"][key], results["bp"][key], rtol=1e-12)
    # and learning did happen
    assert not np.allclose(results["bp"]["bias"][-1], results["bp"]["bias"][0])


def bp_delta_parts(Simulator, net, seconds):
    """Run ``net`` (`product_net` with BackProp) for ``seconds``, probing what
    the rule's delta is made of; returns ``sim`` and, per step along the first
    axis, the readout's weights ``W``, the rule's ``delta`` and ``error``, and
    the hidden layer's ``gp``, :math:`G'(J)`."""
    with net:
        probes = {
            "W": nengo.Probe(net.readout, "weights", synapse=None),
            "delta": nengo.Probe(net.rules[0], "delta", synapse=None),
            "error": nengo.Probe(net.rules[0], "error", synapse=None),
            "J": nengo.Probe(net.hidden.neurons, "input", synapse=None),
        }
    with Simulator(net) as sim:
        sim.run(seconds)
    built = sim.data[net.hidden]
    derivative = make_derivative(net.hidden.neuron_type, built.gain, built.bias)
    parts = {key: sim.data[p] for key, p in probes.items()}
    n = net.hidden.n_neurons
    parts["gp"] = np.array([derivative(J, np.empty(n)) for J in parts.pop("J")])
    return sim, parts


def bp_delta(feedback, parts, i):
    """BackProp's delta on step ``i`` through the weights ``feedback[i]``."""
    return (feedback[i].T @ parts["error"][i]) * parts["gp"][i]


def test_bp_reads_live_weights(Simulator, seed):
    """With ``feedback_synapse=None``, while PES changes the readout, BP's
    delta uses the current decoders."""
    net = product_net("bp", seed, at_once=True, rule_kwargs={"feedback_synapse": None})
    _, parts = bp_delta_parts(Simulator, net, 0.5)
    W = parts["W"]
    steps = [100, 300, 499]
    assert not np.allclose(W[steps[0]], W[steps[-1]])  # PES is learning
    for i in steps:
        expected = bp_delta(W, parts, i)
        assert np.allclose(parts["delta"][i], expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("compiled", [True, False])
def test_bp_reads_lowpassed_weights(Simulator, seed, compiled):
    """With ``feedback_synapse=Lowpass(tau)``, BP's delta uses the decoders
    low-passed from 0, on the compiled and the numpy path alike."""
    tau = 0.05
    net = product_net("bp", seed, at_once=True, rule_kwargs={"feedback_synapse": tau})
    with settings.override(compiled_kernels=compiled):
        sim, parts = bp_delta_parts(Simulator, net, 0.5)
    W = parts["W"]
    W_bar = filtered(W, tau, sim.dt)
    for i in (100, 300, 499):
        expected = bp_delta(W_bar, parts, i)
        assert np.allclose(parts["delta"][i], expected, rtol=1e-10, atol=1e-15)
        assert not np.allclose(expected, bp_delta(W, parts, i))


def test_bp_feedback_synapse_of_zero_is_live(Simulator, seed):
    """``Lowpass(0)`` passes the weights through: the same as no filter."""
    deltas = []
    for synapse in (None, nengo.Lowpass(0)):
        net = product_net(
            "bp", seed, at_once=True, rule_kwargs={"feedback_synapse": synapse}
        )
        with net:
            p = nengo.Probe(net.layer1.learning_rule, "delta", synapse=None)
        with Simulator(net) as sim:
            sim.run(0.3)
        deltas.append(sim.data[p])
    assert np.any(deltas[0])
    assert np.allclose(deltas[0], deltas[1], rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    "value, match",
    [
        (nengo.Alpha(0.1), "BackProp.feedback_synapse: must be a nengo.Lowpass"),
        ("tau", "BackProp.feedback_synapse: must be a nengo.Lowpass"),
        (nengo.Lowpass(np.inf), "BackProp.feedback_synapse: .*must be finite"),
        (-0.1, "Lowpass.tau: .* greater than or equal to 0"),  # Nengo's own
    ],
)
def test_bp_feedback_synapse_must_be_lowpass(value, match):
    with pytest.raises(ValidationError, match=match):
        nengo_fa.BackProp(downstream_conn(), feedback_synapse=value)


def test_bp_feedback_synapse_values():
    down = downstream_conn()
    assert nengo_fa.BackProp(down).feedback_synapse == "readout"  # the default
    assert nengo_fa.BackProp(down, feedback_synapse=0.2).feedback_synapse == (
        nengo.Lowpass(0.2)
    )
    assert nengo_fa.BackProp(down, feedback_synapse=None).feedback_synapse is None


def test_bp_readout_feedback_synapse_is_the_readout_time_constant(Simulator):
    """By default the weights are low-passed with the same tau_1 as the
    warm-up; the filtered feedback is what the rule reads, and it is
    reported as built."""
    net = product_net("bp", 1)
    sim, parts = bp_delta_parts(Simulator, net, 1.2)
    built = sim.data[net.rules[0]]
    assert built.warmup > 0.5  # so that the run below reaches past it
    assert isinstance(built.feedback_synapse, nengo.Lowpass)
    tau = built.feedback_synapse.tau
    assert tau == pytest.approx(readout_time_constant(sim.model, net.readout))
    assert tau == pytest.approx(built.warmup, abs=sim.dt)
    W = parts["W"]
    W_bar = filtered(W, tau, sim.dt)
    assert np.any(parts["error"][-1])  # past the warm-up
    expected = bp_delta(W_bar, parts, -1)
    assert np.allclose(parts["delta"][-1], expected, rtol=1e-9, atol=1e-15)
    assert not np.allclose(parts["delta"][-1], bp_delta(W, parts, -1))


def test_bp_chained_feedback_is_live(Simulator):
    """In a chain, only the rule on the PES readout low-passes its
    feedback: the rule below reads the connection into the next layer,
    which no PES rule trains."""
    net = product_net("chain", 0)
    with Simulator(net) as sim:
        upper, lower = (sim.data[rule].feedback_synapse for rule in net.rules)
    assert isinstance(upper, nengo.Lowpass) and upper.tau > 0
    assert lower is None


RATE_NAMES = ("learning_rate", "gain_learning_rate", "bias_learning_rate")
STEADY = nengo_fa.learning_rules.STEADY_FEEDBACK_RATE


def built_rates(sim, rule):
    """The rates a rule was built with, as reported and as its operator
    uses them."""
    reported = tuple(getattr(sim.data[rule], name) for name in RATE_NAMES)
    delta = sim.model.sig[rule]["delta"]
    (op,) = (
        op
        for op in sim.model.operators
        if isinstance(op, SimHiddenLayerRule) and op.updates[0] is delta
    )
    assert tuple(getattr(op.constants, name) for name in RATE_NAMES) == reported
    return reported


@pytest.mark.parametrize("kind", ["bp", "ss"])
def test_default_rates_follow_the_feedback(Simulator, kind):
    """Rates of None (BackProp's and SignSymmetry's default) are chosen at
    build time: the steady rate where the feedback does not track (the
    readout low-passed, or a readout that does not learn), the tracking
    rate where it does (the live weights of a learning readout, or of the
    chained layer above); a rate given is kept."""
    steady = (STEADY,) * 3
    tracking = (nengo_fa.learning_rules.TRACKING_FEEDBACK_RATE,) * 3
    assert steady != tracking
    rule_type = {"bp": nengo_fa.BackProp, "ss": nengo_fa.SignSymmetry}[kind]
    assert all(getattr(rule_type, name).default is None for name in RATE_NAMES)

    def rates(net):
        with Simulator(net) as sim:
            return [built_rates(sim, rule) for rule in net.rules]

    assert rates(product_net(kind, 0)) == [steady]
    assert rates(product_net(kind, 0, rule_kwargs={"feedback_synapse": None})) == [
        tracking
    ]
    given = rates(product_net(kind, 0, rule_kwargs={"learning_rate": 0.5}))
    assert given == [(0.5,) + steady[1:]]
    if kind == "bp":  # upper layer under the PES readout, lower chained to it
        assert rates(product_net("chain", 0)) == [steady, tracking]
    # a readout that does not learn: its live weights track nothing
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5, -0.5])
        hidden = nengo.Ensemble(10, 2)
        readout = nengo.Connection(hidden, nengo.Node(size_in=1), function=np.sum)
        conn = nengo.Connection(stim, hidden, learning_rule_type=rule_type(readout))
        nengo.Connection(stim[0], conn.learning_rule)
    net.rules = [conn.learning_rule]
    assert rates(net) == [steady]


@pytest.mark.slow
@pytest.mark.parametrize(
    "neuron_type", [nengo.RectifiedLinear(), nengo.LIF()], ids=lambda nt: repr(nt)
)
def test_frozen_network_beats_pes_only(Simulator, plt, neuron_type):
    """What BackProp's hidden layer learned lasts: trained on the product task
    for 40 s, then frozen (the error gated to zero), the network's error over
    the next 20 s (one period of the input) is well below that of PES only in
    the same run, from the same network. Over 10 seeds of the benchmark's
    networks (``benchmarks/generalisation.py``) the ratio is 4.9x (rate) and
    4.0x (spiking LIF), no seed worse. On this test's network, BackProp's
    frozen error over PES only's was 0.12-0.69 over seeds 0-7 (mean 0.29)
    with rate neurons and 0.15-0.37 over seeds 0-5 with LIF (through the
    live readout at 0.3, ``feedback_synapse=None``: 0.33-0.85 over 15 seeds
    and 0.32-0.67 over 6): this test's seed 1 gives about the lowest, so the
    bound (0.9) is set by the worst seeds measured, not by this one."""
    t_train, t_test, seed = 40.0, 20.0, 1
    frozen, online = {}, {}
    for rule in (None, "bp"):
        net = product_net(rule, seed, neuron_type=neuron_type, freeze_at=t_train)
        frozen[rule], online[rule], sim = train_freeze_test(
            Simulator, net, t_train, t_test, online=10.0
        )
        sq = nengo.Lowpass(1.0).filt(sim.data[net.p_error] ** 2, dt=sim.dt)
        plt.semilogy(sim.trange(), sq, label=rule or "PES only")
    plt.axvline(t_train, color="k", linestyle=":")
    plt.legend()
    plt.ylabel("squared error (1 s low-pass)")
    plt.xlabel("time (s)")
    print(f"frozen: {frozen}, online: {online}")
    assert frozen["bp"] < 0.9 * frozen[None], frozen
    # the frozen error is what a user gets; it is above the online one for
    # both (tracking), which is why the claim above is about the frozen one
    assert online[None] < frozen[None] and online["bp"] < frozen["bp"]


@pytest.mark.slow
def test_lowpassed_feedback_keeps_more(Simulator):
    """BackProp through its readout low-passed (the default,
    ``feedback_synapse="readout"``) leaves a network that keeps more than
    BackProp through the live readout (``feedback_synapse=None``) at the
    same rates (the default chooses 0.7 for the former, 0.3 for the
    latter; here both at 0.7): trained 40 s on the product task, frozen,
    tested 20 s, against both and PES only in the same run. Over seeds 0-7
    of this network its frozen error was 0.40-0.98 of live BackProp's at
    0.7 (mean 0.69; lower on all 8), 0.34-1.05 of live BackProp's at its
    default 0.3 (mean 0.59; lower on 7), and 0.12-0.69 of PES only's; this
    test runs seeds 0, 3 and 7, which include the two closest to live
    BackProp (0.89 and 0.98) and to PES only (0.58 and 0.69). Over 10 seeds
    of each of the benchmark's continuous tasks, docs: theory, "Feedback
    through the readout's slow part"."""
    t_train, t_test = 40.0, 20.0
    rates = {k: STEADY for k in RATE_NAMES}
    ratios = []
    for seed in (0, 3, 7):
        frozen = {}
        for name, rule, kwargs in (
            ("pes", None, None),
            ("live", "bp", dict(rates, feedback_synapse=None)),
            ("default", "bp", None),
        ):
            net = product_net(rule, seed, freeze_at=t_train, rule_kwargs=kwargs)
            frozen[name] = train_freeze_test(Simulator, net, t_train, t_test)[0]
        # not worse than the live readout on any seed (beyond 2%), lower on
        # average
        assert frozen["default"] < 1.02 * frozen["live"], (seed, frozen)
        assert frozen["default"] < 0.8 * frozen["pes"], (seed, frozen)
        ratios.append(frozen["default"] / frozen["live"])
    assert np.exp(np.mean(np.log(ratios))) < 0.9, ratios


@pytest.mark.parametrize("rule", ["fa", "bp"])
def test_learning_changes_hidden_only(Simulator, seed, rule):
    """Encoders, gains and biases change; a second ensemble's stay put."""
    net = product_net(rule, seed, n=20)
    with net:
        control = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(net.layer1.pre, control)
        probes = {
            k: nengo.Probe(net.layer1.learning_rule, k, synapse=None)
            for k in ("scaled_encoders", "gain", "bias")
        }
    with Simulator(net) as sim:
        sim.run(2.0)
        control_bias = sim.signals[sim.model.sig[control.neurons]["bias"]].copy()
        control_enc = sim.signals[sim.model.sig[control]["encoders"]].copy()
    for key, p in probes.items():
        assert not np.allclose(sim.data[p][-1], sim.data[p][0]), key
    assert np.array_equal(control_bias, sim.data[control].bias)
    assert np.array_equal(control_enc, sim.data[control].scaled_encoders)


@pytest.mark.parametrize(
    "frozen", ["learning_rate", "gain_learning_rate", "bias_learning_rate"]
)
def test_zero_rate_freezes_that_quantity(Simulator, seed, frozen):
    net = product_net("fa", seed, n=20, rule_kwargs={frozen: 0})
    with net:
        probes = {
            k: nengo.Probe(net.layer1.learning_rule, k, synapse=None)
            for k in ("scaled_encoders", "gain", "bias")
        }
    with Simulator(net) as sim:
        sim.run(2.0)
    S = sim.data[probes["scaled_encoders"]]
    gain = sim.data[probes["gain"]]
    bias = sim.data[probes["bias"]]
    r = net.hidden.radius
    directions = S / (gain[:, :, None] / r)
    # the gain signal stays the length of the scaled encoders
    assert np.allclose(np.linalg.norm(directions, axis=2), 1, atol=1e-9)

    changed = {
        "learning_rate": not np.allclose(directions[-1], directions[0]),
        "gain_learning_rate": not np.allclose(gain[-1], gain[0]),
        "bias_learning_rate": not np.allclose(bias[-1], bias[0]),
    }
    assert not changed[frozen]
    assert all(v for k, v in changed.items() if k != frozen)
    # frozen means exactly unchanged, not merely close
    frozen_values = {
        "learning_rate": directions,
        "gain_learning_rate": gain,
        "bias_learning_rate": bias,
    }[frozen]
    assert np.allclose(frozen_values[-1], frozen_values[0], rtol=0, atol=1e-12)


NEURON_TYPES = [
    nengo.RectifiedLinear(),
    nengo.SpikingRectifiedLinear(),
    nengo.Sigmoid(),
    nengo.Tanh(),
    nengo.LIFRate(),
    nengo.LIF(),
    nengo.AdaptiveLIFRate(),
    nengo.AdaptiveLIF(),
    nengo.Izhikevich(),
    nengo.RegularSpiking(nengo.LIFRate()),
    nengo.PoissonSpiking(nengo.RectifiedLinear()),
    nengo.StochasticSpiking(nengo.Tanh()),
]


@pytest.mark.parametrize("rule", ["fa", "bp"])
@pytest.mark.parametrize("neuron_type", NEURON_TYPES, ids=lambda nt: repr(nt))
def test_every_neuron_type_learns(Simulator, seed, rule, neuron_type):
    net = product_net(rule, seed, n=20, neuron_type=neuron_type, at_once=True)
    with net:
        p_enc = nengo.Probe(net.layer1.learning_rule, "scaled_encoders")
        p_delta = nengo.Probe(net.layer1.learning_rule, "delta")
    with Simulator(net) as sim:
        sim.run(0.3)
    enc = sim.data[p_enc]
    assert np.all(np.isfinite(enc)) and np.all(np.isfinite(sim.data[p_delta]))
    assert not np.allclose(enc[-1], enc[0])


def test_nengo_extras_softlif_learns(Simulator, seed):
    neurons = pytest.importorskip("nengo_extras.neurons")
    net = product_net("fa", seed, n=20, neuron_type=neurons.SoftLIFRate())
    with net:
        p_enc = nengo.Probe(net.layer1.learning_rule, "scaled_encoders")
    with Simulator(net) as sim:
        sim.run(0.3)
    assert not np.allclose(sim.data[p_enc][-1], sim.data[p_enc][0])


def test_user_derivative_is_used(Simulator, seed):
    """A derivative of zero stops learning; the default one does not."""
    deltas = {}
    for name, derivative in [("default", None), ("zero", np.zeros_like)]:
        net = product_net("fa", seed, n=20, rule_kwargs={"derivative": derivative})
        with net:
            p = nengo.Probe(net.layer1.learning_rule, "delta", synapse=None)
        with Simulator(net) as sim:
            sim.run(0.2)
        deltas[name] = sim.data[p]
    assert np.abs(deltas["default"]).max() > 0
    assert np.all(deltas["zero"] == 0)


def test_reset_and_determinism(Simulator, seed):
    net = product_net("fa", seed, n=20)
    with net:
        probes = [
            nengo.Probe(net.layer1.learning_rule, k, synapse=None)
            for k in ("scaled_encoders", "gain", "bias", "delta")
        ]
    with Simulator(net) as sim:
        sim.run(0.5)
        first = [sim.data[p].copy() for p in probes]
        sim.reset()
        sim.run(0.5)
        again = [sim.data[p] for p in probes]
    with Simulator(net) as sim2:
        sim2.run(0.5)
        other_sim = [sim2.data[p] for p in probes]
    for a, b, c in zip(first, again, other_sim):
        assert np.array_equal(a, b)
        assert np.array_equal(a, c)
    assert not np.allclose(first[0][-1], first[0][0])


def test_feedback_follows_model_seed(Simulator):
    feedback = []
    for seed in (1, 1, 2):
        with nengo.Network(seed=seed) as net:
            a = nengo.Ensemble(10, 1)
            conn = nengo.Connection(
                nengo.Node([0]), a, learning_rule_type=nengo_fa.FeedbackAlignment(2)
            )
        with Simulator(net) as sim:
            feedback.append(sim.data[conn.learning_rule].feedback)
    assert feedback[0].shape == (10, 2)
    assert np.array_equal(feedback[0], feedback[1])
    assert not np.allclose(feedback[0], feedback[2])


def test_feedback_distribution_and_array(Simulator):
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(10, 1)
        stim = nengo.Node([0])
        uniform = nengo.Connection(
            stim,
            a,
            learning_rule_type=nengo_fa.FeedbackAlignment(
                1, feedback=nengo.dists.Uniform(2, 3)
            ),
        )
        array = np.arange(10.0).reshape(10, 1)
        given = nengo.Connection(
            stim,
            a,
            learning_rule_type=nengo_fa.FeedbackAlignment(1, feedback=array),
        )
    with Simulator(net) as sim:
        assert np.all(sim.data[uniform.learning_rule].feedback >= 2)
        assert np.all(sim.data[uniform.learning_rule].feedback <= 3)
        assert np.array_equal(sim.data[given.learning_rule].feedback, array)


def test_bp_works_in_either_creation_order(Simulator, seed):
    """BackProp's connection may be built before its downstream connection."""

    def build(readout_first):
        with nengo.Network(seed=seed) as net:
            stim = nengo.Node(lambda t: [np.sin(8 * t), np.cos(5 * t)])
            hidden = nengo.Ensemble(20, 2, seed=seed + 1)
            out = nengo.Node(size_in=1)
            error = nengo.Node(size_in=1)
            if readout_first:
                readout = nengo.Connection(
                    hidden, out, function=np.sum, learning_rule_type=nengo.PES()
                )
                layer1 = nengo.Connection(stim, hidden)
            else:
                layer1 = nengo.Connection(stim, hidden)
                readout = nengo.Connection(
                    hidden, out, function=np.sum, learning_rule_type=nengo.PES()
                )
            layer1.learning_rule_type = nengo_fa.BackProp(readout, warmup=None)
            nengo.Connection(out, error)
            nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
            nengo.Connection(error, readout.learning_rule)
            nengo.Connection(error, layer1.learning_rule)
            p = nengo.Probe(layer1.learning_rule, "scaled_encoders")
        with Simulator(net) as sim:
            sim.run(0.5)
        return sim.data[p]

    first, second = build(readout_first=True), build(readout_first=False)
    assert not np.allclose(first[-1], first[0])
    assert np.allclose(first, second, rtol=1e-10)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::nengo_fa.StableRangeWarning")  # 1e10 error
def test_nan_error_stops_before_encoders_change(Simulator):
    with nengo.Network(seed=0) as net:
        hidden = nengo.Ensemble(10, 1)
        conn = nengo.Connection(
            nengo.Node([0.5]),
            hidden,
            learning_rule_type=nengo_fa.FeedbackAlignment(1),
        )
        # the node's output is finite; the transform overflows it to inf
        nengo.Connection(
            nengo.Node(lambda t: 1e300 if t > 0.0055 else 1.0),
            conn.learning_rule,
            transform=1e10,
            synapse=None,
        )
    with Simulator(net) as sim:
        with pytest.raises(SimulationError, match="NaN or inf"):
            sim.run(0.01)
        S = sim.signals[sim.model.sig[hidden]["encoders"]]
        bias = sim.signals[sim.model.sig[hidden.neurons]["bias"]]
        assert np.all(np.isfinite(S)) and np.all(np.isfinite(bias))
        assert sim.n_steps == 5  # the sixth step raised


@pytest.mark.filterwarnings("ignore::nengo_fa.StableRangeWarning")  # 5e9 input
def test_infinite_input_stops_before_encoders_change(Simulator):
    with nengo.Network(seed=0) as net:
        hidden = nengo.Ensemble(10, 1, neuron_type=nengo.RectifiedLinear())
        # the node's output is finite; the transform overflows it to inf
        conn = nengo.Connection(
            nengo.Node(lambda t: 1e300 if t > 0.0055 else 0.5),
            hidden,
            transform=1e10,
            synapse=None,
            learning_rule_type=nengo_fa.FeedbackAlignment(1),
        )
        nengo.Connection(nengo.Node([0.1]), conn.learning_rule, synapse=None)
    with Simulator(net) as sim:
        with pytest.warns(RuntimeWarning, match="overflow"):
            with pytest.raises(SimulationError, match="input contains NaN or inf"):
                sim.run(0.01)
        S = sim.signals[sim.model.sig[hidden]["encoders"]]
        assert np.all(np.isfinite(S))
        assert sim.n_steps == 5  # the sixth step raised


@pytest.mark.parametrize("rule", ["fa", "bp"])
def test_invariants(Simulator, seed, rule):
    """Repr, frozen params, probeable keys, dt independence."""
    net = product_net(rule, seed, n=20, at_once=True)
    rule_type = net.layer1.learning_rule_type
    assert isinstance(rule_type, HiddenLayerRule)
    assert repr(rule_type).startswith(type(rule_type).__name__ + "(")
    with pytest.raises(ReadonlyError):
        rule_type.learning_rate = 2.0

    # every probeable key can be probed and has the documented shape; the
    # alignment diagnostics need a downstream connection (tests/test_feedback.py)
    n, d = net.hidden.n_neurons, net.hidden.dimensions
    shapes = {
        "error": (1,),
        "delta": (n,),
        "encoders": (n, d),
        "scaled_encoders": (n, d),
        "gain": (n,),
        "bias": (n,),
        "feedback": (n, 1),
    }
    diagnostics = {"delta_angle", "feedback_angle", "norm_ratio"}
    keys = set(net.layer1.learning_rule.probeable)
    assert keys - diagnostics == set(shapes) - ({"feedback"} if rule == "bp" else set())
    with net:
        probes = {
            k: nengo.Probe(net.layer1.learning_rule, k) for k in keys - diagnostics
        }
    with Simulator(net) as sim:
        sim.run_steps(3)
    for key, p in probes.items():
        assert sim.data[p].shape[1:] == shapes[key], key
    if keys & diagnostics:
        with net:
            nengo.Probe(net.layer1.learning_rule, "delta_angle")
        with pytest.raises(BuildError, match="delta_angle"):
            with Simulator(net):
                pass

    # halving dt gives (nearly) the same learning over the same time
    finals = []
    for dt in (0.001, 0.0005):
        net = product_net(rule, seed, n=20, at_once=True)
        with net:
            p = nengo.Probe(net.layer1.learning_rule, "bias", synapse=None)
        with Simulator(net, dt=dt) as sim:
            sim.run(1.0)
        finals.append(sim.data[p][-1] - sim.data[p][0])
    change = np.linalg.norm(finals[0])
    assert change > 0
    assert np.linalg.norm(finals[0] - finals[1]) < 0.2 * change


def test_repr():
    with nengo.Network():
        readout = nengo.Connection(nengo.Ensemble(5, 1), nengo.Node(size_in=1))
    assert repr(nengo_fa.FeedbackAlignment(3)) == "FeedbackAlignment(error_size=3)"
    assert (
        repr(nengo_fa.FeedbackAlignment(3, learning_rate=0.5))
        == "FeedbackAlignment(error_size=3, learning_rate=0.5)"
    )
    assert repr(nengo_fa.BackProp(readout)).startswith("BackProp(downstream=<Conn")


@pytest.mark.parametrize(
    "make",
    [
        lambda: nengo_fa.FeedbackAlignment(3, learning_rate=0.5),
        lambda: nengo_fa.FeedbackAlignment(2, pre_synapse=nengo.Alpha(0.01)),
        lambda: nengo_fa.LRA(2),
        lambda: nengo_fa.ERBP(2, boxcar=(-0.5, 0.5)),
        lambda: nengo_fa.SyntheticGradient(2),
        lambda: nengo_fa.TraceRule(2),
    ],
)
def test_equal_to_copies(make):
    """A rule equals, and hashes as, an equal rule, its copy and its pickled
    copy, as `nengo.PES` does (ERBP's window was compared by identity)."""
    rule = make()
    for other in (make(), copy.copy(rule), copy.deepcopy(rule)):
        assert other == rule and hash(other) == hash(rule)
    assert pickle.loads(pickle.dumps(rule)) == rule
    assert nengo_fa.ERBP(2, boxcar=(0, 1)) != nengo_fa.ERBP(2, boxcar=(0, 2))


def test_defaults_via_config(Simulator):
    with nengo.Network() as net:
        net.config.configures(nengo_fa.FeedbackAlignment)
        net.config[nengo_fa.FeedbackAlignment].learning_rate = 0.25
        rule = nengo_fa.FeedbackAlignment(1)
    assert rule.learning_rate == 0.25
    assert nengo_fa.FeedbackAlignment(1).learning_rate != 0.25


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwarg", ["learning_rate", "gain_learning_rate", "bias_learning_rate"]
)
def test_negative_rate_raises(kwarg):
    with pytest.raises(ValidationError, match=kwarg):
        nengo_fa.FeedbackAlignment(1, **{kwarg: -1})


@pytest.mark.parametrize(
    "kwarg", ["learning_rate", "gain_learning_rate", "bias_learning_rate"]
)
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, np.array(np.nan)])
def test_non_finite_rate_raises(kwarg, value):
    # nan gave a raw TypeError from nengo's NumberParam, inf was accepted
    for make in (
        lambda **kw: nengo_fa.FeedbackAlignment(1, **kw),
        lambda **kw: nengo_fa.BackProp(downstream_conn(), **kw),
        lambda **kw: nengo_fa.SignSymmetry(downstream_conn(), **kw),
    ):
        with pytest.raises(ValidationError, match=f"{kwarg}: must be a finite"):
            make(**{kwarg: value})


def downstream_conn():
    with nengo.Network():
        return nengo.Connection(nengo.Ensemble(5, 1), nengo.Node(size_in=1))


def test_bad_arguments_raise():
    with pytest.raises(ValidationError, match="error_size"):
        nengo_fa.FeedbackAlignment(0)
    with pytest.raises(ValidationError, match="error_size"):
        nengo_fa.FeedbackAlignment(None)
    with pytest.raises(ValidationError, match="feedback"):
        nengo_fa.FeedbackAlignment(2, feedback=np.ones((5, 3)))
    with pytest.raises(ValidationError, match="derivative"):
        nengo_fa.FeedbackAlignment(1, derivative="relu")
    with pytest.raises(ValidationError, match="downstream"):
        nengo_fa.BackProp(nengo.Ensemble(5, 1, add_to_container=False))
    with nengo.Network():
        from_node = nengo.Connection(nengo.Node([0]), nengo.Node(size_in=1))
    with pytest.raises(ValidationError, match="downstream"):
        nengo_fa.BackProp(from_node)


def test_wrong_error_size_raises():
    with nengo.Network():
        hidden = nengo.Ensemble(10, 1)
        conn = nengo.Connection(
            nengo.Node([0]), hidden, learning_rule_type=nengo_fa.FeedbackAlignment(2)
        )
        with pytest.raises(ValidationError, match="size"):
            nengo.Connection(nengo.Node([0, 0, 0]), conn.learning_rule)


@pytest.mark.parametrize("post", ["node", "neurons"])
def test_post_must_be_ensemble(post):
    with nengo.Network():
        ens = nengo.Ensemble(10, 1)
        target = nengo.Node(size_in=10) if post == "node" else ens.neurons
        with pytest.raises(ValidationError, match="post"):
            nengo.Connection(
                nengo.Node(np.zeros(10)),
                target,
                learning_rule_type=nengo_fa.FeedbackAlignment(1),
            )


def test_direct_neurons_raise(Simulator):
    with nengo.Network() as net:
        ens = nengo.Ensemble(10, 1, neuron_type=nengo.Direct())
        nengo.Connection(
            nengo.Node([0]), ens, learning_rule_type=nengo_fa.FeedbackAlignment(1)
        )
    with pytest.raises(BuildError, match="Direct"):
        with Simulator(net):
            pass


def test_feedback_rows_must_match_neurons(Simulator):
    with nengo.Network() as net:
        ens = nengo.Ensemble(10, 1)
        nengo.Connection(
            nengo.Node([0]),
            ens,
            learning_rule_type=nengo_fa.FeedbackAlignment(1, feedback=np.ones((7, 1))),
        )
    with pytest.raises(BuildError, match="feedback"):
        with Simulator(net):
            pass


def bp_net(make_downstream):
    with nengo.Network() as net:
        hidden = nengo.Ensemble(10, 1)
        other = nengo.Ensemble(10, 1)
        downstream = make_downstream(hidden, other)
        nengo.Connection(
            nengo.Node([0]), hidden, learning_rule_type=nengo_fa.BackProp(downstream)
        )
    return net


@pytest.mark.parametrize(
    "make_downstream, match",
    [
        (lambda h, o: nengo.Connection(o, nengo.Node(size_in=1)), "must start at"),
        (
            lambda h, o: nengo.Connection(
                h.neurons[:5], nengo.Node(size_in=1), transform=np.ones((1, 5))
            ),
            "must read all",
        ),
        (
            lambda h, o: nengo.Connection(
                h, o, solver=nengo.solvers.LstsqL2(weights=True)
            ),
            "weight solver.*set weights=False",
        ),
        (
            # it learns weights itself, so weights=False is no way out
            lambda h, o: nengo.Connection(
                h,
                o,
                solver=nengo.solvers.LstsqL2(weights=True),
                learning_rule_type=nengo_fa.FeedbackAlignment(1, modifies="weights"),
            ),
            "weight solver.*with a full transform instead",
        ),
        (
            lambda h, o: nengo.Connection(
                h.neurons,
                o.neurons,
                transform=nengo.transforms.Sparse(
                    (10, 10), indices=[[0, 0]], init=[1.0]
                ),
            ),
            "Dense",
        ),
    ],
    ids=["wrong-pre", "sliced", "weight-solver", "weight-solver-learning", "sparse"],
)
def test_bad_downstream_raises(Simulator, make_downstream, match):
    with pytest.raises(BuildError, match=match):
        with Simulator(bp_net(make_downstream)):
            pass


def test_weights_need_a_full_transform(Simulator):
    """The error names the shape the transform must have (a scalar one from
    a slice of 20 of 30 neurons into 20), not None."""
    with nengo.Network() as net:
        pre, post = nengo.Ensemble(30, 1), nengo.Ensemble(20, 1)
        nengo.Connection(
            pre.neurons[:20],
            post.neurons,
            transform=0.001,
            learning_rule_type=nengo_fa.FeedbackAlignment(1, modifies="weights"),
        )
    with pytest.raises(BuildError, match=r"full .*shape \(20, 20\)"):
        with Simulator(net):
            pass


def test_downstream_outside_model_raises(Simulator):
    with nengo.Network():
        hidden = nengo.Ensemble(10, 1)
        elsewhere = nengo.Connection(hidden, nengo.Node(size_in=1))
    with nengo.Network() as net:
        net.add(hidden)
        nengo.Connection(
            nengo.Node([0]), hidden, learning_rule_type=nengo_fa.BackProp(elsewhere)
        )
    with pytest.raises(BuildError, match="not part of the model"):
        with Simulator(net):
            pass
