"""Small helpers for nengo_fa's example scripts.

`gated_error` (built from `Schedule` and `gate`) stops learning at a given
time, the way the examples and benchmarks measure what a network keeps
(train, freeze, test)::

    learning, gated = gated_error(error, t_train)  # inside the network
    nengo.Connection(gated, conn.learning_rule)  # for every rule
"""

import pathlib
import sys

import nengo


class Schedule:
    """A `nengo.Node` output: 1 (learning on) until ``t_off``, then 0."""

    def __init__(self, t_off):
        self.t_off = t_off

    def __call__(self, t):
        return float(t < self.t_off)


def gate(t, x):
    """A `nengo.Node` function: the error ``x[1:]`` times the learning
    signal ``x[0]``; with 0, nothing that learns from it changes."""
    return x[0] * x[1:]


def gated_error(error, t_train=None):
    """Nodes that pass ``error`` on while learning is on, and 0 once it is off.

    Made in the current network. ``learning`` outputs 1 until ``t_train``
    and 0 after (a constant 1 without ``t_train``: a slider in Nengo GUI);
    ``gated`` outputs ``error`` times it. Connect ``gated`` to every
    learning rule (`nengo.PES` included) instead of ``error``. Returns
    ``(learning, gated)``.
    """
    learning = nengo.Node(
        1.0 if t_train is None else Schedule(t_train), label="learning"
    )
    gated = nengo.Node(gate, size_in=1 + error.size_out, label="gated error")
    nengo.Connection(learning, gated[0], synapse=None)
    nengo.Connection(error, gated[1:], synapse=None)
    return learning, gated


def train_freeze_test(build, variants, t_train, t_test, title, seed=0):
    """Train each variant of a network, stop learning, test it; plot both.

    ``build(rule, seed=seed, t_train=t_train)`` makes the network of each
    ``rule`` in ``variants`` (a dict ``{rule: label}``), whose rules stop
    learning at ``t_train`` (e.g. through `gated_error`), with the
    probes ``p_error``, ``p_out`` and ``p_target``. Each runs for ``t_train
    + t_test`` seconds. Returns a figure (the squared error over time, and
    the frozen networks' outputs against the target) and, for each label,
    the mean squared error over the frozen test (``"frozen"``, leaving out
    the first 50 ms, while the error's synapses still hold training errors)
    and over the last quarter of training (``"online"``).
    """
    import matplotlib.pyplot as plt  # deferred: nengo_fa does not need it
    import numpy as np

    fig, (ax_err, ax_out) = plt.subplots(2, 1, figsize=(9, 7), layout="constrained")
    results = {}
    window = min(5.0, t_test / 4)
    for rule, label in variants.items():
        net = build(rule, seed=seed, t_train=t_train)
        with nengo.Simulator(net) as sim:
            sim.run(t_train + t_test)
        t = sim.trange()
        err = sim.data[net.p_error][:, 0]
        results[label] = {
            "frozen": float(np.mean(err[t > t_train + 0.05] ** 2)),
            "online": float(np.mean(err[(t > 0.75 * t_train) & (t <= t_train)] ** 2)),
        }
        steps = max(int(round(window / sim.dt)), 1)
        n_windows = len(err) // steps
        mse = np.mean(err[: n_windows * steps].reshape(n_windows, steps) ** 2, 1)
        ax_err.semilogy(window * (np.arange(n_windows) + 1), mse, "o-", label=label)
        test = t > t_train
        ax_out.plot(t[test], sim.data[net.p_out][test, 0], label=label)
    ax_out.plot(t[test], sim.data[net.p_target][test, 0], "k--", label="target")
    ax_err.axvline(t_train, color="k", linestyle=":")
    ax_err.annotate(
        "learning off ",
        (t_train, 1),
        xycoords=("data", "axes fraction"),
        ha="right",
        va="top",
    )
    ax_err.set_xlabel("time (s)")
    ax_err.set_ylabel(f"mean squared error ({window:g}-s windows)")
    ax_err.set_title(f"{title}: training, then frozen")
    ax_out.set_xlabel("time (s)")
    ax_out.set_ylabel("output")
    ax_out.set_title("Output of the frozen networks (learning off)")
    # one legend for both panels, above them, where it hides no data
    handles, labels = ax_out.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))
    width = max(len(label) for label in results)
    for label, r in results.items():
        print(
            f"{label:>{width}}: frozen test MSE {r['frozen']:.5f} "
            f"(online, last quarter of training: {r['online']:.5f})"
        )
    return fig, results


def show_or_save(name, save_dir=None):
    """Show the open figures, or save them as PNG files.

    They are saved in ``save_dir`` (``--save DIR``) or, when matplotlib has no
    interactive backend (a headless machine, where ``plt.show()`` would drop
    them), in the current folder, as ``NAME.png`` or ``NAME_LABEL.png``.
    Under sphinx-gallery, which collects the figures itself, nothing happens.
    """
    import matplotlib.pyplot as plt  # deferred: nengo_fa does not need it

    if save_dir is None and "sphinx_gallery" in sys.modules:
        return
    non_interactive = ("agg", "cairo", "pdf", "pgf", "ps", "svg", "template")
    if save_dir is None and plt.get_backend().lower() not in non_interactive:
        plt.show()
        return
    folder = pathlib.Path(save_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    for number in plt.get_fignums():
        fig = plt.figure(number)
        label = f"_{fig.get_label()}" if fig.get_label() else ""
        path = folder / f"{name}{label}.png"
        fig.savefig(path, dpi=100)
        print(f"saved {path}")
