"""The fast, in-place encoder update gives the same results as the
straightforward one (Nengo's generic ``(n, d)`` delta plus ``Copy``)."""

import nengo
import numpy as np
import pytest
from nengo.builder.operator import Copy, DotInc

import nengo_fa
from nengo_fa import builder, settings
from nengo_fa.builder import (
    SimHiddenLayerEncoderUpdate,
    SimHiddenLayerRule,
    encoder_update,
)
from nengo_fa.builder import kernels as _kernels
from nengo_fa.builder import numerics as _numerics
from nengo_fa.builder import stages

from .networks import filtered

KEYS = ("scaled_encoders", "gain", "bias", "delta")
# one d for the compiled loop over columns and one for the loop over rows
SMALL_AND_LARGE_D = [_kernels.COLUMNS_MAX_D, _kernels.COLUMNS_MAX_D + 1]


@pytest.fixture(params=[True, False], ids=["kernels", "numpy"], autouse=True)
def kernels(request):
    """Every test runs with the compiled loops and with the numpy code."""
    with settings.override(compiled_kernels=request.param):
        yield request.param


def test_kernels_available():
    # numba is a dependency: the fast path must not silently fall back
    assert _kernels.AVAILABLE


def two_layer(
    rule, seed, n_neurons=40, d=3, d_out=2, neuron_type=None, extra=False, **rates
):
    """Sines in, a random linear map of them out, a learned hidden layer.

    With ``extra``, a second rule on a second connection learns the same
    ensemble's encoders. ``rates`` go to the ``"fa"`` rule.
    """
    neuron_type = nengo.RectifiedLinear() if neuron_type is None else neuron_type
    rng = np.random.RandomState(seed)
    freqs = rng.uniform(1, 3, size=d)
    target = rng.normal(size=(d_out, d))
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin(freqs * t))
        hidden = nengo.Ensemble(n_neurons, d, neuron_type=neuron_type)
        out = nengo.Node(size_in=d_out)
        readout = nengo.Connection(
            hidden,
            out,
            function=lambda x: np.full(d_out, 0.1),
            learning_rule_type=nengo.PES(learning_rate=1e-3),
        )
        if rule == "bp":
            rule_type = nengo_fa.BackProp(readout)
        elif rule == "ss":
            rule_type = nengo_fa.SignSymmetry(readout)
        elif rule == "kp":
            # learned feedback: F e and the update in one pass, F's own
            rule_type = nengo_fa.FeedbackAlignment(
                downstream=readout,
                feedback=nengo.dists.Gaussian(0, 1e-2),
                feedback_learning=nengo_fa.KolenPollack(),
            )
        elif rule == "terms":
            # every term of AlignmentTerms, with activities
            rule_type = nengo_fa.FeedbackAlignment(
                downstream=readout,
                feedback_learning=nengo_fa.AlignmentTerms(
                    learning_rate=3.0, decay=0.1, self_=1, amp=1, sparse=0.5, null=1
                ),
            )
        elif rule == "bd":
            # Amp + Null on the normalised forward weights
            rule_type = nengo_fa.FeedbackAlignment(
                downstream=readout,
                feedback_learning=nengo_fa.BidirectionalAlignment(learning_rate=3.0),
            )
        else:
            rule_type = nengo_fa.FeedbackAlignment(error_size=d_out, **rates)
        layer1 = nengo.Connection(stim, hidden, learning_rule_type=rule_type)
        error = nengo.Node(size_in=d_out)
        nengo.Connection(out, error)
        nengo.Connection(stim, error, transform=-target)
        nengo.Connection(error, readout.learning_rule)
        nengo.Connection(error, layer1.learning_rule)
        if extra:
            layer2 = nengo.Connection(
                stim,
                hidden,
                transform=0.5,
                learning_rule_type=nengo_fa.FeedbackAlignment(error_size=d_out),
            )
            nengo.Connection(error, layer2.learning_rule)
        keys = KEYS
        if rule in ("kp", "terms", "bd"):
            keys += ("feedback", "delta_angle", "feedback_angle", "norm_ratio")
        net.rule_probes = {
            key: nengo.Probe(layer1.learning_rule, key, synapse=None) for key in keys
        }
        net.rule_probes["out"] = nengo.Probe(out, synapse=None)
    net.hidden, net.layer1 = hidden, layer1
    return net


