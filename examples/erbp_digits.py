"""
Event-driven learning of spiking digits with ERBP
=================================================

Handwritten digits (scikit-learn's 8 x 8 ``load_digits``) are shown one at a
time to 128 spiking "pixel" neurons (an on and an off neuron per pixel),
whose spikes reach 32 spiking LIF neurons through a full weight matrix; a
`nengo.PES` readout of those neurons outputs the class. `nengo_fa.ERBP`
learns the weight matrix from the same output error as the readout, and only
when a pixel neuron spikes: each spike changes the synapses of that neuron by
minus the postsynaptic neurons' *dendrite* (a low-pass filter of the error
through a fixed random matrix), where their membrane voltage lies in the
boxcar window. The simulation's cost of learning is then proportional to the
spikes, not to the size of the weight matrix.

What counts is what the network keeps: each variant (PES only, and PES with
ERBP) is trained on the training images, then learning stops (the error the
rules get is gated to zero) and the frozen network classifies held-out
images. Run it as a script to train and test both and plot their held-out
accuracy and the weights' change (``--save DIR`` saves the figures instead
of showing them), or open it in Nengo GUI (``nengo examples/erbp_digits.py``)
to watch the ERBP network learn: its layout (``erbp_digits.py.cfg``) shows
the error, the output against the label, the pixel and hidden spikes, and a
``learning`` slider (1 on, 0 off). Set ``NENGO_FA_EXAMPLE_SCALE`` below 1
for a shorter run.
"""

import os

import nengo
import numpy as np
from sklearn.datasets import load_digits

import nengo_fa
from nengo_fa.utils import gated_error, show_or_save

SCALE = float(os.environ.get("NENGO_FA_EXAMPLE_SCALE", "1"))
PRESENT = 0.03  # seconds per image
PIXEL_RATE = 400.0  # Hz per unit of pixel value (about 25 Hz on average)
N_HIDDEN = 32


def images(seed=0, n_test=397):
    """The digits, centred and scaled to unit length, split in train/test."""
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(seed).permutation(len(y))
    X, y = X[order], y[order]
    X = X - X[:-n_test].mean(axis=0)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X[:-n_test], y[:-n_test], X[-n_test:], y[-n_test:]


class Stream:
    """The images shown, one every ``PRESENT`` seconds, and their labels."""

    def __init__(self, X, y):
        self.X, self.onehot = X, np.eye(10)[y]

    def index(self, t):
        return min(int((t - 1e-9) / PRESENT), len(self.X) - 1)

    def image(self, t):
        return self.X[self.index(t)]

    def label(self, t):
        return self.onehot[self.index(t)]


def build(rule="erbp", seed=0, stream=None, t_train=None):
    """The network, with ERBP on the pixel -> hidden weights (``rule``
    ``"erbp"``) or those weights fixed (None: PES only). Every object has a
    seed, so both variants start from the same network."""
    if stream is None:
        X, y, _, _ = images(seed)
        stream = Stream(X, y)
    d = stream.X.shape[1]
    rng = np.random.RandomState(seed)
    E = nengo.dists.UniformHypersphere(surface=True).sample(N_HIDDEN, d, rng=rng)
    with nengo.Network(seed=seed, label="ERBP digits") as net:
        net.image = nengo.Node(stream.image, label="image")
        label = nengo.Node(stream.label, label="label")
        # an on and an off neuron per pixel, encoding the image (ERBP scales
        # its steps to their tuning curves: these are their rates)
        net.pixels = nengo.Ensemble(
            2 * d,
            d,
            neuron_type=nengo.SpikingRectifiedLinear(),
            encoders=np.vstack([np.eye(d), -np.eye(d)]),
            gain=np.full(2 * d, PIXEL_RATE),
            bias=np.zeros(2 * d),
            label="pixels",
        )
        nengo.Connection(net.image, net.pixels, synapse=None)
        net.hidden = nengo.Ensemble(
            N_HIDDEN,
            d,
            neuron_type=nengo.LIF(),
            encoders=E,
            intercepts=nengo.dists.Uniform(-0.2, 0.2),
            label="hidden",
        )
        out = nengo.Node(size_in=10, label="output")
        readout = nengo.Connection(
            net.hidden.neurons,
            out,
            transform=np.zeros((10, N_HIDDEN)),
            learning_rule_type=nengo.PES(learning_rate=2e-4),
        )
        # the weights start as the encoding E x of the pixel rates
        net.layer = nengo.Connection(
            net.pixels.neurons,
            net.hidden.neurons,
            transform=np.hstack([E, -E]) / PIXEL_RATE,
            learning_rule_type=nengo_fa.ERBP(out) if rule == "erbp" else None,
        )
        # error = actual - target, as for nengo.PES
        net.error = error = nengo.Node(size_in=10, label="error")
        nengo.Connection(out, error)
        nengo.Connection(label, error, transform=-1)
        net.learning, gated = gated_error(error, t_train)
        nengo.Connection(gated, readout.learning_rule)
        if rule == "erbp":
            nengo.Connection(gated, net.layer.learning_rule)
        net.compare = nengo.Node(size_in=20, label="output and label")
        nengo.Connection(out, net.compare[:10], synapse=0.01)
        nengo.Connection(label, net.compare[10:], synapse=None)
        net.p_out = nengo.Probe(out, synapse=None)
        net.p_weights = nengo.Probe(net.layer, "weights", sample_every=0.5)
    return net


