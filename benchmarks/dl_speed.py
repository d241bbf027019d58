"""Steps per second of a learning network: reference simulator vs NengoDL.

The network is the seed task scaled up: a 2-D input into a hidden ensemble of
``n`` rectified-linear neurons whose encoders, gains and biases learn with
`nengo_fa.FeedbackAlignment` or `nengo_fa.BackProp`, and a PES-learned
readout from the neurons. Each simulator is built once, warmed up (NengoDL traces its
TensorFlow graph on the first run; the warm-up runs as many steps as are
timed), then timed over ``--steps`` steps (200 by default).
NengoDL runs ``unroll_simulation`` steps per TensorFlow loop iteration
(``--unroll``), in float32, on the CPU unless TensorFlow sees a GPU.

Run it in the NengoDL environment (``bash .ci/dl`` makes one at ``.venv-dl``)::

    .venv-dl/bin/python benchmarks/dl_speed.py
    .venv-dl/bin/python benchmarks/dl_speed.py --n 1000 --steps 200   # quick
"""

import argparse
import time

import nengo
import numpy as np

import nengo_fa

try:
    import nengo_dl
    import tensorflow as tf
except ImportError:  # pragma: no cover
    nengo_dl = None


def network(n, rule, seed=0):
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)])
        hidden = nengo.Ensemble(n, 2, neuron_type=nengo.RectifiedLinear())
        out = nengo.Node(size_in=1)
        # a readout from the neurons, starting at zero: decoders of 50000
        # neurons would need a 50000 x 50000 solve
        readout = nengo.Connection(
            hidden.neurons,
            out,
            transform=np.zeros((1, n)),
            learning_rule_type=nengo.PES(learning_rate=1e-4 / n),
        )
        rule_type = (
            # learning from the first step, as the rule costs once warmed up
            nengo_fa.BackProp(readout, warmup=None)
            if rule == "bp"
            else nengo_fa.FeedbackAlignment(out)
        )
        layer1 = nengo.Connection(stim, hidden, learning_rule_type=rule_type)
        error = nengo.Node(size_in=1)
        nengo.Connection(out, error)
        nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
        nengo.Connection(error, readout.learning_rule)
        nengo.Connection(error, layer1.learning_rule)
        nengo.Probe(error, synapse=0.01)
    return net


def steps_per_second(sim, steps):
    # NengoDL traces a new TensorFlow function for each new number of steps:
    # warm up with the same number that is timed
    sim.run_steps(steps)
    start = time.perf_counter()
    sim.run_steps(steps)
    return steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--rule", nargs="+", default=["fa", "bp"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--unroll", type=int, default=10)
    args = parser.parse_args(argv)
    nengo.rc["decoder_cache"]["enabled"] = "False"

    if nengo_dl is None:
        print("nengo_dl is not installed: reference simulator only")
    else:
        gpus = tf.config.list_physical_devices("GPU")
        device = "GPU " + gpus[0].name if gpus else "CPU"
        print(f"NengoDL {nengo_dl.__version__}, TensorFlow {tf.__version__}, ", end="")
        print(f"device: {device}")
    header = ("rule", "n", "nengo steps/s", "nengo_dl steps/s", "ratio")
    print("{:<5}{:>7}{:>15}{:>18}{:>8}".format(*header))
    for rule in args.rule:
        for n in args.n:
            net = network(n, rule)
            with nengo.Simulator(net, progress_bar=False) as sim:
                ref = steps_per_second(sim, args.steps)
            dl = float("nan")
            if nengo_dl is not None:
                with nengo_dl.Simulator(
                    net, unroll_simulation=args.unroll, progress_bar=False
                ) as sim:
                    dl = steps_per_second(sim, args.steps)
            print(f"{rule:<5}{n:>7}{ref:>15.0f}{dl:>18.0f}{dl / ref:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
