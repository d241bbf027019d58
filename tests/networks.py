"""The networks the tests share: the product task, with one or two hidden layers.

Two sines, ``sin(pi t)`` and ``sin(0.7 pi t)``, go into a hidden ensemble whose
``PES`` readout learns their product; a nengo_fa rule (or none: PES only) on
the connection into the hidden layer gets the same error. Every object has an
explicit seed derived from ``seed``, so that the variants of one seed (PES only,
FA, BP, ...) start from the same network, and the error reaches the rules
through a `Gate` that closes at ``freeze_at``: after it, nothing learns (the
network is *frozen*), which is how learning is measured (`train_freeze_test`).

Everything here is defined at module level, so that the networks, and
simulators built from them, pickle.
"""

import nengo
import numpy as np

import nengo_fa


def sines(t):
    return [np.sin(np.pi * t), np.sin(0.7 * np.pi * t)]


def product_target(x):
    """Minus the target, as the error connection adds it: e = y - y*."""
    return -x[0] * x[1]


def zero(x):
    return 0


class Gate:
    """Passes the error until ``t_off``, then 0: learning stops (freezes)."""

    def __init__(self, t_off):
        self.t_off = t_off

    def __call__(self, t, x):
        return x if t < self.t_off else 0 * x


class GapGate:
    """Passes the error, but 0 inside each ``(start, end)`` of ``gaps``."""

    def __init__(self, gaps):
        self.gaps = gaps

    def __call__(self, t, x):
        return 0 * x if any(a <= t < b for a, b in self.gaps) else x


class Late:
    """Delivers the error ``delay`` seconds late, and only on a random
    ``fraction`` of the steps (0 on the others): a teacher that is slow or
    sparse. The steps are drawn from ``seed``; a run from t = 0 starts over."""

    def __init__(self, delay=0.0, fraction=1.0, seed=0, dt=0.001):
        self.steps = int(round(delay / dt))
        self.fraction, self.seed = fraction, seed
        self.start()

    def start(self):
        self.buffer = np.zeros(self.steps + 1)
        self.rng = np.random.RandomState(self.seed)
        self.last_t = -np.inf

    def __call__(self, t, x):
        if t <= 0:
            return 0.0  # Nengo's call at build time, to find the output size
        if t < self.last_t:
            self.start()
        self.last_t = t
        self.buffer[:-1] = self.buffer[1:]
        self.buffer[-1] = x[0]
        keep = self.fraction >= 1 or self.rng.uniform() < self.fraction
        return self.buffer[0] if keep else 0.0


def product(t, x):
    return x[0] * x[1]


def late_net(
    rule=None, seed=0, n=20, delay=0.0, fraction=1.0, freeze_at=np.inf, rule_kwargs=None
):
    """`product_net`'s task with the error delivered by `Late` (``delay``
    seconds late, on a ``fraction`` of the steps) to the readout and the
    rule alike, unfiltered (``synapse=None``), through the `Gate`.

    ``rule``: None or "pes", "fa", "bp", or a synthetic gradient: "sg"
    (random true feedback), "sg-bp" (backprop true feedback), each with the
    target as context, or "sg-nocontext"; the synthetic gradients are told
    ``error_delay=delay``. Attributes as for `product_net`.
    """
    kwargs = dict(rule_kwargs or {})
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(sines, label="input")
        target = nengo.Node(product, size_in=2, label="target")
        nengo.Connection(stim, target, synapse=None)
        hidden = nengo.Ensemble(
            n, 2, neuron_type=nengo.RectifiedLinear(), seed=seed + 1
        )
        out = nengo.Node(size_in=1, label="output")
        readout = nengo.Connection(
            hidden, out, function=zero, learning_rule_type=nengo.PES(), seed=seed + 2
        )
        error_in = nengo.Node(size_in=1, label="error")
        nengo.Connection(out, error_in, seed=seed + 6)
        nengo.Connection(target, error_in, transform=-1, seed=seed + 7)
        gated = nengo.Node(Gate(freeze_at), size_in=1, label="gated error")
        nengo.Connection(error_in, gated, synapse=None)
        error = nengo.Node(Late(delay, fraction, seed=seed + 11), size_in=1)
        nengo.Connection(gated, error, synapse=None)
        nengo.Connection(error, readout.learning_rule, synapse=None)
        if rule in ("sg", "sg-bp", "sg-nocontext"):
            kwargs.setdefault("error_delay", delay)
            if rule != "sg-nocontext":
                kwargs.setdefault("context", target)
            if rule == "sg-bp":
                rule_type = nengo_fa.SyntheticGradient(downstream=readout, **kwargs)
            else:
                rule_type = nengo_fa.SyntheticGradient(error_size=out, **kwargs)
        else:
            rule_type = one_layer_rule(rule, readout, out, **kwargs)
        layer1 = nengo.Connection(
            stim, hidden, learning_rule_type=rule_type, seed=seed + 3
        )
        rules = [] if rule_type is None else [layer1.learning_rule]
        if rules:
            nengo.Connection(error, rules[0], synapse=None, seed=seed + 10)
        net.p_error = nengo.Probe(error_in, synapse=None)
        net.p_out = nengo.Probe(out, synapse=None)
        net.hidden, net.readout, net.layer1, net.rules = hidden, readout, layer1, rules
        net.target = target
    return net