def run(net, Simulator, factored, optimize, monkeypatch, steps=300):
    """Run ``net``: the fast path (with the compiled loops if the ``kernels``
    fixture says so) or, without ``factored``, the straightforward one,
    all numpy."""
    ref = {} if factored else {"compiled_kernels": False}
    with settings.override(inplace_encoder_update=factored, **ref):
        sim = Simulator(net, optimize=optimize, progress_bar=False)
    with sim:
        sim.run_steps(steps)
        ops = sim.step_order if hasattr(sim, "step_order") else []
    return {k: sim.data[p] for k, p in net.rule_probes.items()}, ops


def assert_same(fast, ref):
    for key in ref:
        # (the diagnostics are NaN while they are undefined)
        scale = np.nanmax(np.abs(ref[key]))
        assert np.allclose(
            fast[key], ref[key], rtol=1e-12, atol=1e-12 * scale, equal_nan=True
        ), key


@pytest.mark.parametrize("rule", ["fa", "bp"])
@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("d", SMALL_AND_LARGE_D)
def test_factored_update_equals_straightforward(
    Simulator, seed, rule, optimize, d, monkeypatch, kernels
):
    net = two_layer(rule, seed, d=d)
    fast, fast_ops = run(net, Simulator, True, optimize, monkeypatch)
    ref, ref_ops = run(net, Simulator, False, optimize, monkeypatch)
    assert_same(fast, ref)
    # the rule really learned, so the comparison means something
    S = ref["scaled_encoders"]
    assert np.max(np.abs(S[-1] - S[0])) > 1e-3 * np.max(np.abs(S[0]))

    if Simulator is nengo.Simulator:
        # the fast path has the in-place operator and no (n, d) delta
        fast_types = [type(op) for op in fast_ops]
        assert SimHiddenLayerEncoderUpdate in fast_types
        assert SimHiddenLayerEncoderUpdate not in [type(op) for op in ref_ops]
        n_d_copies = [
            op
            for op in fast_ops
            if isinstance(op, Copy) and op.dst.shape == S.shape[1:]
        ]
        assert not n_d_copies
        assert any(isinstance(op, SimHiddenLayerRule) for op in fast_ops)
        # with the compiled loops, the update also does the ensemble's encoding
        (update,) = [op for op in fast_ops if type(op) is SimHiddenLayerEncoderUpdate]
        encodings = [
            op for op in fast_ops if isinstance(op, DotInc) and op.A is update.incs[0]
        ]
        assert (update.encode is not None) == kernels
        assert len(encodings) == (0 if kernels else 1)


@pytest.mark.parametrize("rule", ["ss", "kp", "terms", "bd"])
def test_factored_update_equals_straightforward_live_feedback(
    Simulator, seed, rule, monkeypatch
):
    net = two_layer(rule, seed)
    fast, _ = run(net, Simulator, True, True, monkeypatch)
    ref, _ = run(net, Simulator, False, True, monkeypatch)
    assert_same(fast, ref)
    S = ref["scaled_encoders"]
    assert np.max(np.abs(S[-1] - S[0])) > 1e-3 * np.max(np.abs(S[0]))


@pytest.mark.parametrize(
    "neuron_type",
    [
        # each with its compiled derivative (Derivative.compiled_form)
        nengo.LIF(),
        nengo.RectifiedLinear(amplitude=0.5),
        nengo.RegularSpiking(nengo.RectifiedLinear(amplitude=0.5), amplitude=3.0),
        nengo.Tanh(),
        nengo.AdaptiveLIF(),
        nengo.Izhikevich(),
    ],
    ids=["lif", "relu-amplitude", "regular-spiking", "tanh", "adaptive-lif", "izh"],
)
def test_factored_update_equals_straightforward_neurons(
    Simulator, seed, neuron_type, monkeypatch
):
    net = two_layer("fa", seed, neuron_type=neuron_type)
    fast, _ = run(net, Simulator, True, True, monkeypatch, steps=400)
    ref, _ = run(net, Simulator, False, True, monkeypatch, steps=400)
    assert_same(fast, ref)
    S = ref["scaled_encoders"]
    assert np.max(np.abs(S[-1] - S[0])) > 1e-3 * np.max(np.abs(S[0]))


