"""Train, freeze, test: do the networks the rules leave behind keep what they learned?

Every run trains a network with its error connected, then gates the error to
zero (all learning stops: the PES readout and the hidden-layer rule alike),
then measures the error of the frozen network. PES only (the hidden layer
stays random, same explicit ensemble and connection seeds) is run in the same
process on the same inputs, and every rule is reported as a ratio to it.
Online error (learning on, the last ``--last`` seconds of training) is
reported beside it, labelled as online; it is not a measure of learning.

Tasks (``--tasks``, comma separated; ``all`` by default)

``product``, ``product-lif``, ``product-tanh``, ``product-spiking``
    The seed task of issue 13: two sines ``sin(pi t)``, ``sin(0.7 pi t)`` into
    10 hidden neurons, ``x0 * x1`` out through a PES readout (``function=lambda
    x: 0``, PES 1e-4, default synapses). Train 40 s, freeze, test 20 s (one
    full period of the pair, so these are inputs it trained on). Hidden neurons:
    RectifiedLinear, LIF (spiking), Tanh, and RegularSpiking(RectifiedLinear).
``white1`` .. ``white4``
    A nonlinear function of a 1-4 D low-pass white-noise input
    (`nengo.processes.WhiteSignal`, period = training time, 1 Hz, rms 0.5):
    ``x0^2``, ``x0 x1``, ``x0 x1 + x2^2``, ``x0 x1 + x2 x3``; 10 d + 10
    RectifiedLinear neurons. Train 60 s, freeze, test 20 s on the first 20 s of
    the training signal (trained inputs) and 20 s of a held-out noise seed.
``weights``
    Neuron-to-neuron weight learning: the ``white2`` input and target, into
    ``a`` (50 neurons), then ``b`` (30 neurons) through a full weight matrix
    (Nengo's decoded connection solved for weights, ``LstsqL2(weights=True)``,
    so ``b`` starts out representing the input) that the rule learns with
    ``modifies="weights"``; PES readout of ``b``. PES only leaves the weights
    as solved.
``digits``
    scikit-learn ``load_digits`` through a 32-neuron RectifiedLinear hidden
    layer (PES 2e-4 readout from its neurons), i.i.d. presentations of 0.03 s,
    several epochs in a fresh random order, then frozen and tested on 397
    held-out images. Error: 1 - accuracy (reported as accuracy). The rules
    that need phases (``trace``, `PHASED_RULES`) see each image for 0.1 s,
    the target from 0.05 to 0.08 s into it (`PHASES`), the same images in
    the same order; they run on this task only.
``digits-spiking``
    The same images, schedule and metric, through spiking neurons and a
    learned weight matrix (`run_digits_spiking`): 128 spiking pixel neurons
    (an on and an off neuron per pixel), a full weight matrix into 32 LIF
    neurons learned with ``modifies="weights"`` (PES only: left as it
    starts, the encoding of the rate networks), PES readout of the spikes.

Rules (``--rules``): ``pes`` (PES only), ``fa``, ``bp``, ``sg``
(`nengo_fa.SyntheticGradient` regressing the error through FA's random
matrix, with the target as its context; not on ``weights``) and ``sgbp``
(the same, regressing backprop's error through the readout; not in the
default run), ``bp0`` (`nengo_fa.BackProp` with ``warmup=None`` and
``feedback_synapse=None``, as it first was: the rule learning from the
first step instead of after the PES readout's fastest time constant, through
the live readout; not in the default run), ``ss`` and ``ss0``
(`nengo_fa.SignSymmetry` with its defaults, and with ``warmup=None`` and
the live readout), ``ssl`` (`nengo_fa.SignSymmetry` through the live
readout), ``bpl`` and ``bpf`` (`nengo_fa.BackProp` through the live readout,
and through the readout low-passed over 1 s); not in the default run.

A late or sparse teacher (``--delay SECONDS``, ``--fraction P``): the gated
error reaches the PES readout and the rule alike through a `LateError` node,
``SECONDS`` late and only on a random fraction ``P`` of the steps (0 on the
others), with no synapse after it; the synthetic gradients are told the
delay (``error_delay``). The task is then named e.g. ``product late0.1``.
Whenever a synthetic gradient is run, or with a delay, the frozen test of
every rule leaves out the delay and ``max_gap`` (0.1 s) after the freeze
(`learning_tail`), during which a rule may still learn. The synthetic
gradient's error connection has no synapse in every run (it takes exact 0s
as a missing error).

A longer training (``--replay K``, the continuous tasks): the training input
is played ``K`` times before the tests, and the error is gated off after the
last time. Every continuous task's input repeats with the training time (the
white-noise signals have it as their period; the product task's two sines
repeat every 20 s), so this is the same input, trained on ``K`` times as long,
and the tests are the same. The task is then named e.g. ``product x2``.

A wider layer (``--width K``, the continuous tasks): the layer that learns
has ``K`` times its neurons (the hidden ensemble; on ``weights``, ``b``),
everything else as it is, PES only alike. The task is then named e.g.
``product w2``.

Seeds: run ``s`` gives the network seed ``s`` and *explicit* seeds
``1000 s + k`` to every ensemble and connection, the same in every variant.

References
    ``lsq``: least-squares decoders fitted offline on the frozen (learned)
    tuning curves over the trained-input test window, evaluated there: how
    good the features are. ``numpy``: the same maths (the update equations of
    ``nengo_fa.HiddenLayerRule`` and nengo.PES, the same synapses) simulated in
    numpy from the same initial network (encoders, biases, feedback matrix read
    from the built simulator); for digits, batch-1 online SGD of the same
    network with the same normalised steps, one step per image. Given for
    every continuous task and digits: on RectifiedLinear rate neurons
    compiled (`numpy_continuous`), on the other neuron types
    (``product-lif``, ``product-tanh``, ``product-spiking``) in plain numpy,
    the neurons stepped as Nengo steps them from the built network's initial
    state, with the rule's derivative and build-time constants
    (`numpy_continuous_neurons`, `BuiltLayer`), and for ``weights`` the
    weight step of ``modifies="weights"`` with its build-time constants
    (`numpy_weights`, `BuiltWeights`). ``mlp`` (digits,
    on the PES-only row): scikit-learn's ``MLPClassifier`` of the same shape
    trained offline on the same images, what the shape can reach.

Rules (``--rules``): ``pes`` (PES only), ``fa`` (`nengo_fa.FeedbackAlignment`,
fixed random feedback), ``bp`` (`nengo_fa.BackProp`) and ``dtp``
(`nengo_fa.DifferenceTargetProp`; with one hidden layer its target step is
backprop's, so its numpy reference is BP's; not run on ``weights`` or
``digits-spiking``, as it learns encoders only), ``trace``
(`nengo_fa.TraceRule`, digits only, see `PHASED_RULES`) and ``erbp``
(`nengo_fa.ERBP`, run only on ``weights`` and ``digits-spiking``, the tasks
with neuron-to-neuron weights) by default; on request (no numpy reference):
``bd``, ``kp``, ``sa`` and ``aa`` (FA learning its feedback with
`nengo_fa.BidirectionalAlignment`, `nengo_fa.KolenPollack` from a small
start, `nengo_fa.SymmetricAlignment` and `nengo_fa.ActivationAlignment`) and
``lra`` (`nengo_fa.LRA`), e.g. ``--tasks product --seeds 5 --rules
pes,fa,bd,lra``.

FA alignment failure (``fa`` and the four that learn their feedback):
``FeedbackAlignment(...,
downstream=readout)`` makes
``delta_angle`` probeable; a seed fails when its mean over the last quarter of
training is not below 90 degrees, or when its frozen error is above PES
only's.

Run ``python benchmarks/generalisation.py`` (10 seeds, all tasks: about 2 hours
on two busy cores, as two processes of half the tasks each; a product task
about 30 s per seed, a white-noise task about 1 min, weights 1.5 min, digits
2 min), ``--quick`` (one seed, 2 s of training: ~15 s for ``--tasks
product,weights``, 1-2 min for all tasks), ``--summarise runs.csv`` (the table
of saved runs), ``--tasks product,white2 --seeds 5 --rules pes,bp --csv
out.csv``. ``--rates kE,kg,kb`` sets the hidden-layer rates of both rules
(default: each rule's defaults). ``--ablation`` runs the numpy reference of
the continuous rate tasks over a grid of rates (`ablation_settings`; 10 seeds
of all five tasks in about 15 minutes), BackProp as ``bp0`` (from the first
step, through the live readout) and as ``bp`` (its defaults: after the
warm-up, through the readout low-passed). ``--pre-synapse none`` runs the
hidden rules with ``pre_synapse=None``: they pair the error with the
current and input of the same step, as they did before they filtered them
(the numpy reference alike).
"""

import argparse
import csv
import os
import sys
import time
import warnings

import nengo
import numpy as np

import nengo_fa
from nengo_fa.builder import SimErrorWarmup, SimHiddenLayerRule
from nengo_fa.builder.warmup import readout_time_constant
from nengo_fa.builder.weights import SimHiddenLayerWeights
from nengo_fa.learning_rules import STEADY_FEEDBACK_RATE, TRACKING_FEEDBACK_RATE

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import load_split  # noqa: E402
from offline import offline_mlp  # noqa: E402

