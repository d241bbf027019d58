"""Step time of networks whose hidden layers learn, relative to PES only.

The default table (``run_rules``) times every rule on one hidden layer, for
each configuration (neuron type, ``n`` neurons, ``d`` dimensions, ``d_out``
outputs): ``pes``, the network with a PES-learned readout only, and the same
network plus each rule on the connection into the hidden ensemble. The neuron
types are rectified linear and LIF; ``--neuron`` also times AdaptiveLIF,
Sigmoid, Tanh and the spiking wrappers (``spiking-relu``,
``regular-lif``: `nengo.RegularSpiking` of `nengo.LIFRate`), whose
derivatives the rules run compiled too:

``fa`` / ``bp`` / ``ss``
    `nengo_fa.FeedbackAlignment`, `nengo_fa.BackProp`, `nengo_fa.SignSymmetry`.
``kp`` / ``sa``
    `nengo_fa.FeedbackAlignment` whose feedback learns: `nengo_fa.KolenPollack`
    and `nengo_fa.SymmetricAlignment` (with their alignment diagnostics).

and, with ``--rules`` or ``--all``, the rest of the hidden-layer rules:

``lra`` / ``dtp``
    `nengo_fa.LRA` and `nengo_fa.DifferenceTargetProp` through the readout.
``sg`` / ``trace``
    `nengo_fa.SyntheticGradient` (fixed random feedback; its error connected
    without a synapse, as it asks) and `nengo_fa.TraceRule` (no phases, so
    at a thousandth of its rates, which would diverge here: timed, not
    trained).

For each it prints the step time relative to ``pes`` (``x/pes``) and the
synapse updates per second of the whole step (``x_G/s``: the ``n d`` learned
synapses over the step time, in billions), next to ``floor_G/s``: the same
for one in-place BLAS rank-1 update of an ``(n, d)`` matrix (``dger`` in
blocks of 8192 elements, single-threaded), this machine's memory floor for
a learning step, and ``floor/pes``: the ratio to PES only of a step that
differed from PES only's by that update alone, in place of the one product
:math:`S x` (single-threaded ``dgemv``) with which PES only reads the same
matrix, ``(pes + floor - read) / pes`` (twice the difference for the
chained pair): what a rule would show that learned at the floor's rate and
cost nothing else. The rules' compiled pass, which updates and encodes in
one pass and skips the rows that do not change, can beat BLAS's ``dger``
and go below it. ``--weights`` times ``a.neurons -> b.neurons`` with
``modifies="weights"`` against the same fixed weights (``n x n`` synapses),
``--chain`` two hidden layers whose rules are chained against the same two
layers fixed (``2 n d`` synapses). ``--all`` runs the whole grid.

``--events`` times `nengo_fa.ERBP`, whose cost is event-driven, against
dense feedback alignment on the same spiking network
(`build_events_network`): ``a.neurons -> b.neurons``, ``n`` LIF neurons
each, ``a`` firing at a set mean rate (``--rates``, default 5, 20 and 50 Hz),
``modifies="weights"`` for both rules, and the weights fixed for ``pes``.
It prints the measured presynaptic spikes per step, the step time of PES only
(``pes_us``), ``fa/pes``, ``erbp/pes`` and ``erbp/fa`` (all from the same
repeats), and ``erbp_ref/pes``: ERBP with numpy instead of the compiled loop.

``--bits`` times each rule built with ``nengo.rc`` precision 32 bits against
64 bits (default d=784, n=1000 and 2000), with the memory floors of both.

``--node`` prints the table of the earlier speed issue instead: ``pes``,
``fa``, ``bp``; ``fa_ref`` / ``bp_ref``, the same built with the
straightforward implementation (Nengo's generic ``(n, d)`` delta plus
``Copy``, all numpy: the "before", measured in the same run; the two give the
same results, ``tests/test_speed_equivalence.py``); and ``node``, the same
network where a `nengo.Node` does feedback alignment by hand (the sketch from
the original request): it holds the scaled encoders and a bias offset,
computes the input current ``S x + b'``, and updates both from
``delta = (B e) * (a > 0)`` with a fixed random ``B``. ``fa/node`` and
``bp/node`` compare whole steps: below 0.5, the network with the rule steps
more than twice as fast as the one with the Node. A network's step also holds
everything PES-only does, so no rule can go below ``1 / (node/pes)`` there.
``fa+/node+`` and ``bp+/node+`` compare what learning the hidden layer adds to
a step: ``(fa - pes) / (node - pes)``, the rule's cost against the Node's.

The simulators of one configuration are built side by side and timed in
turn, repeat after repeat, so that they share whatever else the machine is
doing; each ratio is the median over the repeats of the ratio within one
repeat. BLAS runs single-threaded (``--threads``), as the compiled loops do:
on a busy machine, OpenBLAS's threads made PES only's ``S x`` at n=1000,
d=784 take 8 ms instead of 0.4. ``--help`` lists the options.
"""