def one_layer_rule(rule, readout, out, **kwargs):
    """The rule type for the connection into a hidden layer whose readout
    (decoders :math:`D`) is ``readout``.

    ``rule``: None or "pes" (no rule), "fa" (fixed random feedback, no
    ``downstream``), "fa-downstream" (the same, knowing ``readout``, so that
    its alignment diagnostics can be probed), "bp", "ss" (SignSymmetry), "kp"
    (FA learning its feedback with Kolen-Pollack; ``feedback_learning=``
    picks another learned feedback), or a `.HiddenLayerRule` subclass taking
    ``error_size``.
    """
    if rule in (None, "pes"):
        return None
    if rule == "fa":
        return nengo_fa.FeedbackAlignment(error_size=out, **kwargs)
    if rule == "fa-downstream":
        return nengo_fa.FeedbackAlignment(downstream=readout, **kwargs)
    if rule == "bp":
        return nengo_fa.BackProp(readout, **kwargs)
    if rule == "ss":
        return nengo_fa.SignSymmetry(readout, **kwargs)
    if rule == "kp":
        # B starts on the scale of the decoders (only its direction is used),
        # so that the learned feedback's updates can turn it
        kwargs.setdefault("feedback", nengo.dists.Gaussian(0, 1e-4))
        kwargs.setdefault("feedback_learning", nengo_fa.KolenPollack())
        return nengo_fa.FeedbackAlignment(downstream=readout, **kwargs)
    return rule(out.size_out, **kwargs)


