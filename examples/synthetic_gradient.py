"""
Learning from a sparse teacher with synthetic gradients
=======================================================

The product task of ``learn_product.py``, but the teacher is sparse: the
error reaches the learning rules on only 5% of the time steps (chosen at
random), and is 0 on the others. The PES readout and a
`nengo_fa.FeedbackAlignment` hidden layer learn only on the steps that carry
an error, so they learn 20 times more slowly. A `nengo_fa.SyntheticGradient`
hidden layer learns on every step from a *predicted* feedback error
:math:`M [a; c]` (its activities and the target as context), and uses the
sparse true error only to train the predictor :math:`M` (Jaderberg et al.
2017).

What counts is what the network keeps: each variant trains for 40 s, then
learning stops (the error is gated to zero) and the frozen network is tested
for 20 s, one full period of the two sines. The synthetic updates stop
``max_gap`` (0.1 s) after the last error, so the frozen test leaves out the
first 0.15 s.

Run it as a script to train and test the three variants side by side and plot
their errors (``--save DIR`` saves the figure instead of showing it), or open
it in Nengo GUI (``nengo examples/synthetic_gradient.py``) to watch the
synthetic-gradient network learn; the ``learning`` slider (1 on, 0 off) stops
learning. Set the environment variable ``NENGO_FA_EXAMPLE_SCALE`` to a number
below 1 for a shorter run.
"""

import os

import nengo
import numpy as np

import nengo_fa
from nengo_fa.utils import gated_error, show_or_save

SCALE = float(os.environ.get("NENGO_FA_EXAMPLE_SCALE", "1"))
FRACTION = 0.05  # of the time steps that carry an error


def inputs(t):
    return [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)]


def product(t, x):
    return x[0] * x[1]


class Sparse:
    """Passes its input on a random ``fraction`` of the steps, 0 on the others
    (the same steps in every run from t = 0)."""

    def __init__(self, fraction, seed):
        self.fraction, self.seed = fraction, seed
        self.rng, self.last_t = None, np.inf

    def __call__(self, t, x):
        if t <= 0:
            return 0 * x  # Nengo's call at build time, to find the output size
        if t < self.last_t:  # a new run, or a reset
            self.rng = np.random.RandomState(self.seed)
        self.last_t = t
        return x if self.rng.uniform() < self.fraction else 0 * x


def build(rule="sg", seed=0, n_neurons=20, t_train=None):
    """The network, with ``rule`` in {"sg", "fa", None} on the hidden layer;
    every rule gets the same sparse error, which stops at ``t_train``."""
    with nengo.Network(label=f"sparse teacher ({rule})", seed=seed) as net:
        net.stim = nengo.Node(inputs, label="input")
        net.target = nengo.Node(product, size_in=2, label="target")
        nengo.Connection(net.stim, net.target, synapse=None)
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
        if rule == "sg":
            # the target is the context: what the predictor cannot get from
            # the activities alone (the nonlinear part of the error)
            rule_type = nengo_fa.SyntheticGradient(error_size=1, context=net.target)
        elif rule == "fa":
            rule_type = nengo_fa.FeedbackAlignment(error_size=1)
        else:
            rule_type = None
        net.layer1 = nengo.Connection(
            net.stim, net.hidden, learning_rule_type=rule_type, seed=seed + 3
        )

        # error = actual - target, gated, then sparse; no synapse after the
        # sparse node, so that a missing error is exactly 0
        net.error = nengo.Node(size_in=1, label="error")
        nengo.Connection(net.out, net.error)
        nengo.Connection(net.target, net.error, transform=-1)
        net.learning, gated = gated_error(net.error, t_train)
        sparse = nengo.Node(Sparse(FRACTION, seed + 4), size_in=1, label="sparse")
        nengo.Connection(gated, sparse, synapse=None)
        nengo.Connection(sparse, readout.learning_rule, synapse=None)
        if rule_type is not None:
            nengo.Connection(sparse, net.layer1.learning_rule, synapse=None)

        net.compare = nengo.Node(size_in=2, label="output and target")
        nengo.Connection(net.out, net.compare[0], synapse=None)
        nengo.Connection(net.target, net.compare[1], synapse=None)
        net.p_error = nengo.Probe(net.error, synapse=0.01)
    return net


# Nengo GUI loads the module-level `model`
model = build("sg")


def main(t_train=40.0 * SCALE, t_test=20.0 * SCALE, seeds=(0,)):
    """Train each variant for ``t_train``, then test it frozen for ``t_test``.
    Returns the figure and, per variant, the frozen and online mean squared
    errors of every seed."""
    import matplotlib.pyplot as plt

    variants = {None: "PES only", "fa": "FeedbackAlignment", "sg": "SyntheticGradient"}
    skip = 0.05 + nengo_fa.SyntheticGradient.max_gap.default
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    results = {}
    for rule, label in variants.items():
        results[label] = {"frozen": [], "online": []}
        for seed in seeds:
            net = build(rule, seed=seed, t_train=t_train)
            with nengo.Simulator(net, progress_bar=False) as sim:
                sim.run(t_train + t_test)
            t, err = sim.trange(), sim.data[net.p_error][:, 0]
            results[label]["frozen"].append(
                float(np.mean(err[t > t_train + skip] ** 2))
            )
            on = (t > 0.75 * t_train) & (t <= t_train)
            results[label]["online"].append(float(np.mean(err[on] ** 2)))
        steps = max(len(err) // 200, 1)
        smooth = np.convolve(err**2, np.ones(steps) / steps, mode="same")
        ax.plot(t, smooth, label=f"{label} (frozen {results[label]['frozen'][-1]:.4f})")
    ax.axvline(t_train, color="k", linestyle=":", label="learning stops")
    ax.set(xlabel="time (s)", ylabel="squared error", yscale="log")
    ax.set_title(f"Error on {FRACTION:.0%} of the steps: squared error (smoothed)")
    # beside the axes, where it hides no curve
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    for label, r in results.items():
        print(
            f"{label:>18}: frozen {np.mean(r['frozen']):.4f} "
            f"(worst {np.max(r['frozen']):.4f}), online {np.mean(r['online']):.4f}"
        )
    return fig, results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument(
        "--save", metavar="DIR", help="save the figures in DIR instead of showing them"
    )
    args = parser.parse_args()
    main()
    show_or_save("synthetic_gradient", args.save)