import os

# before numpy loads OpenBLAS (threadpoolctl, where installed, also sets it
# later: see main)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import itertools
import sys
import time
import warnings

import nengo
import numpy as np
from nengo.params import Default

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


#: The rules of the default table (see the module docstring).
RULES = ("fa", "bp", "ss", "kp", "sa")
#: The other hidden-layer rules, timed with ``--rules`` or ``--all``.
OTHER_RULES = ("lra", "dtp", "sg", "trace")
#: The rules of the weights and chain tables.
WEIGHTS_RULES = ("fa", "bp")
CHAIN_RULES = ("fa", "bp")
#: The neuron types of the tables (``--neuron``); the default tables and
#: ``--all`` run `DEFAULT_NEURONS`, the others are timed when named.
NEURONS = {
    "relu": nengo.RectifiedLinear,
    "lif": nengo.LIF,
    "alif": nengo.AdaptiveLIF,
    "sigmoid": nengo.Sigmoid,
    "tanh": nengo.Tanh,
    "spiking-relu": nengo.SpikingRectifiedLinear,
    "regular-lif": lambda: nengo.RegularSpiking(nengo.LIFRate()),
}
DEFAULT_NEURONS = ("relu", "lif")


def check_args(parser, args):
    """Refuse what would time something other than asked: unknown rules
    (they would be timed as PES only), sizes and repeats below 1, a neuron
    type for a table whose networks fix theirs. Rules may be given space or
    comma separated."""
    if args.rules is not None:
        args.rules = [r for arg in args.rules for r in arg.split(",") if r]
        unknown = [r for r in args.rules if r not in RULES + OTHER_RULES]
        if unknown:
            parser.error(
                f"unknown rule(s) {', '.join(unknown)}; choose from "
                f"{', '.join(RULES + OTHER_RULES)}"
            )
    for name in ("n", "d", "d_out"):
        values = getattr(args, name)
        if values is not None and min(values) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1: {values}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, not {args.repeats}")
    if args.rates is not None and min(args.rates) <= 0:
        parser.error(f"--rates must be positive: {args.rates}")
    fixed = [f"--{name}" for name in ("bits", "node", "events") if getattr(args, name)]
    if args.neuron is not None and fixed:
        # their networks have neuron types of their own
        parser.error(f"--neuron does not apply to {fixed[0]}")


