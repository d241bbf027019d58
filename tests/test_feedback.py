import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

import nengo_fa
from nengo_fa.builder.alignment import SimAlignmentTerms
from nengo_fa.feedback import AlignmentTerms

from .networks import product_net


def product_task(feedback_learning=None, seed=0, n_neurons=30, rule="fa"):
    """The product task (`tests.networks.product_net`) with FA on the hidden
    layer (or BP, ``rule="bp"``), probed for its alignment.

    With ``downstream=readout``, the rule knows the weights its feedback
    stands in for, so it can learn its feedback and report its alignment.
    """
    if rule == "bp":
        net = product_net("bp", seed, n=n_neurons)
    else:
        # B starts on the scale of the decoders (only its direction is used),
        # so that Kolen-Pollack's updates can turn it
        kwargs = dict(
            feedback=nengo.dists.Gaussian(0, 1e-4), feedback_learning=feedback_learning
        )
        net = product_net("fa-downstream", seed, n=n_neurons, rule_kwargs=kwargs)
    rule = net.layer1.learning_rule
    with net:
        net.p = {
            key: nengo.Probe(rule, key, sample_every=0.05)
            for key in ("feedback_angle", "delta_angle", "norm_ratio")
            if key in rule.probeable
        }
        net.p_weights = nengo.Probe(net.readout, "weights", sample_every=0.05)
        if "feedback" in rule.probeable:
            net.p_feedback = nengo.Probe(rule, "feedback", sample_every=0.05)
    return net


def angle(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return np.degrees(np.arccos(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)))


def run(net, Simulator, sim_time):
    with Simulator(net, progress_bar=False) as sim:
        sim.run(sim_time)
    return sim


@pytest.mark.slow
def test_learned_feedback_aligns_with_readout(Simulator, plt):
    """KP, SA and AA shrink the B-vs-D^T angle; fixed FA's stays large."""
    sim_time = 10.0
    rules = {
        "FA": None,
        "KP": nengo_fa.KolenPollack(),
        "SA": nengo_fa.SymmetricAlignment(),
        "AA": nengo_fa.ActivationAlignment(),
    }
    final = {}
    for name, feedback_learning in rules.items():
        net = product_task(feedback_learning)
        sim = run(net, Simulator, sim_time)
        angles = sim.data[net.p["feedback_angle"]][:, 0]
        t = sim.trange(sample_every=0.05)
        plt.plot(t, angles, label=name)
        final[name] = np.mean(angles[t > sim_time - 1])
    plt.ylabel("angle between B and D^T (degrees)")
    plt.xlabel("time (s)")
    plt.legend()

    print(final)
    assert final["FA"] > 60  # fixed random feedback stays far from D^T
    # KP's angle falls while PES learns D (it plateaus, ~30 deg here, because
    # PES does not decay D as Akrout et al. decay W)
    assert final["KP"] < 40 and final["KP"] < final["FA"] - 25
    assert final["SA"] < 10  # SA relaxes onto D^T, lagging it a little
    assert final["AA"] < final["FA"] - 10


def test_diagnostics_match_probed_matrices(Simulator, seed):
    """The probed angles and norm ratio, recomputed from probed B, D, J, e.

    The diagnostics at step k see B as it was before that step's feedback
    update, i.e. as probed at step k - 1.
    """
    net = product_task(nengo_fa.KolenPollack(decay=0.5), seed=seed)
    rule = net.layer1.learning_rule
    with net:
        p_b = nengo.Probe(rule, "feedback")
        p_w = nengo.Probe(net.layer1.learning_rule_type.downstream, "weights")
        p_e = nengo.Probe(rule, "error")
        p_j = nengo.Probe(net.layer1.post.neurons, "input")
        p_diag = {k: nengo.Probe(rule, k) for k in net.p}
    with Simulator(net) as sim:
        sim.run(0.3)
    built = sim.data[net.layer1.post]
    derivative = nengo_fa.neurons.make_derivative(
        net.layer1.post.neuron_type, built.gain, built.bias
    )
    gp = np.empty(net.layer1.post.n_neurons)
    for k in (100, 200, 299):
        B, D, e = sim.data[p_b][k - 1], sim.data[p_w][k], sim.data[p_e][k]
        derivative(sim.data[p_j][k], gp)
        assert np.isclose(
            sim.data[p_diag["feedback_angle"]][k, 0], angle(B, D.T), atol=1e-8
        )
        assert np.isclose(
            sim.data[p_diag["delta_angle"]][k, 0],
            angle((B @ e) * gp, (D.T @ e) * gp),
            atol=1e-8,
        )
        assert np.isclose(
            sim.data[p_diag["norm_ratio"]][k, 0],
            np.linalg.norm(B) / np.linalg.norm(D),
            rtol=1e-10,
        )