def product_net(
    rule=None,
    seed=0,
    n=10,
    neuron_type=None,
    freeze_at=np.inf,
    rule_kwargs=None,
    error_probe_synapse=None,
    at_once=False,
):
    """Two sines -> ``n`` hidden neurons -> PES readout of their product.

    ``at_once``: BackProp and SignSymmetry ("bp", "ss", "chain", "weights")
    learn from the first step (``warmup=None``), for tests of a rule's
    mechanics that run for less than their warm-up.

    ``rule`` is one of those of `one_layer_rule`, or

    - "chain": a second hidden layer ``h0`` in front, and BackProp on both
      ``h0 -> hidden`` and ``stim -> h0``, chained (only the upper rule is
      connected to the error);
    - "weights": BackProp with ``modifies="weights"`` on ``pre.neurons ->
      hidden.neurons``, from zero weights (the hidden layer also gets the
      input through a decoded connection).

    Attributes of the returned network: ``hidden``, ``readout``, ``layer1``
    (the connection into ``hidden`` that carries the rule), ``rules`` (the
    learning rules connected or chained to the error), ``p_error`` (the
    ungated error, probed with ``error_probe_synapse``), ``p_out`` (the
    output) and ``p_rule`` (``delta`` and ``bias`` of every rule).
    """
    kwargs = dict(rule_kwargs or {})
    if at_once and rule in ("bp", "ss", "chain", "weights"):
        kwargs.setdefault("warmup", None)
    neuron_type = nengo.RectifiedLinear() if neuron_type is None else neuron_type
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(sines, label="input")
        hidden = nengo.Ensemble(
            n, 2, neuron_type=neuron_type, seed=seed + 1, label="hidden"
        )
        out = nengo.Node(size_in=1, label="output")
        readout = nengo.Connection(
            hidden, out, function=zero, learning_rule_type=nengo.PES(), seed=seed + 2
        )
        error_in = nengo.Node(size_in=1, label="error")
        nengo.Connection(out, error_in, seed=seed + 6)
        nengo.Connection(stim, error_in, function=product_target, seed=seed + 7)
        error = nengo.Node(Gate(freeze_at), size_in=1, label="gated error")
        nengo.Connection(error_in, error, synapse=None)
        nengo.Connection(error, readout.learning_rule, seed=seed + 8)
        if rule == "chain":
            h0 = nengo.Ensemble(n, 2, neuron_type=neuron_type, seed=seed + 4)
            nengo.Connection(stim, h0, seed=seed + 5)
            layer1 = nengo.Connection(
                h0,
                hidden,
                learning_rule_type=nengo_fa.BackProp(readout, **kwargs),
                seed=seed + 3,
            )
            lower = nengo.Connection(
                stim,
                h0,
                learning_rule_type=nengo_fa.BackProp(layer1, **kwargs),
                seed=seed + 9,
            )
            rules = [layer1.learning_rule, lower.learning_rule]
        elif rule == "weights":
            pre = nengo.Ensemble(n, 2, neuron_type=neuron_type, seed=seed + 4)
            nengo.Connection(stim, pre, seed=seed + 5)
            nengo.Connection(stim, hidden, seed=seed + 9)
            layer1 = nengo.Connection(
                pre.neurons,
                hidden.neurons,
                transform=np.zeros((n, n)),
                learning_rule_type=nengo_fa.BackProp(
                    readout, modifies="weights", **kwargs
                ),
                seed=seed + 3,
            )
            rules = [layer1.learning_rule]
        else:
            rule_type = one_layer_rule(rule, readout, out, **kwargs)
            layer1 = nengo.Connection(
                stim, hidden, learning_rule_type=rule_type, seed=seed + 3
            )
            rules = [] if rule_type is None else [layer1.learning_rule]
        if rules:
            nengo.Connection(error, rules[0], seed=seed + 10)
        net.p_error = nengo.Probe(error_in, synapse=error_probe_synapse)
        net.p_out = nengo.Probe(out, synapse=None)
        keys = ("delta", "bias")
        net.p_rule = [nengo.Probe(r, k, synapse=None) for r in rules for k in keys]
        net.hidden, net.readout, net.layer1, net.rules = hidden, readout, layer1, rules
    return net