def rule_type(name, readout, d_out, **kwargs):
    """The rule of variant ``name`` (``_ref`` suffix ignored) on a layer whose
    output goes through ``readout``; None for ``pes`` and ``node``."""
    name = name.split("_")[0]
    if name == "fa":
        return nengo_fa.FeedbackAlignment(error_size=d_out, **kwargs)
    if name == "bp":
        # learning from the first step (SignSymmetry too): the slow readout
        # (PES 1e-6) would make its default warm-up longer than the timed
        # steps
        return nengo_fa.BackProp(readout, **{"warmup": None, **kwargs})
    if name == "erbp":
        return nengo_fa.ERBP(d_out, **kwargs)
    if name == "ss":
        return nengo_fa.SignSymmetry(readout, **{"warmup": None, **kwargs})
    if name == "kp":
        return nengo_fa.FeedbackAlignment(
            downstream=readout,
            feedback=nengo.dists.Gaussian(0, 1e-4),
            feedback_learning=nengo_fa.KolenPollack(),
            **kwargs,
        )
    if name == "sa":
        return nengo_fa.FeedbackAlignment(
            downstream=readout,
            feedback_learning=nengo_fa.SymmetricAlignment(),
            **kwargs,
        )
    if name == "lra":
        return nengo_fa.LRA(downstream=readout, **kwargs)
    if name == "dtp":
        return nengo_fa.DifferenceTargetProp(readout, **kwargs)
    if name == "sg":
        return nengo_fa.SyntheticGradient(error_size=d_out, **kwargs)
    if name == "trace":
        # without phases the rule feeds its own changes back and diverges;
        # at a thousandth of its rates it does the same work each step
        slow = {f"{p}learning_rate": 7e-4 for p in ("", "gain_", "bias_")}
        return nengo_fa.TraceRule(d_out, **{**slow, **kwargs})
    if name in ("pes", "node"):
        return None
    raise ValueError(f"unknown rule {name!r}")


def hidden_ensemble(n, d, neuron_type, rng, label=None):
    """An ensemble with explicit encoders, gains and biases (so that the Node
    sketch starts from exactly the hidden layer the rules start from)."""
    encoders = nengo.dists.UniformHypersphere(surface=True).sample(n, d, rng=rng)
    gain, bias = neuron_type.gain_bias(
        rng.uniform(200, 400, size=n), rng.uniform(-0.9, 0.9, size=n)
    )
    ens = nengo.Ensemble(
        n,
        d,
        neuron_type=neuron_type,
        encoders=encoders,
        gain=gain,
        bias=bias,
        label=label,
    )
    return ens, encoders, gain


def task(net, n, d, d_out, hidden, rng):
    """Sines in, a random linear map of them as the target, and a
    PES-learned readout from ``hidden``'s neurons; returns ``(stim, error,
    readout)``."""
    freqs = rng.uniform(0.5, 2, size=d)
    target_map = rng.normal(scale=1.0 / np.sqrt(d), size=(d_out, d))
    readout_weights = rng.normal(scale=1e-3 / n, size=(d_out, n))
    with net:
        stim = nengo.Node(lambda t: np.sin(freqs * t) / np.sqrt(d))
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
    return stim, error, readout


def build_network(variant, n, d, d_out, seed=0, neuron_type=None):
    """The benchmark network for one variant (see the module docstring)."""
    neuron_type = nengo.RectifiedLinear() if neuron_type is None else neuron_type
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        hidden, encoders, gain = hidden_ensemble(n, d, neuron_type, rng)
    stim, error, readout = task(net, n, d, d_out, hidden, rng)
    with net:
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
            rule = rule_type(variant, readout, d_out)
            layer1 = nengo.Connection(stim, hidden, learning_rule_type=rule)
            if rule is not None:
                # a SyntheticGradient reads an error of exactly 0 as missing
                synapse = None if variant.startswith("sg") else Default
                nengo.Connection(error, layer1.learning_rule, synapse=synapse)
    return net


def build_weights_network(variant, n, d, d_out, seed=0, neuron_type=None):
    """``a.neurons -> b.neurons`` (``n`` each, full random weights), learned
    by the rule of ``variant`` with ``modifies="weights"`` or fixed
    (``pes``); ``a`` encodes the ``d``-dimensional input and ``b`` has the
    PES readout of `build_network`."""
    neuron_type = nengo.RectifiedLinear() if neuron_type is None else neuron_type
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        pre, _, _ = hidden_ensemble(n, d, neuron_type, rng, label="a")
        hidden, _, _ = hidden_ensemble(n, d, neuron_type, rng, label="b")
    stim, error, readout = task(net, n, d, d_out, hidden, rng)
    with net:
        nengo.Connection(stim, pre)
        rule = rule_type(variant, readout, d_out, modifies="weights")
        layer = nengo.Connection(
            pre.neurons,
            hidden.neurons,
            transform=rng.normal(scale=1.0 / n, size=(n, n)),
            learning_rule_type=rule,
        )
        if rule is not None:
            nengo.Connection(error, layer.learning_rule)
    return net


