"""Learning quality of FeedbackAlignment and BackProp against PES only.

Two tasks, each run with the hidden layer learning through `nengo_fa`'s rules
(default rates) and with PES only (the hidden layer stays random):

``product``
    The seed task: two sines in, their product out, 10 RectifiedLinear
    neurons, a PES readout, 60 s. Reported: the mean squared error over the
    last 10 s, averaged over seeds.
``digits``
    scikit-learn's ``load_digits`` (8x8 images, 10 classes), learned online:
    each training image is shown for ``--present`` seconds, the error
    ``y - onehot`` drives the rules, then learning stops and the held-out
    images are classified by the arg-max of the output averaged over the last
    third of each presentation. Rate (RectifiedLinear) and spiking (LIF)
    hidden layers. Reference: an offline-trained MLP of the same shape
    (``sklearn.neural_network.MLPClassifier``, one hidden layer of the same
    size, many epochs).

Run ``python benchmarks/learning.py`` (a few minutes; ``--quick`` for a smoke
run, ``--task product`` or ``--task digits`` for one task).
"""

import argparse
import sys
import warnings

import nengo
import numpy as np

import nengo_fa

RULES = ("pes", "fa", "bp")


def _hidden_rule(rule, readout, error_size):
    if rule == "fa":
        return nengo_fa.FeedbackAlignment(error_size=error_size)
    if rule == "bp":
        return nengo_fa.BackProp(readout)
    return None


def product_network(rule, seed, n_neurons=10):
    """The seed task; ``rule`` in `RULES`. Seeds are explicit so that the
    variants start from the same network."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)])
        hidden = nengo.Ensemble(
            n_neurons, 2, neuron_type=nengo.RectifiedLinear(), seed=seed + 1
        )
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(
            hidden,
            out,
            function=lambda x: 0,
            learning_rule_type=nengo.PES(),
            seed=seed + 2,
        )
        rule_type = _hidden_rule(rule, readout, 1)
        layer1 = nengo.Connection(
            stim, hidden, learning_rule_type=rule_type, seed=seed + 3
        )
        error = nengo.Node(size_in=1)
        nengo.Connection(out, error)
        nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
        nengo.Connection(error, readout.learning_rule)
        if rule_type is not None:
            nengo.Connection(error, layer1.learning_rule)
        net.p_error = nengo.Probe(error, synapse=None)
    return net


def run_product(seeds, sim_time=60.0, last=10.0, out=sys.stdout):
    """Final-``last``-s MSE of each rule on the product task."""
    mse = {rule: [] for rule in RULES}
    for seed in seeds:
        for rule in RULES:
            net = product_network(rule, seed)
            with nengo.Simulator(net, progress_bar=False) as sim:
                sim.run(sim_time)
            err = sim.data[net.p_error][:, 0]
            mse[rule].append(np.mean(err[sim.trange() > sim_time - last] ** 2))
    rows = [
        {
            "task": "product",
            "model": rule,
            "metric": f"MSE_last_{last:g}s",
            "value": float(np.mean(mse[rule])),
            "vs_pes": float(np.mean(mse[rule]) / np.mean(mse["pes"])),
        }
        for rule in RULES
    ]
    return rows


def load_digits_split(seed=0, n_test=397):
    """Digits, centred and scaled to unit length, shuffled and split."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(y))
    X, y = X[order] / 16.0, y[order]
    X_train, y_train = X[:-n_test], y[:-n_test]
    X_test, y_test = X[-n_test:], y[-n_test:]
    mean = X_train.mean(axis=0)

    def prep(X):
        X = X - mean
        return X / np.linalg.norm(X, axis=1, keepdims=True)

    return prep(X_train), y_train, prep(X_test), y_test


