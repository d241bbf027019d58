"""Offline training with NengoDL's ``sim.fit`` on the digits task.

The network has the shape of ``examples/digits.py``: a 64-D input (an 8 x 8
digit, centred on the training mean and scaled to unit norm) feeds a hidden
ensemble of 50 neurons (same radius, intercepts and seed), whose decoded
readout gives 10 outputs. The split is the example's: the digits shuffled with
seed 0, the first 1437 to train and the other 360 held out.

Training is offline, in NengoDL: the hidden layer uses `nengo.LIFRate` neurons
and the network runs one time step per image (no synapses), so ``sim.fit``
trains a feed-forward rate network (encoders, biases and readout decoders;
Adam with learning rate 1e-4 on minibatches of 32, 50 epochs, mean squared
error against the one-hot label, as the online error in the example). The
hidden rates are in the hundreds of Hz, so larger Adam steps are unstable: with
1e-3, held-out accuracy fell from 0.89 after 2 epochs to 0.74 after 50.
``readout only`` trains the readout alone (the ensemble is not trainable),
the offline counterpart of the example's ``PES only``. The trained parameters
are then tested on the held-out digits:

- ``LIFRate``: the trained rate network, one step per image;
- ``LIF``: the same parameters with spiking `nengo.LIF` neurons, each image
  shown for 30 ms as in the example, classified from the output filtered with
  a 10 ms lowpass and averaged over the last 10 ms.

Run it in the NengoDL environment (see ``docs/scaling.rst``), with
scikit-learn installed there too::

    .venv-dl/bin/pip install "scikit-learn<1.6"
    .venv-dl/bin/python benchmarks/dl_fit_digits.py        # ~1-2 minutes
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import nengo  # noqa: E402
import nengo_dl  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

N_TRAIN = 1437  # as in examples/digits.py
N_NEURONS = 50
T_PRESENT = 0.03  # seconds per image in the spiking test


def load_data(seed=0):
    """The split and preprocessing of ``examples/digits.py``."""
    pixels, labels = load_digits(return_X_y=True)
    order = np.random.RandomState(seed).permutation(len(labels))
    pixels, labels = pixels[order], labels[order]
    images = pixels - pixels[:N_TRAIN].mean(axis=0)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    return (images[:N_TRAIN], labels[:N_TRAIN]), (images[N_TRAIN:], labels[N_TRAIN:])


def build(neuron_type, train_hidden=True, seed=0):
    with nengo.Network(seed=seed) as net:
        nengo_dl.configure_settings(trainable=None)
        net.stim = nengo.Node(np.zeros(64))
        net.hidden = nengo.Ensemble(
            N_NEURONS,
            64,
            radius=0.3,
            intercepts=nengo.dists.Uniform(-0.5, 0.5),
            neuron_type=neuron_type,
            seed=seed + 1,
        )
        # readout only: encoders, gains and biases stay as built
        net.config[net.hidden].trainable = train_hidden
        net.out = nengo.Node(size_in=10)
        nengo.Connection(net.stim, net.hidden, synapse=None, seed=seed + 3)
        nengo.Connection(
            net.hidden,
            net.out,
            function=lambda x: np.zeros(10),
            synapse=None,
            seed=seed + 2,
        )
        net.p_out = nengo.Probe(net.out)
        net.p_filtered = nengo.Probe(net.out, synapse=0.01)
    return net


def accuracy(out, labels):
    return float(np.mean(out.argmax(axis=-1) == labels))


def train(x_train, y_train, train_hidden, epochs, minibatch_size, lr, seed):
    """Train with sim.fit; return the network, with the trained parameters
    written into it, and the wall time of ``sim.fit``."""
    # sim.fit needs whole minibatches: the last partial one is left out
    n = len(x_train) // minibatch_size * minibatch_size
    net = build(nengo.LIFRate(), train_hidden=train_hidden, seed=seed)
    with nengo_dl.Simulator(
        net, minibatch_size=minibatch_size, seed=seed, progress_bar=False
    ) as sim:
        sim.compile(optimizer=tf.optimizers.Adam(lr), loss=tf.losses.mse)
        start = time.perf_counter()
        sim.fit(
            {net.stim: x_train[:n, None, :]},
            {net.p_out: np.eye(10)[y_train[:n]][:, None, :]},
            epochs=epochs,
            verbose=0,
        )
        fit_time = time.perf_counter() - start
        sim.freeze_params(net)  # trained values back into the Nengo objects
    return net, fit_time, n


def test(net, neuron_type, x_test, y_test, seed):
    """Held-out accuracy with the given neuron type: one step per image for
    rate neurons; T_PRESENT per image, last 10 ms of the filtered output, for
    spiking neurons."""
    net.hidden.neuron_type = neuron_type
    steps = int(round(T_PRESENT / 0.001)) if neuron_type.spiking else 1
    with nengo_dl.Simulator(
        net, minibatch_size=len(x_test), seed=seed, progress_bar=False
    ) as sim:
        x = np.repeat(x_test[:, None, :], steps, axis=1)
        out = sim.predict({net.stim: x}, verbose=0)
    if neuron_type.spiking:
        guess = out[net.p_filtered][:, -10:].mean(axis=1)
    else:
        guess = out[net.p_out][:, -1]
    return accuracy(guess, y_test)


def main(epochs=50, minibatch_size=32, lr=1e-4, seed=0):
    (x_train, y_train), (x_test, y_test) = load_data(seed)
    tf.random.set_seed(seed)
    rows = []
    for train_hidden in (True, False):
        net, fit_time, n_used = train(
            x_train, y_train, train_hidden, epochs, minibatch_size, lr, seed
        )
        method = "sim.fit, " + ("all layers" if train_hidden else "readout only")
        for neuron_type in (nengo.LIFRate(), nengo.LIF()):
            acc = test(net, neuron_type, x_test, y_test, seed)
            rows.append((method, type(neuron_type).__name__, acc, fit_time))

    print(
        f"digits: {n_used} training images, {epochs} epochs, minibatch "
        f"{minibatch_size}; {len(x_test)} held-out images; "
        f"{N_NEURONS} hidden neurons"
    )
    header = ("method", "test_neurons", "test_accuracy", "train_wall_s")
    cells = [(r[0], r[1], f"{r[2]:.3f}", f"{r[3]:.1f}") for r in rows]
    widths = [max(len(c) for c in col) + 2 for col in zip(header, *cells)]
    for line in [header] + cells:
        print("".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--minibatch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    main(args.epochs, args.minibatch_size, args.lr, args.seed)