def build_chain_network(variant, n, d, d_out, seed=0, neuron_type=None):
    """Two hidden layers (``n`` neurons, ``d`` dimensions each; the second
    decodes the first), the PES readout of `build_network` from the second;
    the rule of ``variant`` on the connection into the second layer and,
    chained to it, on the connection into the first (or both fixed:
    ``pes``)."""
    neuron_type = nengo.RectifiedLinear() if neuron_type is None else neuron_type
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        h1, _, _ = hidden_ensemble(n, d, neuron_type, rng, label="h1")
        h2, _, _ = hidden_ensemble(n, d, neuron_type, rng, label="h2")
    stim, error, readout = task(net, n, d, d_out, h2, rng)
    with net:
        rule = rule_type(variant, readout, d_out)
        layer2 = nengo.Connection(h1, h2, learning_rule_type=rule)
        lower = None
        if variant.startswith("fa"):
            lower = nengo_fa.FeedbackAlignment(downstream=layer2)
        elif variant.startswith("bp"):
            lower = nengo_fa.BackProp(layer2)
        nengo.Connection(stim, h1, learning_rule_type=lower)
        if rule is not None:
            nengo.Connection(error, layer2.learning_rule)
    return net


def build_events_network(variant, n, d, d_out, seed=0, neuron_type=None, rate=20.0):
    """``a.neurons -> b.neurons`` (``n`` LIF neurons each, random weights),
    learned by ``variant``'s rule with ``modifies="weights"`` (``fa`` or
    ``erbp``) or fixed (``pes``); ``b`` has the PES readout of
    `build_network`. ``a``'s neurons fire at constant rates spread uniformly
    over ``rate`` +- 50% (their biases set for it, gains near zero), so
    that the presynaptic spikes per step are ``n rate dt`` on average."""
    lif = nengo.LIF()
    rng = np.random.RandomState(seed)
    rates = rate * rng.uniform(0.5, 1.5, size=n)
    # the LIF current that gives each rate: 1 / (1 - exp((ref - 1/r) / rc))
    bias = 1.0 / -np.expm1((lif.tau_ref - 1.0 / rates) / lif.tau_rc)
    with nengo.Network(seed=seed) as net:
        pre = nengo.Ensemble(
            n, d, neuron_type=lif, gain=np.full(n, 1e-6), bias=bias, label="a"
        )
        hidden, _, _ = hidden_ensemble(n, d, lif, rng, label="b")
    stim, error, readout = task(net, n, d, d_out, hidden, rng)
    with net:
        nengo.Connection(stim, pre)
        rule = rule_type(variant, readout, d_out, modifies="weights")
        layer = nengo.Connection(
            pre.neurons,
            hidden.neurons,
            transform=rng.normal(scale=1.0 / n, size=(n, n)),
            learning_rule_type=rule,
        )
        if rule is not None:
            nengo.Connection(error, layer.learning_rule)
        net.p_spikes = nengo.Probe(pre.neurons)
    return net


BUILDERS = {
    "encoders": build_network,
    "weights": build_weights_network,
    "chain": build_chain_network,
    "events": build_events_network,
}