def digits_network(rule, neuron_type, X, y, n_train, present, n_hidden, seed):
    """Online digits classification; learning stops after ``n_train`` images."""
    d, n_classes = X.shape[1], 10
    t_train = n_train * present
    onehot = np.eye(n_classes)[y]

    def index(t):
        return min(int((t - 1e-9) / present), len(y) - 1)

    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: X[index(t)])
        target = nengo.Node(lambda t: onehot[index(t)])
        hidden = nengo.Ensemble(
            n_hidden,
            d,
            neuron_type=neuron_type,
            # unit-length inputs in 64 dimensions project to about +-1/8 on
            # each encoder: put the intercepts where the data is
            intercepts=nengo.dists.Uniform(-0.2, 0.2),
            seed=seed + 1,
        )
        out = nengo.Node(size_in=n_classes)
        readout = nengo.Connection(
            hidden.neurons,
            out,
            transform=np.zeros((n_classes, n_hidden)),
            learning_rule_type=nengo.PES(learning_rate=2e-4),
            seed=seed + 2,
        )
        rule_type = _hidden_rule(rule, readout, n_classes)
        layer1 = nengo.Connection(
            stim, hidden, learning_rule_type=rule_type, seed=seed + 3
        )
        # error = actual - target while training, then 0 (learning off)
        error = nengo.Node(lambda t, v: v if t <= t_train else 0 * v, size_in=n_classes)
        nengo.Connection(out, error)
        nengo.Connection(target, error, transform=-1)
        nengo.Connection(error, readout.learning_rule)
        if rule_type is not None:
            nengo.Connection(error, layer1.learning_rule)
        net.p_out = nengo.Probe(out, synapse=None)
    return net


def run_digits(
    neuron_types, n_train=1400, n_test=397, present=0.03, n_hidden=200, seed=0
):
    """Held-out accuracy of each rule, plus the offline MLP reference."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X_train, y_train, X_test, y_test = load_digits_split(seed, n_test=n_test)
    X_train, y_train = X_train[:n_train], y_train[:n_train]
    X = np.vstack([X_train, X_test])
    y = np.concatenate([y_train, y_test])
    steps = int(round(present / 0.001))
    rows = []
    for name, neuron_type in neuron_types:
        for rule in RULES:
            net = digits_network(
                rule, neuron_type, X, y, len(y_train), present, n_hidden, seed
            )
            with nengo.Simulator(net, progress_bar=False) as sim:
                sim.run_steps(steps * len(y))
            outs = sim.data[net.p_out].reshape(len(y), steps, -1)
            scores = outs[len(y_train) :, -max(steps // 3, 1) :].mean(axis=1)
            accuracy = np.mean(np.argmax(scores, axis=1) == y_test)
            rows.append(
                {
                    "task": f"digits_{name}",
                    "model": rule,
                    "metric": "test_accuracy",
                    "value": float(accuracy),
                }
            )
        pes = rows[-len(RULES)]["value"]
        for row in rows[-len(RULES) :]:
            row["vs_pes"] = row["value"] / pes if pes > 0 else float("nan")

    mlp = MLPClassifier(hidden_layer_sizes=(n_hidden,), max_iter=500, random_state=seed)
    with warnings.catch_warnings():
        # an MLP that has not fully converged is still a fair reference
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X_train, y_train)
    rows.append(
        {
            "task": "digits_offline",
            "model": f"MLP({n_hidden})",
            "metric": "test_accuracy",
            "value": float(mlp.score(X_test, y_test)),
            "vs_pes": float("nan"),
        }
    )
    return rows


COLUMNS = ("task", "model", "metric", "value", "vs_pes")


def format_header():
    return f"{'task':<16} {'model':<10} {'metric':<16} {'value':>8} {'vs_pes':>8}"


def format_row(row):
    return (
        f"{row['task']:<16} {row['model']:<10} {row['metric']:<16} "
        f"{row['value']:>8.4g} {row['vs_pes']:>8.3g}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--task", choices=["all", "product", "digits"], default="all")
    parser.add_argument("--seeds", type=int, default=3, help="product task seeds")
    parser.add_argument("--n-train", type=int, default=1400)
    parser.add_argument("--present", type=float, default=0.03)
    parser.add_argument("--n-hidden", type=int, default=200)
    args = parser.parse_args(argv)
    nengo.rc["decoder_cache"]["enabled"] = "False"

    neuron_types = [("rate", nengo.RectifiedLinear()), ("LIF", nengo.LIF())]
    rows = []
    print(format_header())
    if args.task in ("all", "product"):
        if args.quick:
            rows += run_product(seeds=[0], sim_time=2.0, last=1.0)
        else:
            rows += run_product(seeds=range(args.seeds))
        for row in rows:
            print(format_row(row), flush=True)
    if args.task in ("all", "digits"):
        if args.quick:
            new = run_digits(
                neuron_types[:1], n_train=40, n_test=20, present=0.01, n_hidden=20
            )
        else:
            new = run_digits(
                neuron_types,
                n_train=args.n_train,
                present=args.present,
                n_hidden=args.n_hidden,
            )
        for row in new:
            print(format_row(row), flush=True)
        rows += new
    return rows


if __name__ == "__main__":
    main()