def test_kolen_pollack_mirrors_readout_update(Simulator, seed):
    """Each step B changes by the readout's change, transposed, minus decay."""
    decay = 0.5
    net = product_task(nengo_fa.KolenPollack(decay=decay), seed=seed)
    with net:
        p_b = nengo.Probe(net.layer1.learning_rule, "feedback")
        p_w = nengo.Probe(net.layer1.learning_rule_type.downstream, "weights")
    with Simulator(net) as sim:
        sim.run(0.2)
    B, W = sim.data[p_b], sim.data[p_w]
    expected = B[:-1] * (1 - decay * sim.dt) + np.transpose(W[1:] - W[:-1], (0, 2, 1))
    assert np.abs(W[-1]).max() > 0
    assert np.allclose(B[1:], expected, rtol=1e-10, atol=1e-14)


def test_alignment_terms_match_numpy(rng):
    """One step of SimAlignmentTerms against the documented formula."""
    n, d_out, dt = 7, 3, 0.001
    terms = AlignmentTerms(
        learning_rate=2.0, decay=0.3, self_=0.7, amp=1.1, sparse=0.5, null=0.2
    )
    W = rng.normal(size=(d_out, n))
    B0 = rng.normal(size=(n, d_out))
    a = rng.uniform(0, 100, size=n)

    sig_w = nengo.builder.Signal(W)
    sig_a = nengo.builder.Signal(a)
    sig_b = nengo.builder.Signal(B0.copy())
    op = SimAlignmentTerms(sig_w, sig_a, sig_b, terms)
    signals = nengo.builder.signal.SignalDict()
    for sig in (sig_w, sig_a, sig_b):
        signals.init(sig)
    op.make_step(signals, dt, rng)()

    x = a / np.linalg.norm(a)
    grad = (
        0.3 * B0
        - 0.7 * W.T
        - 1.1 * np.outer(x, W @ x)
        + 0.5 * np.outer(x, x @ B0)
        + 0.2 * np.outer(B0 @ W @ x, W @ x)
    )
    assert np.allclose(signals[sig_b], B0 - 2.0 * dt * grad, rtol=1e-12)


@pytest.mark.slow
def test_fa_update_angle_below_90(Simulator, plt):
    """Lillicrap et al.: FA's update comes within 90 degrees of backprop's."""
    sim_time = 10.0
    net = product_task(None)
    sim = run(net, Simulator, sim_time)
    angles = sim.data[net.p["delta_angle"]][:, 0]
    t = sim.trange(sample_every=0.05)
    plt.plot(t, angles)
    plt.axhline(90, color="k", ls="--")
    plt.ylabel("angle between FA and BP local errors (degrees)")
    late = angles[(t > sim_time / 2) & np.isfinite(angles)]
    assert late.size > 0.9 * np.sum(t > sim_time / 2)
    assert np.mean(late) < 80


def test_feedback_learning_needs_downstream():
    with pytest.raises(ValidationError, match="downstream"):
        nengo_fa.FeedbackAlignment(1, feedback_learning=nengo_fa.KolenPollack())
    with pytest.raises(ValidationError, match="feedback_learning"):
        nengo_fa.FeedbackAlignment(1, feedback_learning="kp")


@pytest.mark.parametrize(
    "make",
    [
        lambda: nengo_fa.KolenPollack(decay=-1),
        lambda: nengo_fa.SymmetricAlignment(learning_rate=-1),
        lambda: AlignmentTerms(amp=-1),
    ],
)
def test_negative_feedback_parameters_raise(make):
    with pytest.raises(ValidationError):
        make()