def make_simulator(
    variant, n, d, d_out, kind="encoders", neuron_type=None, **build_kwargs
):
    """Build the network of one variant into a `nengo.Simulator`.

    ``kind`` picks the network (`BUILDERS`). A variant ending in ``@32`` is
    built with ``nengo.rc`` precision 32 bits; one ending in ``_ref`` with the
    straightforward implementation (Nengo's generic delta plus ``Copy``, all
    numpy).
    """
    variant, _, bits = variant.partition("@")
    ref = variant.endswith("_ref")
    settings = {"inplace_encoder_update": not ref}
    if ref:
        settings["compiled_kernels"] = False
    old_bits = nengo.rc.get("precision", "bits")
    nengo.rc.set("precision", "bits", bits or old_bits)
    try:
        with nengo_fa.settings.override(**settings):
            net = BUILDERS[kind](
                variant, n, d, d_out, neuron_type=neuron_type, **build_kwargs
            )
            return nengo.Simulator(net, progress_bar=False)
    finally:
        nengo.rc.set("precision", "bits", old_bits)


def time_variants(
    n,
    d,
    d_out,
    repeats=5,
    target_s=0.1,
    variants=VARIANTS,
    kind="encoders",
    neuron_type=None,
    **build_kwargs,
):
    """Seconds per step of each variant in each repeat, timed in turn.

    Returns ``{variant: array of shape (repeats,)}``. The number of steps per
    repeat is chosen so that one run of the first variant takes about
    ``target_s`` seconds.
    """
    sims = {}
    with warnings.catch_warnings():
        # the trace rule's warning that it has no phases: here it is timed,
        # not trained
        warnings.filterwarnings("ignore", message=".*The rule needs phases")
        try:
            for variant in variants:
                sims[variant] = make_simulator(
                    variant,
                    n,
                    d,
                    d_out,
                    kind=kind,
                    neuron_type=neuron_type,
                    **build_kwargs,
                )
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


def memory_floor(rows, cols, dtype=np.float64, repeats=5, target_s=0.05):
    """Seconds of one in-place BLAS rank-1 update of a ``(rows, cols)``
    matrix (the median of ``repeats``): ``dger`` (``sger``) on row blocks of
    8192 elements or fewer, single-threaded, as the rules' numpy code does
    it (`nengo_fa.builder.encoder_update`)."""
    from nengo_fa.builder.encoder_update import GER_BLOCK, inplace_ger

    rng = np.random.RandomState(0)
    S = rng.normal(size=(rows, cols)).astype(dtype)
    x = rng.normal(size=cols).astype(dtype)
    beta = rng.normal(scale=1e-9, size=rows).astype(dtype)
    block = max(1, GER_BLOCK // cols)
    ger = inplace_ger(S[:block])
    blocks = [(S[i : i + block].T, beta[i : i + block]) for i in range(0, rows, block)]

    def update():
        for S_rows_T, beta_rows in blocks:
            ger(1.0, x, beta_rows, a=S_rows_T, overwrite_a=True)

    return median_seconds(update, repeats, target_s)


def read_floor(rows, cols, dtype=np.float64, repeats=5, target_s=0.05):
    """Seconds of one BLAS product :math:`S x` of a ``(rows, cols)`` matrix
    (single-threaded ``dgemv``, the median of ``repeats``): what PES only's
    step does with the matrix a rule updates (its encoding ``DotInc``, or
    the fixed weights' product), reading it without writing it."""
    rng = np.random.RandomState(0)
    S = rng.normal(size=(rows, cols)).astype(dtype)
    x = rng.normal(size=cols).astype(dtype)
    out = np.empty(rows, dtype=dtype)
    return median_seconds(lambda: np.dot(S, x, out=out), repeats, target_s)


def median_seconds(function, repeats, target_s):
    """The median over ``repeats`` of the seconds one call of ``function``
    takes, each repeat calling it for about ``target_s``."""
    function()
    t0 = time.perf_counter()
    function()
    calls = int(np.clip(target_s / max(time.perf_counter() - t0, 1e-7), 1, 10000))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - t0) / calls)
    return float(np.median(times))


def synapses(kind, n, d):
    """How many synapses learn in a network of ``kind``."""
    return {"encoders": n * d, "weights": n * n, "chain": 2 * n * d}[kind]