def test_bias_only_rule_equals_straightforward(Simulator, seed, monkeypatch, kernels):
    """A rule that learns only the biases (encoder and gain rates 0) runs the
    compiled local error and bias step (`kernels.local_error_bias`), with the
    results of the numpy stages."""
    net = two_layer(
        "fa", seed, learning_rate=0, gain_learning_rate=0, bias_learning_rate=1.0
    )
    built = []
    local_step = stages.compiled_local_step
    monkeypatch.setattr(
        stages,
        "compiled_local_step",
        lambda *args: built.append(1) or local_step(*args),
    )
    fast, _ = run(net, Simulator, True, True, monkeypatch)
    assert bool(built) == (kernels and Simulator is nengo.Simulator)
    ref, _ = run(net, Simulator, False, True, monkeypatch)
    assert_same(fast, ref)
    b = ref["bias"]
    assert np.max(np.abs(b[-1] - b[0])) > 1e-3 * np.max(np.abs(b[0]))
    assert np.array_equal(ref["scaled_encoders"][-1], ref["scaled_encoders"][0])


def test_two_encoder_rules_keep_generic_path(Simulator, seed, monkeypatch):
    """Each rule must see the start-of-step encoders: no in-place update."""
    net = two_layer("fa", seed, extra=True)
    fast, ops = run(net, Simulator, True, True, monkeypatch)
    ref, _ = run(net, Simulator, False, True, monkeypatch)
    assert_same(fast, ref)
    if Simulator is nengo.Simulator:
        assert SimHiddenLayerEncoderUpdate not in [type(op) for op in ops]


@pytest.mark.parametrize("d", SMALL_AND_LARGE_D)
def test_compiled_encoder_update(d):
    """S <- diag(alpha) S + beta x^T in place, rows that do not change kept."""
    rng = np.random.RandomState(0)
    S = rng.normal(size=(6, d))
    before = S.copy()
    alpha = np.array([1.0, 1.0, 0.5, 2.0, 1.0, 1.0])
    beta = np.array([0.0, 0.3, 0.0, -0.2, 1.5, 0.0])
    x = rng.normal(size=d)
    _kernels.compiled(_kernels.encoder_update)(S, alpha, beta, x)
    assert np.allclose(S, alpha[:, None] * before + np.outer(beta, x), rtol=1e-15)
    assert np.array_equal(S[[0, 5]], before[[0, 5]])


@pytest.mark.parametrize("d", SMALL_AND_LARGE_D)
def test_compiled_encoder_update_and_encoding(d):
    """The update, then J += S x_new, in one pass."""
    rng = np.random.RandomState(1)
    S = rng.normal(size=(5, d))
    before = S.copy()
    alpha = np.array([1.0, 0.5, 1.0, 1.0, 2.0])
    beta = np.array([0.0, 0.1, -0.4, 0.0, 0.2])
    x, x_new = rng.normal(size=d), rng.normal(size=d)
    J = rng.normal(size=5)
    J0 = J.copy()
    _kernels.compiled(_kernels.encoder_update_encode)(S, alpha, beta, x, x_new, J)
    expected = alpha[:, None] * before + np.outer(beta, x)
    assert np.allclose(S, expected, rtol=1e-15)
    assert np.allclose(J, J0 + expected @ x_new, rtol=1e-13)


@pytest.mark.parametrize("d_out", [0, 1, 3, 4, 5, 8, 10])
def test_compiled_feedback_error(d_out):
    """F e and the RMS row norm of F, with F^T's rows taken four at a time
    and the rest one by one, agree with numpy's; a given norm is returned
    as it is. SignSymmetry's kernel gives the same for rho sign(W)."""
    rng = np.random.RandomState(d_out)
    n = 7
    FT, error = rng.normal(size=(d_out, n)), rng.normal(size=d_out)
    fe, scratch = np.full(n, np.nan), np.empty(n)
    kernel = _kernels.compiled(_kernels.feedback_error)
    nu = kernel(error, FT, fe, scratch, -1.0)
    assert np.allclose(fe, FT.T @ error, rtol=1e-13, atol=1e-15)
    assert np.isclose(nu, np.sqrt(np.sum(FT**2) / n), rtol=1e-13)
    fe[...] = np.nan
    assert kernel(error, FT, fe, scratch, 2.5) == 2.5
    assert np.allclose(fe, FT.T @ error, rtol=1e-13, atol=1e-15)

    W = rng.normal(size=(d_out, n))
    W[:, 0] = 0.0
    F = np.empty_like(W)
    no_filter = np.zeros((0, 0))
    sign_feedback = _kernels.compiled(_kernels.sign_feedback)
    nu = sign_feedback(W, F, error, fe, scratch, no_filter, 0.0)
    rho = np.sqrt(np.mean(W**2)) if d_out > 0 else 0.0
    assert np.allclose(F, rho * np.sign(W), rtol=1e-13)
    assert np.array_equal(np.sign(F), np.sign(W))
    assert np.allclose(fe, F.T @ error, rtol=1e-13, atol=1e-15)
    assert np.isclose(nu, np.sqrt(np.sum(F**2) / n), rtol=1e-13)