def deep_net(
    kind,
    seed,
    n=(10, 20),
    neuron_type=None,
    modifies="encoders",
    freeze_at=np.inf,
    max_rates=None,
    rule_kwargs=None,
    weight_scale=1e-3,
    at_once=False,
):
    """stim -> h1 -> h2 -> PES readout of the product of the two sines.

    ``kind`` picks the rules: None (the readout alone); BackProp ("bp"),
    SignSymmetry ("ss"), FeedbackAlignment ("fa") or DifferenceTargetProp
    ("dtp") on both hidden layers, the lower rule chained to the upper
    ("bpf": BackProp through the weights low-passed by `BPF_SYNAPSE`);
    direct feedback alignment ("dfa": FA on both, both connected to the
    output error); chained FA learning its feedback ("kp": Kolen-Pollack;
    "terms": all five alignment terms; "bd": `.BidirectionalAlignment`, on
    the normalised forward weights); local representation alignment ("lra":
    `.LRA` on both, chained). With
    ``modifies="weights"``, ``h1 -> h2`` is a full weight matrix (random
    initial weights of standard deviation ``weight_scale``) that the upper
    rule learns. The error reaches
    the rules through a `Gate` that closes at ``freeze_at``; ``max_rates``
    (a distribution) sets the ensembles' maximum rates; ``rule_kwargs`` go to
    both rules (e.g. their rates); ``at_once``: BackProp and SignSymmetry
    ("bp", "ss") learn from the first step (``warmup=None``), for tests
    shorter than their warm-up.

    Attributes: ``p_error`` (the ungated error, unfiltered), ``p_out``,
    ``into_h1``, ``into_h2``, ``readout`` and ``out``.
    """
    neuron_type = nengo.RectifiedLinear() if neuron_type is None else neuron_type
    with nengo.Network(seed=seed) as net:
        if max_rates is not None:
            net.config[nengo.Ensemble].max_rates = max_rates
        stim = nengo.Node(sines, label="input")
        h1 = nengo.Ensemble(n[0], 2, neuron_type=neuron_type, seed=seed + 1)
        h2 = nengo.Ensemble(n[1], 2, neuron_type=neuron_type, seed=seed + 2)
        out = nengo.Node(size_in=1, label="output")
        readout = nengo.Connection(
            h2, out, function=zero, learning_rule_type=nengo.PES(), seed=seed + 3
        )
        if modifies == "weights":
            rng = np.random.RandomState(seed)
            into_h2 = nengo.Connection(
                h1.neurons,
                h2.neurons,
                transform=rng.normal(scale=weight_scale, size=(n[1], n[0])),
                seed=seed + 4,
            )
        else:
            into_h2 = nengo.Connection(h1, h2, seed=seed + 4)
        learning = {
            "kp": nengo_fa.KolenPollack(decay=0.5),
            "terms": nengo_fa.AlignmentTerms(
                learning_rate=0.5, decay=0.1, self_=1, amp=1, sparse=1, null=1
            ),
            "bd": nengo_fa.BidirectionalAlignment(),
        }.get(kind)
        kw = dict(rule_kwargs or {})
        if at_once and kind in ("bp", "bpf", "ss"):
            kw.setdefault("warmup", None)
        into_h2.learning_rule_type = _upper_rule(
            kind, out, readout, learning, dict(kw, modifies=modifies)
        )
        into_h1 = nengo.Connection(
            stim,
            h1,
            learning_rule_type=_lower_rule(kind, out, into_h2, learning, kw),
            seed=seed + 5,
        )
        error_in = nengo.Node(size_in=1, label="error")
        nengo.Connection(out, error_in)
        nengo.Connection(stim, error_in, function=product_target)
        error = nengo.Node(Gate(freeze_at), size_in=1, label="gated error")
        nengo.Connection(error_in, error, synapse=None)
        nengo.Connection(error, readout.learning_rule)
        if kind is not None:
            nengo.Connection(error, into_h2.learning_rule)
        if kind == "dfa":
            nengo.Connection(error, into_h1.learning_rule)
        net.p_error = nengo.Probe(error_in, synapse=None)
        net.p_out = nengo.Probe(out)
        net.into_h1, net.into_h2, net.readout, net.out = into_h1, into_h2, readout, out
    return net


#: ``feedback_synapse`` of `deep_net`'s "bpf" (short, for short tests)
BPF_SYNAPSE = nengo.Lowpass(0.05)


def _upper_rule(kind, out, readout, learning, kw):
    """The rule on h1 -> h2 for `deep_net`."""
    if kind is None:
        return None
    if kind in ("fa", "dfa"):
        return nengo_fa.FeedbackAlignment(out, **kw)
    if kind == "lra":
        return nengo_fa.LRA(out, **kw)
    if kind == "bp":
        return nengo_fa.BackProp(readout, **kw)
    if kind == "bpf":
        return nengo_fa.BackProp(readout, feedback_synapse=BPF_SYNAPSE, **kw)
    if kind == "ss":
        return nengo_fa.SignSymmetry(readout, **kw)
    if kind == "dtp":  # learns encoders only: no 'modifies'
        if kw.pop("modifies") != "encoders":
            raise ValueError("DifferenceTargetProp learns encoders only")
        return nengo_fa.DifferenceTargetProp(readout, **kw)
    return nengo_fa.FeedbackAlignment(
        downstream=readout, feedback_learning=learning, **kw
    )


