"""
Learning a product with a trained hidden layer
==============================================

Two sine waves go into a hidden ensemble of 10 rectified-linear neurons, and a
PES-learned readout must output their product. The product is a nonlinear
function, and 10 neurons with random encoders represent it poorly: PES alone
soon stops improving. Training the hidden layer's encoders, gains and biases
too, with `nengo_fa.FeedbackAlignment` or `nengo_fa.BackProp`, lowers the error
much further.

Run it as a script to train the three variants side by side and plot their
errors (``--save DIR`` saves the figure instead of showing it), or open it in
Nengo GUI (``nengo examples/learn_product.py``) to watch the
feedback-alignment network learn: its layout (``learn_product.py.cfg``) plots
the error and the output against the target. Set the environment variable
``NENGO_FA_EXAMPLE_SCALE`` to a number below 1 for a shorter run.
"""

import os

import nengo
import numpy as np

import nengo_fa
from nengo_fa.utils import show_or_save

SCALE = float(os.environ.get("NENGO_FA_EXAMPLE_SCALE", "1"))


def inputs(t):
    return [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)]


def product(x):
    return x[0] * x[1]


def build(rule="fa", seed=0, n_neurons=10):
    """The network, with ``rule`` in {"fa", "bp", None} on the hidden layer.

    All objects get seeds, so the three variants start from the same network
    and differ only in how the hidden layer learns.
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
        nengo.Connection(net.error, readout.learning_rule)
        if rule_type is not None:
            nengo.Connection(net.error, net.layer1.learning_rule)

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
model = build("fa")


def main(sim_time=60.0 * SCALE, seed=0):
    import matplotlib.pyplot as plt

    labels = {None: "PES only", "fa": "FeedbackAlignment", "bp": "BackProp"}
    fig, (ax_err, ax_out) = plt.subplots(2, 1, figsize=(9, 7), layout="constrained")
    final_mse = {}
    window = min(5.0, sim_time / 6)
    for rule, label in labels.items():
        net = build(rule, seed=seed)
        with nengo.Simulator(net) as sim:
            sim.run(sim_time)
        t = sim.trange()
        err = sim.data[net.p_error][:, 0]
        final_mse[label] = np.mean(err[t > sim_time - min(10, sim_time / 2)] ** 2)
        # squared error averaged over 5-s windows (the input repeats every 20 s;
        # shorter windows in a shortened run)
        steps = int(round(window / sim.dt))
        n_windows = len(err) // steps
        mse = np.mean(err[: n_windows * steps].reshape(n_windows, steps) ** 2, 1)
        ax_err.semilogy(window * (np.arange(n_windows) + 1), mse, "o-", label=label)
        last = t > sim_time - window
        ax_out.plot(t[last], sim.data[net.p_out][last, 0], label=label)
    ax_out.plot(t[last], sim.data[net.p_target][last, 0], "k--", label="target")
    ax_err.set_xlabel("time (s)")
    ax_err.set_ylabel(f"mean squared error ({window:g}-s windows)")
    ax_err.set_title("Error while learning the product")
    ax_out.set_xlabel("time (s)")
    ax_out.set_ylabel("output")
    ax_out.set_title(f"Output over the last {window:g} s")
    # one legend for both panels, above them, where it hides no data
    fig.legend(*ax_out.get_legend_handles_labels(), loc="outside upper center", ncol=4)

    for label, value in final_mse.items():
        print(f"{label:>18}: final MSE {value:.5f}")
    return fig, final_mse


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument(
        "--save", metavar="DIR", help="save the figures in DIR instead of showing them"
    )
    args = parser.parse_args()
    main()
    show_or_save("learn_product", args.save)
