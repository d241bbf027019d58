"""nengo_fa models give the same results in NengoDL as in the reference simulator.

Needs NengoDL, which needs its own environment (TensorFlow 2.12 pins numpy
< 1.25); the module is skipped where nengo_dl is not installed. ``.ci/dl``
creates that environment and runs this module in it::

    bash .ci/dl

Each test builds one model, runs it in ``nengo.Simulator`` and in
``nengo_dl.Simulator`` (two ``run`` calls, so what NengoDL keeps between calls
is checked too) and compares every probe: the output error and, for every
rule, its local error ``delta``, scaled encoders, gains and biases.

- float64 in NengoDL: the same arithmetic up to rounding, so all probes agree
  to ``F64_RTOL`` relative to the largest value of each probe (measured:
  at most 6e-14).
- float32 (NengoDL's default), rate neurons: ``F32_RTOL`` (measured: at most
  1.7e-4). With spiking neurons, float32 rounding moves spikes by a step, and
  learning then amplifies that difference, so spiking types are compared in
  float64.
"""

import nengo
import numpy as np
import pytest
from nengo.exceptions import BuildError

import nengo_fa

from .networks import (
    deep_net,
    gapped_error_net,
    late_net,
    phased_product_net,
    product_net,
)
from .test_erbp import weights_net

nengo_dl = pytest.importorskip("nengo_dl")
tf = pytest.importorskip("tensorflow")

pytestmark = [
    pytest.mark.filterwarnings("ignore:No GPU support detected:UserWarning"),
    # see nengo_fa.dl: harmless, and filtered there too (pytest resets filters)
    pytest.mark.filterwarnings("ignore:Unknown incer type:UserWarning"),
]


class Float64Simulator(nengo_dl.Simulator):
    """``nengo_dl.Simulator`` in float64, for nengo's pytest plugin.

    Runs the reference test suite on NengoDL with the arithmetic of the
    reference simulator (float32 rounding breaks tests that check single
    updates to 1e-5)::

        pytest tests/test_learning_rules.py \
            -o nengo_simulator=tests.test_dl.Float64Simulator
    """

    def __init__(self, network, *args, **kwargs):
        if network is not None:
            with network:
                nengo_dl.configure_settings(dtype="float64")
        kwargs.setdefault("progress_bar", False)
        super().__init__(network, *args, **kwargs)


# max |ref - dl| / max |ref|, per probe
F64_RTOL = 1e-9
F32_RTOL = 1e-3

#: the rules of `tests.networks.deep_net`: BackProp (through the live and the
#: low-passed weights), SignSymmetry and
#: FeedbackAlignment chained through both hidden layers, direct feedback
#: alignment, and chained FA learning its feedback (Kolen-Pollack, all five
#: alignment terms, bidirectional: Amp + Null on the normalised forward
#: weights), and local representation alignment
KINDS = ("bp", "bpf", "ss", "fa", "dfa", "kp", "terms", "bd", "lra")


def two_layers(kind, neuron_type, seed, modifies="encoders", n=(20, 15)):
    """`tests.networks.deep_net` (stim -> h1 -> h2 -> out, PES readout of the
    product of the inputs), every rule and output probed.

    The ensembles' maximum rates are in (300, 400) Hz: Sigmoid(tau_ref=0.002)
    needs them in (250, 500). With ``modifies="weights"`` the rule on h1 -> h2
    learns a full weight matrix.
    """
    net = deep_net(
        kind,
        seed,
        n=n,
        neuron_type=neuron_type,
        modifies=modifies,
        max_rates=nengo.dists.Uniform(300, 400),
        at_once=True,  # 300 steps: shorter than BackProp's warm-up
    )
    with net:
        net.fa_probes = {"error": net.p_error, "out": net.p_out}
        for name, conn in (("h1", net.into_h1), ("h2", net.into_h2)):
            if conn.learning_rule_type is None:
                continue
            keys = ("delta", "gain", "bias") + (
                ("scaled_encoders",) if modifies == "encoders" or name == "h1" else ()
            )
            extra = ("feedback", "delta_angle", "feedback_angle", "norm_ratio")
            if kind in ("kp", "terms", "bd"):
                keys += extra
            for key in keys:
                net.fa_probes[f"{name}.{key}"] = nengo.Probe(conn.learning_rule, key)
        if modifies == "weights":
            net.fa_probes["h2.weights"] = nengo.Probe(net.into_h2, "weights")
    return net


