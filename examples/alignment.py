"""
How well does the feedback align? FA, Kolen-Pollack, SA, AA, BD and BP
======================================================================

One hidden layer of 30 rectified-linear neurons learns the product of two
sines, with a PES readout. Its rule sends the error back through a feedback
matrix B in place of the readout's transposed decoders D^T:

- FA: B fixed and random (Lillicrap et al. 2016);
- KP: B gets the readout's own update, transposed (Akrout et al.
  2019);
- SA: Symmetric Alignment, B relaxes toward D^T (Kunin et al. 2020);
- AA: Activation Alignment, B learns from hidden and output activity only;
- BD: bidirectional, B learns to reconstruct the hidden activity from the
  output (Luo et al. 2017). Its fixed point is a right inverse of D, not
  D^T: its angle to D^T stays well above 0, and while B is still learning
  it can swing past 90 degrees (here up to about 115, around 2 s);
- BP: B = D^T exactly (angle 0 by construction).

Run it as a script to plot, over training, the angle between B and D^T and
the angle between each rule's local error and backprop's (``--save DIR``
saves the figure instead of showing it). Open it in Nengo GUI
(``nengo examples/alignment.py``) to watch the Kolen-Pollack network: its
layout (``alignment.py.cfg``) plots the error and the angle between B and
D^T, which the node ``feedback angle`` passes on from the rule (Nengo GUI
plots nodes and ensembles, not learning-rule probes). Set the environment
variable ``NENGO_FA_EXAMPLE_SCALE`` to a number below 1 for a
shorter run.
"""

import os

import nengo
import numpy as np
from nengo.builder import Builder
from nengo.builder.operator import SimPyFunc

import nengo_fa
from nengo_fa.utils import show_or_save

SCALE = float(os.environ.get("NENGO_FA_EXAMPLE_SCALE", "1"))
FEEDBACK_LEARNING = {
    "FA": None,
    "KP": nengo_fa.KolenPollack(),
    "SA": nengo_fa.SymmetricAlignment(),
    "AA": nengo_fa.ActivationAlignment(),
    "BD": nengo_fa.BidirectionalAlignment(),
}


class RuleSignal:
    """A node's output: the live value of a learning rule's probeable signal.

    Nengo GUI plots the output of nodes and ensembles, but not probes, so it
    cannot show a rule's ``feedback_angle``. This passes it on: a `SignalTap`
    probe (built after the rule) copies the signal into ``value`` every step,
    and the node outputs it (one step late). A node's output must be finite:
    while the angle is undefined (NaN, as long as D = 0), this gives ``undefined``.
    """

    def __init__(self, rule, attr, undefined=90.0):
        self.undefined = undefined
        self.value = np.full(1, undefined)
        self.tap = SignalTap(rule, attr, self)

    def __call__(self, t):
        return self.value


class SignalTap(nengo.Probe):
    """A probe that writes its target's value into ``receiver.value``.

    It records nothing (``sim.data`` has no entry for it); it only makes the
    value available to a node, through the build function below.
    """

    def __init__(self, target, attr, receiver):
        super().__init__(target, attr)
        self.receiver = receiver


@Builder.register(SignalTap)
def build_signal_tap(model, tap):
    signal = model.sig[tap.target][tap.attr]

    def copy(x):
        tap.receiver.value[...] = np.where(np.isfinite(x), x, tap.receiver.undefined)

    model.add_op(SimPyFunc(None, copy, None, signal))