DT = 0.001
ALL_TASKS = (
    "product",
    "product-lif",
    "product-tanh",
    "product-spiking",
    "white1",
    "white2",
    "white3",
    "white4",
    "weights",
    "digits",
    "digits-spiking",
)
ALL_RULES = ("pes", "fa", "bp", "dtp", "sg", "trace", "erbp")
#: not run by default (``--rules pes,fa,bd,kp,sa,aa,lra,sgbp,bp0,bpl,bpf,ss,ss0,ssl``):
#: FA learning its feedback (bidirectional, Kolen-Pollack from a small start,
#: symmetric and activation alignment), LRA, the synthetic gradient regressing
#: backprop's error, BackProp through the live readout
#: (``feedback_synapse=None``; with ``warmup=None`` too: ``bp0``, BackProp as
#: it first was) and through its readout low-passed over 1 s
#: (``feedback_synapse=nengo.Lowpass(1.0)``), and SignSymmetry with its
#: defaults, without the warm-up and through the live readout (``ss0``), and
#: through the live readout (``ssl``)
EXTRA_RULES = (
    "bd",
    "kp",
    "sa",
    "aa",
    "lra",
    "sgbp",
    "bp0",
    "bpl",
    "bpf",
    "ss",
    "ss0",
    "ssl",
)
#: the rules that the numpy references simulate
NUMPY_RULES = ("pes", "fa", "bp", "bp0", "bpl", "dtp")
#: the tasks of `numpy_continuous` (RectifiedLinear rate neurons, compiled)
#: and of `numpy_continuous_neurons` (any neuron type, stepped as Nengo does)
RELU_TASKS = ("product", "white1", "white2", "white3", "white4")
NEURON_TASKS = ("product-lif", "product-tanh", "product-spiking")
#: every task with a numpy reference (digits has its own, `numpy_digits`)
NUMPY_TASKS = RELU_TASKS + NEURON_TASKS + ("weights",)
#: the rules whose delta_angle is measured (fixed or learned random feedback)
ANGLE_RULES = ("fa", "bd", "kp", "sa", "aa")
#: rules that need a phase structure (the target arriving part-way through
#: each presentation): run on digits only, with `PHASES`
PHASED_RULES = ("trace",)
#: for `PHASED_RULES` on digits: each image is shown for ``PHASES[0]`` s, the
#: target (error) present from ``PHASES[1]`` to ``PHASES[2]`` s into it; the
#: plus phase is as long as the other rules' whole presentation, the minus
#: phase five times the expectation's default ``slow_tau`` (`.TraceRule`:
#: the expectation settles), and the gap after the target leaves the time
#: its error takes to decay below ``phase_threshold`` through the two 5 ms
#: synapses
PHASES = (0.1, 0.05, 0.08)
#: The tasks `nengo_fa.ERBP` runs on: it learns neuron-to-neuron weights
#: from presynaptic spikes (rates, in the weights task)
ERBP_TASKS = ("weights", "digits-spiking")

FUNCTIONS = {
    1: lambda x: x[..., 0] ** 2,
    2: lambda x: x[..., 0] * x[..., 1],
    3: lambda x: x[..., 0] * x[..., 1] + x[..., 2] ** 2,
    4: lambda x: x[..., 0] * x[..., 1] + x[..., 2] * x[..., 3],
}


def neuron_type(task):
    return {
        "product-lif": nengo.LIF(),
        "product-tanh": nengo.Tanh(),
        "product-spiking": nengo.RegularSpiking(nengo.RectifiedLinear()),
    }.get(task, nengo.RectifiedLinear())


#: ``pre_synapse`` of the hidden rules (``--pre-synapse``): the filter of the
#: current and input they pair the error with; None gives the rules as they
#: were before it.
PRE_SYNAPSE = nengo.Default


def rule_type(rule, readout, rates, context=None, error_delay=0.0, **kwargs):
    """The rule on the connection into the hidden layer (None for PES only).
    ``context`` and ``error_delay`` are for the synthetic gradient ("sg"),
    which gets the target as its context."""
    if rule == "pes":
        return None
    kw = {"pre_synapse": PRE_SYNAPSE, **kwargs}
    if rates is not None:
        kw.update(
            learning_rate=rates[0],
            gain_learning_rate=rates[1],
            bias_learning_rate=rates[2],
        )
    if rule == "erbp":
        # one rate; ERBP learns neither gains nor biases, and filters none
        kw.pop("gain_learning_rate", None)
        kw.pop("bias_learning_rate", None)
        kw.pop("pre_synapse")
        kw.setdefault("modifies", "encoders")
        return nengo_fa.ERBP(readout.size_out, **kw)
    if rule == "fa":
        return nengo_fa.FeedbackAlignment(downstream=readout, **kw)
    if rule in ("bp", "bp0", "bpl", "bpf", "ss", "ss0", "ssl"):
        return readout_rule(rule, readout, kw)
    if rule == "dtp":
        return nengo_fa.DifferenceTargetProp(readout, **kw)
    if rule in LEARNED_FEEDBACK:
        learning, feedback = LEARNED_FEEDBACK[rule]
        if feedback is not None:
            kw["feedback"] = feedback
        return nengo_fa.FeedbackAlignment(
            downstream=readout, feedback_learning=learning(), **kw
        )
    if rule == "lra":
        return nengo_fa.LRA(downstream=readout, **kw)
    if rule == "trace":
        return nengo_fa.TraceRule(readout.size_out, **kw)
    if rule == "sg":
        return nengo_fa.SyntheticGradient(
            error_size=readout.size_out,
            context=context,
            error_delay=error_delay,
            **kw,
        )
    if rule == "sgbp":
        # the true error it regresses is backprop's, through the readout
        return nengo_fa.SyntheticGradient(
            downstream=readout, context=context, error_delay=error_delay, **kw
        )
    raise ValueError(f"unknown rule {rule!r}")


#: the rules whose feedback is the live weights of the (learning) readout
LIVE_READOUT = ("bp0", "bpl", "ss0", "ssl")


def readout_rule(rule, readout, kw):
    """BackProp ("bp...") or SignSymmetry ("ss..."), the rules that read the
    readout's weights: "0" without the warm-up, and for BackProp through the
    live readout, as it first was; "l" through the live readout; "f"
    through the readout low-passed over 1 s."""
    if rule.endswith("0"):
        kw["warmup"] = None
    if rule in LIVE_READOUT:
        kw["feedback_synapse"] = None
    if rule == "bpf":
        kw["feedback_synapse"] = nengo.Lowpass(1.0)
    live = nengo_fa.BackProp if rule.startswith("bp") else nengo_fa.SignSymmetry
    return live(readout, **kw)


class LateError:
    """The error ``delay`` seconds late, and only on a random ``fraction`` of
    the steps (0 on the others): a slow or sparse teacher. The steps are
    drawn from ``seed``."""

    def __init__(self, size, delay, fraction, seed):
        self.buffer = np.zeros((int(round(delay / DT)) + 1, size))
        self.fraction = fraction
        self.rng = np.random.RandomState(seed)

    def __call__(self, t, x):
        if t <= 0:
            return 0 * x  # Nengo's call at build time, to find the output size
        self.buffer[:-1] = self.buffer[1:]
        self.buffer[-1] = x
        keep = self.fraction >= 1 or self.rng.uniform() < self.fraction
        return self.buffer[0] if keep else 0 * x


def error_path(error, late, seed):
    """``(node, synapse)``: what the rules' error connections start from.

    Without ``late`` (``(delay, fraction)``, or None), the gated ``error``
    itself with Nengo's default synapse, as in every run before synthetic
    gradients were added. With it, a `LateError` node after the gate, read
    with no synapse (a missing error must be exactly 0), for every rule
    alike, PES only included."""
    if late is None:
        return error, nengo.Default
    node = nengo.Node(LateError(error.size_out, *late, seed), size_in=error.size_out)
    nengo.Connection(error, node, synapse=None)
    return node, None


def late_label(task, late, replay=1, width=1):
    """The task's name in the tables: ``product late0.1 sparse0.05``,
    ``product x2`` with the training played twice (`replayed`), or
    ``product w2`` with twice the neurons in the layer that learns."""
    if width > 1:
        task = f"{task} w{width}"
    if replay > 1:
        task = f"{task} x{replay}"
    if late is None:
        return task
    delay, fraction = late
    return (
        task
        + (f" late{delay:g}" if delay else "")
        + (f" sparse{fraction:g}" if fraction < 1 else "")
    )


# ---------------------------------------------------------------- inputs


def continuous_inputs(task, seed, t_train, t_test):
    """(X, target, windows) for the product and white-noise tasks.

    X holds the input at every step of train + tests; windows maps a test name
    to its (start, stop) step indices."""
    n_tr, n_te = int(round(t_train / DT)), int(round(t_test / DT))
    if task.startswith("product"):
        t = np.arange(1, n_tr + n_te + 1) * DT
        X = np.stack([np.sin(np.pi * t), np.sin(0.7 * np.pi * t)], axis=1)
        windows = {"trained": (n_tr, n_tr + n_te)}
        f = FUNCTIONS[2]
    else:
        d = 2 if task == "weights" else int(task[-1])
        proc = nengo.processes.WhiteSignal(period=t_train, high=1.0, rms=0.5)
        train = proc.run_steps(n_tr, d=d, dt=DT, rng=np.random.RandomState(seed))
        novel = proc.run_steps(
            n_te, d=d, dt=DT, rng=np.random.RandomState(seed + 10**6)
        )
        # the signal has period t_train: the first test replays its start
        X = np.vstack([train, train[:n_te], novel])
        windows = {
            "trained": (n_tr, n_tr + n_te),
            "novel": (n_tr + n_te, n_tr + 2 * n_te),
        }
        f = FUNCTIONS[d]
    return X, f(X)[:, None], windows


def replayed(X, Y, windows, n_train, k):
    """``(X, Y, windows)`` with the first ``n_train`` steps (the training)
    played ``k`` times before the rest (the tests): the same input, trained on
    ``k`` times as long, for inputs that repeat with the training time (every
    task of `continuous_inputs`)."""
    shift = (k - 1) * n_train
    X = np.vstack([X[:n_train]] * (k - 1) + [X])
    Y = np.vstack([Y[:n_train]] * (k - 1) + [Y])
    return X, Y, {w: (lo + shift, hi + shift) for w, (lo, hi) in windows.items()}


def array_node(X, label):
    n = len(X)
    return nengo.Node(
        lambda t: X[min(max(int(round(t / DT)) - 1, 0), n - 1)], label=label
    )


