"""DifferenceTargetProp: its targets and inverse against numpy formulas, its
invariants and validation, and what it learns (trained, frozen, tested
against PES only and chained feedback alignment in the same run)."""

import pickle

import nengo
import numpy as np
import pytest
from nengo.exceptions import BuildError, ReadonlyError, ValidationError

import nengo_fa
from nengo_fa.builder import SimDifferenceTarget, SimTopTarget

from .networks import deep_net, train_freeze_test

LAYER_KEYS = ("error", "target", "displacement", "activities")
INVERSE_KEYS = ("inverse", "reconstruction_error")


def probed_dtp(seed, n=(10, 20), **rule_kwargs):
    """`deep_net` with DTP on both layers, every DTP signal and the readout's
    decoders probed (no synapse)."""
    net = deep_net("dtp", seed, n=n, rule_kwargs=rule_kwargs)
    with net:
        net.p = {}
        for name, conn in (("h1", net.into_h1), ("h2", net.into_h2)):
            keys = LAYER_KEYS + (INVERSE_KEYS if name == "h1" else ())
            for key in keys:
                net.p[f"{name}.{key}"] = nengo.Probe(
                    conn.learning_rule, key, synapse=None
                )
        net.p["D"] = nengo.Probe(net.readout, "weights", synapse=None)
    return net


def test_targets_match_numpy_formulas(Simulator, seed):
    """Every step: the top target is the step eta / |D|^2 against the error
    through the decoders read that step, the lower one the difference target
    through the inverse read that step, and the inverse's update is the
    normalised LMS step on the clean activities when ``noise=0``."""
    eta, k_inv = 0.1, 1.0
    net = probed_dtp(seed, noise=0.0)
    with Simulator(net) as sim:
        sim.run(0.4)
    d = {key: sim.data[p] for key, p in net.p.items()}
    dt = sim.dt
    # the decoders a step reads are those probed on that step (PES's update
    # is applied on the next); the inverse, which the operator itself
    # updates after reading it, is read as probed on the step before
    D_read = d["D"]  # (T, 1, n2)
    e = d["h2.error"]
    dd = np.sum(D_read**2, axis=(1, 2))
    live = dd > 0
    assert np.sum(live) > 100 and np.any(e[live] != 0)
    disp2 = eta * np.einsum("td,tdn->tn", e, D_read) / np.where(live, dd, 1)[:, None]
    assert np.allclose(d["h2.displacement"], disp2, rtol=1e-6, atol=1e-9)
    assert np.allclose(d["h2.target"], d["h2.activities"] - d["h2.displacement"])

    QC = d["h1.inverse"]
    Q_read = QC[:-1, :, :-1]
    assert np.allclose(d["h1.error"], d["h2.displacement"])
    disp1 = np.einsum("tnm,tm->tn", Q_read, d["h2.displacement"][1:])
    assert np.allclose(d["h1.displacement"][1:], disp1, rtol=1e-6, atol=1e-9)
    assert np.allclose(d["h1.target"], d["h1.activities"] - d["h1.displacement"])
    assert np.any(d["h1.displacement"] != 0)

    # the normalised LMS step, and the relative reconstruction error
    h1, h2 = d["h1.activities"][1:], d["h2.activities"][1:]
    op = next(op for op in sim.model.operators if isinstance(op, SimDifferenceTarget))
    z = np.concatenate([h2, np.full((len(h2), 1), op.activity_scales[1])], axis=1)
    r = np.einsum("tnm,tm->tn", QC[:-1], z) - h1
    step = (
        -k_inv
        * dt
        * np.einsum("tn,tm->tnm", r, z)
        / np.sum(z**2, axis=1)[:, None, None]
    )
    assert np.allclose(QC[1:] - QC[:-1], step, rtol=1e-6, atol=1e-12)
    hh = np.sum(h1**2, axis=1)
    rho = np.where(
        hh > 0, np.linalg.norm(r, axis=1) / np.sqrt(np.maximum(hh, 1e-300)), 0
    )
    assert np.allclose(d["h1.reconstruction_error"][1:, 0], rho, rtol=1e-6)


