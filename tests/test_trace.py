"""Tests of `nengo_fa.TraceRule` and its `.SimTraceError` (`nengo_fa.builder.trace`)."""

import pickle
import warnings

import nengo
import numpy as np
import pytest
from nengo.exceptions import BuildError, NengoWarning, ValidationError

import nengo_fa
from nengo_fa.builder.numerics import rms_row_norm

from .networks import phased_product_net, phased_train_freeze_test


def test_trace_rule_learns_frozen_better_than_pes_only_and_like_fa(Simulator, plt):
    """Train 20 s with the target in the second half of each presentation,
    freeze, test 5 s on new points: against PES only and FeedbackAlignment
    fed the same phased error, in the same run, on seeds 0-4.

    Over 11 seeds (0-5, 11, 23, 42, 57, 91) the trace rule's frozen error
    was 0.30-0.81 of PES only's on nine, and 2.0 and 1.09 on seeds 0 and 57:
    there the nudge spoils the readout's learning (as documented in the
    rule's Notes and on the theory page; the FA here gets no nudge, and
    reaches 0.6 of PES only's on seed 0). So the test asserts what held over
    those seeds: better than PES only on at least four of these five, and
    about FA's error over them (geometric means within 1.5x; measured 0.95).
    """
    seeds = range(5)
    frozen = {rule: [] for rule in ("pes", "fa", "trace")}
    for seed in seeds:
        for rule in frozen:
            net = phased_product_net(rule, seed=seed, n=20, freeze_at=20.0)
            error, _, sim = phased_train_freeze_test(Simulator, net, 20.0, 5.0)
            frozen[rule].append(error)
            if rule == "trace":
                bias = sim.data[net.p_rule[1]]
                assert not np.allclose(bias[0], bias[-1])  # it learned
                # and nothing after the freeze
                after = sim.trange() > 20.1
                assert np.allclose(bias[after][0], bias[-1])
    for rule, errors in frozen.items():
        plt.semilogy(list(seeds), errors, "o-", label=rule)
    plt.xlabel("seed")
    plt.ylabel("frozen test MSE")
    plt.legend()
    print(frozen)
    pes, fa, trace = (np.array(frozen[k]) for k in ("pes", "fa", "trace"))
    assert np.count_nonzero(trace < pes) >= 4, frozen
    # learning from the nudge does about as well as FA's direct feedback
    gm_trace, gm_fa = np.exp(np.mean(np.log(trace))), np.exp(np.mean(np.log(fa)))
    assert gm_trace < 1.5 * gm_fa, frozen


def _probed_net(rates=None, freeze_at=np.inf):
    kw = (
        {}
        if rates is None
        else dict(
            zip(("learning_rate", "gain_learning_rate", "bias_learning_rate"), rates)
        )
    )
    net = phased_product_net("trace", seed=1, n=15, freeze_at=freeze_at, rule_kwargs=kw)
    rule = net.layer1.learning_rule
    with net:
        keys = ("error", "delta", "outcome", "expectation", "phase", "bias")
        net.trace_probes = {k: nengo.Probe(rule, k, synapse=None) for k in keys}
        net.trace_probes["J"] = nengo.Probe(net.hidden.neurons, "input", synapse=None)
        net.trace_probes["x"] = nengo.Probe(net.hidden, "input", synapse=None)
    return net


def test_nudge_enters_the_hidden_current(Simulator):
    """With nothing learning, J = S x + b - (nudge / nu) g * (B e) exactly."""
    net = _probed_net(rates=(0, 0, 0))
    with Simulator(net, progress_bar=False) as sim:
        sim.run(0.3)
    p = {k: sim.data[v] for k, v in net.trace_probes.items()}
    built = sim.data[net.hidden]
    B = sim.data[net.layer1.learning_rule].feedback
    g = built.gain
    nudge = -0.25 * g / rms_row_norm(B, B.shape[0]) * (p["error"] @ B.T)
    J = p["x"] @ built.scaled_encoders.T + built.bias + nudge
    assert np.any(np.abs(nudge) > 0.01 * g)  # the target was there
    assert np.allclose(p["J"], J, atol=1e-10)


def test_operator_describes_its_signals(Simulator):
    """`.SimTraceError` prints as Nengo's operators do (its ``_descstr`` a
    property: as a plain method it printed a bound method)."""
    from nengo_fa.builder.trace import SimTraceError

    with Simulator(_probed_net(rates=(0, 0, 0)), progress_bar=False) as sim:
        ops = [op for op in sim.model.operators if isinstance(op, SimTraceError)]
    assert len(ops) == 1
    text = str(ops[0])
    assert text.startswith("SimTraceError{") and "->" in text, text
    assert "bound method" not in text, text