# ---------------------------------------------------------------- networks


def continuous_network(task, rule, seed, X, Y, t_train, rates, n_neurons, late=None):
    """Hidden ensemble -> PES readout; ``rule`` trains the hidden layer; the
    error reaches both through `error_path` (``late``)."""
    d = X.shape[1]
    s = 1000 * seed
    with nengo.Network(seed=seed) as net:
        stim = array_node(X, "stim")
        target = array_node(Y, "target")
        hidden = nengo.Ensemble(
            n_neurons, d, neuron_type=neuron_type(task), seed=s + 1, label="hidden"
        )
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(
            hidden,
            out,
            function=lambda x: 0,
            learning_rule_type=nengo.PES(),
            seed=s + 2,
        )
        delay = 0.0 if late is None else late[0]
        rt = rule_type(rule, readout, rates, context=target, error_delay=delay)
        layer1 = nengo.Connection(stim, hidden, learning_rule_type=rt, seed=s + 3)
        # error = actual - target while training, then 0: all learning stops
        error = nengo.Node(lambda t, v: v if t < t_train else 0 * v, size_in=1)
        nengo.Connection(out, error, seed=s + 4)
        nengo.Connection(target, error, transform=-1, seed=s + 5)
        feed, synapse = error_path(error, late, s + 10)
        nengo.Connection(feed, readout.learning_rule, synapse=synapse, seed=s + 6)
        # the measured error: the same wiring as the error, never gated
        diff = nengo.Node(size_in=1)
        nengo.Connection(out, diff, seed=s + 7)
        nengo.Connection(target, diff, transform=-1, seed=s + 8)
        if rt is not None:
            # a synthetic gradient needs exact zeros where the error is missing
            syn = None if rule.startswith("sg") else synapse
            nengo.Connection(feed, layer1.learning_rule, synapse=syn, seed=s + 9)
        net.p_diff = nengo.Probe(diff, synapse=None)
        net.p_out = nengo.Probe(out, synapse=None)
        # the readout sees activities through two 5 ms lowpasses (readout and
        # measurement synapses): an alpha filter
        net.p_act = nengo.Probe(hidden.neurons, synapse=nengo.Alpha(0.005))
        if rule in ANGLE_RULES:
            net.p_angle = nengo.Probe(
                layer1.learning_rule, "delta_angle", sample_every=0.05
            )
        net.hidden, net.layer1, net.readout = hidden, layer1, readout
    return net


def weights_network(rule, seed, X, Y, t_train, rates, n_pre=50, n_post=30):
    """``a -> b`` as a full weight matrix, learned; PES readout of ``b``.

    ``a`` encodes the input; the connection ``a -> b`` is Nengo's decoded
    connection solved for weights (``LstsqL2(weights=True)``, so ``b`` starts
    out representing the input) and carries the rule with
    ``modifies="weights"``; ``b``'s readout learns with PES, as in the other
    tasks. PES only: the same network with the weights left as solved."""
    s = 1000 * seed
    with nengo.Network(seed=seed) as net:
        stim = array_node(X, "stim")
        target = array_node(Y, "target")
        d = X.shape[1]
        a = nengo.Ensemble(
            n_pre, d, neuron_type=nengo.RectifiedLinear(), seed=s + 1, label="a"
        )
        b = nengo.Ensemble(
            n_post, d, neuron_type=nengo.RectifiedLinear(), seed=s + 12, label="b"
        )
        nengo.Connection(stim, a, seed=s + 3)
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(
            b, out, function=lambda x: 0, learning_rule_type=nengo.PES(), seed=s + 2
        )
        rt = rule_type(rule, readout, rates, modifies="weights")
        conn = nengo.Connection(
            a,
            b,
            solver=nengo.solvers.LstsqL2(weights=True),
            learning_rule_type=rt,
            seed=s + 14,
        )
        error = nengo.Node(lambda t, v: v if t < t_train else 0 * v, size_in=1)
        nengo.Connection(out, error, seed=s + 4)
        nengo.Connection(target, error, transform=-1, seed=s + 5)
        nengo.Connection(error, readout.learning_rule, seed=s + 6)
        if rt is not None:
            nengo.Connection(error, conn.learning_rule, seed=s + 9)
        diff = nengo.Node(size_in=1)
        nengo.Connection(out, diff, seed=s + 7)
        nengo.Connection(target, diff, transform=-1, seed=s + 8)
        net.p_diff = nengo.Probe(diff, synapse=None)
        net.p_out = nengo.Probe(out, synapse=None)
        net.p_act = nengo.Probe(b.neurons, synapse=nengo.Alpha(0.005))
        if rule in ANGLE_RULES:
            net.p_angle = nengo.Probe(
                conn.learning_rule, "delta_angle", sample_every=0.05
            )
        net.pre, net.hidden, net.layer1 = a, b, conn
    return net


# ---------------------------------------------------------------- numpy reference


def _lowpass(tau):
    return np.exp(-DT / tau)


def numpy_continuous(
    S0,
    b0,
    F,
    X,
    Y,
    rule,
    n_train,
    rates,
    kpes=1e-4,
    tau=0.005,
    warmup=0,
    feedback_tau=0.0,
):
    """The same maths as the nengo run (RectifiedLinear rate neurons, radius 1):
    nengo.PES on the readout and, for FA/BP, the normalised HiddenLayerRule
    step with its step bounds, gain floor and ceiling, and bias floor and
    ceiling, ``warmup`` steps after the first error (BackProp's warm-up, the
    ``steps`` of the Nengo run's `.SimErrorWarmup`); BackProp's feedback is
    the readout's decoders low-passed with time constant ``feedback_tau``
    from 0 (its ``feedback_synapse`` as built; 0: the live decoders); the
    rule pairs the error
    with the current and input through its ``pre_synapse`` (the same
    ``tau``), or as they are with `PRE_SYNAPSE` None. Returns the measured
    error at every step (the same filtering as ``diff``). Compiled with numba
    (the same code runs as plain numpy without it)."""
    # one hidden layer: DTP's target step is backprop's (its docstring)
    code = {"pes": 0, "fa": 1, "bp": 2, "bp0": 2, "bpl": 2, "dtp": 2}[rule]
    F1 = np.zeros(len(b0)) if F is None else np.asarray(F, dtype=float)[:, 0]
    rates = tuple(map(float, rates))
    c = _lowpass(tau)
    pre_c = 0.0 if PRE_SYNAPSE is None else c
    fb_c = _lowpass(feedback_tau) if feedback_tau > 0 else 0.0
    return _numpy_continuous(
        S0, b0, F1, X, Y, code, n_train, *rates, kpes, c, int(warmup), pre_c, fb_c
    )


def feedback_tau(sim, rule):
    """The time constant of BackProp's feedback filter as built (0: live, and
    for PES only, whose ``rule`` is None)."""
    if rule is None:
        return 0.0
    synapse = sim.data[rule].feedback_synapse
    return 0.0 if synapse is None else synapse.tau


def warmup_steps(sim):
    """The length of the warm-up in a Nengo run (0 without one)."""
    ops = [op for op in sim.model.operators if isinstance(op, SimErrorWarmup)]
    return sum(op.steps for op in ops)


def _readout_step(a, target, k, n_train, syn, D, Dbar, af, c, kpes, fb_c):
    """The PES readout and the error at step ``k``, as every numpy reference
    steps them, in Nengo's order: the readout's synapse, the two synapses of
    the measured error and of the error (the target's too), then
    `nengo.PES` from the activities through its ``pre_synapse`` while
    ``k < n_train`` (then the error is gated to 0). ``syn`` holds the
    synapses' states ``y, yd, td, e`` (``e``: the error the rules get); it,
    ``D``, ``Dbar`` (the decoders low-passed with decay ``fb_c``,
    BackProp's feedback) and ``af`` are updated in place. Returns the
    measured error."""
    n = len(a)
    syn[0] = c * syn[0] + (1 - c) * (D @ a)  # readout synapse
    syn[1] = c * syn[1] + (1 - c) * syn[0]  # out -> diff / error synapse
    syn[2] = c * syn[2] + (1 - c) * target  # target -> diff / error synapse
    measured = syn[1] - syn[2]
    training = k < n_train
    syn[3] = c * syn[3] + (1 - c) * (measured if training else 0.0)  # -> rules
    for i in range(n):
        af[i] = c * af[i] + (1 - c) * a[i]
    if training:
        step = (kpes / n) * DT * syn[3]
        for i in range(n):
            D[i] -= step * af[i]
            Dbar[i] = fb_c * Dbar[i] + (1 - fb_c) * D[i]
    return measured


def _numpy_continuous(
    S0, b0, F1, X, Y, code, n_train, kE, kg, kb, kpes, c, warm, pre_c, fb_c
):
    n, d = S0.shape
    S, b = S0.copy(), b0.copy()
    gain = np.sqrt((S * S).sum(axis=1))
    ghat = gain.mean()
    gmin, gmax = 1e-3 * ghat, 1e3 * ghat
    # rectified linear: the threshold current is 0, Nengo's intercepts -b / g
    imax = max(0.95, np.max(-b / gain))
    D = np.zeros(n)
    Dbar = np.zeros(n)  # the decoders low-passed (BackProp's feedback_synapse)
    xf = np.zeros(d)
    af = np.zeros(n)
    # the input and current the rule pairs with its error: through its
    # pre_synapse (decay pre_c; 0: none)
    x_seen = np.zeros(d)
    J_seen = np.zeros(n)
    syn = np.zeros(4)  # y, yd, td, e (`_readout_step`)
    out = np.empty(len(X))
    started = False
    for k in range(len(X)):
        # order as in nengo: the node output at step k, then synapses
        xf = c * xf + (1 - c) * X[k]
        J = S @ xf + b
        x_seen = pre_c * x_seen + (1 - pre_c) * xf
        J_seen = pre_c * J_seen + (1 - pre_c) * J
        a = np.maximum(J, 0)
        out[k] = _readout_step(a, Y[k, 0], k, n_train, syn, D, Dbar, af, c, kpes, fb_c)
        e = syn[3]
        if k >= n_train or code == 0:
            continue
        if warm > 0:  # the warm-up: ``warm`` steps from the first error
            started = started or e != 0
            warm -= started
            continue
        Fm = Dbar if code == 2 else F1
        S, b, gain = _hidden_step(
            Fm, e, J_seen, x_seen, S, b, gain, kE, kg, kb, DT * ghat, gmin, gmax, imax
        )
    return out


