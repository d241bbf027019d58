"""
Learning a product with a trained hidden layer
==============================================

Two sine waves go into a hidden ensemble of 10 rectified-linear neurons, and a
PES-learned readout must output their product. The product is a nonlinear
function, and 10 neurons with random encoders represent it poorly. Training
the hidden layer's encoders, gains and biases too, with `nengo_fa.BackProp` or
`nengo_fa.FeedbackAlignment`, can give the readout better features.

What counts is what the network keeps: each variant trains for 40 s, then
learning stops (the error reaching the rules is gated to zero) and the frozen
network is tested for 20 s, one full period of the two sines, so on inputs it
trained on. The error with learning on (*online*) is lower than the frozen one
for every variant, because the learners also follow the most recent input;
see "Learning versus tracking" in the docs' theory page.

Run it as a script to train and test the three variants side by side and plot
their errors (``--save DIR`` saves the figure instead of showing it), or open
it in Nengo GUI (``nengo examples/learn_product.py``) to watch the
backpropagation network learn: its layout (``learn_product.py.cfg``) plots the
error and the output against the target, and the ``learning`` slider (1 on, 0
off) stops learning, to see what the network keeps. Set the environment
variable ``NENGO_FA_EXAMPLE_SCALE`` to a number below 1 for a shorter run.
"""

import os

import nengo
import numpy as np

import nengo_fa
from nengo_fa.utils import gated_error, show_or_save, train_freeze_test

SCALE = float(os.environ.get("NENGO_FA_EXAMPLE_SCALE", "1"))


def inputs(t):
    return [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)]


def product(x):
    return x[0] * x[1]


def build(rule="fa", seed=0, n_neurons=10, t_train=None):
    """The network, with ``rule`` in {"fa", "bp", None} on the hidden layer.

    All objects get seeds, so the three variants start from the same network
    and differ only in how the hidden layer learns. The rules get the error
    times ``learning``: a constant 1 (a slider in Nengo GUI) or, given
    ``t_train``, 1 until then and 0 after.
    """
    with nengo.Network(label=f"learn product ({rule})", seed=seed) as net:
        net.stim = nengo.Node(inputs, label="input")
        net.hidden = nengo.Ensemble(
            n_neurons,
            2,
            neuron_type=nengo.RectifiedLinear(),
            seed=seed + 1,
            label="hidden",
        )
        net.out = nengo.Node(size_in=1, label="output")
        readout = nengo.Connection(
            net.hidden,
            net.out,
            function=lambda x: 0,
            learning_rule_type=nengo.PES(),
            seed=seed + 2,
        )
        if rule == "fa":
            rule_type = nengo_fa.FeedbackAlignment(error_size=net.out)
        elif rule == "bp":
            rule_type = nengo_fa.BackProp(readout)
        else:
            rule_type = None
        net.layer1 = nengo.Connection(
            net.stim, net.hidden, learning_rule_type=rule_type, seed=seed + 3
        )

        # error = actual - target, as for nengo.PES
        net.error = nengo.Node(size_in=1, label="error")
        nengo.Connection(net.out, net.error)
        nengo.Connection(net.stim, net.error, function=product, transform=-1)
        # learning stops when the error that the rules get is gated to zero
        net.learning, gated = gated_error(net.error, t_train)
        nengo.Connection(gated, readout.learning_rule)
        if rule_type is not None:
            nengo.Connection(gated, net.layer1.learning_rule)

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
    """Train each variant for ``t_train``, then test it frozen for ``t_test``
    (one period of the input at full length). Returns the figure and each
    variant's frozen and online mean squared errors."""
    variants = {None: "PES only", "fa": "FeedbackAlignment", "bp": "BackProp"}
    return train_freeze_test(
        build, variants, t_train, t_test, "Learning the product", seed=seed
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument(
        "--save", metavar="DIR", help="save the figures in DIR instead of showing them"
    )
    args = parser.parse_args()
    main()
    show_or_save("learn_product", args.save)