# Nengo GUI loads the module-level `model`
model = build("erbp")


def guesses(output, n_images, dt=0.001):
    """The class of each image: the arg-max of the output over its last third."""
    steps = int(round(PRESENT / dt))
    out = output[: n_images * steps].reshape(n_images, steps, -1)
    return np.argmax(out[:, -steps // 3 :].mean(axis=1), axis=1)


def main(epochs=max(round(3 * SCALE), 1), seed=0):
    """Train PES only and ERBP for ``epochs`` passes over the training images
    (a fraction ``SCALE`` of them when below 1), then test both frozen on the
    held-out images. Returns the held-out and last-epoch (online, learning on)
    accuracies of each."""
    X_tr, y_tr, X_te, y_te = images(seed)
    n_train = max(int(len(y_tr) * min(SCALE, 1)), 20)
    n_test = max(int(len(y_te) * min(SCALE, 1)), 20)
    order = np.concatenate(
        [np.random.RandomState(seed + e).permutation(n_train) for e in range(epochs)]
    )
    X = np.vstack([X_tr[order], X_te[:n_test]])
    y = np.concatenate([y_tr[order], y_te[:n_test]])
    t_train = len(order) * PRESENT
    results, weights = {}, {}
    for rule, name in ((None, "PES only"), ("erbp", "ERBP")):
        net = build(rule, seed, Stream(X, y), t_train)
        with nengo.Simulator(net, progress_bar=False) as sim:
            sim.run(len(y) * PRESENT)
        guess = guesses(sim.data[net.p_out], len(y), sim.dt)
        n = len(order)
        results[name] = {
            "frozen": float(np.mean(guess[n:] == y[n:])),
            "online": float(np.mean(guess[n - n_train : n] == y[n - n_train : n])),
        }
        W = sim.data[net.p_weights]
        weights[name] = np.linalg.norm(W - W[0], axis=(1, 2)) / np.linalg.norm(W[0])
    plot(results, weights)
    for name, acc in results.items():
        print(
            f"{name}: held-out {acc['frozen']:.3f} (frozen), "
            f"last epoch {acc['online']:.3f} (online)"
        )
    return results


def plot(results, weights):
    import matplotlib.pyplot as plt  # deferred: Nengo GUI does not need it

    fig, (ax_acc, ax_w) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    names = list(results)
    x = np.arange(len(names))
    ax_acc.bar(x - 0.2, [results[n]["frozen"] for n in names], 0.4, label="frozen")
    ax_acc.bar(x + 0.2, [results[n]["online"] for n in names], 0.4, label="online")
    ax_acc.set_xticks(x, names)
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_title("held-out (frozen) and last epoch (online)")
    ax_acc.set_ylim(0, 1.15)  # room above the bars for the legend
    ax_acc.legend(loc="upper right", ncol=2)
    for name, change in weights.items():
        ax_w.plot(np.arange(len(change)) * 0.5, change, label=name)
    ax_w.set_xlabel("time (s)")
    ax_w.set_ylabel("|W - W0| / |W0|")
    ax_w.set_title("change of the pixel -> hidden weights")
    ax_w.legend()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument(
        "--save", metavar="DIR", help="save the figures in DIR instead of showing them"
    )
    args = parser.parse_args()
    main()
    show_or_save("erbp_digits", args.save)