def _hidden_step(Fm, e, J, xf, S, b, gain, kE, kg, kb, cc, gmin, gmax, imax):
    """One step of the normalised HiddenLayerRule on a rectified-linear layer
    with a 1-D error, feedback ``Fm``: returns the new ``S, b, gain``."""
    nu = np.sqrt(np.dot(Fm, Fm) / len(Fm))
    if nu == 0:
        return S, b, gain
    dl = Fm * e * (J > 0) / nu
    # each bias step at most half the neuron's range
    half = np.maximum(gain, gmin) / 2
    db = np.clip(-kb * cc * dl, -half, half)
    xx = xf @ xf
    if xx > 0 and kE > 0:
        beta = -kE * cc * dl
        bound = np.maximum(gain, gmin) / (2 * np.sqrt(xx))
        beta = np.clip(beta, -bound, bound)
        Sn = S + np.outer(beta, xf)
        m = np.sqrt((Sn * Sn).sum(axis=1))
        gn = np.minimum(np.maximum(gain + (kg / kE) * (m - gain), gmin), gmax)
        S = Sn * (gn / m)[:, None]
        gain = gn
    elif xx > 0 and kg > 0:
        dg = -kg * cc * dl * (S @ xf) / np.maximum(gain, gmin)
        gn = np.minimum(np.maximum(gain + dg, gmin), gmax)
        S = S * (gn / gain)[:, None]
        gain = gn
    if kb > 0:
        # intercepts stay at or below imax; biases at most gmax above 0
        db = np.maximum(db, -imax * gain - b)
        db = np.minimum(db, np.maximum(gmax - b, 0.0))
        b = b + db
    return S, b, gain


try:
    import numba

    _hidden_step = numba.njit(cache=False)(_hidden_step)
    _readout_step = numba.njit(cache=False)(_readout_step)
    _numpy_continuous = numba.njit(cache=False)(_numpy_continuous)
except ImportError:  # pragma: no cover
    pass


class BuiltLayer:
    """What the numpy reference of any neuron type (`numpy_continuous_neurons`)
    reads from a built network, taken before the simulator runs: the hidden
    ensemble's scaled encoders ``S0`` and biases ``b0``, its neuron type and
    the initial state of its neurons (e.g. LIF's random voltages; stepped by
    `neurons`), and, with
    a hidden rule, the rule's build-time constants (`.RuleConstants`: gain
    floor and ceiling, threshold, bias limits, the step's scale) and
    derivative object, and FA's feedback matrix (else None). The reference
    reads these as the ReLU reference reads ``S0``, ``b0`` and :math:`F`; the
    update equations it applies are its own."""

    def __init__(self, sim, net):
        ens = net.hidden
        self.S0 = sim.data[ens].scaled_encoders.copy()
        self.b0 = sim.data[ens].bias.copy()
        self.neuron_type = ens.neuron_type
        sig = sim.model.sig[ens.neurons]
        spiking = isinstance(ens.neuron_type, nengo.neurons.RatesToSpikesNeuronType)
        # a rates-to-spikes type is two steps in Nengo: its base type's rates,
        # then the spikes of those rates
        types = (ens.neuron_type.base_type,) if spiking else ()
        types += (ens.neuron_type,)
        self._types = [
            (t, {name: sim.signals[sig[name]].copy() for name in t.state})
            for t in types
        ]
        ops = [op for op in sim.model.operators if isinstance(op, SimHiddenLayerRule)]
        self.constants = ops[0].constants if ops else None
        self.derivative = ops[0].derivative if ops else None
        rule = net.layer1.learning_rule
        built = None if rule is None else sim.data[rule]
        F = None if built is None else getattr(built, "feedback", None)
        self.F = None if F is None else np.array(F[:, 0], dtype=float)

    def neurons(self):
        """``step(J, out)``: the neurons as Nengo steps them, from the built
        network's initial state (a fresh copy for each call)."""
        stages = [
            (t.step, {k: v.copy() for k, v in state.items()})
            for t, state in self._types
        ]
        n = len(self.b0)
        rates = np.zeros(n)

        def step(J, out):
            if len(stages) == 2:
                stages[0][0](DT, J, rates, **stages[0][1])
                J = rates
            stages[-1][0](DT, J, out, **stages[-1][1])

        return step


def _hidden_step_neurons(Fm, e, J, xf, S, b, gain, rates, c, gp):
    """`_hidden_step` for any neuron type (``gp``: :math:`G'(J)`; ``c``:
    the rule's `.RuleConstants`), in plain numpy: the normalised step of
    `nengo_fa.HiddenLayerRule` (its docstring's stages) with its bounds,
    gain floor and ceiling, and bias floor and ceiling."""
    kE, kg, kb = rates
    nu = np.sqrt(np.dot(Fm, Fm) / len(Fm))
    if nu == 0:
        return S, b, gain
    r = c.radius
    u = (c.scale / nu) * Fm * e * gp  # c delta, delta = (F e) G'(J)
    g_floor = np.maximum(gain, c.min_gain)
    half = g_floor / 2
    db = np.clip(-kb * u, -half, half)
    xx = xf @ xf
    if xx > 0 and kE > 0:
        bound = g_floor / (2 * r * np.sqrt(xx))
        beta = np.clip(-kE * u / r**2, -bound, bound)
        Sn = S + np.outer(beta, xf)
        m = r * np.sqrt((Sn * Sn).sum(axis=1))
        gn = np.clip(gain + (kg / kE) * (m - gain), c.min_gain, c.max_gain)
        S = Sn * (gn / m)[:, None]
        gain = gn
    elif xx > 0 and kg > 0:
        # directions fixed: dg = -kg u (S x) / g, at most half the gain
        dg = np.clip(-kg * u * (S @ xf) / g_floor, -half, half)
        gn = np.clip(gain + dg, c.min_gain, c.max_gain)
        S = S * (gn / gain)[:, None]
        gain = gn
    if kb > 0:
        db = np.maximum(db, c.threshold - c.max_intercept * gain - b)
        db = np.minimum(db, np.maximum(c.threshold + c.max_gain - b, 0.0))
        b = b + db
    return S, b, gain


def numpy_continuous_neurons(
    layer, X, Y, rule, n_train, rates, kpes=1e-4, tau=0.005, warmup=0, feedback_tau=0.0
):
    """`numpy_continuous` for any neuron type, in plain numpy (slower than
    the compiled RectifiedLinear one, which it equals on RectifiedLinear
    neurons up to rounding): the neurons step as Nengo steps them
    (``neuron_type.step``, from the initial state of the built network), and
    the rule's step uses the rule's derivative and constants as built
    (``layer``, a `BuiltLayer`). The same wiring, synapses and order as the
    Nengo run; returns the measured error at every step."""
    code = {"pes": 0, "fa": 1, "bp": 2, "bp0": 2, "bpl": 2, "dtp": 2}[rule]
    rates = tuple(map(float, rates))
    S, b = layer.S0.copy(), layer.b0.copy()
    n, d = S.shape
    c = layer.constants
    step = layer.neurons()
    if code:
        gain = c.radius * np.sqrt((S * S).sum(axis=1))
        gp = np.zeros(n)
        F1 = layer.F
    cs = _lowpass(tau)
    pre_c = 0.0 if PRE_SYNAPSE is None else cs
    fb_c = _lowpass(feedback_tau) if feedback_tau > 0 else 0.0
    D, Dbar, af, a = (np.zeros(n) for _ in range(4))
    xf, x_seen = np.zeros(d), np.zeros(d)
    J_seen = np.zeros(n)
    syn = np.zeros(4)
    out = np.empty(len(X))
    started = False
    for k in range(len(X)):
        xf = cs * xf + (1 - cs) * X[k]
        J = S @ xf + b
        x_seen = pre_c * x_seen + (1 - pre_c) * xf
        J_seen = pre_c * J_seen + (1 - pre_c) * J
        step(J, a)
        out[k] = _readout_step(a, Y[k, 0], k, n_train, syn, D, Dbar, af, cs, kpes, fb_c)
        e = syn[3]
        if k >= n_train or code == 0:
            continue
        if warmup > 0:
            started = started or e != 0
            warmup -= started
            continue
        layer.derivative(J_seen, gp)
        Fm = Dbar if code == 2 else F1
        S, b, gain = _hidden_step_neurons(
            Fm, e, J_seen, x_seen, S, b, gain, rates, c, gp
        )
    return out


class BuiltWeights(BuiltLayer):
    """`BuiltLayer` of the ``weights`` task (`weights_network`): also the
    presynaptic ensemble's scaled encoders and biases, the learned weight
    matrix as solved, and the constants of the rule's weight step
    (`.SimHiddenLayerWeights`: row scale, row limit and rate)."""

    def __init__(self, sim, net):
        super().__init__(sim, net)
        self.S_pre = sim.data[net.pre].scaled_encoders.copy()
        self.b_pre = sim.data[net.pre].bias.copy()
        self.W0 = np.array(sim.data[net.layer1].weights, dtype=float)
        ops = [
            op for op in sim.model.operators if isinstance(op, SimHiddenLayerWeights)
        ]
        self.weights_op = ops[0] if ops else None