def test_local_error_is_the_held_filter_difference(Simulator, kernels):
    """Outcome, expectation, phase and delta against a numpy reference
    computed from the probed current and error (the operator's compiled loop
    and its numpy code)."""
    rule_type = nengo_fa.TraceRule(1)
    net = _probed_net()
    with Simulator(net, progress_bar=False) as sim:
        sim.run(0.5)
    p = {k: sim.data[v] for k, v in net.trace_probes.items()}
    J, e = p["J"], p["error"]
    af = np.exp(-sim.dt / rule_type.fast_tau)
    as_ = np.exp(-sim.dt / rule_type.slow_tau)
    on = np.max(np.abs(e), axis=1) > rule_type.phase_threshold
    Jf, Js = J[0].copy(), J[0].copy()
    outcome, expectation = [Jf.copy()], [Js.copy()]
    for k in range(1, len(J)):
        Jf = af * Jf + (1 - af) * J[k]
        if not on[k]:
            Js = as_ * Js + (1 - as_) * J[k]
        outcome.append(Jf.copy())
        expectation.append(Js.copy())
    outcome, expectation = np.array(outcome), np.array(expectation)
    assert np.allclose(p["phase"][:, 0], on)
    assert 0 < on.mean() < 0.5  # both phases happened
    assert np.allclose(p["outcome"], outcome)
    assert np.allclose(p["expectation"], expectation)
    B = sim.data[net.layer1.learning_rule].feedback
    c = rms_row_norm(B, B.shape[0]) / (0.25 * sim.data[net.hidden].gain)
    delta = on[:, None] * c * (expectation - outcome) * (J > 0)
    assert np.any(np.abs(delta) > 0)
    assert np.allclose(p["delta"], delta, atol=1e-10)


def test_nudge_is_added_after_the_encoding(Simulator):
    """Both the nudge and the encoder update add to the hidden current: the
    nudge comes after it in every build, so that the sum, and the run, is
    the same bit for bit (Nengo's optimizer ordered them either way)."""
    from nengo_fa.builder import SimHiddenLayerEncoderUpdate, SimTopDownNudge

    net = _probed_net()
    with Simulator(net, progress_bar=False) as sim:
        order = [type(op) for op in sim.step_order]
        assert order.index(SimHiddenLayerEncoderUpdate) < order.index(SimTopDownNudge)


def test_always_present_target_warns(Simulator):
    """A target that never leaves for a minus phase long enough for the
    expectation to settle gets a warning after 20 slow_tau; the phased
    network of the other tests does not."""
    net = phased_product_net("trace", seed=0)
    with net:
        always = nengo.Node([0.5])
        nengo.Connection(always, net.layer1.learning_rule, synapse=None)
    with pytest.warns(NengoWarning, match="no minus phase long enough"):
        with Simulator(net, progress_bar=False) as sim:
            sim.run(0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NengoWarning)
        with Simulator(phased_product_net("trace", seed=0), progress_bar=False) as sim:
            sim.run(1.0)
    assert np.any(sim.data[sim.model.toplevel.p_phase] > 0)


def test_nothing_learned_without_a_target(Simulator):
    net = _probed_net(freeze_at=0.0)
    with Simulator(net, progress_bar=False) as sim:
        sim.run(0.3)
    assert not np.any(sim.data[net.trace_probes["phase"]])
    assert not np.any(sim.data[net.trace_probes["delta"]])
    bias = sim.data[net.trace_probes["bias"]]
    assert np.array_equal(bias[0], bias[-1])
    assert np.array_equal(bias[0], sim.data[net.hidden].bias)


def test_projection_read_from_the_nudged_current(Simulator, kernels, monkeypatch):
    """The rule's step reads S x as J - b - (the nudge), not from S (an n x d
    product each step): the same run as with S x computed from S, up to
    rounding (its compiled loops and its numpy code)."""
    from nengo_fa.builder import encoder_update
    from nengo_fa.builder.hidden_layer import SimHiddenLayerRule

    def run():
        net = _probed_net()
        with net:
            probe = nengo.Probe(net.hidden, "scaled_encoders", sample_every=0.1)
            gain = nengo.Probe(net.layer1.learning_rule, "gain", synapse=None)
        with Simulator(net, progress_bar=False) as sim:
            (op,) = [
                op for op in sim.model.operators if isinstance(op, SimHiddenLayerRule)
            ]
            sim.run(1.0)
        probed = {k: sim.data[v] for k, v in net.trace_probes.items()}
        probed["gain"] = sim.data[gain]
        return op.current_offset, probed, sim.data[probe]

    offset, fast, fast_S = run()
    monkeypatch.setattr(encoder_update, "current_offset", lambda model, ens: None)
    no_offset, slow, slow_S = run()
    assert offset is not None and offset.name == "TraceRule:nudge"
    assert no_offset is None
    # the encoders and gains learned (the gains' step is where S x enters)
    assert not np.allclose(fast_S[-1], fast_S[0])
    assert not np.allclose(fast["gain"][-1], fast["gain"][0])
    assert np.allclose(fast_S, slow_S, rtol=1e-9, atol=1e-12)
    for key in ("J", "delta", "bias", "gain"):
        assert np.allclose(fast[key], slow[key], rtol=1e-9, atol=1e-12), key