def run_both(net, dtype="float64", minibatch_size=1, steps=(150, 150)):
    """Probe data from nengo.Simulator and nengo_dl.Simulator."""
    with nengo.Simulator(net, progress_bar=False) as sim:
        for k in steps:
            sim.run_steps(k)
        ref = {key: sim.data[p] for key, p in net.fa_probes.items()}

    with net:
        nengo_dl.configure_settings(dtype=dtype)
    with nengo_dl.Simulator(
        net, minibatch_size=minibatch_size, progress_bar=False
    ) as sim:
        for k in steps:
            sim.run_steps(k)
        dl = {key: sim.data[p] for key, p in net.fa_probes.items()}
    return ref, dl


def assert_match(ref, dl, rtol, item=None):
    """Every probe agrees to ``rtol`` of its largest value; returns the errors."""
    errors = {}
    for key, a in ref.items():
        b = dl[key]
        b = b[item] if item is not None else b[0]  # minibatch item
        assert b.shape == a.shape, key
        # the alignment diagnostics are NaN while undefined (e.g. W = 0)
        nan = np.isnan(a)
        assert np.array_equal(nan, np.isnan(b)), key
        a, b = a[~nan], b[~nan]
        scale = np.max(np.abs(a), initial=0)
        errors[key] = np.max(np.abs(a - b), initial=0) / (scale if scale > 0 else 1.0)
    bad = {key: err for key, err in errors.items() if not err <= rtol}
    assert not bad, f"relative differences above {rtol}: {bad}"
    return errors


def assert_learned(ref):
    """Guard against a vacuous comparison: the rules did change something."""
    changed = [
        key
        for key, a in ref.items()
        if key.endswith(("bias", "gain", "scaled_encoders", "weights"))
        and not np.allclose(a[0], a[-1])
    ]
    assert changed, "nothing learned"


@pytest.mark.parametrize("kind", KINDS)
def test_rules_match_reference_float64(kind, seed):
    ref, dl = run_both(two_layers(kind, nengo.RectifiedLinear(), seed))
    assert_learned(ref)
    assert_match(ref, dl, F64_RTOL)


@pytest.mark.parametrize("kind", ("fa", "bp", "dfa"))
def test_rules_match_reference_float32(kind, seed):
    ref, dl = run_both(two_layers(kind, nengo.RectifiedLinear(), seed), dtype="float32")
    assert_match(ref, dl, F32_RTOL)


def trace_net(seed, **rule_kwargs):
    """`tests.networks.phased_product_net` with a `.TraceRule`, its outcome,
    expectation, phase and updates probed."""
    net = phased_product_net("trace", seed, n=15, rule_kwargs=rule_kwargs)
    rule = net.layer1.learning_rule
    with net:
        net.fa_probes = {"error": net.p_error, "out": net.p_out}
        for key in ("outcome", "expectation", "phase", "delta", "gain", "bias"):
            net.fa_probes[key] = nengo.Probe(rule, key)
        net.fa_probes["scaled_encoders"] = nengo.Probe(rule, "scaled_encoders")
    return net


#: float32: the trace rule's local error is a small difference of two filtered
#: currents (J_f - J_s, about 1% of J), so it carries float32's rounding of J
#: magnified about 100 times (measured: 0.6% on delta, 0.7% on the output)
TRACE_F32_RTOL = 1e-2


@pytest.mark.parametrize(
    "dtype, rtol", [("float64", F64_RTOL), ("float32", TRACE_F32_RTOL)]
)
def test_trace_rule_matches_reference(dtype, rtol, seed):
    # in float32, an error decaying through phase_threshold may cross it a
    # step earlier or later; with a threshold of 0 the phase starts when the
    # first target arrives (the error is exactly 0 before) in both
    threshold = 0.0 if dtype == "float32" else 0.05
    net = trace_net(seed, phase_threshold=threshold)
    # minus and plus phases, the state carried across the two run calls
    ref, dl = run_both(net, dtype=dtype, steps=(120, 130))
    assert_learned(ref)
    assert np.any(ref["phase"]) and not np.all(ref["phase"])
    assert_match(ref, dl, rtol)