def numpy_weights(
    layer,
    X,
    Y,
    rule,
    n_train,
    rates,
    kpes=1e-4,
    tau=0.005,
    warmup=0,
    feedback_tau=0.0,
    state=None,
):
    r"""The numpy reference of the ``weights`` task (`weights_network`):
    RectifiedLinear ``a -> b`` through the full weight matrix :math:`W`,
    PES readout of ``b``, and the rule learning :math:`W` (``modifies=
    "weights"``) and ``b``'s biases: :math:`\Delta W = u \, a_{pre}^T`
    with :math:`u = -\kappa \Delta t \, s \odot \delta / \nu`, each
    :math:`|u_i| |a_{pre}|^2` at most the row's limit, from the local error
    of the step before, applied on the step after (as the in-place update
    applies it), and the bias step of `_hidden_step_neurons` without the
    encoder and gain paths. ``layer`` is a `BuiltWeights`; returns the
    measured error at every step, and puts the final weights, biases and
    readout into ``state`` (a dict) if given."""
    code = {"pes": 0, "fa": 1, "bp": 2, "bp0": 2, "bpl": 2}[rule]
    kb = float(rates[2])
    n = len(layer.b0)
    W, b = layer.W0.copy(), layer.b0.copy()
    S_pre, b_pre = layer.S_pre, layer.b_pre
    c = layer.constants
    if code:
        op = layer.weights_op
        coef = -op.learning_rate * DT * np.asarray(op.row_scale, dtype=float)
        limit = np.asarray(op.row_limit, dtype=float)
        gain = c.radius * np.sqrt((layer.S0 * layer.S0).sum(axis=1))
        gp = np.zeros(n)
        F1 = layer.F
    cs = _lowpass(tau)
    pre_c = 0.0 if PRE_SYNAPSE is None else cs
    fb_c = _lowpass(feedback_tau) if feedback_tau > 0 else 0.0
    D, Dbar, af, J_seen, delta, u = (np.zeros(n) for _ in range(6))
    h = np.zeros(n)  # W a, through the connection's synapse
    xf = np.zeros(X.shape[1])
    a_pre = np.zeros(len(b_pre))  # a's activities through pre_synapse
    a_used = np.zeros(len(b_pre))
    syn = np.zeros(4)
    out = np.empty(len(X))
    started = False
    for k in range(len(X)):
        # the update the rule's step set on the step before, in place
        W += np.outer(u, a_used)
        xf = cs * xf + (1 - cs) * X[k]
        a = np.maximum(S_pre @ xf + b_pre, 0)
        h = cs * h + (1 - cs) * (W @ a)
        J = h + b
        J_seen = pre_c * J_seen + (1 - pre_c) * J
        ab = np.maximum(J, 0)
        out[k] = _readout_step(
            ab, Y[k, 0], k, n_train, syn, D, Dbar, af, cs, kpes, fb_c
        )
        e = syn[3]
        a_pre = cs * a_pre + (1 - cs) * a
        u[:] = 0.0
        if k >= n_train or code == 0:
            continue
        if warmup > 0:
            started = started or e != 0
            warmup -= started
            continue
        Fm = Dbar if code == 2 else F1
        nu = np.sqrt(np.dot(Fm, Fm) / n)
        aa = a_pre @ a_pre
        # the weight step, from the local error of the step before
        if nu > 0 and aa > 0:
            bound = limit / aa
            u = np.clip(coef * delta / nu, -bound, bound)
            a_used = a_pre.copy()
        if nu == 0:
            delta = np.zeros(n)
            continue
        layer.derivative(J_seen, gp)
        delta = Fm * e * gp
        if kb > 0:
            # the bias step of `_hidden_step_neurons`, gains fixed
            half = np.maximum(gain, c.min_gain) / 2
            db = np.clip(-kb * (c.scale / nu) * delta, -half, half)
            db = np.maximum(db, c.threshold - c.max_intercept * gain - b)
            db = np.minimum(db, np.maximum(c.threshold + c.max_gain - b, 0.0))
            b = b + db
    if state is not None:
        state.update(W=W, b=b, D=D)
    return out


# ---------------------------------------------------------------- running


#: the rule type of each rule name, whose default rates it runs with (the
#: learned feedbacks, `LEARNED_FEEDBACK`: FeedbackAlignment)
RULE_TYPES = {
    "fa": nengo_fa.FeedbackAlignment,
    "bp": nengo_fa.BackProp,
    "bp0": nengo_fa.BackProp,
    "bpl": nengo_fa.BackProp,
    "bpf": nengo_fa.BackProp,
    "ss": nengo_fa.SignSymmetry,
    "ss0": nengo_fa.SignSymmetry,
    "ssl": nengo_fa.SignSymmetry,
    "dtp": nengo_fa.DifferenceTargetProp,
    "trace": nengo_fa.TraceRule,
    "sg": nengo_fa.SyntheticGradient,
    "sgbp": nengo_fa.SyntheticGradient,
    "lra": nengo_fa.LRA,
    "erbp": nengo_fa.ERBP,
}


def default_rates(rule):
    if rule == "pes":
        return None
    t = nengo_fa.FeedbackAlignment if rule in LEARNED_FEEDBACK else RULE_TYPES[rule]
    # None (BackProp, SignSymmetry): chosen at build time by whether the
    # feedback tracks; every readout here learns, so the live ones do
    tracks = rule in LIVE_READOUT
    chosen = TRACKING_FEEDBACK_RATE if tracks else STEADY_FEEDBACK_RATE
    # ERBP learns neither gains nor biases (`rule_type` drops their rates)
    rates = (
        getattr(t, name).default if hasattr(t, name) else 0.0
        for name in ("learning_rate", "gain_learning_rate", "bias_learning_rate")
    )
    return tuple(chosen if rate is None else rate for rate in rates)


def mse(err, window, skip=50):
    lo, hi = window
    return float(np.mean(err[lo + skip : hi] ** 2))


def learning_tail(rules, late):
    """Seconds after the freeze during which a rule may still learn: the
    delayed error still arriving, and a synthetic gradient's ``max_gap``.
    The frozen test leaves them out for every rule alike."""
    tail = 0.0 if late is None else late[0]
    if "sg" in rules or "sgbp" in rules:
        tail += nengo_fa.SyntheticGradient.max_gap.default
    return tail


def built_layer(task, sim, net):
    """What the numpy reference of ``task`` reads from the network as built,
    before it runs (`BuiltLayer`, `BuiltWeights`; None for the compiled
    RectifiedLinear reference, which reads it after)."""
    if task in NEURON_TASKS:
        return BuiltLayer(sim, net)
    if task == "weights":
        return BuiltWeights(sim, net)
    return None


def numpy_reference(task, sim, net, layer, X, Y, rule, n_train, rates):
    """The measured error of the numpy reference of ``rule`` on ``task`` at
    every step (see the module docstring), from the run ``sim`` of ``net``
    and ``layer`` (`built_layer`)."""
    args = (X, Y, rule, n_train, rates or (0.0, 0.0, 0.0))
    kw = dict(
        warmup=warmup_steps(sim),
        feedback_tau=feedback_tau(sim, net.layer1.learning_rule),
    )
    if task == "weights":
        return numpy_weights(layer, *args, **kw)
    if task in NEURON_TASKS:
        return numpy_continuous_neurons(layer, *args, **kw)
    S0 = sim.data[net.hidden].scaled_encoders
    b0 = sim.data[net.hidden].bias
    F = sim.data[net.layer1.learning_rule].feedback if rule == "fa" else None
    return numpy_continuous(S0, b0, F, *args, **kw)


def run_continuous(
    task, rules, seed, rates, quick, numpy_ref, late=None, replay=1, width=1
):
    if quick:
        t_train, t_test = 2.0, 1.0
    elif task.startswith("product"):
        t_train, t_test = 40.0, 20.0
    else:
        t_train, t_test = 60.0, 20.0
    X, Y, windows = continuous_inputs(task, seed, t_train, t_test)
    n_tr = int(round(t_train / DT))
    if replay > 1:
        X, Y, windows = replayed(X, Y, windows, n_tr, replay)
        t_train, n_tr = replay * t_train, replay * n_tr
    last = min(10.0, t_train / 4)
    skip = 50 + int(round(learning_tail(rules, late) / DT))
    rows = []
    for rule in rules:
        if task == "weights" and rule == "dtp":
            continue  # DifferenceTargetProp learns encoders only
        if rule in PHASED_RULES:
            continue  # the target is there all the time: no phases
        r = rates or default_rates(rule)
        if task == "weights" and rule.startswith("sg"):
            continue  # synthetic gradients learn encoders only
        if task == "weights":
            net = weights_network(rule, seed, X, Y, t_train, r, n_post=30 * width)
        else:
            n = 10 if task.startswith("product") else 10 * X.shape[1] + 10
            net = continuous_network(
                task, rule, seed, X, Y, t_train, r, width * n, late
            )
        row = dict(task=late_label(task, late, replay, width), rule=rule, seed=seed)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with nengo.Simulator(net, progress_bar=False, dt=DT) as sim:
                    # the reference of other neuron types starts from the
                    # network as built, before it runs
                    layer = built_layer(task, sim, net)
                    sim.run_steps(len(X))
        except Exception as exc:  # pylint: disable=broad-except
            # a run that blows up (e.g. overflowing weights) is reported as
            # diverged: infinite error, never silently left out
            print(f"# {task} {rule} seed {seed} failed: {exc!r}", file=sys.stderr)
            row.update(online=np.inf, trained=np.inf, diverged=1.0)
            if "novel" in windows:
                row["novel"] = np.inf
            rows.append(row)
            continue
        err = sim.data[net.p_diff][:, 0]
        row["online"] = mse(err, (n_tr - int(last / DT), n_tr))
        for name, w in windows.items():
            row[name] = mse(err, w, skip=skip if name == "trained" else 50)
        lo, hi = windows["trained"]
        A = sim.data[net.p_act][lo + 50 : hi]
        seen = (sim.data[net.p_out][:, 0] - err)[lo + 50 : hi]
        A1 = np.hstack([A, np.ones((len(A), 1))])
        dec = np.linalg.lstsq(A1, seen, rcond=None)[0]
        row["lsq"] = float(np.mean((A1 @ dec - seen) ** 2))
        if rule in ANGLE_RULES and hasattr(net, "p_angle"):
            ang = sim.data[net.p_angle][:, 0]
            tt = np.arange(1, len(ang) + 1) * 0.05
            sel = (tt > 0.75 * t_train) & (tt <= t_train)
            row["angle"] = (
                float(np.nanmean(ang[sel]))
                if np.any(np.isfinite(ang[sel]))
                else float("nan")
            )
        if numpy_ref and task in NUMPY_TASKS and rule in NUMPY_RULES and late is None:
            ref = numpy_reference(task, sim, net, layer, X, Y, rule, n_tr, r)
            row["numpy"] = mse(ref, windows["trained"], skip=skip)
        rows.append(row)
    return rows


