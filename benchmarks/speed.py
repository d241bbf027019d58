"""Step time of a network whose hidden layer learns, relative to PES only.

Every configuration builds four networks that differ only in how the hidden
layer is treated:

``pes``
    The baseline: a PES-learned readout from the hidden ensemble's neurons,
    hidden encoders fixed.
``fa`` / ``bp``
    The same network plus `nengo_fa.FeedbackAlignment` / `nengo_fa.BackProp`
    on the connection into the hidden ensemble.
``fa_ref`` / ``bp_ref``
    ``fa`` / ``bp`` built with the straightforward encoder update (Nengo's
    generic ``(n, d)`` delta plus ``Copy``), the implementation before the
    in-place update: the "before" of the before/after tables, measured in the
    same run. The two give the same results (``tests/test_speed_equivalence.py``).
``node``
    The same network where a `nengo.Node` does feedback alignment by hand (the
    sketch from the original request): it holds the scaled encoders and a
    bias offset, computes the input current ``S x + b'``, and updates both
    from ``delta = (B e) * (a > 0)`` with a fixed random ``B``.

The simulators are built side by side and timed in turn, repeat after
repeat, so that they share whatever else the machine is doing; each ratio is
the median over the repeats of the ratio within one repeat. ``fa/node`` and
``bp/node`` compare whole steps: below 0.5, the network with the rule steps
more than twice as fast as the one with the Node. A network's step also holds
everything PES-only does, so no rule can go below ``1 / (node/pes)`` there.
``fa+/node+`` and ``bp+/node+`` compare what learning the hidden layer adds to
a step: ``(fa - pes) / (node - pes)``, the rule's cost against the Node's.

Run ``python benchmarks/speed.py`` (``--quick`` for a small subset,
``--help`` for the options). ``--bits`` instead times `nengo_fa.FeedbackAlignment`
and `nengo_fa.BackProp` built with ``nengo.rc`` precision 32 bits against
64 bits, by default at d=784 and n=1000, 2000.
"""

import argparse
import itertools
import sys
import time

import nengo
import numpy as np

import nengo_fa

VARIANTS = ("pes", "fa", "bp", "node", "fa_ref", "bp_ref")
COLUMNS = (
    "n",
    "d",
    "d_out",
    "pes_us",
    "fa/pes",
    "bp/pes",
    "node/pes",
    "fa/node",
    "bp/node",
    "fa+/node+",
    "bp+/node+",
    "fa_ref/pes",
    "bp_ref/pes",
)


class NodeFA:
    """Feedback alignment done by hand in a `nengo.Node`.

    The node receives ``[x, e, a]`` (the hidden ensemble's input, the output
    error and the hidden activities), outputs the input current ``S x + b'``
    into ``hidden.neurons`` (divided by the gains, which Nengo applies to
    every connection into neurons), and updates ``S`` and ``b'`` in numpy:
    ``delta = (B e) * (a > 0)``, ``S -= k dt delta x^T``, ``b' -= k dt delta``.
    """

    def __init__(self, encoders, gain, d_out, rng, learning_rate=1e-3, dt=0.001):
        self.S = encoders * gain[:, None]
        self.inv_gain = 1.0 / gain
        n, self.d = self.S.shape
        self.d_out = d_out
        self.B = rng.normal(size=(n, d_out))
        self.bias = np.zeros(n)
        self.k = learning_rate * dt

    def __call__(self, t, v):
        d, d_out = self.d, self.d_out
        x, e, a = v[:d], v[d : d + d_out], v[d + d_out :]
        delta = (self.B @ e) * (a > 0)
        self.S -= self.k * np.outer(delta, x)
        self.bias -= self.k * delta
        return (self.S @ x + self.bias) * self.inv_gain


