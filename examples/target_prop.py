"""
Difference target propagation through two hidden layers
=======================================================

The two-hidden-layer network of the deep-network example, ``stim -> h1 ->
h2 -> out`` with a PES readout of the product of two sines, trained four
ways from the same network:

- **PES only**: the readout learns, the hidden layers stay fixed;
- **DifferenceTargetProp**: ``DifferenceTargetProp(readout)`` gives ``h2``
  the target :math:`\\hat h_2 = h_2 - \\alpha D^T e` (a small step against the
  output error through the readout's decoders :math:`D`) and moves it toward
  it; ``DifferenceTargetProp(into_h2)`` gives ``h1`` the difference target
  :math:`\\hat h_1 = h_1 - Q (h_2 - \\hat h_2)` through :math:`Q`, a learned
  inverse of the layer ``h1 -> h2``, trained online from ``h2``'s noisy
  activities to ``h1``'s;
- **FeedbackAlignment** (chained) and **BackProp** (chained), for reference.

Each variant trains for 40 s; then learning stops (the error that every rule
gets is gated to zero) and the frozen network is tested for 20 s, one full
period of the two sines. A second figure shows what the DTP network learned
besides: how well its inverse reconstructs ``h1`` from ``h2`` (relative
error), and how far ``h1``'s target is from its activities.

Run it as a script to train and test the variants and plot their errors
(``--save DIR`` saves the figures instead of showing them), or open it in
Nengo GUI (``nengo examples/target_prop.py``) to watch the DTP network learn:
its layout (``target_prop.py.cfg``) plots the error and the output against
the target, and its ``learning`` slider (1 on, 0 off) stops learning. Set the
environment variable ``NENGO_FA_EXAMPLE_SCALE`` to a number below 1 for a
shorter run.
"""

import os

import nengo
import numpy as np

import nengo_fa
from nengo_fa.utils import gated_error, show_or_save, train_freeze_test

SCALE = float(os.environ.get("NENGO_FA_EXAMPLE_SCALE", "1"))

RULES = {
    None: "PES only",
    "dtp": "DifferenceTargetProp",
    "fa": "FeedbackAlignment",
    "bp": "BackProp",
}


def inputs(t):
    return [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)]


def product(x):
    return x[0] * x[1]


def upper_rule(rule, readout, out):
    """The rule on ``h1 -> h2``, whose error is the output error."""
    return {
        "dtp": lambda: nengo_fa.DifferenceTargetProp(readout),
        "bp": lambda: nengo_fa.BackProp(readout),
        "fa": lambda: nengo_fa.FeedbackAlignment(error_size=out),
        None: lambda: None,
    }[rule]()


def lower_rule(rule, into_h2):
    """The rule on ``stim -> h1``, chained to the rule on ``into_h2``."""
    return {
        "dtp": lambda: nengo_fa.DifferenceTargetProp(into_h2),
        "bp": lambda: nengo_fa.BackProp(into_h2),
        "fa": lambda: nengo_fa.FeedbackAlignment(downstream=into_h2),
        None: lambda: None,
    }[rule]()


