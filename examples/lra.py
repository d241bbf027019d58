"""
Local representation alignment from small initial weights: LRA, FA, readout only
================================================================================

Two sine waves go through two hidden layers of rectified-linear neurons,
``stim -> h1 -> h2 -> out``, and a PES-learned readout must output their
product. ``h1`` reaches ``h2`` through a full neuron-to-neuron weight matrix
that starts almost empty (standard deviation 1e-5), so ``h2`` at first
carries next to nothing of the input: the hidden layers must learn. Three
variants start from the same network:

- **readout only**: `nengo.PES` on the readout, the hidden layers stay fixed;
- **FeedbackAlignment** (chained): ``FeedbackAlignment(out,
  modifies="weights")`` learns the weights into ``h2``;
  ``FeedbackAlignment(downstream=into_h2)`` trains ``h1`` with ``h2``'s local
  error sent back through a fixed random matrix;
- **LRA** (chained, Ororbia et al. 2018): the same, but each layer's local
  error is the saturating (Cauchy) mismatch between its activity and a target
  activity that the fed-back error sets, with a bound on its norm.

Each variant trains for 40 s; then learning stops (the error that every rule
gets is gated to zero) and the frozen network is tested for 20 s, one full
period of the two sines.

Run it as a script to train and test the three variants and plot their
errors (``--save DIR`` saves the figure instead of showing it), or open it in
Nengo GUI (``nengo examples/lra.py``) to watch the LRA network learn: its
layout (``lra.py.cfg``) plots the error and the output against the target,
and its ``learning`` slider (1 on, 0 off) stops learning. Set the
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
    None: "readout only",
    "fa": "FeedbackAlignment",
    "lra": "LRA",
}
RULE_TYPES = {"fa": nengo_fa.FeedbackAlignment, "lra": nengo_fa.LRA}


def inputs(t):
    return [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)]


def product(x):
    return x[0] * x[1]


def build(rule="lra", seed=0, n1=10, n2=20, weight_scale=1e-5, t_train=None):
    """The network, with ``rule`` in ``RULES`` on the hidden layers.

    All objects get seeds, so the variants start from the same network and
    differ only in how the hidden layers learn. The rules get the error times
    ``learning``: a constant 1 (a slider in Nengo GUI) or, given ``t_train``,
    1 until then and 0 after.
    """
    relu = nengo.RectifiedLinear()
    rng = np.random.RandomState(seed)
    rule_type = RULE_TYPES.get(rule)
    with nengo.Network(label=f"LRA example ({RULES[rule]})", seed=seed) as net:
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
        into_h2 = nengo.Connection(
            net.h1.neurons,
            net.h2.neurons,
            transform=rng.normal(scale=weight_scale, size=(n2, n1)),
            learning_rule_type=(
                None if rule is None else rule_type(net.out, modifies="weights")
            ),
            seed=seed + 4,
        )
        nengo.Connection(
            net.stim,
            net.h1,
            # chained: h1's rule takes its error from h2's
            learning_rule_type=(
                None if rule is None else rule_type(downstream=into_h2)
            ),
            seed=seed + 5,
        )

        # error = actual - target, as for nengo.PES
        net.error = nengo.Node(size_in=1, label="error")
        nengo.Connection(net.out, net.error)
        nengo.Connection(net.stim, net.error, function=product, transform=-1)
        # learning stops when the error that the rules get is gated to zero
        net.learning, gated = gated_error(net.error, t_train)
        nengo.Connection(gated, readout.learning_rule)
        if rule is not None:
            nengo.Connection(gated, into_h2.learning_rule)

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
model = build("lra")


def main(t_train=40.0 * SCALE, t_test=20.0 * SCALE, seed=0):
    """Train each variant for ``t_train``, then test it frozen for ``t_test``.
    Returns the figure and each variant's frozen and online mean squared
    errors."""
    fig, results = train_freeze_test(
        build,
        RULES,
        t_train,
        t_test,
        "Learning the product from small initial weights",
        seed,
    )
    print(f"{'variant':<18} {'frozen MSE':>10} {'online MSE':>10}")
    for label, value in results.items():
        print(f"{label:<18} {value['frozen']:>10.4f} {value['online']:>10.4f}")
    return fig, results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument(
        "--save", metavar="DIR", help="save the figures in DIR instead of showing them"
    )
    args = parser.parse_args()
    main()
    show_or_save("lra", args.save)