@pytest.mark.parametrize(
    "neuron_type",
    (
        nengo.SpikingRectifiedLinear(),
        nengo.LIFRate(),
        nengo.LIF(),
        nengo.Sigmoid(tau_ref=0.002),
        nengo.Tanh(tau_ref=0.002),
        nengo.AdaptiveLIF(),
        nengo.RegularSpiking(nengo.LIFRate(), amplitude=0.5),
    ),
    ids=lambda nt: type(nt).__name__,
)
def test_neuron_types_match_reference(neuron_type, seed):
    ref, dl = run_both(two_layers("dfa", neuron_type, seed))
    assert_learned(ref)
    assert_match(ref, dl, F64_RTOL)


@pytest.mark.parametrize("kind", ("fa", "dfa", "bp"))
def test_weight_learning_matches_reference(kind, seed):
    ref, dl = run_both(
        two_layers(kind, nengo.RectifiedLinear(), seed, modifies="weights")
    )
    assert_learned(ref)
    assert_match(ref, dl, F64_RTOL)


def add_error_boost(net, size, t_on=0.05):
    """Add ``size`` to the error of every rule that has an error connection,
    from ``t_on``: the step bounds (bias, encoders, gains, weights, the bias
    floor) then bind."""
    with net:
        boost = nengo.Node(lambda t: size if t > t_on else 0.0)
        for conn in list(net.all_connections):
            rule_type = conn.learning_rule_type
            if isinstance(rule_type, nengo_fa.learning_rules.HiddenLayerRule):
                if conn.learning_rule.size_in == 1:
                    nengo.Connection(boost, conn.learning_rule, synapse=None)
    return net


@pytest.mark.filterwarnings("ignore::nengo_fa.StableRangeWarning")
@pytest.mark.parametrize(
    "kind, neuron_type, modifies",
    (
        ("dfa", nengo.RectifiedLinear(), "encoders"),
        ("bp", nengo.RectifiedLinear(), "encoders"),
        ("dfa", nengo.LIFRate(), "encoders"),
        ("dfa", nengo.RectifiedLinear(), "weights"),
    ),
    ids=("dfa", "bp", "dfa-lif", "dfa-weights"),
)
@pytest.mark.parametrize("size", (1e5, 1e30))
def test_bounded_steps_match_reference(kind, neuron_type, modifies, size, seed):
    """A huge error: every step meets its bound, in both simulators alike."""
    net = add_error_boost(two_layers(kind, neuron_type, seed, modifies=modifies), size)
    ref, dl = run_both(net)
    assert_learned(ref)
    for key, value in ref.items():
        if key.endswith(("bias", "gain", "scaled_encoders", "weights")):
            assert np.all(np.isfinite(value)), key
    # the local error grows with the error: compare the state, not delta.
    # Every step at its bound amplifies rounding: the two simulators' S x-bar
    # (kept from J - b in one, summed in the other) and the filtered currents
    # near 0, where a rectified linear derivative steps, gave 4e-9-5e-9 of
    # 'out' (3e-10 with the rule's pre_synapse None)
    state = {k: v for k, v in ref.items() if not k.endswith(("delta", "error"))}
    assert_match(state, dl, 100 * F64_RTOL)


def test_float32_gains_stay_the_row_norms():
    """NengoDL's float32 divergence at n=50000, scaled down.

    The gain step keeps g = r |S_i| through m^2 = g^2 + t, which carries the
    rounding error of g^2 along. Before the gains were measured from S below
    float64, that error became 45% of the gains that shrank a thousandfold
    here (n=10000, 800 steps); with the earlier update, which rescaled each
    row by a factor computed from (S x) r / g, the mismatch fed back into the
    rows and grew without bound (NaN after 490 steps at n=50000).
    """
    from .test_robustness import shrinking_gains_net

    net = shrinking_gains_net(10000)
    with net:
        nengo_dl.configure_settings(dtype="float32")
        p_gain = nengo.Probe(net.layer_rule, "gain", synapse=None)
        p_enc = nengo.Probe(
            net.layer_rule, "scaled_encoders", synapse=None, sample_every=0.1
        )
    with nengo_dl.Simulator(net, unroll_simulation=10, progress_bar=False) as sim:
        sim.run_steps(800)
        gains = sim.data[p_gain].reshape(-1, 10000)
        g0, gain = gains[0], gains[-1]
        S = sim.data[p_enc].reshape(-1, 10000, 2)[-1]
    assert np.min(gain / g0) < 0.01  # the case that drifted
    rows = np.linalg.norm(S.astype(float), axis=1) * net.hidden.radius
    assert np.max(np.abs(rows - gain) / gain) < 1e-5