def _lower_rule(kind, out, into_h2, learning, kw):
    """The rule on stim -> h1 for `deep_net`."""
    if kind is None:
        return None
    if kind == "fa":
        return nengo_fa.FeedbackAlignment(downstream=into_h2, **kw)
    if kind == "lra":
        return nengo_fa.LRA(downstream=into_h2, **kw)
    if kind == "dfa":
        return nengo_fa.FeedbackAlignment(out, **kw)
    if kind == "bp":
        return nengo_fa.BackProp(into_h2, **kw)
    if kind == "bpf":
        return nengo_fa.BackProp(into_h2, feedback_synapse=BPF_SYNAPSE, **kw)
    if kind == "ss":
        return nengo_fa.SignSymmetry(into_h2, **kw)
    if kind == "dtp":
        return nengo_fa.DifferenceTargetProp(into_h2, **kw)
    return nengo_fa.FeedbackAlignment(
        downstream=into_h2, feedback_learning=learning, **kw
    )


def gapped_error_net(gaps, warmup, seed=3):
    """Two sines -> 10 neurons learned by ``BackProp(warmup=warmup)`` -> PES
    readout of their product; both rules get the error through a `GapGate`
    with ``gaps``, with no synapse. Attributes: ``rule`` (BackProp's learning
    rule), ``p_err`` (its error, after the warm-up) and ``p_in`` (the error
    into it), unfiltered."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(sines)
        ens = nengo.Ensemble(10, 2, neuron_type=nengo.RectifiedLinear())
        out = nengo.Node(size_in=1)
        readout = nengo.Connection(
            ens, out, function=zero, learning_rule_type=nengo.PES()
        )
        conn = nengo.Connection(
            stim, ens, learning_rule_type=nengo_fa.BackProp(readout, warmup=warmup)
        )
        error = nengo.Node(GapGate(gaps), size_in=1)
        nengo.Connection(out, error)
        nengo.Connection(stim, error, function=product_target)
        nengo.Connection(error, readout.learning_rule, synapse=None)
        nengo.Connection(error, conn.learning_rule, synapse=None)
        net.rule = conn.learning_rule
        net.p_err = nengo.Probe(net.rule, "error", synapse=None)
        net.p_in = nengo.Probe(error, synapse=None)
    return net


def train_freeze_test(Simulator, net, t_train, t_test, online=0.0, skip=0.05):
    """Run ``net`` (built with ``freeze_at=t_train``) for ``t_train +
    t_test`` seconds; return the mean squared error over the test, after
    learning stopped (*frozen*), and, with ``online`` > 0, over the last
    ``online`` seconds of training (learning on), as ``(frozen, online,
    sim)``. The first ``skip`` seconds (50 ms) after the freeze are left out:
    the error's synapses (or delays) still hold errors from training."""
    with Simulator(net, progress_bar=False) as sim:
        sim.run(t_train + t_test)
    t = sim.trange()
    sq = np.square(sim.data[net.p_error][:, 0])
    frozen = float(np.mean(sq[t > t_train + skip]))
    on = float(np.mean(sq[(t > t_train - online) & (t <= t_train)])) if online else None
    return frozen, on, sim


# --- the product task in presentations, for rules that need a phase structure


#: each input is held for PRESENT seconds; the target (the error) is present
#: from TARGET_ON to TARGET_OFF into each presentation
PRESENT, TARGET_ON, TARGET_OFF = 0.1, 0.05, 0.09