def load_digits_split(seed, n_test=397):
    """The digits, each image centred and scaled to unit length."""
    return load_split("digits", seed, n_test, per_image=True)


def numpy_digits(
    S0,
    b0,
    F,
    X_tr,
    y_tr,
    X_te,
    y_te,
    rule,
    rates,
    epochs,
    present,
    kpes,
    seed,
    sub=0.005,
    warmup=0.0,
    feedback_tau=0.0,
):
    """Online SGD of the same network with the same maths (nengo.PES and the
    normalised HiddenLayerRule step) on the same presentation schedule,
    without synapses: each image is held for ``present`` seconds in Euler
    steps of ``sub`` seconds, in a fresh random order every epoch. The
    hidden layer learns after ``warmup`` seconds (BackProp's warm-up);
    BackProp's feedback is the readout low-passed over ``feedback_tau``
    seconds from 0 (0: the live readout)."""
    kE, kg, kb = rates
    S, b = S0.copy(), b0.copy()
    n = len(b)
    gain = np.linalg.norm(S, axis=1)
    ghat = gain.mean()
    D = np.zeros((10, n))
    Dbar = np.zeros((10, n))
    T = np.eye(10)
    K = max(int(round(present / sub)), 1)
    h = present / K
    fb_c = np.exp(-h / feedback_tau) if feedback_tau > 0 else 0.0
    for ep in range(epochs):
        for i in np.random.RandomState(seed + ep).permutation(len(y_tr)):
            x = X_tr[i]
            for _ in range(K):
                J = S @ x + b
                a = np.maximum(J, 0)
                e = D @ a - T[y_tr[i]]
                D -= (kpes / n) * h * np.outer(e, a)
                Dbar = fb_c * Dbar + (1 - fb_c) * D
                if rule == "pes":
                    continue
                if warmup > 0:
                    warmup -= h
                    continue
                Fm = Dbar.T if rule in ("bp", "bp0", "bpl", "dtp") else F
                nu = np.sqrt(np.sum(Fm**2) / n)
                if nu == 0:
                    continue
                dl = (Fm @ e) * (J > 0) / nu
                b -= kb * h * ghat * dl
                if kE > 0:
                    Sn = S - kE * h * ghat * np.outer(dl, x)
                    m = np.linalg.norm(Sn, axis=1)
                    gn = np.maximum(gain + (kg / kE) * (m - gain), 1e-3 * ghat)
                    S = Sn * (gn / m)[:, None]
                    gain = gn
    A = np.maximum(X_te @ S.T + b, 0)
    return float(np.mean(np.argmax(A @ D.T, axis=1) == y_te))