def rules_columns(rules):
    """The columns of `run_rules`'s table for ``rules``."""
    per_rule = [c for r in rules for c in (f"{r}/pes", f"{r}_G/s")]
    return ["neuron", "n", "d", "d_out", "pes_us", "floor_G/s", "floor/pes"] + per_rule


def run_rules(
    configs,
    rules=RULES,
    kind="encoders",
    repeats=5,
    target_s=0.1,
    bits=None,
    out=sys.stdout,
):
    """Time ``rules`` against PES only in each configuration
    ``(neuron, n, d, d_out)`` (``neuron`` a key of `NEURONS`), with networks
    of ``kind`` (`BUILDERS`), and print the table (`rules_columns`): ratios,
    synapse updates per second, and the memory floor. ``bits="32"`` builds
    every variant in float32.

    Returns the table as a list of dicts keyed by the columns.
    """
    columns = rules_columns(rules)
    rows = []
    print(format_header(columns), file=out)
    suffix = "" if bits is None else f"@{bits}"
    dtype = np.float32 if bits == "32" else np.float64
    for neuron, n, d, d_out in configs:
        variants = [v + suffix for v in ("pes",) + tuple(rules)]
        t = time_variants(
            n,
            d,
            d_out,
            repeats=repeats,
            target_s=target_s,
            variants=variants,
            kind=kind,
            neuron_type=NEURONS[neuron](),
        )
        count = synapses(kind, n, d)
        rows_cols = (n, n) if kind == "weights" else (n, d)
        floor = memory_floor(*rows_cols, dtype=dtype, repeats=repeats)
        read = read_floor(*rows_cols, dtype=dtype, repeats=repeats)
        matrices = count // (rows_cols[0] * rows_cols[1])
        pes = float(np.median(t[variants[0]]))
        row = {
            "neuron": neuron,
            "n": n,
            "d": d,
            "d_out": d_out,
            "pes_us": pes * 1e6,
            "floor_G/s": count / floor * 1e-9,
            "floor/pes": (pes + matrices * (floor - read)) / pes,
        }
        for rule, variant in zip(rules, variants[1:]):
            row[f"{rule}/pes"] = median_ratio(t[variant], t[variants[0]])
            row[f"{rule}_G/s"] = count / float(np.median(t[variant])) * 1e-9
        rows.append(row)
        print(format_row(row, columns), file=out, flush=True)
    return rows


EVENTS_VARIANTS = ("pes", "fa", "erbp", "erbp_ref")
EVENTS_COLUMNS = (
    "rate_Hz",
    "n",
    "spikes",
    "pes_us",
    "fa/pes",
    "erbp/pes",
    "erbp/fa",
    "erbp_ref/pes",
)


def run_events(ns, rates, repeats=5, target_s=0.1, d=8, d_out=10, out=sys.stdout):
    """Time `nengo_fa.ERBP` against dense FA and PES only on
    `build_events_network` for each ``n`` and presynaptic rate, and print the
    table (`EVENTS_COLUMNS`; see the module docstring). Returns its rows."""
    print(format_header(EVENTS_COLUMNS), file=out)
    rows = []
    for n, rate in itertools.product(ns, rates):
        t = time_variants(
            n,
            d,
            d_out,
            repeats=repeats,
            target_s=target_s,
            variants=EVENTS_VARIANTS,
            kind="events",
            rate=rate,
        )
        with nengo.Simulator(
            build_events_network("pes", n, d, d_out, rate=rate), progress_bar=False
        ) as sim:
            sim.run(0.5)
            spikes = sim.data[sim.model.toplevel.p_spikes]
        row = {
            "rate_Hz": rate,
            "n": n,
            "spikes": float(np.count_nonzero(spikes[100:]) / len(spikes[100:])),
            "pes_us": float(np.median(t["pes"])) * 1e6,
        }
        for variant in EVENTS_VARIANTS[1:]:
            row[f"{variant}/pes"] = median_ratio(t[variant], t["pes"])
        row["erbp/fa"] = median_ratio(t["erbp"], t["fa"])
        rows.append(row)
        print(format_row(row, EVENTS_COLUMNS), file=out, flush=True)
    return rows