def build_network(variant, n, d, d_out, seed=0, neuron_type=None):
    """The benchmark network for one variant (see the module docstring)."""
    neuron_type = nengo.RectifiedLinear() if neuron_type is None else neuron_type
    rng = np.random.RandomState(seed)
    freqs = rng.uniform(0.5, 2, size=d)
    target_map = rng.normal(scale=1.0 / np.sqrt(d), size=(d_out, d))
    readout_weights = rng.normal(scale=1e-3 / n, size=(d_out, n))
    # explicit encoders, gains and biases, so that the Node sketch starts from
    # exactly the hidden layer the rules start from
    encoders = nengo.dists.UniformHypersphere(surface=True).sample(n, d, rng=rng)
    gain, bias = neuron_type.gain_bias(
        rng.uniform(200, 400, size=n), rng.uniform(-0.9, 0.9, size=n)
    )
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin(freqs * t) / np.sqrt(d))
        hidden = nengo.Ensemble(
            n, d, neuron_type=neuron_type, encoders=encoders, gain=gain, bias=bias
        )
        out = nengo.Node(size_in=d_out)
        # a readout from the neurons skips the decoder solve (fast builds) and
        # starts non-zero, so BackProp has feedback from the first step
        readout = nengo.Connection(
            hidden.neurons,
            out,
            transform=readout_weights,
            learning_rule_type=nengo.PES(learning_rate=1e-6),
        )
        error = nengo.Node(size_in=d_out)
        nengo.Connection(out, error)
        nengo.Connection(stim, error, transform=-target_map)
        nengo.Connection(error, readout.learning_rule)

        if variant == "node":
            fa_node = nengo.Node(
                NodeFA(encoders, gain, d_out, rng),
                size_in=d + d_out + n,
                size_out=n,
            )
            nengo.Connection(stim, fa_node[:d])
            nengo.Connection(error, fa_node[d : d + d_out])
            nengo.Connection(hidden.neurons, fa_node[d + d_out :])
            nengo.Connection(fa_node, hidden.neurons, synapse=None)
        else:
            if variant.startswith("fa"):
                rule_type = nengo_fa.FeedbackAlignment(error_size=d_out)
            elif variant.startswith("bp"):
                rule_type = nengo_fa.BackProp(readout)
            else:
                rule_type = None
            layer1 = nengo.Connection(stim, hidden, learning_rule_type=rule_type)
            if rule_type is not None:
                nengo.Connection(error, layer1.learning_rule)
    return net


def make_simulator(variant, n, d, d_out):
    """Build the network of one variant into a `nengo.Simulator`.

    A variant ending in ``@32`` is built with ``nengo.rc`` precision 32 bits.
    """
    variant, _, bits = variant.partition("@")
    # the *_ref variants use the straightforward encoder update
    inplace = not variant.endswith("_ref")
    old_bits = nengo.rc.get("precision", "bits")
    nengo.rc.set("precision", "bits", bits or old_bits)
    try:
        with nengo_fa.settings.override(inplace_encoder_update=inplace):
            net = build_network(variant, n, d, d_out)
            return nengo.Simulator(net, progress_bar=False)
    finally:
        nengo.rc.set("precision", "bits", old_bits)


def time_variants(n, d, d_out, repeats=5, target_s=0.1, variants=VARIANTS):
    """Seconds per step of each variant in each repeat, timed in turn.

    Returns ``{variant: array of shape (repeats,)}``. The number of steps per
    repeat is chosen so that one PES-only run takes about ``target_s`` seconds.
    """
    sims = {}
    try:
        for variant in variants:
            sims[variant] = make_simulator(variant, n, d, d_out)
        for sim in sims.values():
            sim.run_steps(10)  # warm up
        base = sims[variants[0]]
        t0 = time.perf_counter()
        base.run_steps(20)
        per_step = (time.perf_counter() - t0) / 20
        steps = int(np.clip(target_s / per_step, 20, 5000))
        times = {variant: [] for variant in variants}
        for _ in range(repeats):
            for variant, sim in sims.items():
                t0 = time.perf_counter()
                sim.run_steps(steps)
                times[variant].append((time.perf_counter() - t0) / steps)
    finally:
        for sim in sims.values():
            sim.close()
    return {variant: np.array(t) for variant, t in times.items()}