def test_reset_and_pickle_resume_identically(Simulator):
    net = _probed_net()
    probe = net.trace_probes["delta"]
    with Simulator(net, progress_bar=False) as sim:
        index = sim.model.probes.index(probe)
        sim.run_steps(120)
        copy = pickle.loads(pickle.dumps(sim))
        sim.run_steps(100)
        first = sim.data[probe].copy()
        sim.reset()
        sim.run_steps(220)
        assert np.array_equal(sim.data[probe], first)
    with copy:
        copy.run_steps(100)
        # the copy's probes are copies too, in the same order
        assert np.array_equal(copy.data[copy.model.probes[index]], first)
    assert np.any(first != 0)


def test_learns_weights(Simulator):
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5, -0.3])
        pre = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
        hidden = nengo.Ensemble(15, 2, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(stim, pre)
        conn = nengo.Connection(
            pre.neurons,
            hidden.neurons,
            transform=np.zeros((15, 20)),
            learning_rule_type=nengo_fa.TraceRule(1, modifies="weights"),
        )
        error = nengo.Node(lambda t: [0.5 if t > 0.1 else 0])
        nengo.Connection(error, conn.learning_rule)
        p = nengo.Probe(conn, "weights")
    with Simulator(net, progress_bar=False) as sim:
        sim.run(0.2)
    w = sim.data[p]
    t = sim.trange()
    assert np.array_equal(w[t < 0.1][-1], 0 * w[0])  # minus phase: nothing
    assert np.any(w[-1] != 0)


def test_float32(Simulator):
    old = nengo.rc.get("precision", "bits")
    nengo.rc.set("precision", "bits", "32")
    try:
        net = _probed_net()
        with Simulator(net, progress_bar=False) as sim:
            sim.run(0.3)
            fe_dtype = sim.signals[sim.model.sig[net.layer1.learning_rule]["outcome"]]
            assert fe_dtype.dtype == np.float32
        assert np.all(np.isfinite(sim.data[net.trace_probes["delta"]]))
        assert np.any(sim.data[net.trace_probes["delta"]] != 0)
        # every probe of the rule in the configured precision, the phase too
        for key, probe in net.trace_probes.items():
            assert sim.data[probe].dtype == np.float32, key
    finally:
        nengo.rc.set("precision", "bits", old)


def test_repr_and_defaults():
    rule = nengo_fa.TraceRule(2)
    assert repr(rule) == "TraceRule(error_size=2)"
    assert (rule.nudge, rule.fast_tau, rule.slow_tau) == (0.25, 0.002, 0.01)
    assert rule.learning_rate == 0.7
    assert rule.size_in == 2
    with nengo.Network():
        assert nengo_fa.TraceRule(nengo.Node(size_in=3)).error_size == 3
    with pytest.raises(ValidationError, match="read-only"):
        rule.nudge = 1.0


@pytest.mark.parametrize(
    "kwargs, attr",
    [
        (dict(nudge=0), "nudge"),
        (dict(nudge=np.inf), "nudge"),
        (dict(fast_tau=0), "fast_tau"),
        (dict(slow_tau=-1), "slow_tau"),
        (dict(slow_tau=0.002), "slow_tau"),  # not longer than fast_tau
        (dict(phase_threshold=-0.1), "phase_threshold"),
        (dict(learning_rate=-1), "learning_rate"),
        (dict(error_size=0), "error_size"),
    ],
)
def test_bad_parameters_raise(kwargs, attr):
    kwargs.setdefault("error_size", 1)
    with pytest.raises(ValidationError) as info:
        nengo_fa.TraceRule(**kwargs)
    assert info.value.attr == attr
    assert "TraceRule" in str(info.value)


def test_feedback_of_wrong_shape_raises(Simulator):
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1)
        conn = nengo.Connection(
            nengo.Node([0]),
            a,
            learning_rule_type=nengo_fa.TraceRule(2, feedback=np.ones((9, 2))),
        )
        nengo.Connection(nengo.Node([0, 0]), conn.learning_rule)
    with pytest.raises(BuildError, match=r"'feedback' has shape \(9, 2\)"):
        with Simulator(net, progress_bar=False):
            pass