BITS_COLUMNS = (
    "rule",
    "n",
    "d",
    "d_out",
    "us",
    "G/s",
    "32_G/s",
    "32/64",
    "floor_G/s",
    "floor32_G/s",
)


def run_bits(sizes, rules=("fa", "bp"), repeats=5, target_s=0.1, out=sys.stdout):
    """Time ``rules`` in float64 and float32 (``nengo.rc`` precision), in
    turn, and print one row per rule and size: the float64 step time, the
    synapse updates per second of both, the float32 step time relative to
    float64, and the memory floor in both precisions."""
    rows = []
    print(format_header(BITS_COLUMNS), file=out)
    for n, d, d_out in sizes:
        variants = [v for r in rules for v in (r, f"{r}@32")]
        t = time_variants(
            n, d, d_out, repeats=repeats, target_s=target_s, variants=variants
        )
        floors = [
            memory_floor(n, d, dtype, repeats) for dtype in (np.float64, np.float32)
        ]
        for rule in rules:
            t64, t32 = t[rule], t[f"{rule}@32"]
            row = {
                "rule": rule,
                "n": n,
                "d": d,
                "d_out": d_out,
                "us": float(np.median(t64)) * 1e6,
                "G/s": n * d / float(np.median(t64)) * 1e-9,
                "32_G/s": n * d / float(np.median(t32)) * 1e-9,
                "32/64": median_ratio(t32, t64),
                "floor_G/s": n * d / floors[0] * 1e-9,
                "floor32_G/s": n * d / floors[1] * 1e-9,
            }
            rows.append(row)
            print(format_row(row, BITS_COLUMNS), file=out, flush=True)
    return rows


def median_ratio(a, b):
    """The median over repeats of ``a / b``."""
    return float(np.median(a / b))


def format_header(columns=COLUMNS):
    return " ".join(f"{c:>10}" for c in columns)


def format_row(row, columns=COLUMNS):
    cells = []
    for c in columns:
        v = row[c]
        if isinstance(v, str):
            cells.append(f"{v:>10}")
        elif isinstance(v, int):
            cells.append(f"{v:>10d}")
        elif c.endswith("G/s"):
            cells.append(f"{v:>10.3g}")
        else:
            cells.append(f"{v:>10.2f}")
    return " ".join(cells)


#: The default table: every rule on both neuron types at the sizes of the
#: issue's table and at d=784 (``--all``: the whole grid, `grid`).
DEFAULT_CONFIGS = [
    (neuron, n, d, 10)
    for neuron in DEFAULT_NEURONS
    for n, d in ((100, 2), (1000, 64), (1000, 784))
]


