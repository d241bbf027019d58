"""Property-based test of run-time robustness (hypothesis).

Over random valid configurations (rule, what it modifies, neuron type, sizes,
rates, feedback learning, chain depth, precision) and random traces of the
error and the input that include NaN, inf and huge values, every run either
ends with finite, bounded learned state or stops with a clear Nengo error,
and never leaves the state non-finite.

The traces are Piecewise processes (Nengo refuses a Node function that
returns NaN or inf, but not a process). They go to the nengo_fa rules and to
the hidden ensemble's input; the PES readout learns from the true error, so
that Nengo's own operators see only NaN, which they pass on, and not the
infinities they would refuse with a raw FloatingPointError.
"""

import warnings

import nengo
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nengo.exceptions import NengoException

import nengo_fa
from nengo_fa.builder.hidden_layer import MAX_GAIN_FRACTION, MIN_GAIN_FRACTION

ERROR_VALUES = (0.0, 0.3, -1.0, 1e5, -1e30, 1e300, np.nan, np.inf, -np.inf)
INPUT_VALUES = (0.0, 0.5, -1.0, 1e5, 1e30, np.nan)
RATES = (0.0, 1e-3, 0.3, 3.0, 1e3, 1e8)
NEURONS = {
    "relu": nengo.RectifiedLinear,
    "lif": nengo.LIF,
    "tanh": nengo.Tanh,
    "spiking": nengo.SpikingRectifiedLinear,
}


def trace(values):
    """A piecewise-constant trace, 10 steps per value."""
    return nengo.processes.Piecewise({0.01 * i: float(v) for i, v in enumerate(values)})


configs = st.fixed_dictionaries(
    {
        "rule": st.sampled_from(["fa", "bp", "ss", "kp", "terms"]),
        "weights": st.booleans(),
        "neurons": st.sampled_from(sorted(NEURONS)),
        "n": st.integers(2, 12),
        "d": st.integers(1, 3),
        "rates": st.tuples(*[st.sampled_from(RATES)] * 3),
        "depth": st.sampled_from([1, 2]),
        "bits": st.sampled_from(["32", "64"]),
        "compiled": st.booleans(),
        "error": st.lists(st.sampled_from(ERROR_VALUES), min_size=1, max_size=6),
        "input": st.lists(st.sampled_from(INPUT_VALUES), min_size=1, max_size=6),
    }
)


def network(c):
    n, d = c["n"], c["d"]
    neuron_type = NEURONS[c["neurons"]]()
    kE, kg, kb = c["rates"]
    rates = dict(learning_rate=kE, gain_learning_rate=kg, bias_learning_rate=kb)
    weights = c["weights"] and c["depth"] == 1
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: np.sin(np.arange(1, d + 1) * t))
        x_trace = nengo.Node(trace(c["input"]))
        hidden = nengo.Ensemble(n, d, neuron_type=neuron_type)
        nengo.Connection(x_trace, hidden[0], synapse=None)
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(
            hidden, out, function=lambda x: 0.1, learning_rule_type=nengo.PES()
        )
        if c["rule"] == "bp":
            # from the first step (here and for SignSymmetry): a run is tens
            # of steps, shorter than the default warm-up, which would hold the
            # extreme errors back
            rule_type = nengo_fa.BackProp(readout, warmup=None, **rates)
        elif c["rule"] == "ss":
            rule_type = nengo_fa.SignSymmetry(readout, warmup=None, **rates)
        elif c["rule"] in ("kp", "terms"):
            learning = (
                nengo_fa.KolenPollack()
                if c["rule"] == "kp"
                else nengo_fa.AlignmentTerms(decay=0.1, self_=1, amp=1, null=1)
            )
            rule_type = nengo_fa.FeedbackAlignment(
                downstream=readout, feedback_learning=learning, **rates
            )
        else:
            rule_type = nengo_fa.FeedbackAlignment(1, **rates)
        if weights:
            rule_type = type(rule_type)(
                **{**rule_type_args(rule_type), "modifies": "weights"}
            )
            pre = nengo.Ensemble(n, d, neuron_type=neuron_type)
            nengo.Connection(stim, pre)
            nengo.Connection(stim, hidden)
            layer = nengo.Connection(
                pre.neurons,
                hidden.neurons,
                transform=np.zeros((n, n)),
                learning_rule_type=rule_type,
            )
        else:
            pre = stim
            if c["depth"] == 2:
                pre = nengo.Ensemble(n, d, neuron_type=neuron_type)
                nengo.Connection(stim, pre)
            layer = nengo.Connection(pre, hidden, learning_rule_type=rule_type)
            if c["depth"] == 2:
                lower = nengo_fa.BackProp(layer, **rates)
                nengo.Connection(stim, pre, learning_rule_type=lower)
        error = nengo.Node(size_in=1)
        nengo.Connection(out, error)
        nengo.Connection(stim[0], error, transform=-1)
        nengo.Connection(error, readout.learning_rule)
        rule_error = nengo.Node(size_in=1)
        nengo.Connection(error, rule_error, synapse=None)
        nengo.Connection(nengo.Node(trace(c["error"])), rule_error, synapse=None)
        nengo.Connection(rule_error, layer.learning_rule)
    return net