class Presentations:
    """Random points in [-1, 1]^2, each held for `PRESENT` seconds."""

    def __init__(self, seed, n):
        self.points = np.random.RandomState(seed).uniform(-1, 1, size=(n, 2))

    def __call__(self, t):
        return self.points[min(int(t / PRESENT), len(self.points) - 1)]


class PhasedGate(Gate):
    """Passes the error only from `TARGET_ON` to `TARGET_OFF` into each
    presentation (the plus phase), and not at all after ``t_off``."""

    def __call__(self, t, x):
        s = t % PRESENT
        return x if t < self.t_off and TARGET_ON <= s < TARGET_OFF else 0 * x


def phased_product_net(rule=None, seed=0, n=20, freeze_at=np.inf, rule_kwargs=None):
    """Random 2-D points, each held for `PRESENT` s, into ``n`` hidden
    RectifiedLinear neurons, and a PES readout of their product, with the
    target arriving part-way through each presentation (`PhasedGate`). Rules
    as in `one_layer_rule` ("trace": `.TraceRule`). Attributes as for
    `product_net`, and ``p_phase`` where the rule has a phase. Enough points
    for 100 s."""
    kwargs = dict(rule_kwargs or {})
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(Presentations(seed, 1000), label="input")
        hidden = nengo.Ensemble(
            n, 2, neuron_type=nengo.RectifiedLinear(), seed=seed + 1, label="hidden"
        )
        out = nengo.Node(size_in=1, label="output")
        readout = nengo.Connection(
            hidden, out, function=zero, learning_rule_type=nengo.PES(), seed=seed + 2
        )
        if rule == "trace":
            rule_type = nengo_fa.TraceRule(out, **kwargs)
        else:
            rule_type = one_layer_rule(rule, readout, out, **kwargs)
        layer1 = nengo.Connection(
            stim, hidden, learning_rule_type=rule_type, seed=seed + 3
        )
        error_in = nengo.Node(size_in=1, label="error")
        nengo.Connection(out, error_in, seed=seed + 6)
        nengo.Connection(stim, error_in, function=product_target, seed=seed + 7)
        error = nengo.Node(PhasedGate(freeze_at), size_in=1, label="phased error")
        nengo.Connection(error_in, error, synapse=None)
        nengo.Connection(error, readout.learning_rule, seed=seed + 8)
        rules = [] if rule_type is None else [layer1.learning_rule]
        if rules:
            nengo.Connection(error, rules[0], seed=seed + 10)
        net.p_error = nengo.Probe(error_in, synapse=None)
        net.p_out = nengo.Probe(out, synapse=None)
        net.p_rule = [
            nengo.Probe(r, k, synapse=None) for r in rules for k in ("delta", "bias")
        ]
        if rule == "trace":
            net.p_phase = nengo.Probe(layer1.learning_rule, "phase", synapse=None)
        net.hidden, net.readout, net.layer1, net.rules = hidden, readout, layer1, rules
    return net


def phased_train_freeze_test(Simulator, net, t_train, t_test):
    """Like `train_freeze_test` for `phased_product_net`: the mean squared
    error over the second half of each presentation (where the target would
    be), after the freeze (*frozen*) and over the last 5 s of training
    (*online*, nudged output), as ``(frozen, online, sim)``."""
    with Simulator(net, progress_bar=False) as sim:
        sim.run(t_train + t_test)
    t = sim.trange()
    sq = np.square(sim.data[net.p_error][:, 0])
    late = (t % PRESENT) >= PRESENT / 2
    frozen = float(np.mean(sq[late & (t > t_train + PRESENT)]))
    online = float(np.mean(sq[late & (t > t_train - 5) & (t <= t_train)]))
    return frozen, online, sim


def filtered(v, tau, dt):
    """``v`` (steps along the first axis) through Nengo's ``Lowpass(tau)``,
    from each step's own value on: what a rule's ``pre_synapse`` gives."""
    c = np.exp(-dt / tau)
    out = np.zeros_like(v)
    prev = np.zeros(v.shape[1:])
    for k in range(len(v)):
        out[k] = prev = c * prev + (1 - c) * v[k]
    return out