def build(rule="dtp", seed=0, n1=10, n2=20, t_train=None):
    """The network, with ``rule`` in ``RULES`` on both hidden layers (the
    lower rule chained to the upper, which alone gets the output error).

    All objects get seeds, so the variants start from the same network. The
    rules get the error times ``learning``: a constant 1 (a slider in Nengo
    GUI) or, given ``t_train``, 1 until then and 0 after.
    """
    relu = nengo.RectifiedLinear()
    with nengo.Network(label=f"target propagation ({RULES[rule]})", seed=seed) as net:
        net.stim = nengo.Node(inputs, label="input")
        net.h1 = nengo.Ensemble(n1, 2, neuron_type=relu, seed=seed + 1, label="h1")
        net.h2 = nengo.Ensemble(n2, 2, neuron_type=relu, seed=seed + 2, label="h2")
        net.out = nengo.Node(size_in=1, label="output")
        readout = nengo.Connection(
            net.h2,
            net.out,
            function=lambda x: 0,
            learning_rule_type=nengo.PES(),
            seed=seed + 3,
        )
        rule_h2 = upper_rule(rule, readout, net.out)
        net.into_h2 = nengo.Connection(
            net.h1, net.h2, learning_rule_type=rule_h2, seed=seed + 4
        )
        # made once into_h2 carries its rule, which it takes its error from
        net.into_h1 = nengo.Connection(
            net.stim,
            net.h1,
            learning_rule_type=lower_rule(rule, net.into_h2),
            seed=seed + 5,
        )

        # error = actual - target, as for nengo.PES
        net.error = nengo.Node(size_in=1, label="error")
        nengo.Connection(net.out, net.error)
        nengo.Connection(net.stim, net.error, function=product, transform=-1)
        # learning stops when the error that the rules get is gated to zero
        net.learning, gated = gated_error(net.error, t_train)
        nengo.Connection(gated, readout.learning_rule)
        if rule_h2 is not None:  # the lower rule is chained: no connection
            nengo.Connection(gated, net.into_h2.learning_rule)

        net.target = nengo.Node(size_in=1, label="target")
        nengo.Connection(net.stim, net.target, function=product, synapse=None)
        # both in one node, for one plot in Nengo GUI
        net.compare = nengo.Node(size_in=2, label="output and target")
        nengo.Connection(net.out, net.compare[0], synapse=None)
        nengo.Connection(net.target, net.compare[1], synapse=None)
        net.p_error = nengo.Probe(net.error, synapse=0.01)
        net.p_out = nengo.Probe(net.out, synapse=0.01)
        net.p_target = nengo.Probe(net.target, synapse=0.01)
    return net


# Nengo GUI loads the module-level `model`
model = build("dtp")


def inverse_and_targets(t_train, seed=0):
    """Train the DTP network for ``t_train``; plot its inverse's relative
    reconstruction error and the size of ``h1``'s displacement
    :math:`|h_1 - \\hat h_1|` relative to :math:`|h_1|`. Returns the
    figure and the mean reconstruction error over the last quarter."""
    import matplotlib.pyplot as plt

    net = build("dtp", seed=seed, t_train=t_train)
    rule = net.into_h1.learning_rule
    with net:
        p_rho = nengo.Probe(rule, "reconstruction_error", synapse=0.1)
        p_disp = nengo.Probe(rule, "displacement", synapse=0.1)
        p_h1 = nengo.Probe(rule, "activities", synapse=0.1)
    with nengo.Simulator(net) as sim:
        sim.run(t_train)
    t = sim.trange()
    h1 = np.linalg.norm(sim.data[p_h1], axis=1)
    moved = np.linalg.norm(sim.data[p_disp], axis=1) / np.maximum(h1, 1e-12)
    fig, (ax_rho, ax_disp) = plt.subplots(2, 1, figsize=(9, 6), layout="constrained")
    ax_rho.plot(t, sim.data[p_rho][:, 0])
    ax_rho.set_ylabel("inverse: |Q h2 + c - h1| / |h1|")
    ax_rho.set_ylim(0, 1.2)
    ax_disp.semilogy(t, moved)
    ax_disp.set_ylabel("|h1 - target| / |h1|")
    ax_disp.set_xlabel("time (s)")
    fig.suptitle("DifferenceTargetProp: the learned inverse and h1's target")
    fig.set_label("inverse")
    last = t > 0.75 * t_train
    return fig, float(np.mean(sim.data[p_rho][last, 0]))


def main(t_train=40.0 * SCALE, t_test=20.0 * SCALE, seed=0):
    """Train each variant for ``t_train``, then test it frozen for ``t_test``.
    Returns the figures, each variant's frozen and online mean squared errors
    and the DTP inverse's final reconstruction error."""
    fig, errors = train_freeze_test(
        build, RULES, t_train, t_test, "Difference target propagation", seed
    )
    fig_inverse, reconstruction = inverse_and_targets(t_train, seed)
    for label, value in errors.items():
        print(
            f"{label:>22}: frozen MSE {value['frozen']:.4f}, "
            f"online {value['online']:.4f}"
        )
    print(f"DTP inverse, relative reconstruction error: {reconstruction:.2f}")
    return (fig, errors), reconstruction


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument(
        "--save", metavar="DIR", help="save the figures in DIR instead of showing them"
    )
    args = parser.parse_args()
    main()
    show_or_save("target_prop", args.save)
