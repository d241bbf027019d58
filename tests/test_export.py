"""`nengo_fa.freeze_params` and the save/load helpers keep what was learned.

The check that matters: a network trained online, frozen, and built again
computes what the trained network computes, while a network built from the
untrained model does not. Both run with the error gated to zero, so nothing
learns during the comparison.
"""

import nengo
import numpy as np
import pytest
from nengo.exceptions import SimulatorClosed, ValidationError

import nengo_fa

TRAIN_TIME = 2.0
TEST_TIME = 1.0
# rate networks: once the filters' transients (the probe's tau is 20 ms) have
# decayed for SETTLE seconds, the frozen and the trained network agree to 1e-5
SETTLE = 0.3


def inputs(t):
    return [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)]


def build(mode, neuron_type, seed, learn_feedback=False):
    """A product network whose hidden layer learns; ``mode`` picks what.

    - ``"encoders"``: FeedbackAlignment on ``stim -> hidden`` (encoders, gains,
      biases; with ``learn_feedback``, Kolen-Pollack learns its feedback);
    - ``"weights"``: FeedbackAlignment with ``modifies="weights"`` on
      ``pre.neurons -> hidden.neurons`` (a weight matrix, gains, biases).

    The readout learns with PES. ``net.gate`` multiplies the error (set it to 0
    to stop learning) and ``net.t0`` shifts the input's time, so that a network
    started afresh sees what a trained one sees when it goes on.
    """
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        net.gate, net.t0 = [1.0], [0.0]
        stim = nengo.Node(lambda t: inputs(t - net.t0[0]), label="input")
        hidden = nengo.Ensemble(30, 2, neuron_type=neuron_type, label="hidden")
        out = nengo.Node(size_in=1, label="output")
        readout = nengo.Connection(
            hidden, out, function=lambda x: 0, learning_rule_type=nengo.PES()
        )
        if mode == "encoders" and not learn_feedback:
            rule_type = nengo_fa.FeedbackAlignment(error_size=1)
            layer = nengo.Connection(stim, hidden, learning_rule_type=rule_type)
        elif mode == "encoders":
            rule_type = nengo_fa.FeedbackAlignment(
                downstream=readout,
                feedback=nengo.dists.Gaussian(0, 1e-4),
                feedback_learning=nengo_fa.KolenPollack(),
            )
            layer = nengo.Connection(stim, hidden, learning_rule_type=rule_type)
        else:
            pre = nengo.Ensemble(30, 2, neuron_type=neuron_type, label="pre")
            nengo.Connection(stim, pre)
            layer = nengo.Connection(
                pre.neurons,
                hidden.neurons,
                transform=rng.normal(scale=1e-3, size=(30, 30)),
                learning_rule_type=nengo_fa.FeedbackAlignment(
                    error_size=1, modifies="weights"
                ),
            )
        error = nengo.Node(lambda t, x: net.gate[0] * x, size_in=1, label="error")
        nengo.Connection(out, error)
        nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
        nengo.Connection(error, readout.learning_rule)
        nengo.Connection(error, layer.learning_rule)
        if learn_feedback:
            net.p_feedback = nengo.Probe(layer.learning_rule, "feedback")
        net.hidden, net.layer, net.readout = hidden, layer, readout
        net.p_out = nengo.Probe(out, synapse=0.02)
    return net


def gate(net, sim):
    """Stop learning: gate the error, and wait for its filter to empty."""
    net.gate[0] = 0.0
    sim.run(0.1)


def run_gated(net, sim):
    """Run ``sim`` for TEST_TIME, learning stopped; return the output."""
    net.t0[0] = sim.time
    start = sim.n_steps
    sim.run(TEST_TIME)
    return sim.data[net.p_out][start:, 0]


def run_fresh(net, seed):
    net.gate[0], net.t0[0] = 0.0, 0.0
    with nengo.Simulator(net, seed=seed, progress_bar=False) as sim:
        sim.run(TEST_TIME)
    return sim.data[net.p_out][:, 0]


def target():
    t = np.arange(1, int(round(TEST_TIME / 0.001)) + 1) * 0.001
    x = np.array(inputs(t))
    return x[0] * x[1]