def test_encoder_update_is_in_place():
    """The BLAS path writes into the encoder array, never into a copy."""
    S = np.random.RandomState(0).normal(size=(7, 3))
    before = S.copy()
    ger = encoder_update.inplace_ger(S)
    assert ger is not None
    x, beta = np.arange(3.0), np.arange(7.0)
    ger(1.0, x, beta, a=S.T, overwrite_a=True)
    assert np.allclose(S, before + np.outer(beta, x))
    assert encoder_update.inplace_ger(np.asfortranarray(S)) is None


def test_equal_rates_step_is_one_rank_one_update(Simulator, seed):
    """With the default rates, S changes by exactly beta x^T each step and
    the gain signal stays the length of the scaled encoders."""
    net = two_layer("fa", seed)
    with net:
        x_probe = nengo.Probe(net.hidden, "input", synapse=None)
    with Simulator(net) as sim:
        sim.run_steps(300)
    rule = net.layer1.learning_rule_type
    assert rule.learning_rate == rule.gain_learning_rate
    info = sim.data[net.layer1.learning_rule]
    r = net.hidden.radius
    nu = np.linalg.norm(info.feedback) / np.sqrt(net.hidden.n_neurons)
    c = sim.dt * info.gain_scale / (nu * info.derivative_scale)
    S = sim.data[net.rule_probes["scaled_encoders"]]
    delta = sim.data[net.rule_probes["delta"]]
    # the input the rule pairs with its error
    x = filtered(sim.data[x_probe], rule.pre_synapse.tau, sim.dt)
    beta = -rule.learning_rate * c * delta / r**2
    # the update computed on step t is applied on step t + 1
    expected = S[:-1] + beta[:-1, :, None] * x[:-1, None, :]
    assert np.allclose(S[1:], expected, rtol=1e-10, atol=1e-12 * np.abs(S).max())
    assert np.abs(S[-1] - S[0]).max() > 1e-3 * np.abs(S[0]).max()
    gain = sim.data[net.rule_probes["gain"]]
    assert np.allclose(gain, r * np.linalg.norm(S, axis=2), rtol=1e-10)


def with_noise(net):
    with net:
        net.hidden.noise = nengo.processes.WhiteNoise(
            nengo.dists.Gaussian(0, 0.05), seed=1
        )


def with_neuron_input(net):
    with net:
        kick = nengo.Node(lambda t: np.sin(7 * t))
        nengo.Connection(kick, net.hidden.neurons, transform=np.ones((40, 1)))


@pytest.mark.parametrize("extra_input", [None, with_noise, with_neuron_input])
@pytest.mark.parametrize(
    "pre_synapse", [None, nengo.Lowpass(0.005)], ids=["unfiltered", "filtered"]
)
def test_projection_from_current(
    Simulator, seed, extra_input, pre_synapse, monkeypatch, kernels
):
    """S x is read as J - b only when nothing else drives the neurons, and
    gives the same results as computing it; with the rule's own Lowpass, S
    x-bar is kept from J - b and the encoder update's factors."""
    net = two_layer("fa", seed, pre_synapse=pre_synapse)
    if extra_input is not None:
        extra_input(net)
    fast, ops = run(net, Simulator, True, True, monkeypatch)
    rule_ops = [op for op in ops if isinstance(op, SimHiddenLayerRule)]
    if Simulator is nengo.Simulator:
        assert len(rule_ops) == 1
        assert rule_ops[0].projection_from_current == (extra_input is None)
        assert (rule_ops[0].seen is None) == (pre_synapse is None)

    monkeypatch.setattr(
        encoder_update, "only_encoding_drives", lambda model, ens: False
    )
    computed, ops = run(net, Simulator, True, True, monkeypatch)
    if Simulator is nengo.Simulator:
        assert not any(
            op.projection_from_current
            for op in ops
            if isinstance(op, SimHiddenLayerRule)
        )
    for key in computed:
        scale = np.max(np.abs(computed[key]))
        assert np.allclose(fast[key], computed[key], rtol=1e-9, atol=1e-9 * scale), key