def test_inverse_learns_to_reconstruct(Simulator, seed):
    """The inverse's relative error on the clean activities falls well below
    what a zero inverse gives (1, the control with ``inverse_learning_rate=0``),
    with the default noise."""
    results = {}
    for rate in (0.0, 1.0):
        net = deep_net("dtp", seed, rule_kwargs=dict(inverse_learning_rate=rate))
        with net:
            p = nengo.Probe(net.into_h1.learning_rule, "reconstruction_error")
        with Simulator(net) as sim:
            sim.run(3.0)
        results[rate] = float(np.mean(sim.data[p][-500:, 0]))
    assert results[0.0] == pytest.approx(1.0, abs=1e-3)
    assert results[1.0] < 0.6, results


def test_invariants(Simulator, seed):
    """Repr, frozen params, probeable keys and shapes, reset() (noise
    included), pickling a running simulator."""
    rule_type = nengo_fa.DifferenceTargetProp
    net = probed_dtp(seed, n=(10, 20))
    upper = net.into_h2.learning_rule_type
    lower = net.into_h1.learning_rule_type
    assert repr(upper).startswith("DifferenceTargetProp(downstream=<Conn")
    assert (upper.size_in, upper.error_size) == (1, 1)
    assert (lower.size_in, lower.error_size) == (0, 20)
    with pytest.raises(ReadonlyError):
        lower.noise = 0.5
    assert set(rule_type.probeable) >= set(LAYER_KEYS + INVERSE_KEYS)
    with net:
        extra = {
            key: nengo.Probe(net.into_h1.learning_rule, key)
            for key in ("delta", "gain", "bias", "scaled_encoders")
        }
    with Simulator(net) as sim:
        sim.run_steps(100)
        first = {key: sim.data[p].copy() for key, p in net.p.items()}
        shapes = {key: sim.data[p].shape[1:] for key, p in extra.items()}
        sim.reset()
        sim.run_steps(100)
        for key, p in net.p.items():
            assert np.array_equal(first[key], sim.data[p]), key
    assert first["h1.inverse"].shape[1:] == (10, 21)
    assert first["h1.reconstruction_error"].shape[1:] == (1,)
    assert first["h1.error"].shape[1:] == (20,)
    for key in ("target", "displacement", "activities"):
        assert first[f"h1.{key}"].shape[1:] == (10,)
        assert first[f"h2.{key}"].shape[1:] == (20,)
    assert shapes == {
        "delta": (10,),
        "gain": (10,),
        "bias": (10,),
        "scaled_encoders": (10, 2),
    }
    assert np.any(first["h1.inverse"][-1] != 0)
    ops = [type(op) for op in sim.model.operators]
    assert ops.count(SimTopTarget) == ops.count(SimDifferenceTarget) == 1

    # a running simulator pickles; without noise it resumes identically (the
    # noise stream restarts from the seed, as for Nengo's own processes)
    net = probed_dtp(seed, noise=0.0)
    with Simulator(net) as sim:
        sim.run_steps(100)
        copy = pickle.loads(pickle.dumps(sim))
        sim.run_steps(50)
    with copy:
        copy.run_steps(50)
    assert len(sim.model.probes) == len(copy.model.probes) > 0
    for probe, copied in zip(sim.model.probes, copy.model.probes):
        assert np.array_equal(sim.data[probe], copy.data[copied])

    # the top layer has no inverse to probe
    net = deep_net("dtp", seed)
    with net:
        nengo.Probe(net.into_h2.learning_rule, "inverse")
    with pytest.raises(BuildError, match="inverse"):
        with Simulator(net):
            pass


def test_float32(Simulator, seed):
    """Runs and learns in single precision (``nengo.rc`` precision bits)."""
    bits = nengo.rc["precision"]["bits"]
    nengo.rc["precision"]["bits"] = "32"
    try:
        net = probed_dtp(seed)
        with Simulator(net) as sim:
            sim.run(0.5)
            inverse = sim.model.sig[net.into_h1.learning_rule]["inverse"]
            assert sim.signals[inverse].dtype == np.float32
    finally:
        nengo.rc["precision"]["bits"] = bits
    assert np.all(np.isfinite(sim.data[net.p["h1.inverse"]]))
    assert np.any(sim.data[net.p["h1.displacement"]] != 0)