@pytest.mark.parametrize("mode", ["encoders", "weights"])
@pytest.mark.parametrize(
    "neuron_type",
    [nengo.RectifiedLinear(), nengo.SpikingRectifiedLinear()],
    ids=["rate", "spiking"],
)
def test_frozen_rebuild_reproduces_trained_network(mode, neuron_type, seed, plt):
    net = build(mode, neuron_type, seed)
    untrained = run_fresh(net, seed)
    net.gate[0] = 1.0
    with nengo.Simulator(net, seed=seed, progress_bar=False) as sim:
        sim.run(TRAIN_TIME)
        gate(net, sim)
        nengo_fa.freeze_params(sim)
        trained = run_gated(net, sim)
    frozen = run_fresh(net, seed)

    t = np.arange(1, len(trained) + 1) * 0.001
    plt.plot(t, untrained, label="untrained")
    plt.plot(t, trained, label="trained, going on")
    plt.plot(t, frozen, "--", label="frozen, rebuilt")
    plt.plot(t, target(), "k:", label="target")
    plt.legend()

    settled = t > SETTLE
    change = np.sqrt(np.mean((trained - untrained)[settled] ** 2))
    mismatch = np.sqrt(np.mean((trained - frozen)[settled] ** 2))
    if isinstance(neuron_type, nengo.RectifiedLinear) and not isinstance(
        neuron_type, nengo.SpikingRectifiedLinear
    ):
        # same parameters, inputs and (settled) filter states
        assert mismatch < 1e-5, (mismatch, change)
    else:
        # spike times differ (the voltages start afresh); filtered at 20 ms,
        # the outputs agree within a small fraction of what training changed
        # (measured: 0.5-7% over three seeds and both modes)
        assert mismatch < 0.15 * change, (mismatch, change)
    # training changed the output well beyond that tolerance, and helped (the
    # untrained readout outputs 0; after 2 s the frozen error is 20-80% of that)
    assert change > 0.05, change
    err_trained = np.mean((frozen - target())[settled] ** 2)
    err_untrained = np.mean((untrained - target())[settled] ** 2)
    assert err_trained < err_untrained, (err_trained, err_untrained)


def test_freeze_writes_live_values_into_objects(seed):
    net = build("encoders", nengo.RectifiedLinear(), seed, learn_feedback=True)
    with nengo.Simulator(net, seed=seed, progress_bar=False) as sim:
        built = sim.data[net.hidden]
        sim.run(0.5)
        live = nengo_fa.learned_params(sim)
        S = sim.signals[sim.model.sig[net.hidden]["encoders"]].copy()
        nengo_fa.freeze_params(sim)
        feedback = sim.data[net.p_feedback][-1]

    hidden = live[net.hidden]
    # sim.data keeps the build-time values; the live ones have moved
    assert not np.allclose(hidden["encoders"], built.encoders)
    assert not np.allclose(hidden["gain"], built.gain)
    assert not np.allclose(hidden["bias"], built.bias)
    assert np.allclose(np.linalg.norm(net.hidden.encoders, axis=1), 1)
    assert np.allclose(
        (net.hidden.gain / net.hidden.radius)[:, None] * net.hidden.encoders, S
    )
    assert np.array_equal(net.hidden.bias, hidden["bias"])
    assert isinstance(net.readout.solver, nengo.solvers.NoSolver)
    assert np.array_equal(net.readout.solver.values.T, live[net.readout]["weights"])
    # the learned feedback (probed at the last step) is the rule's new feedback
    assert np.allclose(net.layer.learning_rule_type.feedback, feedback)


@pytest.mark.parametrize("mode", ["encoders", "weights"])
def test_save_and_load_params_round_trip(mode, seed, tmp_path):
    net = build(mode, nengo.RectifiedLinear(), seed, learn_feedback=mode == "encoders")
    with nengo.Simulator(net, seed=seed, progress_bar=False) as sim:
        sim.run(0.5)
        nengo_fa.save_params(sim, tmp_path / "params.npz")
        nengo_fa.freeze_params(sim)
    frozen = run_fresh(net, seed)

    def rebuilt():
        return build(mode, nengo.RectifiedLinear(), seed, mode == "encoders")

    again = rebuilt()
    nengo_fa.load_params(again, tmp_path / "params.npz")
    loaded = run_fresh(again, seed)
    assert np.allclose(loaded, frozen, rtol=0, atol=1e-12)
    assert not np.allclose(loaded, run_fresh(rebuilt(), seed), atol=1e-3)
    if mode == "encoders":
        assert np.array_equal(
            again.layer.learning_rule_type.feedback,
            net.layer.learning_rule_type.feedback,
        )