def run(sizes, repeats=5, target_s=0.1, out=sys.stdout):
    """Time every configuration in ``sizes`` and print the table.

    Returns the table as a list of dicts keyed by `COLUMNS`.
    """
    rows = []
    print(format_header(), file=out)
    for n, d, d_out in sizes:
        t = time_variants(n, d, d_out, repeats=repeats, target_s=target_s)
        # each ratio is the median of the ratios within a repeat, whose
        # variants ran back to back
        pes, node = t["pes"], t["node"]
        row = {
            "n": n,
            "d": d,
            "d_out": d_out,
            "pes_us": float(np.median(pes)) * 1e6,
            "fa/pes": median_ratio(t["fa"], pes),
            "bp/pes": median_ratio(t["bp"], pes),
            "node/pes": median_ratio(node, pes),
            "fa/node": median_ratio(t["fa"], node),
            "bp/node": median_ratio(t["bp"], node),
            # what learning adds to the step, against what the Node adds
            "fa+/node+": median_ratio(t["fa"] - pes, node - pes),
            "bp+/node+": median_ratio(t["bp"] - pes, node - pes),
            "fa_ref/pes": median_ratio(t["fa_ref"], pes),
            "bp_ref/pes": median_ratio(t["bp_ref"], pes),
        }
        rows.append(row)
        print(format_row(row), file=out, flush=True)
    return rows


BITS_COLUMNS = ("n", "d", "d_out", "fa_us", "fa32/fa", "bp_us", "bp32/bp")


def run_bits(sizes, repeats=5, target_s=0.1, out=sys.stdout):
    """Time FA and BP in float64 and float32 (``nengo.rc`` precision), in
    turn, and print the table of the float32 step time relative to float64."""
    rows = []
    print(" ".join(f"{c:>10}" for c in BITS_COLUMNS), file=out)
    variants = ("fa", "fa@32", "bp", "bp@32")
    for n, d, d_out in sizes:
        t = time_variants(
            n, d, d_out, repeats=repeats, target_s=target_s, variants=variants
        )
        row = {
            "n": n,
            "d": d,
            "d_out": d_out,
            "fa_us": float(np.median(t["fa"])) * 1e6,
            "fa32/fa": median_ratio(t["fa@32"], t["fa"]),
            "bp_us": float(np.median(t["bp"])) * 1e6,
            "bp32/bp": median_ratio(t["bp@32"], t["bp"]),
        }
        rows.append(row)
        cells = [
            f"{row[c]:>10d}" if isinstance(row[c], int) else f"{row[c]:>10.2f}"
            for c in BITS_COLUMNS
        ]
        print(" ".join(cells), file=out, flush=True)
    return rows


def median_ratio(a, b):
    """The median over repeats of ``a / b``."""
    return float(np.median(a / b))


def format_header():
    return " ".join(f"{c:>10}" for c in COLUMNS)


def format_row(row):
    cells = []
    for c in COLUMNS:
        v = row[c]
        cells.append(f"{v:>10d}" if isinstance(v, int) else f"{v:>10.2f}")
    return " ".join(cells)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="one small configuration, fast"
    )
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--d", type=int, nargs="+", default=[2, 64])
    parser.add_argument("--d-out", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--target-s",
        type=float,
        default=0.15,
        help="seconds per PES-only timing run (sets the number of steps)",
    )
    parser.add_argument(
        "--bits",
        action="store_true",
        help="time FA and BP in float32 against float64 instead "
        "(default sizes: n 1000 2000, d 784, d_out 10)",
    )
    args = parser.parse_args(argv)
    nengo.rc["decoder_cache"]["enabled"] = "False"
    if args.bits:
        n = args.n if args.n != parser.get_default("n") else [1000, 2000]
        d = args.d if args.d != parser.get_default("d") else [784]
        d_out = args.d_out if args.d_out != parser.get_default("d_out") else [10]
        print(f"# float32/float64 timed in turn, {args.repeats} repeats")
        sizes = list(itertools.product(n, d, d_out))
        return run_bits(sizes, repeats=args.repeats, target_s=args.target_s)
    if args.quick:
        sizes = [(100, 2, 1), (1000, 64, 10)]
        repeats, target_s = 3, 0.02
    else:
        sizes = list(itertools.product(args.n, args.d, args.d_out))
        repeats, target_s = args.repeats, args.target_s
    print(
        f"# variants timed in turn, {repeats} repeats; pes_us: median us per "
        "PES-only step; ratios: median over repeats; x+: x - pes"
    )
    return run(sizes, repeats=repeats, target_s=target_s)


if __name__ == "__main__":
    main()