def build(feedback_learning=None, seed=0, n_neurons=30):
    with nengo.Network(label="alignment", seed=seed) as net:
        stim = nengo.Node(
            lambda t: [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)], label="input"
        )
        hidden = nengo.Ensemble(
            n_neurons,
            2,
            neuron_type=nengo.RectifiedLinear(),
            seed=seed + 1,
            label="hidden",
        )
        out = nengo.Node(size_in=1, label="output")
        readout = nengo.Connection(
            hidden,
            out,
            function=lambda x: 0,
            learning_rule_type=nengo.PES(),
            seed=seed + 2,
            label="readout",
        )
        # downstream=readout: B stands in for the readout's decoders, so the
        # rule can learn it and measure its alignment
        layer1 = nengo.Connection(
            stim,
            hidden,
            learning_rule_type=nengo_fa.FeedbackAlignment(
                downstream=readout,
                # on the decoders' scale, so that KP's updates can turn it
                feedback=nengo.dists.Gaussian(0, 1e-4),
                feedback_learning=feedback_learning,
            ),
            seed=seed + 3,
            label="layer 1",
        )
        error = nengo.Node(size_in=1, label="error")
        nengo.Connection(out, error)
        nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
        nengo.Connection(error, readout.learning_rule)
        nengo.Connection(error, layer1.learning_rule)

        net.p_feedback_angle = nengo.Probe(
            layer1.learning_rule, "feedback_angle", sample_every=0.05
        )
        # unfiltered: the angles are NaN while undefined (D = 0 at first),
        # and a synapse would carry that NaN forward
        net.p_delta_angle = nengo.Probe(
            layer1.learning_rule, "delta_angle", sample_every=0.01
        )
        net.p_error = nengo.Probe(error, synapse=None)

        # for Nengo GUI, which can only plot nodes and ensembles
        net.error = error
        net.compare = nengo.Node(size_in=2, label="output and target")
        nengo.Connection(out, net.compare[0], synapse=None)
        nengo.Connection(
            stim, net.compare[1], function=lambda x: x[0] * x[1], synapse=None
        )
        net.angle = nengo.Node(
            RuleSignal(layer1.learning_rule, "feedback_angle"),
            label="feedback angle",
        )
    return net


# Nengo GUI loads the module-level `model`
model = build(FEEDBACK_LEARNING["KP"])


def finite_mean(values):
    """Mean of the finite values (angles are NaN while undefined)."""
    values = values[np.isfinite(values)]
    return values.mean() if values.size > 0 else np.nan


def smooth(values, width):
    """Running mean over ``width`` samples of the finite values."""
    finite = np.isfinite(values)
    kernel = np.ones(min(width, len(values)))
    total = np.convolve(np.where(finite, values, 0.0), kernel, mode="same")
    count = np.convolve(finite.astype(float), kernel, mode="same")
    return np.divide(total, count, out=np.full(len(values), np.nan), where=count > 0)


def main(sim_time=20.0 * SCALE, seed=0):
    import matplotlib.pyplot as plt

    fig, (ax_b, ax_delta) = plt.subplots(
        2, 1, figsize=(9, 7), sharex=True, layout="constrained"
    )
    summary = {}
    for name, feedback_learning in FEEDBACK_LEARNING.items():
        net = build(feedback_learning, seed=seed)
        with nengo.Simulator(net) as sim:
            sim.run(sim_time)
        t = sim.trange(sample_every=0.05)
        b_angle = sim.data[net.p_feedback_angle][:, 0]
        t_delta = sim.trange(sample_every=0.01)
        # the local errors' angle changes from step to step: 1-s running mean
        d_angle = smooth(sim.data[net.p_delta_angle][:, 0], 100)
        ax_b.plot(t, b_angle, label=name)
        ax_delta.plot(t_delta, d_angle, label=name)
        err = sim.data[net.p_error][:, 0]
        summary[name] = (
            finite_mean(b_angle[t > 0.9 * sim_time]),
            finite_mean(d_angle[t_delta > 0.9 * sim_time]),
            np.mean(err[sim.trange() > 0.75 * sim_time] ** 2),
        )
    for ax in (ax_b, ax_delta):
        ax.axhline(0, color="k", lw=1, label="BP (0 by construction)")
        ax.axhline(90, color="gray", ls="--", lw=1, label="90: orthogonal")
        ax.set_ylim(-5, 145)  # above 90: no descent (BD's early swing)
    ax_b.set_ylabel("angle(B, D^T) (deg)")
    ax_b.set_title("Angle between the feedback B and the readout's D^T")
    ax_delta.set_ylabel("angle (deg), 1-s mean")
    ax_delta.set_title("Angle between each rule's local error and backprop's")
    ax_delta.set_xlabel("time (s)")
    fig.suptitle("How well does the feedback align?")
    # one legend for both panels, below them, where it hides no data
    fig.legend(*ax_b.get_legend_handles_labels(), loc="outside lower center", ncol=7)

    # the error with learning on: how these rules compare once learning stops
    # is measured in benchmarks/generalisation.py
    print(f"{'rule':>4} {'B angle':>8} {'delta angle':>12} {'online MSE':>11}")
    for name, (b, d, mse) in summary.items():
        print(f"{name:>4} {b:8.1f} {d:12.1f} {mse:11.5f}")
    return fig, summary


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument(
        "--save", metavar="DIR", help="save the figures in DIR instead of showing them"
    )
    args = parser.parse_args()
    main()
    show_or_save("alignment", args.save)
