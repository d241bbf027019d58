"""
Online classification of handwritten digits with a spiking hidden layer
=======================================================================

scikit-learn's ``load_digits`` images (8 x 8 pixels, 10 classes) are shown one
at a time, for 30 ms each, to a hidden ensemble of 50 spiking `nengo.LIF`
neurons. A PES-learned readout maps the hidden layer to 10 outputs, one per
class, and the error is *output minus one-hot label*, as for `nengo.PES`.
Three copies of the network, identical at the start, differ only in how the
hidden layer learns from that error:

- ``FeedbackAlignment``: `nengo_fa.FeedbackAlignment` on the connection into
  the hidden ensemble (the error reaches it through a fixed random matrix);
- ``BackProp``: `nengo_fa.BackProp` (the error reaches it through the live
  readout weights);
- ``PES only``: no hidden-layer learning; only the readout learns.

Every fourth image comes from a held-out test set, and learning is switched
off while it is shown (the error is gated to zero), so the accuracy on those
images measures generalisation as training goes on. The error is also gated
off for the first 10 ms of each image, while the output still reflects the
previous one. With 50 neurons, random encoders represent the 64-pixel images
poorly, and learning the encoders, gains and biases gives the readout much
better features.

Run it as a script (``python examples/digits.py``, under a minute) to
train the three networks side by side and plot their test accuracy over
training (``--save DIR`` saves the figures instead of showing them), or open
it in Nengo GUI (``nengo examples/digits.py``) to watch them learn; the layout
that comes with it (``digits.py.cfg``) shows the digit being presented, the
one-hot label, and the output and error of the feedback-alignment network.
Set the environment variable ``NENGO_FA_EXAMPLE_SCALE`` to a fraction to
shorten the run (the tests use 0.1).
"""

import os

import nengo
import numpy as np
from sklearn.datasets import load_digits

import nengo_fa
from nengo_fa.utils import show_or_save

# Fraction of the full run length (3000 images); the tests and docs shorten it.
SCALE = float(os.environ.get("NENGO_FA_EXAMPLE_SCALE", "1"))

T_PRESENT = 0.03  # seconds per image
T_SETTLE = 0.01  # no learning at the start of each image
TEST_EVERY = 4  # every fourth image is a held-out test image, without learning
N_TRAIN = 1437  # of 1797 images: 80% to train, 20% held out
RULES = ("FeedbackAlignment", "BackProp", "PES only")


def load_data(seed=0):
    """The digits, shuffled: raw pixels (0 to 16), inputs (centred on the
    training mean, unit norm) and labels.
    """
    pixels, labels = load_digits(return_X_y=True)
    order = np.random.RandomState(seed).permutation(len(labels))
    pixels, labels = pixels[order], labels[order]
    images = pixels - pixels[:N_TRAIN].mean(axis=0)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    return pixels, images, labels


class Schedule:
    """Which image is shown when, and whether the network may learn from it.

    Presentation ``k`` shows a test image if ``k % TEST_EVERY`` is
    ``TEST_EVERY - 1`` and a training image otherwise, each set in turn.
    """

    def __init__(self, n_presentations, seed=0):
        pixels, images, labels = load_data(seed)
        train = np.arange(N_TRAIN)
        test = np.arange(N_TRAIN, len(labels))
        k = np.arange(n_presentations)
        self.is_test = k % TEST_EVERY == TEST_EVERY - 1
        index = np.empty(n_presentations, dtype=int)
        index[~self.is_test] = np.resize(train, np.sum(~self.is_test))
        index[self.is_test] = np.resize(test, np.sum(self.is_test))
        self.pixels = pixels[index]
        self.images = images[index]
        self.labels = labels[index]
        self.targets = np.eye(10)[self.labels]
        self.n_presentations = n_presentations

    @property
    def sim_time(self):
        return self.n_presentations * T_PRESENT

    def presentation(self, t):
        # the small offset makes t = k * T_PRESENT (end of image k-1) belong to k-1
        k = int((t - 1e-9) / T_PRESENT)
        return min(max(k, 0), self.n_presentations - 1)

    def target(self, t):
        return self.targets[self.presentation(t)]

    def gate(self, t):
        k = self.presentation(t)
        learn = not self.is_test[k] and t - k * T_PRESENT > T_SETTLE
        return 1.0 if learn else 0.0

    def svg(self, k):
        """Presentation ``k`` as an SVG picture, for Nengo GUI."""
        squares = "".join(
            f'<rect x="{i % 8}" y="{i // 8}" width="1" height="1" '
            f'fill-opacity="{value / 16:.2f}"/>'
            for i, value in enumerate(self.pixels[k])
        )
        kind = "test: no learning" if self.is_test[k] else "training"
        return (
            f'<svg width="100%" height="80%" viewBox="0 0 8 8">{squares}</svg>'
            f"<p>label {self.labels[k]} ({kind})</p>"
        )