def run_digits(
    rules,
    seed,
    rates,
    quick,
    numpy_ref,
    n_hidden=32,
    epochs=5,
    present=0.03,
    n_images=None,
    late=None,
):
    """Digits through ``n_hidden`` neurons: ``epochs`` passes over the first
    ``n_images`` training images (all by default), then frozen and tested on
    the held-out images."""
    X_tr, y_tr, X_te, y_te = load_digits_split(seed)
    if n_images is not None:
        X_tr, y_tr = X_tr[:n_images], y_tr[:n_images]
    if quick:
        X_tr, y_tr, X_te, y_te, epochs = X_tr[:50], y_tr[:50], X_te[:30], y_te[:30], 1
    order = np.concatenate(
        [np.random.RandomState(seed + e).permutation(len(y_tr)) for e in range(epochs)]
    )
    Xs = np.vstack([X_tr[order], X_te])
    ys = np.concatenate([y_tr[order], y_te])
    n_train = len(order)
    onehot = np.eye(10)[ys]
    kpes = 2e-4
    s = 1000 * seed

    rows = []
    for rule in rules:
        r = rates or default_rates(rule)
        # phased rules: the target from on to off into each presentation
        length, on, off = PHASES if rule in PHASED_RULES else (present, 0, present)
        t_train = n_train * length
        steps = int(round(length / DT))
        index = _Index(length, len(ys))
        gate = _PhasedError(t_train, length, on, off)
        with nengo.Network(seed=seed) as net:
            stim = nengo.Node(lambda t: Xs[index(t)])
            target = nengo.Node(lambda t: onehot[index(t)])
            hidden = nengo.Ensemble(
                n_hidden,
                64,
                neuron_type=nengo.RectifiedLinear(),
                intercepts=nengo.dists.Uniform(-0.2, 0.2),
                seed=s + 1,
            )
            out = nengo.Node(size_in=10)
            readout = nengo.Connection(
                hidden.neurons,
                out,
                transform=np.zeros((10, n_hidden)),
                learning_rule_type=nengo.PES(learning_rate=kpes),
                seed=s + 2,
            )
            delay = 0.0 if late is None else late[0]
            rt = rule_type(rule, readout, rates, context=target, error_delay=delay)
            layer1 = nengo.Connection(stim, hidden, learning_rule_type=rt, seed=s + 3)
            error = nengo.Node(gate, size_in=10)
            nengo.Connection(out, error, seed=s + 4)
            nengo.Connection(target, error, transform=-1, seed=s + 5)
            feed, synapse = error_path(error, late, s + 10)
            nengo.Connection(feed, readout.learning_rule, synapse=synapse, seed=s + 6)
            if rt is not None:
                syn = None if rule.startswith("sg") else synapse
                nengo.Connection(feed, layer1.learning_rule, synapse=syn, seed=s + 9)
            p_out = nengo.Probe(out, synapse=None)
            if rule in ANGLE_RULES:
                p_angle = nengo.Probe(
                    layer1.learning_rule, "delta_angle", sample_every=0.05
                )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with nengo.Simulator(net, progress_bar=False, dt=DT) as sim:
                    sim.run_steps(steps * len(ys))
        except Exception as exc:  # pylint: disable=broad-except
            # reported as diverged (chance-level accuracy 0), never left out
            print(f"# digits {rule} seed {seed} failed: {exc!r}", file=sys.stderr)
            rows.append(
                dict(
                    task=late_label("digits", late),
                    rule=rule,
                    seed=seed,
                    trained=0.0,
                    online=0.0,
                    diverged=1.0,
                )
            )
            continue
        outs = (
            sim.data[p_out]
            .reshape(len(ys), steps, -1)[:, -max(steps // 3, 1) :]
            .mean(axis=1)
        )
        hit = np.argmax(outs, axis=1) == ys
        last_epoch = slice(n_train - len(y_tr), n_train)
        row = dict(task=late_label("digits", late), rule=rule, seed=seed)
        # held-out accuracy, frozen (after any rule's learning tail)
        first = n_train + int(np.ceil(learning_tail(rules, late) / length))
        row["trained"] = float(np.mean(hit[first:]))
        row["online"] = float(np.mean(hit[last_epoch]))
        if rule in ANGLE_RULES:
            ang = sim.data[p_angle][:, 0]
            tt = np.arange(1, len(ang) + 1) * 0.05
            sel = (tt > 0.75 * t_train) & (tt <= t_train)
            row["angle"] = float(np.nanmean(ang[sel]))
        if numpy_ref and rule in NUMPY_RULES and late is None:
            S0 = sim.data[hidden].scaled_encoders
            b0 = sim.data[hidden].bias
            F = sim.data[layer1.learning_rule].feedback if rule == "fa" else None
            row["numpy"] = numpy_digits(
                S0,
                b0,
                F,
                X_tr,
                y_tr,
                X_te,
                y_te,
                rule,
                r or (0, 0, 0),
                epochs,
                present,
                kpes,
                seed,
                warmup=warmup_steps(sim) * DT,
                feedback_tau=feedback_tau(sim, layer1.learning_rule),
            )
        if numpy_ref and rule == "pes":
            row["mlp"] = offline_mlp(X_tr, y_tr, X_te, y_te, n_hidden, seed)
        rows.append(row)
    return rows


class _Index:
    """The image shown at time ``t``."""

    def __init__(self, length, n):
        self.length, self.n = length, n

    def __call__(self, t):
        return min(int((t - 1e-9) / self.length), self.n - 1)


class _PhasedError:
    """The error until ``t_train`` (only from ``on`` to ``off`` into each
    presentation of ``length``), then 0."""

    def __init__(self, t_train, length, on, off):
        self.t_train, self.length, self.on, self.off = t_train, length, on, off

    def __call__(self, t, v):
        phase = (t - 1e-9) % self.length
        keep = t <= self.t_train and self.on <= phase < self.off
        return v if keep else 0 * v


def run_digits_spiking(
    rules, seed, quick, n_hidden=32, epochs=5, present=0.03, pixel_rate=400.0
):
    """Digits through spiking neurons, learned as neuron-to-neuron weights.

    Each image ``x`` (centred, unit length, 64 pixels) drives 128 "pixel"
    neurons (`nengo.SpikingRectifiedLinear`, an on and an off neuron per
    pixel, firing ``pixel_rate`` times ``max(+-x_k, 0)`` Hz: about 25 Hz on
    average), whose spikes reach ``n_hidden`` LIF neurons through a weight
    matrix (5 ms lowpass) that starts as the encoding of the rate networks
    (unit encoders, Nengo's gains and biases for max rates 200-400 Hz and
    intercepts in [-0.2, 0.2]) and is learned by the rule with
    ``modifies="weights"``; a PES readout (2e-4) of the hidden spikes. The
    presentation schedule, the frozen test and the metric are those of
    `run_digits`."""
    X_tr, y_tr, X_te, y_te = load_digits_split(seed)
    if quick:
        X_tr, y_tr, X_te, y_te, epochs = X_tr[:50], y_tr[:50], X_te[:30], y_te[:30], 1
    order = np.concatenate(
        [np.random.RandomState(seed + e).permutation(len(y_tr)) for e in range(epochs)]
    )
    Xs = np.vstack([X_tr[order], X_te])
    ys = np.concatenate([y_tr[order], y_te])
    n_train = len(order)
    t_train = n_train * present
    onehot = np.eye(10)[ys]
    steps = int(round(present / DT))
    d = Xs.shape[1]
    s = 1000 * seed
    rng = np.random.RandomState(s + 20)
    E = nengo.dists.UniformHypersphere(surface=True).sample(n_hidden, d, rng=rng)
    # pixel rates are pixel_rate * [x, -x]_+: the hidden input is E x
    W = np.hstack([E, -E]) / pixel_rate

    def index(t):
        return min(int((t - 1e-9) / present), len(ys) - 1)

    rows = []
    for rule in rules:
        with nengo.Network(seed=seed) as net:
            stim = nengo.Node(lambda t: Xs[index(t)])
            target = nengo.Node(lambda t: onehot[index(t)])
            # an on and an off neuron per pixel, encoding x (so that their
            # tuning curves, which the rules' scaling reads, are their rates)
            pixels = nengo.Ensemble(
                2 * d,
                d,
                neuron_type=nengo.SpikingRectifiedLinear(),
                encoders=np.vstack([np.eye(d), -np.eye(d)]),
                gain=np.full(2 * d, pixel_rate),
                bias=np.zeros(2 * d),
                seed=s + 10,
            )
            nengo.Connection(stim, pixels, synapse=None)
            hidden = nengo.Ensemble(
                n_hidden,
                d,
                neuron_type=nengo.LIF(),
                encoders=E,
                intercepts=nengo.dists.Uniform(-0.2, 0.2),
                seed=s + 1,
            )
            out = nengo.Node(size_in=10)
            readout = nengo.Connection(
                hidden.neurons,
                out,
                transform=np.zeros((10, n_hidden)),
                learning_rule_type=nengo.PES(learning_rate=2e-4),
                seed=s + 2,
            )
            rt = rule_type(rule, readout, None, modifies="weights")
            layer1 = nengo.Connection(
                pixels.neurons,
                hidden.neurons,
                transform=W,
                synapse=nengo.Lowpass(0.005),
                learning_rule_type=rt,
                seed=s + 3,
            )
            error = nengo.Node(lambda t, v: v if t <= t_train else 0 * v, size_in=10)
            nengo.Connection(out, error, seed=s + 4)
            nengo.Connection(target, error, transform=-1, seed=s + 5)
            nengo.Connection(error, readout.learning_rule, seed=s + 6)
            if rt is not None:
                nengo.Connection(error, layer1.learning_rule, seed=s + 9)
            p_out = nengo.Probe(out, synapse=None)
            p_pix = nengo.Probe(pixels.neurons, sample_every=0.01)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with nengo.Simulator(net, progress_bar=False, dt=DT) as sim:
                sim.run_steps(steps * len(ys))
        outs = (
            sim.data[p_out]
            .reshape(len(ys), steps, -1)[:, -max(steps // 3, 1) :]
            .mean(axis=1)
        )
        hit = np.argmax(outs, axis=1) == ys
        last_epoch = slice(n_train - len(y_tr), n_train)
        row = dict(task="digits-spiking", rule=rule, seed=seed)
        row["trained"] = float(np.mean(hit[n_train:]))  # held-out accuracy, frozen
        row["online"] = float(np.mean(hit[last_epoch]))
        row["pixel_hz"] = float(np.mean(sim.data[p_pix]))
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    return rows


# ---------------------------------------------------------------- ablation

#: ``--ablation``: all three rates together over two decades around the
#: defaults, then each rule at its default rate with one path switched off
RATE_GRID = (0.03, 0.1, 0.3, 0.7, 1.0, 3.0)
PATHS = (
    ("encoders only", 1, 0, 0),
    ("no bias", 1, 1, 0),
    ("no gains", 1, 0, 1),
)


#: the rules of the rate ablation (`ablation`)
ABLATION_RULES = ("bp0", "bp", "fa")


def ablation_settings(rule):
    """``(label, (kE, kg, kb))`` of every ablation row of ``rule``."""
    default = default_rates(rule)[0]
    settings = [
        (f"all {k:g}" + (" (default)" if k == default else ""), (k, k, k))
        for k in RATE_GRID
    ]
    settings += [
        (f"{label}, {default:g}", (default * e, default * g, default * b))
        for label, e, g, b in PATHS
    ]
    return settings


def ablation(tasks, seeds):
    """Rows of the rate ablation: the numpy reference of every continuous
    RectifiedLinear task (the same maths as the Nengo runs, from the same
    built networks) for every setting of `ablation_settings`."""
    rows = []
    for task in tasks:
        if task not in ("product", "white1", "white2", "white3", "white4"):
            continue
        t_train = 40.0 if task == "product" else 60.0
        n_tr = int(round(t_train / DT))
        for seed in seeds:
            X, Y, windows = continuous_inputs(task, seed, t_train, 20.0)
            n = 10 if task == "product" else 10 * X.shape[1] + 10
            net = continuous_network(task, "fa", seed, X, Y, t_train, None, n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with nengo.Simulator(net, progress_bar=False) as sim:
                    S0 = sim.data[net.hidden].scaled_encoders
                    b0 = sim.data[net.hidden].bias
                    F = sim.data[net.layer1.learning_rule].feedback
            pes = numpy_continuous(S0, b0, None, X, Y, "pes", n_tr, (0.0, 0.0, 0.0))
            base = dict(task=task, seed=seed)
            rows.append(
                dict(
                    base,
                    rates="-",
                    rule="pes",
                    trained=mse(pes, windows["trained"]),
                    online=mse(pes, (n_tr - 10000, n_tr)),
                )
            )
            # BackProp from the first step through the live readout ("bp0"):
            # the rates alone (the warm-up has its own table on the theory
            # page), and as it is by default ("bp"): after the warm-up, through
            # the readout low-passed, both over the readout's tau_1
            tau1 = readout_time_constant(sim.model, net.readout)
            extra = {"bp": dict(warmup=round(tau1 / DT), feedback_tau=tau1)}
            for rule in ABLATION_RULES:
                for label, rates in ablation_settings(rule):
                    out = numpy_continuous(
                        S0, b0, F, X, Y, rule, n_tr, rates, **extra.get(rule, {})
                    )
                    rows.append(
                        dict(
                            base,
                            rates=label,
                            rule=rule,
                            trained=mse(out, windows["trained"]),
                            online=mse(out, (n_tr - 10000, n_tr)),
                        )
                    )
    return rows


def format_ablation(rows):
    lines = [
        f"{'task':<8} {'rates (kE, kg, kb)':<24} {'rule':<4} {'frozen':>8} "
        f"{'worst':>8} {'vs_pes':>7} {'gm':>6} {'worse':>6} {'online':>8}"
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        tr = [r for r in rows if r["task"] == task]
        pes = {r["seed"]: r for r in tr if r["rule"] == "pes"}
        p = np.array([pes[s]["trained"] for s in sorted(pes)])
        on = np.mean([pes[s]["online"] for s in pes])
        lines.append(
            f"{task:<8} {'PES only':<24} {'pes':<4} {p.mean():>8.4f} "
            f"{p.max():>8.4f} {1:>7.2f} {1:>6.2f} {'-':>6} {on:>8.4f}"
        )
        for rule in ABLATION_RULES:
            for label, _ in ablation_settings(rule):
                sel = [r for r in tr if r["rates"] == label and r["rule"] == rule]
                sel.sort(key=lambda r: r["seed"])
                w = np.array([r["trained"] for r in sel])
                o = np.mean([r["online"] for r in sel])
                gm = np.exp(np.mean(np.log(p / w)))
                lines.append(
                    f"{task:<8} {label:<24} {rule:<4} {w.mean():>8.4f} {w.max():>8.4f} "
                    f"{p.mean() / w.mean():>7.2f} {gm:>6.2f} "
                    f"{int(np.sum(w > p)):>3}/{len(w):<2} {o:>8.4f}"
                )
    return "\n".join(lines)


# ---------------------------------------------------------------- report


def summarise(rows, rules):
    """One line per task x rule: mean, worst seed, ratio to PES only, ..."""
    out = []
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    for task in tasks:
        tr = [r for r in rows if r["task"] == task]
        acc = task.startswith("digits")
        by = {rule: {r["seed"]: r for r in tr if r["rule"] == rule} for rule in rules}
        pes = by.get("pes", {})
        for rule in rules:
            runs = by[rule]
            if not runs:
                continue
            seeds = sorted(runs)
            v = np.array([runs[s]["trained"] for s in seeds])
            line = dict(task=task, rule=rule, seeds=len(seeds))
            line["metric"] = "accuracy" if acc else "MSE"
            line["frozen_mean"] = float(v.mean())
            line["frozen_worst"] = float(v.min() if acc else v.max())
            if "novel" in runs[seeds[0]]:
                line["novel_mean"] = float(np.mean([runs[s]["novel"] for s in seeds]))
            line["online_mean"] = float(np.mean([runs[s]["online"] for s in seeds]))
            common = [s for s in seeds if s in pes]
            if common:
                p = np.array([pes[s]["trained"] for s in common])
                w = np.array([runs[s]["trained"] for s in common])
                if acc:
                    line["vs_pes"] = float(w.mean() - p.mean())  # points of accuracy
                    line["seeds_worse"] = int(np.sum(w < p))
                else:
                    line["vs_pes"] = float(p.mean() / w.mean())  # >1: better than PES
                    # one outlier seed can carry a ratio of means: also the
                    # geometric mean of the per-seed ratios
                    line["gm_ratio"] = float(np.exp(np.mean(np.log(p / w))))
                    line["seeds_worse"] = int(np.sum(w > p))
                if "novel" in runs[seeds[0]]:
                    pn = np.mean([pes[s]["novel"] for s in common])
                    line["novel_vs_pes"] = float(
                        pn / np.mean([runs[s]["novel"] for s in common])
                    )
            for key in ("lsq", "numpy", "mlp"):
                if key in runs[seeds[0]]:
                    line[key] = float(
                        np.nanmean([runs[s].get(key, np.nan) for s in seeds])
                    )
            if rule in ANGLE_RULES and any("angle" in runs[s] for s in seeds):
                fail = 0
                for s in seeds:
                    bad_angle = not (runs[s].get("angle", np.nan) < 90)
                    worse = s in pes and (
                        runs[s]["trained"] < pes[s]["trained"]
                        if acc
                        else runs[s]["trained"] > pes[s]["trained"]
                    )
                    fail += bad_angle or worse
                line["fa_fail"] = f"{fail}/{len(seeds)}"
                line["angle"] = float(
                    np.nanmean([runs[s].get("angle", np.nan) for s in seeds])
                )
            out.append(line)
    return out


COLS = [
    ("task", "<16", "s"),
    ("rule", "<5", "s"),
    ("seeds", ">5", "d"),
    ("metric", "<8", "s"),
    ("frozen_mean", ">11", ".4g"),
    ("frozen_worst", ">12", ".4g"),
    ("vs_pes", ">7", ".3g"),
    ("gm_ratio", ">8", ".3g"),
    ("seeds_worse", ">11", "d"),
    ("novel_mean", ">10", ".4g"),
    ("novel_vs_pes", ">12", ".3g"),
    ("online_mean", ">11", ".4g"),
    ("lsq", ">8", ".4g"),
    ("numpy", ">8", ".4g"),
    ("mlp", ">6", ".3f"),
    ("angle", ">6", ".1f"),
    ("fa_fail", ">7", "s"),
]


def format_table(lines):
    head = " ".join(f"{name:{fmt[0]}{fmt[1:]}}" for name, fmt, _ in COLS)
    body = []
    for line in lines:
        cells = []
        for name, fmt, spec in COLS:
            v = line.get(name)
            width = fmt[1:]
            if v is None:
                cells.append(f"{'-':{fmt[0]}{width}}")
            else:
                cells.append(f"{v:{fmt[0]}{width}{spec if spec != 's' else ''}}")
        body.append(" ".join(cells))
    return "\n".join([head] + body)


def write_csv(path, rows):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


#: FA learning its feedback: ``rule: (feedback learning, starting feedback or
#: None for FA's default)``; Kolen-Pollack starts small, as its docstring
#: advises (only the direction of B is used)
LEARNED_FEEDBACK = {
    "bd": (nengo_fa.BidirectionalAlignment, None),
    "kp": (nengo_fa.KolenPollack, nengo.dists.Gaussian(0, 1e-4)),
    "sa": (nengo_fa.SymmetricAlignment, None),
    "aa": (nengo_fa.ActivationAlignment, None),
}

#: Every rule name `rule_type` knows (``--rules``): `ALL_RULES` and the
#: variants the docs' tables use.
RULE_NAMES = ALL_RULES + EXTRA_RULES


def check_args(parser, args, tasks):
    """Refuse unknown tasks and rules, values that would run something
    other than asked, and ``--replay`` or ``--width`` where it does not
    apply."""
    for t in tasks:
        if t not in ALL_TASKS:
            parser.error(f"unknown task {t!r}; choose from {', '.join(ALL_TASKS)}")
    for r in args.rules.split(","):
        if r not in RULE_NAMES:
            parser.error(f"unknown rule {r!r}; choose from {', '.join(RULE_NAMES)}")
    if args.seeds < 1 or args.first_seed < 0:
        parser.error("--seeds must be at least 1 and --first-seed at least 0")
    if args.delay < 0:
        parser.error(f"--delay must not be negative, not {args.delay}")
    if not 0 < args.fraction <= 1:
        parser.error(f"--fraction must be in (0, 1], not {args.fraction}")
    if args.rates is not None and len(args.rates.split(",")) != 3:
        parser.error(f"--rates takes three values, kE,kg,kb: {args.rates!r}")
    # a longer training and a wider layer: the continuous tasks' Nengo runs
    for name in ("replay", "width"):
        value = getattr(args, name)
        if value < 1:
            parser.error(f"--{name} must be at least 1, not {value}")
        if value > 1 and args.ablation:
            parser.error(f"--{name} does not apply to --ablation")
        if value > 1 and any(t.startswith("digits") for t in tasks):
            parser.error(f"--{name} is for the continuous tasks (not digits)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="seconds: one seed, short runs"
    )
    parser.add_argument("--tasks", default="all", help="comma separated, or 'all'")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--rules", default=",".join(ALL_RULES))
    parser.add_argument("--rates", default=None, help="kE,kg,kb for FA and BP")
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        help="deliver the error this many seconds late (every rule alike)",
    )
    parser.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="deliver the error only on this random fraction of the steps",
    )
    parser.add_argument(
        "--replay",
        type=int,
        default=1,
        help="play the training input this many times (the continuous tasks)",
    )
    parser.add_argument(
        "--width",
        type=int,
        default=1,
        help="this many times the neurons in the layer that learns (the "
        "continuous tasks)",
    )
    parser.add_argument(
        "--pre-synapse",
        choices=("default", "none"),
        default="default",
        help="the hidden rules' pre_synapse: 'none' pairs the error with the "
        "current and input of the same step, as the rules did before",
    )
    parser.add_argument(
        "--no-numpy", action="store_true", help="skip the numpy reference"
    )
    parser.add_argument("--csv", default=None, help="write every run to this CSV file")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="the rate ablation of the continuous RectifiedLinear tasks, with the "
        "numpy reference (minutes, not hours)",
    )
    parser.add_argument(
        "--summarise",
        nargs="+",
        default=None,
        metavar="CSV",
        help="print the table of runs saved with --csv (no simulation)",
    )
    args = parser.parse_args(argv)
    if args.summarise:
        rows = []
        missing = [p for p in args.summarise if not os.path.isfile(p)]
        if missing:
            parser.error(f"--summarise: no such file {', '.join(missing)}")
        for path in args.summarise:
            with open(path, newline="") as fh:
                for r in csv.DictReader(fh):
                    rows.append(
                        {
                            k: (
                                v
                                if k in ("task", "rule")
                                else (int(v) if k == "seed" else float(v))
                            )
                            for k, v in r.items()
                            if v != ""
                        }
                    )
        rules = tuple(dict.fromkeys(r["rule"] for r in rows))
        lines = summarise(rows, rules)
        print(format_table(lines))
        return rows, lines
    nengo.rc.set("decoder_cache", "enabled", "False")
    global PRE_SYNAPSE
    PRE_SYNAPSE = None if args.pre_synapse == "none" else nengo.Default
    tasks = ALL_TASKS if args.tasks == "all" else tuple(args.tasks.split(","))
    check_args(parser, args, tasks)
    rules = tuple(args.rules.split(","))
    if "pes" not in rules:
        rules = ("pes",) + rules  # ratios need PES only from the same run
    rates = tuple(float(v) for v in args.rates.split(",")) if args.rates else None
    n_seeds = 1 if args.quick else args.seeds
    seeds = range(args.first_seed, args.first_seed + n_seeds)
    rows = []
    t0 = time.time()
    if args.ablation:
        rows = ablation(tasks, list(seeds))
        if args.csv:
            write_csv(args.csv, rows)
        print(format_ablation(rows))
        print(f"# {time.time() - t0:.0f} s")
        return rows, None
    late = None
    if args.delay > 0 or args.fraction < 1:
        late = (args.delay, args.fraction)
    for task in tasks:
        # ERBP runs where it applies (`ERBP_TASKS`), the phased rules on
        # digits only; DTP and the synthetic gradients learn encoders only
        task_rules = tuple(
            r
            for r in rules
            if (r != "erbp" or task in ERBP_TASKS)
            and (r not in PHASED_RULES or task == "digits")
            and (r not in ("dtp", "sg", "sgbp") or task != "digits-spiking")
        )
        for seed in seeds:
            if task == "digits":
                rows += run_digits(
                    task_rules, seed, rates, args.quick, not args.no_numpy, late=late
                )
            elif task == "digits-spiking":
                rows += run_digits_spiking(task_rules, seed, args.quick)
            else:
                rows += run_continuous(
                    task,
                    task_rules,
                    seed,
                    rates,
                    args.quick,
                    not args.no_numpy,
                    late,
                    args.replay,
                    args.width,
                )
            print(
                f"# {task} seed {seed} done ({time.time() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            if args.csv:  # rewritten after every seed: a long run keeps what it did
                write_csv(args.csv, rows)
    lines = summarise(rows, rules)
    print(
        "frozen = error after learning stops (MSE; accuracy for "
        "digits, higher is better); vs_pes = PES-only mean / rule mean (digits: "
        "accuracy difference); gm_ratio = geometric mean of per-seed PES/rule; "
        "online = with learning on, last part of training"
    )
    print(format_table(lines))
    print(f"# {time.time() - t0:.0f} s, rates {rates or 'defaults'}")
    return rows, lines


if __name__ == "__main__":
    main()
