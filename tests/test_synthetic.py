"""Tests of `nengo_fa.SyntheticGradient` (synthetic gradients)."""

import pickle

import nengo
import numpy as np
import pytest
from nengo.exceptions import BuildError, SimulationError, ValidationError

import nengo_fa

from .networks import Late, late_net, product, train_freeze_test

KEYS = (
    "delta",
    "true_delta",
    "predictor_error",
    "prediction_angle",
    "predictor",
    "bias",
)


def lissajous(t):
    return [np.sin(3 * t), np.cos(2 * t)]


def regression_net(
    seed, delay=0.0, told=0.0, context=True, rates=0.0, keys=KEYS, **kwargs
):
    """A hidden layer with a fixed readout, the error ``delay`` s late and the
    rule told ``told``; with ``rates`` 0 only the predictor learns. ``keys``:
    the rule's probes (with ``"predictor"``, the rule keeps :math:`M`, else
    :math:`P`)."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lissajous)
        target = nengo.Node(product, size_in=2)
        nengo.Connection(stim, target, synapse=None)
        hidden = nengo.Ensemble(12, 2, neuron_type=nengo.RectifiedLinear())
        out = nengo.Node(size_in=1)
        # a fixed readout of x0 + x1: the error's product part is nonlinear
        nengo.Connection(hidden, out, function=np.sum, synapse=None)
        rule = nengo_fa.SyntheticGradient(
            error_size=1,
            error_delay=told,
            context=target if context else None,
            learning_rate=rates,
            gain_learning_rate=rates,
            bias_learning_rate=rates,
            **kwargs,
        )
        net.layer = nengo.Connection(stim, hidden, learning_rule_type=rule)
        error = nengo.Node(size_in=1)
        nengo.Connection(out, error, synapse=None)
        nengo.Connection(target, error, transform=-1, synapse=None)
        net.error = nengo.Node(Late(delay), size_in=1)
        nengo.Connection(error, net.error, synapse=None)
        nengo.Connection(net.error, net.layer.learning_rule, synapse=None)
        net.rule_probes = {
            key: nengo.Probe(net.layer.learning_rule, key, synapse=None) for key in keys
        }
    return net


def late_predictor_error(Simulator, net, t_run=6.0):
    with Simulator(net, progress_bar=False) as sim:
        sim.run(t_run)
    # the median: the relative error is large where the true error nears 0
    err = sim.data[net.rule_probes["predictor_error"]][:, 0]
    t = sim.trange()
    early = np.median(err[(t > 0.05) & (t < 0.5)])
    return early, np.median(err[t > t_run - 2]), sim


def test_predictor_learns_the_true_feedback_error(Simulator, seed):
    """With the layer frozen (rates 0), M regresses F e: the synthetic local
    error is far closer to the true one than with a predictor that does not
    learn (M stays 0: relative error 1), and nothing but M changes."""
    _, late, sim = late_predictor_error(Simulator, regression_net(seed))
    _, still, _ = late_predictor_error(
        Simulator, regression_net(seed, predictor_learning_rate=0)
    )
    assert still == 1
    assert late < 0.3
    bias = sim.data[sim.model.toplevel.rule_probes["bias"]]
    assert np.all(bias == bias[0])


def test_frozen_network_beats_pes_only_with_a_sparse_error(Simulator, plt):
    """Train, gate the error, test: with the error on 5% of the steps (for
    every rule alike), the frozen network with synthetic gradients beats PES
    only on every seed (ensemble and connection seeds vary with the
    network's). This is the regime it is for; with an error on every step it
    has nothing to gain (``benchmarks/README.rst``)."""
    t_train, t_test = 20.0, 5.0
    skip = 0.05 + nengo_fa.SyntheticGradient.max_gap.default
    for seed in (0, 1):
        results = {}
        for rule in ("pes", "sg"):
            net = late_net(rule, seed=seed, fraction=0.05, freeze_at=t_train)
            results[rule], _, sim = train_freeze_test(
                Simulator, net, t_train, t_test, skip=skip
            )
            plt.plot(sim.trange(), sim.data[net.p_error], label=f"{rule} {seed}")
        assert results["sg"] < 0.8 * results["pes"], (seed, results)
    plt.legend()


def test_stops_after_max_gap_and_waits_for_the_first_error(Simulator, seed):
    """No update before the first error; after the error is gated off, the
    synthetic updates go on for ``max_gap`` and then stop."""
    net = late_net("sg", seed=seed, freeze_at=1.0, delay=0.02)
    with net:
        p_bias = nengo.Probe(net.rules[0], "bias", synapse=None)
    with Simulator(net, progress_bar=False) as sim:
        sim.run(1.5)
    bias, t = sim.data[p_bias], sim.trange()
    first = np.argmax(t >= 0.02)
    assert np.all(bias[:first] == bias[0])
    assert np.any(bias[t < 1.0] != bias[0])
    gone = 1.0 + 0.02 + nengo_fa.SyntheticGradient.max_gap.default + 0.01
    assert np.any(bias[(t > 1.0) & (t < gone - 0.02)] != bias[t >= gone][0])
    assert np.all(bias[t >= gone] == bias[t >= gone][0])


@pytest.mark.parametrize("rule", ["sg", "sg-bp", "sg-nocontext"])
def test_invariants(Simulator, seed, rule):
    """Probeable keys, reset() and determinism, and a running simulator
    pickles and continues identically."""
    net = late_net(rule, seed=seed, n=8, delay=0.01, fraction=0.5)
    with net:
        probes = {k: nengo.Probe(net.rules[0], k, synapse=None) for k in KEYS}
    with Simulator(net, progress_bar=False) as sim:
        sim.run(0.3)
        first = {k: sim.data[p].copy() for k, p in probes.items()}
        assert np.any(first["predictor"][-1] != 0)
        assert np.any(first["bias"][-1] != first["bias"][0])
        copy = pickle.loads(pickle.dumps(sim))
        sim.run(0.1)
        copy.run(0.1)
        for k, p in probes.items():
            twin = copy.model.probes[sim.model.probes.index(p)]
            assert np.array_equal(sim.data[p], copy.data[twin], equal_nan=True), k
        sim.reset()
        sim.run(0.3)
        for k, p in probes.items():
            assert np.array_equal(sim.data[p], first[k], equal_nan=True), k


def test_float32(Simulator, seed):
    """Runs and learns in float32 (nengo.rc precision)."""
    old = nengo.rc.get("precision", "bits")
    nengo.rc.set("precision", "bits", "32")
    try:
        net = regression_net(seed)
        _, late, sim = late_predictor_error(Simulator, net, t_run=2.0)
    finally:
        nengo.rc.set("precision", "bits", old)
    assert sim.model.sig[net.layer.learning_rule]["predictor"].dtype == np.float32
    assert late < 0.3


@pytest.mark.parametrize("factored", [False, True])
def test_nan_error_stops_before_the_predictor_changes(
    Simulator, seed, factored, kernels
):
    keys = [k for k in KEYS if k != "predictor"] if factored else KEYS
    net = regression_net(seed, keys=keys)
    with net:
        # the node's output is finite; the transform overflows it to inf
        bad = nengo.Node(lambda t: 1e300 if t > 0.0105 else 0.0)
        nengo.Connection(bad, net.layer.learning_rule, transform=1e10, synapse=None)
    with Simulator(net, progress_bar=False) as sim:
        sim.run(0.01)
        M = sim.signals[sim.model.sig[net.layer.learning_rule]["predictor"]].copy()
        with pytest.raises(SimulationError, match="NaN or inf"):
            sim.run(0.01)
        after = sim.signals[sim.model.sig[net.layer.learning_rule]["predictor"]]
        assert np.array_equal(after, M)
        assert np.any(M != 0)
        assert M.shape[0] == (1 if factored else 12)


def test_repr_and_defaults():
    sg = nengo_fa.SyntheticGradient(error_size=2)
    assert sg.error_size == 2 and sg.error_delay == 0 and sg.context is None
    assert "SyntheticGradient" in repr(sg)
    assert set(KEYS) <= set(sg.probeable)


@pytest.mark.parametrize(
    "kwargs, attr",
    [
        (dict(error_size=1, error_delay=-0.1), "error_delay"),
        (dict(error_size=1, max_gap=0), "max_gap"),
        (dict(error_size=1, predictor_learning_rate=-1), "predictor_learning_rate"),
        (dict(error_size=1, error_delay=np.inf), "error_delay"),
        (dict(error_size=1, context="target"), "context"),
        (dict(), "error_size"),
    ],
)
def test_bad_arguments_raise(kwargs, attr):
    with nengo.Network():
        with pytest.raises(ValidationError) as info:
            nengo_fa.SyntheticGradient(**kwargs)
    assert info.value.attr == attr


def test_bad_downstream_and_feedback_raise(Simulator):
    net = late_net("bp", n=6)
    with net:
        h2 = nengo.Ensemble(6, 2)
        upper = nengo.Connection(
            net.hidden, h2, learning_rule_type=nengo_fa.FeedbackAlignment(1)
        )
    with net, pytest.raises(ValidationError, match="not chained"):
        nengo_fa.SyntheticGradient(downstream=upper)
    with net, pytest.raises(ValidationError, match="leave error_size out"):
        nengo_fa.SyntheticGradient(error_size=3, downstream=net.readout)
    net = late_net("sg", n=6, rule_kwargs=dict(feedback=np.ones((5, 1))))
    with pytest.raises(BuildError, match="'feedback' has shape"):
        Simulator(net)


def test_filtered_error_warns(Simulator):
    net = late_net("sg", n=6)
    with net:
        nengo.Connection(net.target, net.rules[0], synapse=0.005, transform=0)
    with pytest.warns(nengo.exceptions.NengoWarning, match="synapse=None"):
        Simulator(net).close()


@pytest.mark.parametrize("context", [True, False])
def test_factored_predictor_equals_full(Simulator, seed, context, kernels):
    """With a fixed F the predictor is kept as M = F P (an update of M is F
    times one of P), in compiled loops or numpy: the same run as with M
    itself, which a probe of "predictor" asks for, up to rounding, and F P
    equals that M."""

    def net_and_probes(probe_predictor):
        with nengo.Network(seed=seed) as net:
            stim = nengo.Node(lambda t: [np.sin(3 * t), np.cos(2 * t)])
            target = nengo.Node(lambda t, x: [x[0] * x[1], x[0] ** 2], size_in=2)
            nengo.Connection(stim, target, synapse=None)
            hidden = nengo.Ensemble(15, 2, neuron_type=nengo.RectifiedLinear())
            out = nengo.Node(size_in=2)
            nengo.Connection(hidden, out, function=lambda x: [0.0, 0.0])
            error = nengo.Node(size_in=2)
            nengo.Connection(out, error, synapse=None)
            nengo.Connection(target, error, transform=-1, synapse=None)
            rule = nengo_fa.SyntheticGradient(
                error_size=2, context=target if context else None
            )
            layer = nengo.Connection(stim, hidden, learning_rule_type=rule)
            nengo.Connection(error, layer.learning_rule, synapse=None)
            keys = [k for k in KEYS if k != "predictor"]
            keys += ["predictor"] if probe_predictor else []
            probes = {k: nengo.Probe(layer.learning_rule, k) for k in keys}
        return net, layer, probes

    runs = []
    for probe_predictor in (True, False):
        net, layer, probes = net_and_probes(probe_predictor)
        with Simulator(net, progress_bar=False) as sim:
            sim.run(0.5)
            sig = sim.model.sig[layer.learning_rule]
            M, F = (sim.signals[sig[key]].copy() for key in ("predictor", "feedback"))
        runs.append((sim, probes, M, F))
    (full, full_probes, M, F), (fact, fact_probes, P, F2) = runs
    m = 15 + (2 if context else 0)
    assert M.shape == (15, m) and P.shape == (2, m)
    assert np.array_equal(F, F2)
    assert np.max(np.abs(M)) > 0
    assert np.allclose(F @ P, M, rtol=1e-9, atol=1e-12 * np.max(np.abs(M)))
    for key, probe in fact_probes.items():
        a, b = full.data[full_probes[key]], fact.data[probe]
        scale = np.nanmax(np.abs(a))
        assert scale > 0, key
        assert np.allclose(b, a, rtol=1e-9, atol=1e-9 * scale, equal_nan=True), key
