"""Tests of `nengo_fa.ERBP` (event-driven random backpropagation)."""

import pickle

import nengo
import numpy as np
import pytest
from nengo.exceptions import BuildError, ReadonlyError, SimulationError, ValidationError

import nengo_fa
from nengo_fa import settings

from .networks import Gate, product_target, sines, zero


def weights_net(
    rule="erbp",
    seed=0,
    n_pre=40,
    n_post=20,
    neuron_type=None,
    freeze_at=np.inf,
    error_synapse=None,
    zero_weights=False,
    target=product_target,
    **rule_kwargs,
):
    """The product task through ``a -> b`` neuron-to-neuron weights.

    ``a`` encodes the two sines; ``a -> b`` is Nengo's decoded connection
    solved for weights (decoded, with ``modifies="encoders"``), learned by
    ``rule`` (None: fixed, PES only); ``b``
    has a PES readout of the product (or of ``target``, given as minus the
    target, as the error adds it). With ``zero_weights``, ``a.neurons ->
    b.neurons`` starts at zero instead. Every object has an explicit seed
    derived from ``seed``; the error reaches the rules through a `Gate`.
    """
    neuron_type = nengo.LIF() if neuron_type is None else neuron_type
    s = 1000 * (seed % 10**6)
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(sines)
        a = nengo.Ensemble(n_pre, 2, neuron_type=neuron_type, seed=s + 1)
        b = nengo.Ensemble(n_post, 2, neuron_type=neuron_type, seed=s + 2)
        nengo.Connection(stim, a, seed=s + 3)
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(
            b, out, function=zero, learning_rule_type=nengo.PES(), seed=s + 4
        )
        rule_type = nengo_fa.ERBP(out, **rule_kwargs) if rule == "erbp" else None
        weights = rule_kwargs.get("modifies", "weights") == "weights"
        if zero_weights:
            conn = nengo.Connection(
                a.neurons,
                b.neurons,
                transform=np.zeros((n_post, n_pre)),
                learning_rule_type=rule_type,
                seed=s + 5,
            )
        else:
            conn = nengo.Connection(
                a,
                b,
                solver=nengo.solvers.LstsqL2(weights=weights),
                learning_rule_type=rule_type,
                seed=s + 5,
            )
        error = nengo.Node(Gate(freeze_at), size_in=1)
        nengo.Connection(out, error, seed=s + 6)
        nengo.Connection(stim, error, function=target, seed=s + 7)
        nengo.Connection(error, readout.learning_rule, seed=s + 8)
        if rule_type is not None:
            nengo.Connection(
                error, conn.learning_rule, synapse=error_synapse, seed=s + 9
            )
        diff = nengo.Node(size_in=1)
        nengo.Connection(out, diff, seed=s + 10)
        nengo.Connection(stim, diff, function=target, seed=s + 11)
        net.p_error = nengo.Probe(diff, synapse=None)
    net.a, net.b, net.conn = a, b, conn
    return net


def minus_first(x):
    """Minus the target x0, as the error connection adds it."""
    return -x[0]


def probe_all(net, keys=("error", "dendrite", "gate", "delta", "weights")):
    with net:
        net.rule_probes = {
            key: nengo.Probe(net.conn.learning_rule, key, synapse=None) for key in keys
        }
        net.p_spikes = nengo.Probe(net.a.neurons, synapse=None)
        net.p_voltage = nengo.Probe(net.b.neurons, "voltage", synapse=None)
    return net


def test_params_validated_and_readonly():
    rule = nengo_fa.ERBP(3)
    assert rule.error_size == 3 and rule.size_in == 3
    assert rule.modifies == "weights"
    assert rule.boxcar == (0.0, np.inf)
    assert repr(rule) == "ERBP(error_size=3)"
    assert "boxcar=(0.2, 0.9)" in repr(nengo_fa.ERBP(1, boxcar=(0.2, 0.9)))
    with pytest.raises(ReadonlyError):
        rule.learning_rate = 1.0
    for kwargs, attr in [
        (dict(boxcar=(1.0, 0.5)), "boxcar"),
        (dict(boxcar=(np.nan, 1)), "boxcar"),
        (dict(boxcar=(0,)), "boxcar"),
        (dict(learning_rate=-1), "learning_rate"),
        (dict(learning_rate=np.inf), "learning_rate"),
        (dict(tau_dendrite=-0.01), "tau_dendrite"),
        (dict(modifies="decoders"), "modifies"),
    ]:
        with pytest.raises(ValidationError, match=attr):
            nengo_fa.ERBP(2, **kwargs)
    with pytest.raises(ValidationError, match="error_size"):
        nengo_fa.ERBP(0)