@pytest.mark.parametrize("gain_learning_rate", [3.0, 1.0])
def test_gains_below_the_floor_are_raised(
    Simulator, seed, gain_learning_rate, monkeypatch
):
    """A gain under MIN_GAIN_FRACTION times the mean is raised to it, on the
    fast path as on the straightforward one, and only that row is scaled."""
    n = 40
    rng = np.random.RandomState(seed)
    gains = rng.uniform(1, 3, size=n)
    gains[3] = 1e-6
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(3 * t), np.cos(2 * t)])
        hidden = nengo.Ensemble(
            n,
            2,
            neuron_type=nengo.RectifiedLinear(),
            gain=gains,
            bias=rng.uniform(0.5, 1, size=n),
        )
        out = nengo.Node(size_in=1)
        nengo.Connection(hidden.neurons, out, transform=rng.normal(size=(1, n)) / n)
        layer1 = nengo.Connection(
            stim,
            hidden,
            learning_rule_type=nengo_fa.FeedbackAlignment(
                1, gain_learning_rate=gain_learning_rate
            ),
        )
        nengo.Connection(out, layer1.learning_rule)
        net.rule_probes = {
            key: nengo.Probe(layer1.learning_rule, key, synapse=None)
            for key in ("scaled_encoders", "gain")
        }
    fast, _ = run(net, Simulator, True, True, monkeypatch, steps=50)
    ref, _ = run(net, Simulator, False, True, monkeypatch, steps=50)
    assert_same(fast, ref)

    gain, S = fast["gain"], fast["scaled_encoders"]
    min_gain = builder.MIN_GAIN_FRACTION * np.mean(gains)
    assert gain[0, 3] < min_gain  # before the first update
    assert np.all(gain[2:] >= min_gain * (1 - 1e-12))
    assert np.allclose(gain, hidden.radius * np.linalg.norm(S, axis=2), rtol=1e-10)