def rule_type_args(rule_type):
    names = ("learning_rate", "gain_learning_rate", "bias_learning_rate")
    args = {name: getattr(rule_type, name) for name in names}
    if isinstance(rule_type, nengo_fa.FeedbackAlignment):
        args.update(
            error_size=rule_type.error_size,
            downstream=rule_type.downstream,
            feedback_learning=rule_type.feedback_learning,
        )
    else:
        args.update(downstream=rule_type.downstream)
    if isinstance(rule_type, (nengo_fa.BackProp, nengo_fa.SignSymmetry)):
        args.update(warmup=rule_type.warmup)
    return args


def learned_state(sim):
    """The gains, biases, encoders, weights and feedback matrices that
    nengo_fa rules learn (not, e.g., a PES readout's decoders, Nengo's own)."""
    model = sim.model
    state = []
    for ens in model.toplevel.all_ensembles:
        for key in ("encoders", "gain"):
            if key in model.sig[ens]:
                state.append((ens, key, sim.signals[model.sig[ens][key]]))
        state.append((ens, "bias", sim.signals[model.sig[ens.neurons]["bias"]]))
    for conn in model.toplevel.all_connections:
        if isinstance(conn.learning_rule_type, nengo_fa.learning_rules.HiddenLayerRule):
            if conn.learning_rule_type.modifies == "weights":
                state.append((conn, "weights", sim.signals[model.sig[conn]["weights"]]))
            if getattr(conn.learning_rule_type, "feedback_learning", None):
                feedback = model.sig[conn.learning_rule]["feedback"]
                state.append((conn, "feedback", sim.signals[feedback]))
    return state


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(configs)
def test_runs_end_bounded_or_raise_clearly(c):
    old = nengo.rc.get("precision", "bits")
    nengo.rc.set("precision", "bits", c["bits"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with nengo_fa.settings.override(compiled_kernels=c["compiled"]):
                sim = nengo.Simulator(network(c), progress_bar=False)
            with sim:
                try:
                    sim.run_steps(10 * len(c["error"]) + 10)
                except NengoException as e:
                    # a clear Nengo error that names a rule (or a Nengo object)
                    assert "on <Connection" in str(e) or "<" in str(e), str(e)
                for obj, key, value in learned_state(sim):
                    assert np.all(np.isfinite(value)), (obj, key)
                    if key == "gain":
                        g0 = np.mean(np.abs(sim.data[obj].gain))
                        assert np.all(value >= MIN_GAIN_FRACTION * g0 * (1 - 1e-5))
                        assert np.all(value <= MAX_GAIN_FRACTION * g0 * (1 + 1e-5))
    finally:
        nengo.rc.set("precision", "bits", old)