def test_update_matches_numpy_formula(Simulator, seed):
    """Each step's weight change is -eta_i U_i/nu Theta(V_i) s_j dt for the
    presynaptic neurons that spiked on the step before, and nothing for the
    others; U is the low-pass of B e; Theta the boxcar on the voltage."""
    tau = 0.01
    net = probe_all(weights_net(seed=seed, tau_dendrite=tau, boxcar=(0.1, 0.9)))
    with Simulator(net) as sim:
        sim.run(0.3)
    built = sim.data[net.conn.learning_rule]
    B, coef = built.feedback, built.coef
    assert built.voltage
    p = {key: sim.data[probe] for key, probe in net.rule_probes.items()}
    dt = sim.dt
    decay = np.exp(-dt / tau)
    U = np.zeros(B.shape[0])
    nu = np.sqrt(np.sum(B**2) / B.shape[0])
    spikes = sim.data[net.p_spikes]
    voltage = sim.data[net.p_voltage]
    for t in range(len(spikes)):
        U = decay * U + (1 - decay) * (B @ p["error"][t])
        gate = (voltage[t] > 0.1) & (voltage[t] < 0.9)
        assert np.allclose(p["dendrite"][t], U)
        assert np.array_equal(p["gate"][t], gate)
        assert np.allclose(p["delta"][t], U * gate / nu)
    dW = np.diff(p["weights"], axis=0)  # dW[t] = W[t + 1] - W[t]
    expected = (coef * p["delta"][:-1])[:, :, None] * (spikes[:-1] * dt)[:, None]
    assert np.allclose(dW, expected, atol=1e-15)
    silent = spikes[:-1] == 0
    assert np.all(dW.transpose(0, 2, 1)[silent] == 0)
    assert np.any(dW != 0) and np.any(silent) and np.any(~silent)


def test_paths_agree(Simulator, seed):
    """The in-place event-driven update (compiled and numpy) and Nengo's
    generic delta path give the same weights and output."""
    results = []
    for kw in (
        {},
        dict(compiled_kernels=False),
        dict(inplace_encoder_update=False),
    ):
        net = weights_net(seed=seed)
        with net:
            p_w = nengo.Probe(net.conn, "weights", sample_every=0.05)
        with settings.override(**kw):
            with Simulator(net) as sim:
                sim.run(0.3)
        results.append((sim.data[p_w], sim.data[net.p_error]))
    ops = [type(op).__name__ for op in sim.model.operators]
    assert "SimERBPWeights" not in ops  # the generic path was used last
    for W, err in results[1:]:
        assert np.allclose(W, results[0][0], rtol=1e-10, atol=1e-14)
        assert np.allclose(err, results[0][1], rtol=1e-10, atol=1e-14)
    assert not np.allclose(results[0][0][-1], results[0][0][0])


@pytest.mark.parametrize(
    "pre_slice", [slice(0, 10), slice(None, None, 3), [1, 3, 5, 7, 11]]
)
def test_presynaptic_slice(Simulator, seed, pre_slice):
    """From a slice of the presynaptic neurons (basic or advanced), each
    step's change is coef delta s[slice] dt, on every path: in place
    (compiled and numpy), Nengo's generic delta, and the generic delta with
    a second rule on the connection; ``sim.data`` reads the build result
    more than once."""
    n_pre, n_post = 40, 20
    n_sliced = len(np.arange(n_pre)[pre_slice])
    results = []
    for kw, second_rule in (
        ({}, False),
        (dict(compiled_kernels=False), False),
        (dict(inplace_encoder_update=False), False),
        ({}, True),
    ):
        with nengo.Network(seed=seed) as net:
            stim = nengo.Node(sines)
            a = nengo.Ensemble(n_pre, 2, seed=seed + 1)
            b = nengo.Ensemble(n_post, 2, seed=seed + 2)
            nengo.Connection(stim, a)
            out = nengo.Node(size_in=1)
            readout = nengo.Connection(
                b, out, function=zero, learning_rule_type=nengo.PES()
            )
            rule = nengo_fa.ERBP(out)
            conn = nengo.Connection(
                a.neurons[pre_slice],
                b.neurons,
                transform=np.zeros((n_post, n_sliced)),
                learning_rule_type=[rule, nengo.PES()] if second_rule else rule,
            )
            learning_rule = conn.learning_rule[0] if second_rule else conn.learning_rule
            error = nengo.Node(size_in=1)
            nengo.Connection(out, error)
            nengo.Connection(stim, error, function=product_target)
            nengo.Connection(error, readout.learning_rule)
            nengo.Connection(error, learning_rule)
            p_w = nengo.Probe(conn, "weights", synapse=None)
            p_delta = nengo.Probe(learning_rule, "delta", synapse=None)
            p_spikes = nengo.Probe(a.neurons, synapse=None)
        with settings.override(**kw):
            with Simulator(net) as sim:
                sim.run(0.2)
        ops = [type(op).__name__ for op in sim.model.operators]
        in_place = kw.get("inplace_encoder_update", True) and not second_rule
        assert ("SimERBPWeights" in ops) == in_place
        coef = sim.data[learning_rule].coef
        assert sim.data[learning_rule].coef is coef  # read twice
        W, delta = sim.data[p_w], sim.data[p_delta]
        spikes = sim.data[p_spikes][:, pre_slice]
        expected = (coef * delta[:-1])[:, :, None] * (spikes[:-1] * sim.dt)[:, None]
        assert np.allclose(np.diff(W, axis=0), expected, atol=1e-15)
        results.append(W)
    assert np.any(results[0][-1] != 0)
    for W in results[1:]:
        assert np.allclose(W, results[0], rtol=1e-10, atol=1e-14)