@pytest.mark.parametrize("size", [100, 50000])
def test_blocked_dot(size, kernels, monkeypatch):
    """The single-threaded dot product (feedback norms, diagnostics) agrees
    with numpy's, compiled or not."""
    monkeypatch.setattr(_kernels, "AVAILABLE", kernels)
    rng = np.random.RandomState(size)
    a, b = rng.normal(size=size), rng.normal(size=size)
    assert np.isclose(_numerics.blocked_dot(a, b), np.dot(a, b), rtol=1e-12)
    A = rng.normal(size=(10, size // 10))
    assert np.isclose(_numerics.squared_norm(A), np.sum(A**2), rtol=1e-12)


def weights_net(rule, seed, n_pre=30, n_post=40, d_out=2, neuron_type=None):
    """``a.neurons -> b.neurons`` learned by ``rule`` with
    ``modifies="weights"``, a PES readout from ``b``."""
    neuron_type = nengo.RectifiedLinear() if neuron_type is None else neuron_type
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin([1.3 * t, 2.1 * t, 2.9 * t]))
        pre = nengo.Ensemble(n_pre, 3, neuron_type=neuron_type)
        hidden = nengo.Ensemble(n_post, 3, neuron_type=neuron_type)
        nengo.Connection(stim, pre)
        nengo.Connection(stim, hidden)
        out = nengo.Node(size_in=d_out)
        readout = nengo.Connection(
            hidden,
            out,
            function=lambda x: np.full(d_out, 0.1),
            learning_rule_type=nengo.PES(learning_rate=1e-3),
        )
        if rule == "bp":
            rule_type = nengo_fa.BackProp(readout, modifies="weights")
        else:
            rule_type = nengo_fa.FeedbackAlignment(d_out, modifies="weights")
        layer = nengo.Connection(
            pre.neurons,
            hidden.neurons,
            transform=rng.normal(scale=1e-3, size=(n_post, n_pre)),
            learning_rule_type=rule_type,
        )
        error = nengo.Node(size_in=d_out)
        nengo.Connection(out, error)
        nengo.Connection(stim, error, transform=-rng.normal(size=(d_out, 3)))
        nengo.Connection(error, readout.learning_rule)
        nengo.Connection(error, layer.learning_rule)
        net.rule_probes = {
            key: nengo.Probe(layer.learning_rule, key, synapse=None)
            for key in ("delta", "bias")
        }
        net.rule_probes["weights"] = nengo.Probe(layer, "weights", synapse=None)
        net.rule_probes["out"] = nengo.Probe(out, synapse=None)
    net.layer = layer
    return net


@pytest.mark.parametrize("rule", ["fa", "bp"])
@pytest.mark.parametrize(
    "neuron_type", [nengo.RectifiedLinear(), nengo.LIF()], ids=["relu", "lif"]
)
def test_inplace_weights_update_equals_straightforward(
    Simulator, seed, rule, neuron_type, monkeypatch, kernels
):
    """``modifies="weights"``: W += u a^T in place (and, compiled, W x in
    the same pass) gives what Nengo's (n_post, n_pre) delta plus Copy gives,
    and no operator writes an (n_post, n_pre) temporary."""
    net = weights_net(rule, seed, neuron_type=neuron_type)
    fast, ops = run(net, Simulator, True, True, monkeypatch)
    ref, _ = run(net, Simulator, False, True, monkeypatch)
    assert_same(fast, ref)
    W = ref["weights"]
    assert np.max(np.abs(W[-1] - W[0])) > 1e-3 * np.max(np.abs(W[0]))
    if Simulator is nengo.Simulator:
        shape = W.shape[1:]
        assert not [op for op in ops if isinstance(op, Copy) and op.dst.shape == shape]
        (update,) = [op for op in ops if isinstance(op, SimHiddenLayerEncoderUpdate)]
        assert update.scaled_encoders.shape == shape
        assert (update.encode is not None) == kernels
        products = [op for op in ops if isinstance(op, DotInc) and op.A.shape == shape]
        assert len(products) == (0 if kernels else 1)


def test_weights_with_two_rules_keep_generic_path(Simulator, seed, monkeypatch):
    """A second rule on the connection changes W in the same step: Nengo's
    delta and Copy stay."""
    net = weights_net("fa", seed)
    with net:
        conn = net.layer
        two = nengo.Connection(
            conn.pre,
            conn.post,
            transform=np.zeros(conn.transform.shape),
            learning_rule_type=[
                nengo_fa.FeedbackAlignment(2, modifies="weights"),
                nengo.PES(),
            ],
        )
    _, ops = run(net, Simulator, True, True, monkeypatch)
    if Simulator is nengo.Simulator:
        shape = conn.transform.shape
        copies = [op for op in ops if isinstance(op, Copy) and op.dst.shape == shape]
        assert len(copies) == 2  # both rules of the second connection
        assert two.learning_rule is not None


@pytest.mark.parametrize("pre_synapse", [None, nengo.Lowpass(0.005)])
def test_step_without_feedback_is_compiled(Simulator, seed, monkeypatch, pre_synapse):
    """While BackProp's readout is all zero (nu = 0: no feedback yet), the
    compiled step takes the step itself, with the numpy stages' results
    (delta 0, no update): it used to hand every such step to them, at three
    times the cost."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(5 * t), np.cos(3 * t)])
        hidden = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
        readout = nengo.Connection(
            hidden.neurons, nengo.Node(size_in=1), transform=np.zeros((1, 20))
        )
        rule = nengo_fa.BackProp(readout, warmup=None, pre_synapse=pre_synapse)
        layer = nengo.Connection(stim, hidden, learning_rule_type=rule)
        nengo.Connection(stim[0], layer.learning_rule)
        probes = {k: nengo.Probe(layer.learning_rule, k, synapse=None) for k in KEYS}
    numpy_steps = []
    original = stages.NumpyStep.step
    monkeypatch.setattr(
        stages.NumpyStep,
        "step",
        lambda self: numpy_steps.append(1) or original(self),
    )
    with Simulator(net) as sim:
        sim.step()  # the input is still 0 behind its synapse: the numpy stages
        numpy_steps.clear()
        sim.run_steps(50)
    assert len(numpy_steps) == (0 if settings.compiled_kernels() else 50)
    assert not np.any(sim.data[probes["delta"]])
    for key in ("bias", "gain", "scaled_encoders"):
        data = sim.data[probes[key]]
        assert np.array_equal(data[-1], data[0]), key