@pytest.mark.parametrize(
    "kwargs, attr",
    [
        (dict(learning_rate=-1), "learning_rate"),
        (dict(inverse_learning_rate=-0.1), "inverse_learning_rate"),
        (dict(inverse_learning_rate=np.inf), "inverse_learning_rate"),
        (dict(noise=-0.1), "noise"),
        (dict(noise=np.nan), "noise"),
        (dict(target_step=0), "target_step"),
        (dict(activity_synapse="fast"), "activity_synapse"),
    ],
)
def test_bad_params_raise(kwargs, attr):
    with nengo.Network():
        readout = nengo.Connection(nengo.Ensemble(5, 1), nengo.Node(size_in=1))
    with pytest.raises(ValidationError, match=attr):
        nengo_fa.DifferenceTargetProp(readout, **kwargs)


def test_bad_downstream_raises(Simulator):
    with nengo.Network() as net:
        a = nengo.Ensemble(5, 1)
        b = nengo.Ensemble(5, 1)
        node = nengo.Node(size_in=1)
        into_b = nengo.Connection(
            a, b, learning_rule_type=nengo_fa.FeedbackAlignment(1)
        )
        from_node = nengo.Connection(node, b)
    with pytest.raises(ValidationError, match="downstream"):
        nengo_fa.DifferenceTargetProp(into_b)  # FA gives no target
    with pytest.raises(ValidationError, match="downstream"):
        nengo_fa.DifferenceTargetProp(from_node)
    with pytest.raises(ValidationError, match="downstream"):
        nengo_fa.DifferenceTargetProp("readout")

    # another rule chained to a DTP rule: it would read a target as an error
    with nengo.Network() as net:
        stim = nengo.Node([0.5])
        a = nengo.Ensemble(5, 1)
        b = nengo.Ensemble(5, 1)
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(b, out, learning_rule_type=nengo.PES())
        a_to_b = nengo.Connection(
            a, b, learning_rule_type=nengo_fa.DifferenceTargetProp(readout)
        )
        nengo.Connection(stim, a, learning_rule_type=nengo_fa.BackProp(a_to_b))
        nengo.Connection(out, readout.learning_rule)
        nengo.Connection(out, a_to_b.learning_rule)
    with pytest.raises(BuildError, match="passes down a target"):
        with Simulator(net):
            pass

    # downstream leaving another ensemble than the one the rule trains
    with nengo.Network() as net:
        stim = nengo.Node([0.5])
        a = nengo.Ensemble(5, 1)
        b = nengo.Ensemble(5, 1)
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(b, out, learning_rule_type=nengo.PES())
        nengo.Connection(
            stim, a, learning_rule_type=nengo_fa.DifferenceTargetProp(readout)
        )
    with pytest.raises(BuildError, match="must start at"):
        with Simulator(net):
            pass


@pytest.mark.slow
def test_frozen_deep_network_beats_pes_only(Simulator, plt):
    """Trained 20 s on `deep_net` (two hidden layers), frozen, tested 10 s,
    in the same run as PES only (the readout alone), on seeds 0-4; the
    ensemble and connection seeds are explicit and the same for both.

    DTP's frozen error over PES only's, seeds 0-9, 11, 23, 42, 57, 91: 0.72,
    0.60, 0.72, 0.60, 1.56, 0.73, 0.53, 0.75, 0.59, 0.85, 1.11, 1.37, 1.05,
    0.49, 0.43. It beat PES only on 11 of those 15 seeds (geometric mean
    0.76), not on all, so the test asserts that: at least four of these
    five, and a geometric mean below 0.9 (measured 0.78). On seed 0 chained
    FA reached 0.0432 and DTP whose inverse does not learn (the top layer
    alone, by backprop's step) 0.0520, against DTP's 0.0516 and PES only's
    0.0721 (docs: theory, "Difference target propagation").
    """
    seeds, t_train, t_test = range(5), 20.0, 10.0
    frozen = {"pes only": [], "DTP": []}
    for seed in seeds:
        for name, kind in (("pes only", None), ("DTP", "dtp")):
            net = deep_net(kind, seed, freeze_at=t_train)
            error, _, _ = train_freeze_test(Simulator, net, t_train, t_test)
            frozen[name].append(error)
    for name, errors in frozen.items():
        plt.semilogy(list(seeds), errors, "o-", label=name)
    plt.xlabel("seed")
    plt.ylabel("frozen test MSE")
    plt.legend()
    print(frozen)
    ratio = np.array(frozen["DTP"]) / np.array(frozen["pes only"])
    assert np.count_nonzero(ratio < 1) >= 4, frozen
    assert np.exp(np.mean(np.log(ratio))) < 0.9, frozen