@pytest.mark.parametrize(
    "make, attr",
    [
        (lambda v: nengo_fa.KolenPollack(decay=v), "decay"),
        (lambda v: nengo_fa.SymmetricAlignment(learning_rate=v), "learning_rate"),
        (lambda v: AlignmentTerms(null=v), "null"),
    ],
)
@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_non_finite_feedback_parameters_raise(make, attr, value):
    with pytest.raises(ValidationError, match=f"{attr}: must be a finite"):
        make(value)


def test_feedback_learning_repr():
    assert repr(nengo_fa.KolenPollack(decay=0.5)) == "KolenPollack(decay=0.5)"
    assert repr(AlignmentTerms(decay=1, amp=2)) == "AlignmentTerms(decay=1, amp=2)"
    assert repr(nengo_fa.SymmetricAlignment()) == "SymmetricAlignment()"


@pytest.mark.parametrize("modifies", ["encoders", "weights"])
def test_chained_feedback_learning(Simulator, seed, modifies):
    """In a chain, B_l learns toward the effective forward matrix M^T.

    h1 -> h2 -> out; the rule into h2 is BackProp on the readout, the rule into
    h1 is FeedbackAlignment chained through it (B_l is n1 x n2). With Symmetric
    Alignment, B_l relaxes onto M^T, where M = S_2 W_1 (decoded connection into
    h2) or diag(c) W_1 (neuron-to-neuron weights); fixed B_l does not. The
    probed diagnostics are checked against M recomputed from probes.
    """
    n1, n2 = 15, 20
    results = {}
    for learning in (None, nengo_fa.SymmetricAlignment(learning_rate=5.0)):
        with nengo.Network(seed=seed) as net:
            stim = nengo.Node(lambda t: [np.sin(2 * t), np.cos(3 * t)])
            h1 = nengo.Ensemble(n1, 2, neuron_type=nengo.RectifiedLinear())
            h2 = nengo.Ensemble(n2, 2, neuron_type=nengo.RectifiedLinear())
            out = nengo.Node(size_in=1)
            readout = nengo.Connection(
                h2, out, function=lambda x: x[0] * x[1], learning_rule_type=nengo.PES()
            )
            if modifies == "weights":
                into_h2 = nengo.Connection(
                    h1.neurons,
                    h2.neurons,
                    transform=np.random.RandomState(seed).normal(0, 1e-3, (n2, n1)),
                    learning_rule_type=nengo_fa.BackProp(readout, modifies="weights"),
                )
            else:
                into_h2 = nengo.Connection(
                    h1, h2, learning_rule_type=nengo_fa.BackProp(readout)
                )
            into_h1 = nengo.Connection(
                stim,
                h1,
                learning_rule_type=nengo_fa.FeedbackAlignment(
                    downstream=into_h2, feedback_learning=learning
                ),
            )
            error = nengo.Node(size_in=1)
            nengo.Connection(out, error)
            nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
            nengo.Connection(error, readout.learning_rule)
            nengo.Connection(error, into_h2.learning_rule)
            rule = into_h1.learning_rule
            p_angle = nengo.Probe(rule, "feedback_angle")
            p_b = nengo.Probe(rule, "feedback")
            p_w = nengo.Probe(into_h2, "weights")
            p_s = nengo.Probe(into_h2.learning_rule, "scaled_encoders")
        with Simulator(net) as sim:
            sim.run(2.0)
        angles = sim.data[p_angle][:, 0]
        assert sim.data[p_b].shape[1:] == (n1, n2)
        # the diagnostic measures the angle to (S_2 W_1)^T or (c W_1)^T
        k = len(angles) - 1
        W = sim.data[p_w][k]
        if modifies == "weights":
            M = sim.data[h2].gain[:, None] * W
        else:
            M = sim.data[p_s][k] @ W
        assert np.isclose(angles[k], angle(sim.data[p_b][k - 1], M.T), atol=1e-6)
        results[learning is None] = np.mean(angles[-100:])
    fixed, learned = results[True], results[False]
    assert fixed > 60
    assert learned < 15