def test_freeze_closed_simulator_raises(seed):
    net = build("encoders", nengo.RectifiedLinear(), seed)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(2)
    with pytest.raises(SimulatorClosed, match="inside the simulator's `with` block"):
        nengo_fa.freeze_params(sim)


def test_freeze_object_not_in_model_raises(seed):
    net = build("encoders", nengo.RectifiedLinear(), seed)
    with nengo.Network():
        stranger = nengo.Ensemble(5, 1)
    with nengo.Simulator(net, progress_bar=False) as sim:
        with pytest.raises(ValidationError, match="not part of the simulator's model"):
            nengo_fa.freeze_params(sim, objs=[stranger])
        with pytest.raises(ValidationError, match="can only freeze"):
            nengo_fa.freeze_params(sim, objs=[net.p_out])


def test_load_params_into_different_network_raises(seed, tmp_path):
    net = build("encoders", nengo.RectifiedLinear(), seed)
    with nengo.Simulator(net, progress_bar=False) as sim:
        nengo_fa.save_params(sim, tmp_path / "params.npz")
    with nengo.Network() as other:
        nengo.Ensemble(7, 2)
    with pytest.raises(ValidationError, match="built the same way"):
        nengo_fa.load_params(other, tmp_path / "params.npz")


def hidden_rates(net, sim, steps=300):
    """Run ``steps`` more steps with learning stopped; the hidden rates over
    the last 100, once the synapses' transients have decayed (to e^-40)."""
    sim.run_steps(steps)
    return sim.data[net.p_rates][-100:]


@pytest.mark.parametrize("transform", ["dense", "scalar", "none"])
def test_gains_learned_into_other_connections_to_neurons(transform, seed, tmp_path):
    """Nengo multiplies what a connection sends to ``ens.neurons`` by the
    gains the ensemble was built with: freezing learned gains scales such a
    connection's weights, so that the frozen network gets the same currents
    (and the same when loaded from a file)."""
    net = build("encoders", nengo.RectifiedLinear(), seed)
    with net:
        if transform == "dense":
            drive = nengo.Node([0.5, -0.2])
            kwargs = {"transform": np.linspace(-1, 1, 60).reshape(30, 2)}
        else:
            drive = nengo.Node(np.linspace(-0.5, 0.5, 30))
            kwargs = {"transform": 0.7} if transform == "scalar" else {}
        nengo.Connection(drive, net.hidden.neurons, **kwargs)
        net.p_rates = nengo.Probe(net.hidden.neurons, synapse=None)
    with nengo.Simulator(net, seed=seed, progress_bar=False) as sim:
        sim.run(0.5)
        gate(net, sim)
        built_gain = sim.data[net.hidden].gain
        nengo_fa.save_params(sim, tmp_path / "params.npz")
        nengo_fa.freeze_params(sim)
        net.t0[0] = sim.time
        trained = hidden_rates(net, sim)
    assert not np.allclose(net.hidden.gain, built_gain)  # the gains did change

    def fresh(network):
        network.t0[0] = 0.0
        with nengo.Simulator(network, seed=seed, progress_bar=False) as sim:
            return hidden_rates(network, sim)

    assert np.allclose(fresh(net), trained, rtol=0, atol=1e-9 * trained.max())
    again = build("encoders", nengo.RectifiedLinear(), seed)
    with again:
        drive = nengo.Node(drive.output)
        nengo.Connection(drive, again.hidden.neurons, **kwargs)
        again.p_rates = nengo.Probe(again.hidden.neurons, synapse=None)
    again.gate[0] = 0.0
    nengo_fa.load_params(again, tmp_path / "params.npz")
    assert np.allclose(fresh(again), trained, rtol=0, atol=1e-9 * trained.max())


def test_direct_mode_and_scalar_transforms_are_kept(seed, tmp_path):
    """A direct-mode ensemble's connections keep their transforms (freezing
    writes no decoders for them), and scalar transforms, as in the usual
    ``Connection(target, error, transform=-1)``, save and load."""

    def make():
        with nengo.Network(seed=seed) as net:
            stim = nengo.Node([0.3, -0.6])
            direct = nengo.Ensemble(1, 2, neuron_type=nengo.Direct())
            nengo.Connection(stim, direct, synapse=None)
            out = nengo.Node(size_in=1)
            nengo.Connection(direct, out, transform=[[1.0, 2.0]], synapse=None)
            other = nengo.Node(size_in=2)
            nengo.Connection(stim, other, transform=-1, synapse=None)
            net.p = nengo.Probe(out)
            net.p_other = nengo.Probe(other)
        return net

    def run(net):
        with nengo.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(3)
        return sim.data[net.p][-1], sim.data[net.p_other][-1]

    net = make()
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(3)
        nengo_fa.save_params(sim, tmp_path / "params.npz")
        nengo_fa.freeze_params(sim)
    expected = (np.array([-0.9]), np.array([-0.3, 0.6]))
    for got, want in zip(run(net), expected):
        assert np.allclose(got, want)
    again = make()
    nengo_fa.load_params(again, tmp_path / "params.npz")
    for got, want in zip(run(again), expected):
        assert np.allclose(got, want)