@pytest.mark.parametrize("dtype", ("float64", "float32"))
def test_zero_gain_rate_keeps_gains_exactly(dtype, seed):
    """With ``gain_learning_rate=0`` the gains stay what they were built as,
    bit for bit, in both simulators and precisions, while the encoders learn
    (the gains are not measured from the rows, whose length moves by
    rounding)."""
    net = product_net("fa", seed, n=20, rule_kwargs={"gain_learning_rate": 0})
    with net:
        p_gain = nengo.Probe(net.layer1.learning_rule, "gain", synapse=None)
        p_enc = nengo.Probe(net.layer1.learning_rule, "scaled_encoders", synapse=None)
    old = nengo.rc.get("precision", "bits")
    nengo.rc.set("precision", "bits", dtype[-2:])
    try:
        with nengo.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(500)
        ref_gain, ref_enc = sim.data[p_gain], sim.data[p_enc]
    finally:
        nengo.rc.set("precision", "bits", old)
    with net:
        nengo_dl.configure_settings(dtype=dtype)
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(500)
    # (minibatch item, steps, ...); NengoDL probes a signal that no batch
    # item changes without the item axis
    dl_gain, dl_enc = (sim.data[p] for p in (p_gain, p_enc))
    dl_gain = dl_gain[0] if dl_gain.ndim == 3 else dl_gain
    dl_enc = dl_enc[0] if dl_enc.ndim == 4 else dl_enc
    for gain, S in ((ref_gain, ref_enc), (dl_gain, dl_enc)):
        assert np.array_equal(gain, np.broadcast_to(gain[0], gain.shape))
        assert not np.allclose(S[-1], S[0])  # the encoders did learn
        rows = np.linalg.norm(S[-1].astype(float), axis=1) * net.hidden.radius
        assert np.allclose(rows, gain[-1], rtol=1e-5 if dtype == "float32" else 1e-12)


def test_minibatch_items_learn_independently(seed):
    """Every minibatch item has the same input here, so each one must match."""
    ref, dl = run_both(
        two_layers("bp", nengo.RectifiedLinear(), seed), minibatch_size=3
    )
    for item in range(3):
        assert_match(ref, dl, F64_RTOL, item=item)


def test_ops_are_merged(seed):
    """The FA rules of ensembles of different sizes become one TensorFlow op."""
    from nengo_fa.builder import SimHiddenLayerRule

    net = two_layers("dfa", nengo.RectifiedLinear(), seed, n=(20, 15))
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        groups = [
            ops
            for ops in sim.tensor_graph.plan
            if isinstance(ops[0], SimHiddenLayerRule)
        ]
    assert [len(ops) for ops in groups] == [2]


def test_reset_restores_learned_state(seed):
    net = two_layers("fa", nengo.RectifiedLinear(), seed)
    with net:
        nengo_dl.configure_settings(dtype="float64")
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(100)
        first = {key: sim.data[p].copy() for key, p in net.fa_probes.items()}
        sim.reset()
        sim.run_steps(100)
        for key, p in net.fa_probes.items():
            assert np.array_equal(sim.data[p], first[key]), key


@pytest.mark.parametrize("path", ("inplace", "delta", "encoders"))
def test_erbp_matches_reference(path, seed):
    """ERBP on spiking LIF neurons: the event-driven in-place update, Nengo's
    generic delta path and the encoder update, in float64."""
    modifies = "encoders" if path == "encoders" else "weights"
    net = weights_net(seed=seed, modifies=modifies)
    with net:
        net.fa_probes = {"error": net.p_error}
        for key in ("dendrite", "gate", "delta", modifies):
            # "scaled_encoders": what assert_learned looks for
            name = "scaled_encoders" if key == "encoders" else key
            net.fa_probes[name] = nengo.Probe(net.conn.learning_rule, key)
    with nengo_fa.settings.override(inplace_encoder_update=path != "delta"):
        ref, dl = run_both(net)
    assert_learned(ref)
    assert np.any(ref["gate"] == 0) and np.any(ref["gate"] == 1)
    assert_match(ref, dl, F64_RTOL)