def test_current_boxcar_for_types_without_voltage(Simulator, seed):
    """For a neuron type without a voltage, the gate is on the current:
    (J - theta) / mean gain inside the window."""
    net = weights_net(seed=seed, neuron_type=nengo.SpikingRectifiedLinear())
    with net:
        p_gate = nengo.Probe(net.conn.learning_rule, "gate", synapse=None)
        p_J = nengo.Probe(net.b.neurons, "input", synapse=None)
    with Simulator(net) as sim:
        sim.run(0.1)
    assert not sim.data[net.conn.learning_rule].voltage
    gain = np.mean(sim.data[net.b].gain)
    expected = (sim.data[p_J] / gain > 0) & (sim.data[p_J] / gain < np.inf)
    assert np.array_equal(sim.data[p_gate], expected)
    assert 0 < np.mean(expected) < 1


def test_encoders_mode_matches_formula(Simulator, seed):
    """With modifies="encoders", S changes by -k dt g U/nu Theta x^T / r^2."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(sines)
        b = nengo.Ensemble(20, 2)
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(b, out, function=zero)
        conn = nengo.Connection(
            stim, b, learning_rule_type=nengo_fa.ERBP(out, modifies="encoders")
        )
        error = nengo.Node(size_in=1)
        nengo.Connection(out, error)
        nengo.Connection(stim, error, function=product_target)
        nengo.Connection(error, conn.learning_rule)
        p_delta = nengo.Probe(conn.learning_rule, "delta", synapse=None)
        p_enc = nengo.Probe(conn.learning_rule, "encoders", synapse=None)
        p_x = nengo.Probe(b, "input", synapse=None)
    assert readout.learning_rule is None
    with Simulator(net) as sim:
        sim.run(0.2)
    gain = np.mean(sim.data[b].gain)
    dS = np.diff(sim.data[p_enc], axis=0)
    k = -0.7 * sim.dt * gain / b.radius**2
    expected = k * sim.data[p_delta][:-1, :, None] * sim.data[p_x][:-1, None, :]
    assert np.allclose(dS, expected)
    assert np.any(dS != 0)


def test_probes_reset_pickle_float32(Simulator, seed):
    net = probe_all(weights_net(seed=seed))
    with Simulator(net) as sim:
        sim.run(0.1)
        first = {k: sim.data[p].copy() for k, p in net.rule_probes.items()}
        sim.reset()
        sim.run(0.1)
        for key, probe in net.rule_probes.items():
            assert np.array_equal(sim.data[probe], first[key]), key
        copy = pickle.loads(pickle.dumps(sim))
        sim.run(0.05)
    with copy:
        copy.run(0.05)
    # the copy's probes are copies too, in the same order
    for probe, copied in zip(sim.model.probes, copy.model.probes):
        assert np.array_equal(copy.data[copied], sim.data[probe]), probe
    old = nengo.rc.get("precision", "bits")
    nengo.rc.set("precision", "bits", "32")
    try:
        net32 = weights_net(seed=seed)
        with Simulator(net32) as sim32:
            sim32.run(0.1)
            weights = sim32.signals[sim32.model.sig[net32.conn]["weights"]]
            assert weights.dtype == np.float32
    finally:
        nengo.rc.set("precision", "bits", old)


def test_nonfinite_error_raises(Simulator, seed):
    net = weights_net(seed=seed)
    with net:
        bad = nengo.Node(nengo.processes.Piecewise({0: 0.0, 0.0205: np.nan}))
        nengo.Connection(bad, net.conn.learning_rule, synapse=None)
        p_w = nengo.Probe(net.conn, "weights")
    with Simulator(net) as sim:
        with pytest.raises(SimulationError, match="the error contains NaN or inf"):
            sim.run(0.05)
    assert np.all(np.isfinite(sim.data[p_w]))
    assert len(sim.data[p_w]) == 20


@pytest.mark.parametrize("modifies", ["encoders", "weights"])
def test_nonfinite_input_raises(Simulator, modifies):
    """An inf in what the update pairs the error with (the ensemble's input,
    or the presynaptic neurons' output) stops the run before it reaches the
    encoders or the weights, as with the other rules."""
    inf_later = nengo.processes.Piecewise({0: 0.0, 0.0205: np.inf})
    with nengo.Network(seed=0) as net:
        drive = nengo.Node(inf_later)
        a = nengo.Ensemble(10, 1, neuron_type=nengo.RectifiedLinear(), seed=1)
        b = nengo.Ensemble(5, 1, neuron_type=nengo.LIFRate(), seed=2)
        nengo.Connection(drive, a.neurons, transform=np.ones((10, 1)), synapse=None)
        rule = nengo_fa.ERBP(1, modifies=modifies)
        if modifies == "encoders":
            conn = nengo.Connection(drive, b, synapse=None, learning_rule_type=rule)
            p_state = nengo.Probe(b, "scaled_encoders")
            what = "the ensemble's input"
        else:
            conn = nengo.Connection(
                a.neurons,
                b.neurons,
                transform=np.zeros((5, 10)),
                learning_rule_type=rule,
            )
            p_state = nengo.Probe(conn, "weights")
            what = "the presynaptic activity vector"
        nengo.Connection(nengo.Node([1.0]), conn.learning_rule, synapse=None)
    with Simulator(net) as sim:
        with pytest.raises(SimulationError, match=f"{what} contains NaN or inf"):
            sim.run(0.05)
    assert len(sim.data[p_state]) == 20
    assert np.all(np.isfinite(sim.data[p_state]))


def test_bad_build_raises(Simulator):
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1)
        b = nengo.Ensemble(5, 1)
        nengo.Connection(
            a.neurons,
            b.neurons,
            transform=np.zeros((5, 10)),
            learning_rule_type=nengo_fa.ERBP(1, feedback=np.ones((4, 1))),
        )
    with pytest.raises(BuildError, match="'feedback' has shape"):
        Simulator(net)
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1)
        b = nengo.Ensemble(5, 1)
        nengo.Connection(
            a.neurons,
            b.neurons[:3],
            transform=np.zeros((3, 10)),
            learning_rule_type=nengo_fa.ERBP(1),
        )
    with pytest.raises(BuildError, match="slice"):
        Simulator(net)
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1)
        b = nengo.Ensemble(5, 1, neuron_type=nengo.Direct())
        nengo.Connection(a, b, learning_rule_type=nengo_fa.ERBP(1, modifies="encoders"))
    with pytest.raises(BuildError, match="Direct neurons"):
        Simulator(net)


def test_learns_frozen_better_than_pes_only(Simulator, plt):
    """Train, freeze, test: ERBP learns ``a.neurons -> b.neurons`` weights that
    start at zero, so that ``b`` carries the input the PES readout needs
    (x0); PES only, with the weights left at zero, cannot. The frozen error is
    compared on several ensemble and connection seeds (the same seeds for
    both, in the same run)."""
    t_train, t_test = 4.0, 2.0
    frozen = {"pes": [], "erbp": []}
    for seed in range(3):
        for rule in frozen:
            net = weights_net(
                rule if rule == "erbp" else None,
                seed,
                freeze_at=t_train,
                zero_weights=True,
                target=minus_first,
            )
            with Simulator(net) as sim:
                sim.run(t_train + t_test)
            t = sim.trange()
            err = sim.data[net.p_error][:, 0]
            frozen[rule].append(float(np.mean(err[t > t_train + 0.05] ** 2)))
            plt.plot(t, err, label=f"{rule} seed {seed}", lw=0.5)
    plt.legend()
    pes, erbp = np.array(frozen["pes"]), np.array(frozen["erbp"])
    # measured: 24-31% of PES only's frozen error on each seed
    assert np.all(erbp < 0.5 * pes), frozen