def test_freeze_keeps_the_simulator_usable(seed, tmp_path):
    """Freezing writes the feedback into the rule type; the open simulator
    still finds its data for the rule, and can save afterwards."""
    net = build("encoders", nengo.RectifiedLinear(), seed, learn_feedback=True)
    with nengo.Simulator(net, seed=seed, progress_bar=False) as sim:
        sim.run(0.1)
        nengo_fa.freeze_params(sim)
        assert sim.data[net.layer.learning_rule] is not None
        live = nengo_fa.learned_params(sim)
        nengo_fa.save_params(sim, tmp_path / "params.npz")
    assert np.array_equal(
        live[net.layer]["feedback"], net.layer.learning_rule_type.feedback
    )


def weight_solver_net(seed, learn):
    """``pre -> post`` with a weight solver; with ``learn``, FA learns the
    encoders of ``pre`` from a readout error."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(5 * t), np.cos(5 * t)])
        pre = nengo.Ensemble(20, 2)
        post = nengo.Ensemble(20, 2)
        into_pre = nengo.Connection(stim, pre)
        net.solved = nengo.Connection(
            pre, post, solver=nengo.solvers.LstsqL2(weights=True)
        )
        out = nengo.Node(size_in=1)
        nengo.Connection(post, out, function=lambda x: x[0])
        if learn:
            into_pre.learning_rule_type = nengo_fa.FeedbackAlignment(1)
            nengo.Connection(out, into_pre.learning_rule)
    return net


def test_weight_solver_connections(seed):
    """A connection whose solver gives its full weights is rebuilt the same
    while nothing it was solved from has learned, so it does not stop a
    freeze; once its pre ensemble learned, it cannot be kept: a clear error."""
    net = weight_solver_net(seed, learn=False)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run(0.05)
        assert net.solved not in nengo_fa.learned_params(sim)
        nengo_fa.freeze_params(sim)
    assert isinstance(net.solved.solver, nengo.solvers.LstsqL2)
    net = weight_solver_net(seed, learn=True)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run(0.05)
        with pytest.raises(ValidationError, match="full weight matrix once they were"):
            nengo_fa.freeze_params(sim)


def test_bad_objs_and_files_raise(seed, tmp_path):
    net = build("encoders", nengo.RectifiedLinear(), seed)
    path = tmp_path / "params.npz"
    with nengo.Simulator(net, progress_bar=False) as sim:
        for objs in (net.hidden[0], net.hidden.neurons, net.layer.learning_rule):
            with pytest.raises(ValidationError, match="give the ensemble"):
                nengo_fa.freeze_params(sim, objs=objs)
        nengo_fa.save_params(sim, path)
    with np.load(path) as data:
        saved = dict(data)
    with pytest.raises(ValidationError, match="must be the nengo.Network"):
        nengo_fa.load_params(net.hidden, path)

    def load_changed(name, **changes):
        arrays = {k: v for k, v in saved.items() if k != name}
        arrays.update(changes)
        np.savez(tmp_path / "bad.npz", **arrays)
        nengo_fa.load_params(
            build("encoders", nengo.RectifiedLinear(), seed), tmp_path / "bad.npz"
        )

    gain = next(k for k in saved if k.endswith(".gain"))
    with pytest.raises(ValidationError, match="lacks the gain"):
        load_changed(gain)
    with pytest.raises(ValidationError, match="has a 'foo'"):
        load_changed(None, **{gain.replace("gain", "foo"): saved[gain]})
    with pytest.raises(ValidationError, match="holds <U"):
        load_changed(None, **{gain: saved[gain].astype(str)})
    weights = next(k for k in saved if k.endswith(".weights"))
    with pytest.raises(ValidationError, match="no FeedbackAlignment rule to take it"):
        load_changed(None, **{weights.replace("weights", "feedback"): np.ones((30, 1))})
