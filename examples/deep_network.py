"""
Training a network with two hidden layers: BP, FA, DFA and readout only
=======================================================================

Two sine waves go through two hidden layers of rectified-linear neurons,
``stim -> h1 -> h2 -> out``, and a PES-learned readout must output their
product. The first hidden layer has only 10 neurons, so it limits what the
network can compute unless it is trained too. Four variants start from the
same network:

- **readout only**: `nengo.PES` on the readout, the hidden layers stay fixed;
- **BackProp**: ``BackProp(readout)`` trains ``h2`` with the error sent back
  through the readout, low-passed while PES trains it; ``BackProp(into_h2)``
  trains ``h1`` with the error backpropagated through the live weights into
  ``h2`` (chained: only the rule into ``h2`` is connected to the error);
- **FeedbackAlignment** (chained): ``FeedbackAlignment(out)`` trains ``h2``;
  ``FeedbackAlignment(downstream=into_h2)`` trains ``h1`` with ``h2``'s local
  error sent back through a fixed random matrix;
- **direct feedback alignment**: ``FeedbackAlignment(out)`` on both layers,
  both connected to the output error.

``nengo_fa.SignSymmetry`` can replace ``BackProp`` anywhere here.

Each variant trains for 40 s; then learning stops (the error that every rule
gets is gated to zero) and the frozen network is tested for 20 s, one full
period of the two sines.

Run it as a script to train and test the four variants and plot their errors
(``--save DIR`` saves the figure instead of showing it), or open it in Nengo
GUI (``nengo examples/deep_network.py``) to watch the chained backprop network
learn: its layout (``deep_network.py.cfg``) plots the error and the output
against the target, and its ``learning`` slider (1 on, 0 off) stops learning.
Set the environment variable ``NENGO_FA_EXAMPLE_SCALE`` to a number below 1
for a shorter run.
"""

import os

import nengo
import numpy as np

import nengo_fa
from nengo_fa.utils import gated_error, show_or_save, train_freeze_test

SCALE = float(os.environ.get("NENGO_FA_EXAMPLE_SCALE", "1"))

RULES = {
    None: "readout only",
    "bp": "BackProp",
    "fa": "FeedbackAlignment",
    "dfa": "direct feedback alignment",
}


def inputs(t):
    return [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)]


def product(x):
    return x[0] * x[1]


def build(rule="bp", seed=0, n1=10, n2=20, t_train=None):
    """The network, with ``rule`` in ``RULES`` on the hidden layers.

    All objects get seeds, so the variants start from the same network and
    differ only in how the hidden layers learn. The rules get the error times
    ``learning``: a constant 1 (a slider in Nengo GUI) or, given ``t_train``,
    1 until then and 0 after.
    """
    relu = nengo.RectifiedLinear()
    with nengo.Network(label=f"deep network ({RULES[rule]})", seed=seed) as net:
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

        if rule == "bp":
            rule_h2 = nengo_fa.BackProp(readout)
        elif rule in ("fa", "dfa"):
            rule_h2 = nengo_fa.FeedbackAlignment(error_size=net.out)
        else:
            rule_h2 = None
        into_h2 = nengo.Connection(
            net.h1, net.h2, learning_rule_type=rule_h2, seed=seed + 4
        )

        if rule == "bp":
            rule_h1 = nengo_fa.BackProp(into_h2)  # chained: error from h2's rule
        elif rule == "fa":
            rule_h1 = nengo_fa.FeedbackAlignment(downstream=into_h2)  # chained
        elif rule == "dfa":
            rule_h1 = nengo_fa.FeedbackAlignment(error_size=net.out)  # direct
        else:
            rule_h1 = None
        into_h1 = nengo.Connection(
            net.stim, net.h1, learning_rule_type=rule_h1, seed=seed + 5
        )

        # error = actual - target, as for nengo.PES
        net.error = nengo.Node(size_in=1, label="error")
        nengo.Connection(net.out, net.error)
        nengo.Connection(net.stim, net.error, function=product, transform=-1)
        # learning stops when the error that the rules get is gated to zero
        net.learning, gated = gated_error(net.error, t_train)
        nengo.Connection(gated, readout.learning_rule)
        if rule_h2 is not None:
            nengo.Connection(gated, into_h2.learning_rule)
        if rule == "dfa":  # every layer gets the output error directly
            nengo.Connection(gated, into_h1.learning_rule)

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
model = build("bp")


def main(t_train=40.0 * SCALE, t_test=20.0 * SCALE, seed=0):
    """Train each variant for ``t_train``, then test it frozen for ``t_test``.
    Returns the figure and each variant's frozen and online mean squared
    errors."""
    return train_freeze_test(
        build, RULES, t_train, t_test, "Learning the product, two hidden layers", seed
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument(
        "--save", metavar="DIR", help="save the figures in DIR instead of showing them"
    )
    args = parser.parse_args()
    main()
    show_or_save("deep_network", args.save)