def test_nan_error_stops_the_run():
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
        p_enc = nengo.Probe(conn.learning_rule, "scaled_encoders")
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        before = sim.model.sig[hidden]["encoders"].initial_value
        with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf"):
            sim.run_steps(10)
        # the failed run wrote nothing back: the encoders are as built
        assert sim.n_steps == 0
        sim.run_steps(1)
        assert np.all(np.isfinite(sim.data[p_enc]))
        assert np.allclose(sim.data[p_enc][0], before, rtol=1e-3)


@pytest.mark.parametrize(
    "neuron_type, derivative, match",
    (
        (nengo.Izhikevich(), None, "no TensorFlow derivative for neuron type "),
        (nengo.RectifiedLinear(), lambda J: np.ones_like(J), "user 'derivative'"),
    ),
    ids=("Izhikevich", "user_derivative"),
)
def test_unsupported_derivative_raises(neuron_type, derivative, match):
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5, 0.2])
        hidden = nengo.Ensemble(10, 2, neuron_type=neuron_type)
        out = nengo.Node(size_in=1)
        nengo.Connection(hidden, out, function=lambda x: 0)
        rule = nengo_fa.FeedbackAlignment(out, derivative=derivative)
        layer1 = nengo.Connection(stim, hidden, learning_rule_type=rule)
        nengo.Connection(nengo.Node([0.1]), layer1.learning_rule)
    with pytest.raises(BuildError, match=match):
        with nengo_dl.Simulator(net, progress_bar=False):
            pass


@pytest.mark.parametrize(
    "neuron_type",
    (nengo.LIFRate(), nengo.LIFRate(tau_rc=0.05, amplitude=2), nengo.Sigmoid()),
    ids=lambda nt: repr(nt),
)
def test_tf_derivative_equals_numpy(neuron_type):
    """The TensorFlow derivative against nengo_fa.neurons, far into both tails."""
    from nengo_fa import dl
    from nengo_fa.neurons import make_derivative

    J = np.concatenate(
        [-np.logspace(-3, 31, 50), np.linspace(-3, 5, 801), np.logspace(-3, 31, 50)]
    )
    expected = make_derivative(neuron_type, np.ones_like(J), np.zeros_like(J))(
        J, np.empty_like(J)
    )
    family, params = dl.derivative_family(neuron_type)
    for dtype, rtol in ((tf.float64, 1e-12), (tf.float32, 1e-4)):
        tf_params = {k: tf.constant(v, dtype=dtype) for k, v in params.items()}
        got = dl.FAMILIES[family](tf.constant(J, dtype=dtype), **tf_params).numpy()
        assert np.all(np.isfinite(got))
        tiny = np.finfo(dtype.as_numpy_dtype).tiny / rtol
        assert np.allclose(got, expected, rtol=rtol, atol=tiny), dtype


def dtp_net(seed, **rule_kwargs):
    """`deep_net` with DifferenceTargetProp on both layers, its targets,
    displacements, inverse and reconstruction error probed too."""
    net = deep_net(
        "dtp",
        seed,
        n=(20, 15),
        max_rates=nengo.dists.Uniform(300, 400),
        rule_kwargs=rule_kwargs,
    )
    with net:
        net.fa_probes = {"error": net.p_error, "out": net.p_out}
        for name, conn in (("h1", net.into_h1), ("h2", net.into_h2)):
            keys = ("delta", "gain", "bias", "scaled_encoders", "error", "target")
            keys += ("displacement",)
            if name == "h1":
                keys += ("inverse", "reconstruction_error")
            for key in keys:
                net.fa_probes[f"{name}.{key}"] = nengo.Probe(conn.learning_rule, key)
    return net


