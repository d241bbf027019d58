import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

import nengo_fa
from nengo_fa.builder import kernels as _kernels
from nengo_fa.builder.alignment import SimAlignmentTerms, SimKolenPollack
from nengo_fa.builder.hidden_layer import FeedbackError
from nengo_fa.feedback import AlignmentTerms

from .networks import product_net, train_freeze_test


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
    """KP, SA, AA and BD shrink the B-vs-D^T angle; fixed FA's stays large."""
    sim_time = 10.0
    rules = {
        "FA": None,
        "KP": nengo_fa.KolenPollack(),
        "SA": nengo_fa.SymmetricAlignment(),
        "AA": nengo_fa.ActivationAlignment(),
        "BD": nengo_fa.BidirectionalAlignment(),
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
    # KP's angle falls while PES learns D: B - D^T stays B_0 - D_0^T, and B_0
    # is small
    assert final["KP"] < 40 and final["KP"] < final["FA"] - 25
    assert final["SA"] < 10  # SA relaxes onto D^T, lagging it a little
    assert final["AA"] < final["FA"] - 10
    # BD's fixed point is a right inverse of D, not D^T (about 60 deg here)
    assert final["BD"] < final["FA"] - 10


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


def feedback_and_readout(Simulator, feedback_learning, seed, sim_time):
    """``(B, D, dt)``: the probed feedback and readout weights of
    `product_task` with ``feedback_learning``, every step of ``sim_time``."""
    net = product_task(feedback_learning, seed=seed)
    with net:
        p_b = nengo.Probe(net.layer1.learning_rule, "feedback")
        p_w = nengo.Probe(net.layer1.learning_rule_type.downstream, "weights")
    with Simulator(net) as sim:
        sim.run(sim_time)
    return sim.data[p_b], sim.data[p_w], sim.dt


def test_kolen_pollack_default_keeps_the_difference(Simulator, seed):
    """By default (no decay) B - D^T never changes: B only turns toward D^T
    as the readout grows (a decay would forget the readout's growth, and B
    would drift away from D^T once the readout has converged)."""
    assert nengo_fa.KolenPollack().decay == 0
    B, W, _ = feedback_and_readout(Simulator, nengo_fa.KolenPollack(), seed, 3.0)
    difference = B - np.transpose(W, (0, 2, 1))
    assert np.allclose(difference, difference[0], rtol=0, atol=1e-12)
    # B_0 is random (about 90 degrees from any D^T); the readout grew from 0
    # to 1.2x its size, and B turned with it (42 degrees)
    assert np.linalg.norm(W[-1]) > np.linalg.norm(B[0])
    assert angle(B[-1], W[-1].T) < 50


def test_kolen_pollack_mirrors_readout_update(Simulator, seed):
    """Each step B changes by the readout's change, transposed, minus decay."""
    decay = 0.5
    B, W, dt = feedback_and_readout(
        Simulator, nengo_fa.KolenPollack(decay=decay), seed, 0.2
    )
    expected = B[:-1] * (1 - decay * dt) + np.transpose(W[1:] - W[:-1], (0, 2, 1))
    assert np.abs(W[-1]).max() > 0
    assert np.allclose(B[1:], expected, rtol=1e-10, atol=1e-14)


def test_kolen_pollack_reads_the_readout_delta(Simulator, kernels, monkeypatch):
    """With one learning rule on the readout, SimKolenPollack reads its delta
    as W_t - W_{t-1} instead of keeping W_{t-1}: the same run as with W_{t-1}
    kept, up to rounding (compiled and numpy)."""
    from nengo_fa.builder import feedback_sources

    def run():
        net = product_task(nengo_fa.KolenPollack(decay=0.5), seed=1)
        with net:
            probe = nengo.Probe(net.layer1.learning_rule, "feedback")
        with Simulator(net) as sim:
            (op,) = [o for o in sim.model.operators if isinstance(o, SimKolenPollack)]
            sim.run(0.5)
        return op, sim.data[probe]

    op, B = run()
    monkeypatch.setattr(feedback_sources, "weights_change", lambda model, w: None)
    op_prev, B_prev = run()
    assert op.change is not None and op.previous is None
    assert op_prev.change is None and op_prev.previous is not None
    assert not np.allclose(B[-1], B[0])
    assert np.allclose(B, B_prev, rtol=1e-9, atol=1e-14)


def test_weights_change_only_for_one_whole_delta():
    """`weights_change` gives the delta only where one Copy adds all of it to
    the weights and nothing else writes them."""
    from nengo.builder import Model
    from nengo.builder.operator import Copy, Reset

    from nengo_fa.builder.feedback_sources import weights_change

    W = nengo.builder.Signal(np.zeros((2, 3)), name="W")
    d1, d2 = (nengo.builder.Signal(np.zeros((2, 3)), name=f"d{i}") for i in (1, 2))
    model = Model()
    model.add_op(Copy(d1, W, inc=True))
    assert weights_change(model, W) is d1
    model.add_op(Copy(d2, W, inc=True))  # two learning rules
    assert weights_change(model, W) is None
    model = Model()
    model.add_op(Copy(d1, W, inc=False))  # sets W: not a change
    assert weights_change(model, W) is None
    model = Model()
    model.add_op(Copy(d1[:1], W[:1], inc=True))  # a part of W
    assert weights_change(model, W) is None
    model = Model()
    model.add_op(Copy(d1, W, inc=True))
    model.add_op(Reset(W[1]))  # something else writes W
    assert weights_change(model, W) is None


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


def alignment_terms_op(W, B0, terms, compiled=False):
    """A `SimAlignmentTerms` on fresh signals: its step and the arrays of
    :math:`a`, :math:`B` and :math:`W`.

    ``compiled`` also gives it the rule's error (``e = 1``), so that it runs
    the compiled loop (`kernels.alignment_terms`) where numba is installed."""
    n, d_out = B0.shape
    sig_w = nengo.builder.Signal(W, name="W")
    sig_a = nengo.builder.Signal(np.zeros(n), name="a")
    sig_b = nengo.builder.Signal(B0.copy(), name="B")
    sigs = [sig_w, sig_a, sig_b]
    kwargs = {}
    if compiled:
        e = nengo.builder.Signal(np.ones(d_out), name="e")
        fe = FeedbackError(
            nengo.builder.Signal(np.zeros(n), name="fe"),
            nengo.builder.Signal(np.zeros(1), name="nu"),
        )
        kwargs = dict(error=e, feedback_error=fe, compiled=True)
        sigs += [e, *fe]
    op = SimAlignmentTerms(sig_w, sig_a, sig_b, terms, **kwargs)
    signals = nengo.builder.signal.SignalDict()
    for sig in sigs:
        signals.init(sig)
    step = op.make_step(signals, 0.001, np.random.RandomState(0))
    return step, signals[sig_a], signals[sig_b], signals[sig_w]


@pytest.mark.parametrize("case", ["active", "silent", "unbounded"])
def test_alignment_terms_compiled_equals_numpy(rng, case):
    """Every term at once, compiled (where numba is installed) against numpy:
    with activity, without it (only the decay and self terms), and with huge
    entries of W and B that the activities do not see, so that the compiled
    loop's overflow bound fails and it takes its checked path, while the step
    itself is finite."""
    n, d_out = 40, 3
    terms = AlignmentTerms(
        learning_rate=2.0, decay=0.3, self_=0.7, amp=1.1, sparse=0.5, null=0.2
    )
    W = rng.normal(size=(d_out, n))
    B0 = rng.normal(size=(n, d_out))
    a = rng.uniform(0, 100, size=n)
    if case == "silent":
        a[...] = 0
    elif case == "unbounded":
        W[1, 0], B0[0, 0], a[0] = 1e150, 1e15, 0.0
        coefs = [0.3, 0.7, 1.1, 0.5, 0.2, -2.0 * 0.001]
        bb, ww = np.sum(B0**2), np.sum(W**2)
        bound = _kernels.alignment_bound(coefs, True, bb, ww)
        assert np.isfinite(ww) and np.sqrt(bb) + bound > 0.5 * np.finfo(float).max
    results = []
    for compiled in (False, True):
        step, sig_a, B, _ = alignment_terms_op(W, B0, terms, compiled)
        sig_a[...] = a
        step()
        results.append(B)
    assert np.all(np.isfinite(results[1]))
    assert not np.array_equal(results[1], B0)
    assert np.allclose(results[1], results[0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("compiled", [False, True])
def test_bidirectional_is_reconstruction_gradient(rng, compiled):
    """One step of BidirectionalAlignment descends 1/2 |x - B W~ x|^2.

    The gradient of the reconstruction loss in B, with W~ = sqrt(n) W / |W|_F,
    is -(x - B W~ x)(W~ x)^T; a finite difference of the loss checks the
    formula, and the operator (numpy, or compiled) is checked against it.
    """
    n, d_out, dt, rate = 9, 2, 0.001, 3.0
    W = rng.normal(scale=1e-3, size=(d_out, n))
    B0 = rng.normal(size=(n, d_out))
    a = rng.uniform(0, 100, size=n)
    step, sig_a, B, _ = alignment_terms_op(
        W, B0, nengo_fa.BidirectionalAlignment(learning_rate=rate), compiled
    )
    sig_a[...] = a
    step()

    x = a / np.linalg.norm(a)
    Wn = np.sqrt(n) * W / np.linalg.norm(W)

    def loss(B):
        return 0.5 * np.sum((x - B @ Wn @ x) ** 2)

    grad = -np.outer(x - B0 @ Wn @ x, Wn @ x)
    h, (i, k) = 1e-6, (4, 1)
    bump = np.zeros_like(B0)
    bump[i, k] = h
    numeric = (loss(B0 + bump) - loss(B0 - bump)) / (2 * h)
    assert np.isclose(grad[i, k], numeric, rtol=1e-6)
    assert np.allclose(B, B0 - rate * dt * grad, rtol=1e-10, atol=1e-14)
    # and it is AlignmentTerms' Amp + Null on the normalised W
    same = AlignmentTerms(learning_rate=rate, amp=1, null=1, normalise_forward=True)
    step2, sig_a2, B2, _ = alignment_terms_op(W, B0, same, compiled)
    sig_a2[...] = a
    step2()
    assert np.array_equal(B, B2)


def test_bidirectional_fixed_point_is_right_inverse(rng, plt):
    """With stationary activities, B converges to C W~^T (W~ C W~^T)^-1.

    That is the least-squares reconstruction of the activities from the
    output: a right inverse of W~ (W~ B = I), not W^T, so the angle to W^T
    stays large, and yet B e never points against W^T e. Fixed random B does
    neither (its W~ B is far from I).
    """
    n, d_out, k = 20, 2, 5
    W = rng.normal(scale=1e-3, size=(d_out, n))
    mix = rng.uniform(0, 1, size=(n, k))  # non-negative, correlated rates
    B0 = rng.normal(scale=1e-4, size=(n, d_out))
    step, a, B, _ = alignment_terms_op(
        W, B0, nengo_fa.BidirectionalAlignment(learning_rate=20.0)
    )
    Wn = np.sqrt(n) * W / np.linalg.norm(W)
    xs = []

    def converged():
        X = np.array(xs)
        C = X.T @ X / len(X)
        fixed = C @ Wn.T @ np.linalg.inv(Wn @ C @ Wn.T)
        done = angle(B, fixed) < 3 and np.allclose(Wn @ B, np.eye(d_out), atol=0.05)
        return done, fixed

    # W~ C W~^T's small eigenvalue sets the slowest direction; it varies with
    # the random W and mix, so run until B is there (15,000 steps on most
    # seeds, up to about 150,000 on others), and fail if it never gets there
    for _ in range(40):
        for _ in range(5000):
            a[...] = mix @ rng.uniform(0, 1, size=k)
            xs.append(a / np.linalg.norm(a))
            step()
        done, fixed = converged()
        if done:
            break

    plt.imshow(np.hstack([B, fixed]), aspect="auto")
    plt.title("learned B | C W~^T (W~ C W~^T)^-1")
    assert angle(B, fixed) < 3
    assert np.allclose(Wn @ B, np.eye(d_out), atol=0.05)
    assert not np.allclose(Wn @ B0, np.eye(d_out), atol=0.5)
    assert angle(fixed, W.T) > 20  # not W^T: C is far from white
    errors = rng.normal(size=(100, d_out))
    assert np.all(np.einsum("ij,ij->i", errors @ W, errors @ B.T) > 0)


def test_bidirectional_waits_for_forward_weights():
    """While W = 0 (a PES readout before it learns) B does not change."""
    B0 = np.arange(6.0).reshape(3, 2)
    step, a, B, _ = alignment_terms_op(
        np.zeros((2, 3)), B0, nengo_fa.BidirectionalAlignment()
    )
    a[...] = [1.0, 2.0, 3.0]
    step()
    assert np.array_equal(B, B0)


def test_normalised_forward_non_finite_raises_compiled():
    """A NaN in W reaches the compiled loop (where numba is installed) as a
    NaN in W~, not as 0, and the step raises, having left B as it was."""
    step, a, B, W = alignment_terms_op(
        np.ones((1, 3)), np.ones((3, 1)), nengo_fa.BidirectionalAlignment(), True
    )
    a[...] = 1.0
    W[0, 0] = np.nan
    with pytest.raises(nengo.exceptions.SimulationError, match="forward weights"):
        step()
    assert np.all(B == 1)


@pytest.mark.slow
def test_bidirectional_frozen_beats_pes_only_and_fa(Simulator, plt):
    """BidirectionalAlignment's network, trained then frozen, against PES
    only and fixed-feedback FA from the same network in the same run.

    The product task with 10 neurons, trained 40 s, frozen (the error gated
    to zero), tested 20 s, on three seeds (each its own ensemble and
    connection seeds); FA and BD start from the same random B. Learned, the
    network beats PES only on every seed, and on average it beats fixed
    feedback. Over seeds 0-2, 11, 23, 42 and 91 BD's frozen error was
    0.21-0.76 of PES only's, and its mean 0.62 of FA's. After 10 s of
    training, as this test once ran, BD was worse than PES only on 4 of 8
    seeds (11, 23, 42, 91): the claim needs the training time. Over 5 seeds
    of the generalisation benchmark (40 s training, 20 s test) BD's frozen
    error is 0.0138 (worst seed 0.0173) against PES only's 0.0265 (0.0434)
    and FA's 0.0247 (0.0589).
    """
    t_train, t_test = 40.0, 20.0
    variants = {
        "PES only": (None, None),
        "FA": ("fa-downstream", None),
        "BD": (
            "fa-downstream",
            dict(feedback_learning=nengo_fa.BidirectionalAlignment()),
        ),
    }
    frozen = {name: [] for name in variants}
    for seed in range(3):
        for name, (rule, kwargs) in variants.items():
            net = product_net(rule, seed, n=10, freeze_at=t_train, rule_kwargs=kwargs)
            error, _, _ = train_freeze_test(Simulator, net, t_train, t_test)
            frozen[name].append(error)
    for name, errors in frozen.items():
        plt.plot(errors, "o-", label=name)
    plt.xlabel("seed")
    plt.ylabel("frozen test MSE")
    plt.legend()
    print(frozen)

    pes, fa, bd = (np.array(frozen[k]) for k in ("PES only", "FA", "BD"))
    assert np.all(bd < 0.85 * pes), frozen
    assert bd.mean() < 0.85 * fa.mean(), frozen


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
    assert repr(nengo_fa.BidirectionalAlignment(learning_rate=2)) == (
        "BidirectionalAlignment(learning_rate=2)"
    )
    assert nengo_fa.BidirectionalAlignment().normalise_forward


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