class ImageOutput:
    """The image node's output function. In Nengo GUI, right-click the node
    and choose "HTML" to see the digit being shown."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.shown = None
        self._nengo_html_ = ""

    def __call__(self, t):
        k = self.schedule.presentation(t)
        if k != self.shown:
            self.shown = k
            self._nengo_html_ = self.schedule.svg(k)
        return self.schedule.images[k]


def build(n_presentations=None, n_neurons=50, seed=0):
    """Three networks that differ only in how their hidden layer learns."""
    if n_presentations is None:
        n_presentations = max(int(round(3000 * SCALE)), 8 * TEST_EVERY)
    schedule = Schedule(n_presentations, seed=seed)

    with nengo.Network(label="digits", seed=seed) as net:
        net.schedule = schedule
        net.stim = nengo.Node(ImageOutput(schedule), label="image")
        net.target = nengo.Node(schedule.target, label="one-hot label")
        net.outputs = {}
        net.hidden = {}
        net.layer1 = {}
        for i, rule in enumerate(RULES):
            with nengo.Network(label=rule):
                # the same seeds in each copy: identical networks at the start
                hidden = nengo.Ensemble(
                    n_neurons,
                    64,
                    # inputs have unit norm, so a projection on a random
                    # direction in 64-D is about +-0.12: a small radius puts
                    # the neurons' working range there
                    radius=0.3,
                    intercepts=nengo.dists.Uniform(-0.5, 0.5),
                    neuron_type=nengo.LIF(),
                    seed=seed + 1,
                    label="hidden",
                )
                out = nengo.Node(size_in=10, label="output")
                readout = nengo.Connection(
                    hidden,
                    out,
                    function=lambda x: np.zeros(10),
                    learning_rule_type=nengo.PES(learning_rate=1e-3),
                    seed=seed + 2,
                )
                if rule == "FeedbackAlignment":
                    rule_type = nengo_fa.FeedbackAlignment(error_size=out)
                elif rule == "BackProp":
                    rule_type = nengo_fa.BackProp(readout)
                else:
                    rule_type = None
                layer1 = nengo.Connection(
                    net.stim,
                    hidden,
                    synapse=None,
                    learning_rule_type=rule_type,
                    seed=seed + 3,
                )

                # error = actual - target, as for nengo.PES, gated off on test
                # images and while the output settles
                error = nengo.Node(
                    lambda t, x: x * schedule.gate(t), size_in=10, label="error"
                )
                nengo.Connection(out, error)
                nengo.Connection(net.target, error, transform=-1)
                nengo.Connection(error, readout.learning_rule)
                if rule_type is not None:
                    nengo.Connection(error, layer1.learning_rule)

                net.outputs[rule] = nengo.Probe(out, synapse=0.005)
                if rule == "FeedbackAlignment":  # plotted in Nengo GUI
                    net.fa_output, net.fa_error = out, error
                net.hidden[rule] = hidden
                net.layer1[rule] = layer1
    return net


# Nengo GUI loads the module-level `model`
model = build()


def accuracy(sim, net):
    """Per-presentation correctness, from the output at the end of each image.

    Returns a dict mapping each rule to a boolean array over the test
    presentations, in the order they were shown.
    """
    schedule = net.schedule
    steps = int(round(T_PRESENT / sim.dt))
    n = schedule.n_presentations
    correct = {}
    for rule, probe in net.outputs.items():
        out = sim.data[probe][: n * steps].reshape(n, steps, 10)
        guess = out[:, -5:].mean(axis=1).argmax(axis=1)  # last 5 ms of each image
        correct[rule] = (guess == schedule.labels)[schedule.is_test]
    return correct


def plot_encoder_changes(axes, sim, net, learned, n_neurons=10):
    """How training changed a few hidden neurons' encoders, as 8 x 8 images.

    One row per rule in ``learned`` (the live scaled encoders after training),
    all on one colour scale, so that the rows can be compared.
    """
    # sim.data keeps the encoders the network was built with
    changes = {
        rule: (S[:n_neurons] - sim.data[net.hidden[rule]].scaled_encoders[:n_neurons])
        for rule, S in learned.items()
    }
    limit = max(np.abs(change).max() for change in changes.values())
    for ax_row, (rule, change) in zip(axes, changes.items()):
        for ax, neuron in zip(ax_row, change):
            image = ax.imshow(
                neuron.reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit
            )
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(rule, fontsize=8)
    return image


def main(n_presentations=None, seed=0, plot=True):
    """Train the three networks and plot their test accuracy over training.

    Returns a dict with, for each rule, the test accuracy over the first and
    the last quarter of the test presentations.
    """
    net = build(n_presentations, seed=seed) if n_presentations else model
    with nengo.Simulator(net, seed=seed) as sim:
        sim.run(net.schedule.sim_time)  # nengo's progress bar shows how long
        learned = {
            rule: sim.signals[sim.model.sig[hidden]["encoders"]].copy()
            for rule, hidden in net.hidden.items()
        }

    correct = accuracy(sim, net)
    results = {}
    for rule, c in correct.items():
        quarter = max(len(c) // 4, 1)
        results[rule] = {"first": c[:quarter].mean(), "last": c[-quarter:].mean()}
        print(
            f"{rule:>18}: test accuracy {results[rule]['first']:.3f} in the "
            f"first quarter, {results[rule]['last']:.3f} in the last quarter"
        )
    if not plot:
        return results

    import matplotlib.pyplot as plt

    n_test = len(next(iter(correct.values())))
    window = max(n_test // 10, 1)
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    fig.set_label("accuracy")
    for rule, c in correct.items():
        # accuracy over a sliding window of test images
        running = np.convolve(c, np.ones(window) / window, mode="valid")
        images_seen = (np.arange(len(running)) + window) * TEST_EVERY
        ax.plot(images_seen, 100 * running, label=rule)
    ax.axhline(10, color="k", linestyle=":", label="chance")
    ax.set_xlabel("images shown (training and test)")
    ax.set_ylabel(f"test accuracy (%, last {window} test images)")
    ax.set_ylim(0, 100)
    # above the chance line, below the curves (all above 30% after 100 images)
    ax.legend(loc="lower right", bbox_to_anchor=(1, 0.13))
    ax.set_title("Online digit classification, 50 spiking LIF neurons")

    trained = {rule: learned[rule] for rule in ("FeedbackAlignment", "BackProp")}
    fig2, axes = plt.subplots(2, 10, figsize=(10, 2.8), layout="constrained")
    fig2.set_label("encoders")
    image = plot_encoder_changes(axes, sim, net, trained)
    fig2.colorbar(image, ax=axes, shrink=0.9, label="change in\nscaled encoder")
    fig2.suptitle("Change in the encoders of ten hidden neurons (8 x 8 pixels)")
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument(
        "--save", metavar="DIR", help="save the figures in DIR instead of showing them"
    )
    args = parser.parse_args()
    main()
    show_or_save("digits", args.save)