def test_dtp_matches_reference_float64(seed):
    """Without noise (the only difference: TensorFlow draws its own), every
    DTP signal agrees with the reference simulator; with the default noise it
    runs, and its inverse learns as in the reference."""
    ref, dl = run_both(dtp_net(seed, noise=0.0))
    assert_learned(ref)
    assert np.any(ref["h1.inverse"][-1] != 0)
    assert_match(ref, dl, F64_RTOL)

    ref, dl = run_both(dtp_net(seed), steps=(500, 500))
    rho_ref = np.mean(ref["h1.reconstruction_error"][-200:])
    rho_dl = np.mean(dl["h1.reconstruction_error"][0, -200:])
    assert rho_ref < 0.9 and abs(rho_dl - rho_ref) < 0.1, (rho_ref, rho_dl)


@pytest.mark.parametrize(
    "rule, predictor",
    (
        ("sg", True),
        ("sg-bp", True),
        ("sg-nocontext", True),
        ("sg", False),
        ("sg-nocontext", False),
    ),
)
@pytest.mark.parametrize("dtype, rtol", (("float64", F64_RTOL), ("float32", F32_RTOL)))
def test_synthetic_gradient_matches_reference(rule, predictor, dtype, rtol, seed):
    """`.SimSyntheticGradient`: the error 20 ms late on half the steps, so
    that the buffers, the availability mask and ``max_gap`` all act; without
    a probe of ``"predictor"`` a fixed feedback's predictor is kept as
    :math:`M = F P` (``factored``), in both simulators."""
    net = late_net(rule, seed=seed % 1000, n=12, delay=0.02, fraction=0.5)
    keys = ("delta", "bias", "scaled_encoders", "true_delta")
    keys += ("predictor_error", "prediction_angle")
    keys += ("predictor",) if predictor else ()
    with net:
        net.fa_probes = {"error": net.p_error, "out": net.p_out}
        for key in keys:
            net.fa_probes[key] = nengo.Probe(net.rules[0], key, synapse=None)
    ref, dl = run_both(net, dtype=dtype)
    assert_learned(ref)
    # with a 1-D error the angle is 0 or 180 degrees, up to rounding: compare
    # it in degrees, not relative to its (tiny) largest value
    # (NaN where the true local error is 0, which float32 may round to)
    a, b = ref.pop("prediction_angle"), dl.pop("prediction_angle")[0]
    both = np.isfinite(a) & np.isfinite(b)
    assert np.mean(both) > 0.9
    assert np.allclose(a[both], b[both], atol=0.1)
    assert_match(ref, dl, rtol)


def test_warmup_matches_reference(seed):
    """BackProp's warm-up (0.2 s: past the end of the first of two runs, so
    its step count must carry over) holds the rule's error at 0, then lets
    it through, as in the reference simulator."""
    net = product_net("bp", seed, rule_kwargs=dict(warmup=0.2))
    with net:
        net.fa_probes = {
            "out": net.p_out,
            "error": nengo.Probe(net.rules[0], "error", synapse=None),
            "delta": net.p_rule[0],
            "bias": net.p_rule[1],
        }
    ref, dl = run_both(net)
    assert_learned(ref)
    # held for the first 200 steps with an error (the error in is 0 on the
    # first step or two, before its synapses pass anything), then let through
    held = np.flatnonzero(ref["error"][:, 0] != 0)[0]
    assert 200 <= held <= 202 and np.all(ref["error"][held:] != 0)
    assert_match(ref, dl, F64_RTOL)


def test_warmup_from_the_first_error_matches_reference():
    """The warm-up starts with the first non-zero error and then runs through
    steps without one, in NengoDL as in the reference simulator."""

    # no error, error, a gap inside the warm-up, error again
    net = gapped_error_net([(0, 0.05), (0.08, 0.11)], warmup=0.1)
    with net:
        net.fa_probes = {
            "error": net.p_err,
            "error in": net.p_in,
            "bias": nengo.Probe(net.rule, "bias", synapse=None),
        }
    ref, dl = run_both(net)
    assert_learned(ref)
    err, err_in = ref["error"][:, 0], ref["error in"][:, 0]
    first = np.flatnonzero(err_in)[0]
    assert 49 <= first <= 50  # t = 0.05 s
    assert np.all(err[: first + 100] == 0)
    assert np.array_equal(err[first + 100 :], err_in[first + 100 :])
    assert_match(ref, dl, F64_RTOL)