def grid(neurons, ns, ds, d_outs):
    return list(itertools.product(neurons, ns, ds, d_outs))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="one small configuration, fast"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="the whole grid: every rule x {relu, lif} x n {100, 1000, 5000} x "
        "d {2, 64, 784}, and the weights and chain tables",
    )
    parser.add_argument(
        "--neuron",
        nargs="+",
        choices=list(NEURONS),
        help=f"default {' '.join(DEFAULT_NEURONS)}; the others time each rule's "
        "compiled derivative of that type",
    )
    parser.add_argument("--n", type=int, nargs="+")
    parser.add_argument("--d", type=int, nargs="+")
    parser.add_argument("--d-out", type=int, nargs="+")
    parser.add_argument(
        "--rules",
        nargs="+",
        help=f"a subset of {', '.join(RULES + OTHER_RULES)} (space or comma "
        f"separated; default {', '.join(RULES)}, with --all all of them)",
    )
    parser.add_argument(
        "--weights", action="store_true", help="the weights table instead"
    )
    parser.add_argument("--chain", action="store_true", help="the chain table instead")
    parser.add_argument(
        "--events",
        action="store_true",
        help="ERBP (event-driven) against dense FA and PES only on a spiking "
        "a.neurons -> b.neurons network (default n 1000 2000, --rates 5 20 50)",
    )
    parser.add_argument(
        "--rates",
        type=float,
        nargs="+",
        help="--events: presynaptic mean rates in Hz",
    )
    parser.add_argument(
        "--float32",
        action="store_true",
        help="build every network of the rules tables in float32",
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS threads (default 1)"
    )
    parser.add_argument(
        "--target-s",
        type=float,
        default=0.15,
        help="seconds per PES-only timing run (sets the number of steps)",
    )
    parser.add_argument(
        "--bits",
        action="store_true",
        help="time the rules in float32 against float64 instead "
        "(default sizes: n 1000 2000, d 784, d_out 10)",
    )
    parser.add_argument(
        "--node",
        action="store_true",
        help="the table of the earlier speed issue (relu; FA, BP, their "
        "straightforward implementations and the Node sketch; default sizes "
        "n 100 1000 5000, d 2 64, d_out 1 10)",
    )
    args = parser.parse_args(argv)
    check_args(parser, args)
    nengo.rc["decoder_cache"]["enabled"] = "False"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # then OPENBLAS_NUM_THREADS, set above, holds
        pass
    else:
        threadpool_limits(args.threads)
    repeats, target_s = args.repeats, args.target_s
    if args.quick:
        repeats, target_s = 3, 0.02

    def pick(value, default):
        return default if value is None else value

    bits = "32" if args.float32 else None
    print(
        f"# variants timed in turn, {repeats} repeats; ratios: median over "
        "repeats; G/s: learned synapses per second of the whole step, 1e9"
    )
    if args.events:
        ns = pick(args.n, [200] if args.quick else [1000, 2000])
        rates = pick(args.rates, [20.0] if args.quick else [5.0, 20.0, 50.0])
        return run_events(ns, rates, repeats=repeats, target_s=target_s)
    if args.node:
        sizes = itertools.product(
            pick(args.n, [100, 1000, 5000]),
            pick(args.d, [2, 64]),
            pick(args.d_out, [1, 10]),
        )
        return run(list(sizes), repeats=repeats, target_s=target_s)
    if args.bits:
        sizes = itertools.product(
            pick(args.n, [1000, 2000]), pick(args.d, [784]), pick(args.d_out, [10])
        )
        rules = pick(args.rules, list(RULES))
        return run_bits(list(sizes), rules=rules, repeats=repeats, target_s=target_s)
    neurons = pick(args.neuron, list(DEFAULT_NEURONS))
    tables = []
    if args.weights or args.all:
        configs = grid(neurons, pick(args.n, [100, 1000]), [8], pick(args.d_out, [10]))
        tables.append(("weights", WEIGHTS_RULES, configs))
    if args.chain or args.all:
        configs = grid(neurons, pick(args.n, [100, 1000]), pick(args.d, [2, 64]), [10])
        tables.append(("chain", CHAIN_RULES, configs))
    if args.all or not (args.weights or args.chain):
        if args.quick:
            configs = [("relu", 100, 2, 1), ("lif", 1000, 64, 10)]
        elif args.all or any(v is not None for v in (args.n, args.d, args.d_out)):
            configs = grid(
                neurons,
                pick(args.n, [100, 1000, 5000]),
                pick(args.d, [2, 64, 784]),
                pick(args.d_out, [10]),
            )
        else:
            configs = [c for c in DEFAULT_CONFIGS if c[0] in neurons]
        every = list(RULES + OTHER_RULES) if args.all else list(RULES)
        tables.insert(0, ("encoders", pick(args.rules, every), configs))
    results = {}
    for kind, rules, configs in tables:
        print(f"# {kind}", flush=True)
        results[kind] = run_rules(
            configs, rules, kind, repeats=repeats, target_s=target_s, bits=bits
        )
    return results


if __name__ == "__main__":
    main()
