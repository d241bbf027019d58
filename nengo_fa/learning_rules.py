r"""Learning rules that train a hidden ensemble from an output error.

The rules here are declarations only: parameters, validation and documentation.
Their build functions and operators live in `nengo_fa.builder`.
"""

import math

import numpy as np
from nengo.base import NengoObject
from nengo.connection import Connection
from nengo.dists import Gaussian
from nengo.ensemble import Ensemble, Neurons
from nengo.exceptions import ValidationError
from nengo.learning_rules import LearningRuleType
from nengo.node import Node
from nengo.params import (
    Default,
    EnumParam,
    IntParam,
    Parameter,
    TupleParam,
    Unconfigurable,
)
from nengo.synapses import Lowpass, SynapseParam

from nengo_fa.feedback import FeedbackLearning
from nengo_fa.params import FeedbackParam, FiniteNumberParam, WarmupParam

#: The rates (1/s; all three) for a rule whose feedback does not track the
#: recent input: a fixed matrix (`.FeedbackAlignment`), or a `nengo.PES`
#: readout's weights low-passed over its fastest time constant (`.BackProp`
#: and `.SignSymmetry`, by default). Docs: theory, "Choosing the rates".
STEADY_FEEDBACK_RATE = 0.7
#: The rates for a rule whose feedback is the live weights of a layer that
#: learns (a chained layer, or ``feedback_synapse=None`` under a learning
#: readout): such feedback tracks the input along with those weights, and
#: the layer with it, at any rate above the learning window's upper end.
TRACKING_FEEDBACK_RATE = 0.3


class DerivativeParam(Parameter):
    """A callable ``f(J)`` giving the neuron response derivative, or None."""

    def coerce(self, instance, derivative):  # pylint: disable=arguments-renamed
        if derivative is not None and not callable(derivative):
            raise ValidationError(
                f"must be a callable f(J) returning dG/dJ (got {derivative!r})",
                attr=self.name,
                obj=instance,
            )
        return super().coerce(instance, derivative)


class BoxcarParam(TupleParam):
    """A window ``(low, high)`` of two numbers, ``low`` finite and below ``high``."""

    # compared by value (Nengo's TupleParam compares by identity), so that a
    # rule equals its copy and hashes as it, as Nengo's rules do
    equatable = True

    def __init__(self, name, default=Unconfigurable, readonly=None):
        super().__init__(name, default=default, length=2, readonly=readonly)

    def coerce(self, instance, value):  # pylint: disable=arguments-renamed
        value = super().coerce(instance, value)
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError) as e:
            raise ValidationError(
                f"must be two numbers (low, high) (got {value!r})",
                attr=self.name,
                obj=instance,
            ) from e
        if not (math.isfinite(low) and low < high):
            raise ValidationError(
                f"must be (low, high) with low finite and below high (got {value!r})",
                attr=self.name,
                obj=instance,
            )
        return (low, high)


class FeedbackSynapseParam(SynapseParam):
    """A `nengo.Lowpass` (a number is its ``tau``), None, or ``"readout"``
    (a `nengo.Lowpass` whose ``tau`` the build derives from the readout)."""

    def coerce(self, instance, synapse):  # pylint: disable=arguments-renamed
        if isinstance(synapse, str) and synapse == "readout":
            return Parameter.coerce(self, instance, synapse)
        if not isinstance(synapse, str):
            synapse = super().coerce(instance, synapse)
        if synapse is not None and type(synapse) is not Lowpass:
            raise ValidationError(
                f"must be a nengo.Lowpass, None or 'readout' (got {synapse!r})",
                attr=self.name,
                obj=instance,
            )
        if synapse is not None and not math.isfinite(synapse.tau):
            raise ValidationError(
                f"the Lowpass's tau must be finite (got {synapse.tau!r}): an "
                "infinite one would hold the feedback at 0 for ever",
                attr=self.name,
                obj=instance,
            )
        return synapse


class DownstreamParam(Parameter):
    """A `nengo.Connection` leaving a neural population."""

    def coerce(self, instance, conn):  # pylint: disable=arguments-renamed
        if conn is None:  # allowed only when optional
            return super().coerce(instance, conn)
        self.check_type(instance, conn, Connection)
        if not isinstance(conn.pre_obj, (Ensemble, Neurons)):
            raise ValidationError(
                "must be a connection leaving the hidden ensemble or its neurons "
                f"(got a connection from {conn.pre_obj!r})",
                attr=self.name,
                obj=instance,
            )
        return super().coerce(instance, conn)


class ContextParam(Parameter):
    """A `nengo.Node` whose output a rule reads, or None."""

    def coerce(self, instance, node):  # pylint: disable=arguments-renamed
        if node is not None:
            self.check_type(instance, node, Node)
            if node.size_out < 1:
                raise ValidationError(
                    f"must be a Node with an output (got {node!r}, size_out 0)",
                    attr=self.name,
                    obj=instance,
                )
        return super().coerce(instance, node)


class FeedbackLearningParam(Parameter):
    """A `.FeedbackLearning` describing how a feedback matrix learns, or None."""

    def coerce(self, instance, value):  # pylint: disable=arguments-renamed
        self.check_type(instance, value, FeedbackLearning)
        return super().coerce(instance, value)


def chained_rule(conn):
    """The nengo_fa rule on ``conn``, whose local error a chained rule uses.

    Returns the `nengo.connection.LearningRule` of ``conn`` whose type is a
    `.HiddenLayerRule`, or None when ``conn`` carries no such rule (e.g. a
    `nengo.PES` readout): then the rule upstream of ``conn`` gets its error
    through a connection, as for `nengo.PES`. Internal; used by the rules and
    the builder.
    """
    if conn.learning_rule is None:
        return None
    rules = conn.learning_rule
    if isinstance(rules, dict):
        rules = list(rules.values())
    elif not isinstance(rules, list):
        rules = [rules]
    ours = [r for r in rules if isinstance(r.learning_rule_type, HiddenLayerRule)]
    if len(ours) > 1:
        raise ValidationError(
            f"{conn} carries {len(ours)} nengo_fa rules, so it is ambiguous which "
            "local error to chain from; give it at most one",
            attr="downstream",
        )
    return ours[0] if ours else None


class HiddenLayerRule(LearningRuleType):
    r"""Base class of the rules that learn a hidden ensemble's encoders.

    Subclasses differ only in where the feedback matrix :math:`F` comes from;
    everything else (the local error, the updates, their normalisation) is
    shared and documented here.

    A rule goes on a connection *into* the hidden ensemble. It receives the
    output error :math:`e = y - y^*` (actual minus target, exactly as
    `nengo.PES`) through a connection to ``conn.learning_rule``, and updates
    the ensemble's encoders, gains and biases every time step.

    Parameters
    ----------
    learning_rate : float, optional
        Rate :math:`\kappa_E` for the encoder directions (1/s, normalised as
        described under Notes; default 0.3 here, and in each rule as its
        docs say; see "Choosing the rates"). 0 freezes them.
    gain_learning_rate : float, optional
        Rate :math:`\kappa_g` for the gains. 0 freezes them. When it equals
        ``learning_rate`` (the default), the scaled encoders follow plain
        gradient descent, the fastest case to simulate.
    bias_learning_rate : float, optional
        Rate :math:`\kappa_b` for the biases (default 0.3). 0 freezes them.
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`, the derivative of the neurons' rate
        response with respect to input current, elementwise. By default it is
        looked up in `nengo_fa.neurons` for the ensemble's neuron type.
    modifies : {"encoders", "weights"}, optional
        What the rule learns. ``"encoders"`` (default): the post ensemble's
        encoders, gains and biases; the connection goes into an Ensemble.
        ``"weights"``: the connection's own full weight matrix :math:`W`
        (and the post ensemble's biases); the connection goes into
        ``ens.neurons`` (e.g. ``a.neurons -> b.neurons``), or into an
        Ensemble with a weight solver. Nengo checks which objects a rule may
        connect when the connection is created, so this must be chosen when
        the rule is made.
    pre_synapse : Synapse, optional
        The synapse through which the rule sees what it pairs with the error:
        the neurons' input current :math:`J` (whose derivative it takes) and
        the ensemble's input :math:`x`, or with ``modifies="weights"`` the
        presynaptic activities :math:`a_{pre}` (as `nengo.PES` filters them).
        The error reaches the rule through synapses of its own (the
        readout's and the error connections'); this delays the factors it
        meets alike (see Notes). None pairs the error with :math:`J` and
        :math:`x` of the same step.

    Notes
    -----
    For a hidden ensemble with unit encoders :math:`E`, gains :math:`g`,
    biases :math:`b` and radius :math:`r`, Nengo computes the input current
    :math:`J = S x + b` with scaled encoders :math:`S = \mathrm{diag}(g/r) E`
    and :math:`x` the ensemble's total decoded input. The local error is

    .. math:: \delta = (F e) \odot G'(J)

    and the gradients of :math:`L = \frac{1}{2}|e|^2` (taking :math:`F = D^T`)
    are :math:`\partial L/\partial S = \delta x^T`,
    :math:`\partial L/\partial b = \delta` and
    :math:`\partial L/\partial g_i = \delta_i (E_i \cdot x) / r`.

    The updates are these gradients times one positive scalar per ensemble,
    chosen so that the same default rates work for any ensemble size, gain,
    radius, neuron type and feedback scale. The bias and the scaled encoders
    take the steps

    .. math::

       \Delta b &= -\kappa_b \, \Delta t \, \hat g \, \hat\delta \\
       S_i &\rightarrow S_i + \beta_i x, \qquad
       \beta_i = -\kappa_E \, \Delta t \, \hat g \, \hat\delta_i / r^2

    with :math:`\hat\delta = (F e) \odot G'(J) / (\nu \bar{G'})`, where

    * :math:`\nu = \|F\|_F / \sqrt{n}` is the root-mean-square row norm of the
      feedback matrix (recomputed every step when :math:`F` changes),
    * :math:`\bar{G'}` is the mean of :math:`G'` over the active part of the
      neurons' tuning curves on :math:`[-r, r]` (1 for rectified linear
      neurons), computed at build time,
    * :math:`\hat g` is the mean build-time gain.

    The encoder step changes the gain :math:`g_i = r |S_i|` to
    :math:`m_i = r |S_i + \beta_i x|`. The gain rate then sets how much of
    that change is kept, and the row is rescaled to the new gain:

    .. math::

       g_i' = \max\left(g_i + \frac{\kappa_g}{\kappa_E} (m_i - g_i),
                        \, g_{min}\right), \qquad
       S_i' = \frac{g_i'}{m_i} (S_i + \beta_i x).

    With :math:`\kappa_g = \kappa_E` (the default), :math:`g_i' = m_i`: the
    update is exactly gradient descent on the scaled encoders,
    :math:`\Delta S = -\kappa \Delta t \, \hat g \, \hat\delta x^T / r^2`, and
    costs one rank-1 update of :math:`S` per step. With
    :math:`\kappa_g = 0` the gains stay fixed; with :math:`\kappa_E = 0` the
    directions stay fixed and
    :math:`\Delta g_i = -\kappa_g \Delta t \, \hat g \, \hat\delta_i (E_i
    \cdot x) / r`. To first order in :math:`\Delta t`, whatever the rates,

    .. math::

       \Delta g_i &= -\kappa_g \, \Delta t \, \hat g \, \hat\delta_i
                     (E_i \cdot x) / r \\
       \Delta E_i &= -\kappa_E \, \Delta t \, \frac{\hat g}{g_i r}
                     \hat\delta_i (x - (E_i \cdot x) E_i)

    the gradients with respect to gains and unit encoders, each with its
    own rate. Gains are kept at or above :math:`g_{min}` =
    ``nengo_fa.builder.MIN_GAIN_FRACTION`` (0.001) times :math:`\hat g`, so
    that no row of :math:`S` shrinks to nothing, and each step is bounded to
    :math:`|\beta_i| |x| \le \max(g_i, g_{min}) / (2 r)`, half the length of
    the row (at most 30 degrees of turn), a bound that only a neuron whose
    gain is near the floor reaches. One unit of rate changes each
    neuron's current by about :math:`\kappa \Delta t \, \hat g |F e| / \nu`,
    i.e. by a fraction :math:`\kappa \Delta t` of its range per unit of
    normalised error, whatever the ensemble.

    **Choosing the rates.** A rule learns what the network keeps once
    learning stops only if each neuron's current moves slowly compared with
    the time the input takes to sweep its range, :math:`T_{sweep}`; faster
    rates fit the recent input instead (*tracking*): the online error falls,
    the frozen one rises. With :math:`|e_0|` the error the hidden layer starts
    from and :math:`T_{train}` the training time, the rates should satisfy
    :math:`1 / (|e_0| T_{train}) \lesssim \kappa \lesssim 1 / (|e_0|
    T_{sweep})`. The default here, 0.3 for all three rates
    (`.TRACKING_FEEDBACK_RATE`), satisfies it for errors of about 0.1-0.3
    and inputs that sweep their range within about 20 s, with a minute or
    so of training, for a feedback that itself tracks the input (the live
    weights of a readout or layer that learns). A feedback that does not (a
    fixed matrix, as `.FeedbackAlignment`'s, or a readout low-passed over
    its fastest time constant, as `.BackProp`'s and `.SignSymmetry`'s by
    default) leaves only the error to track, and the window's upper end
    rises: there the default is 0.7 (`.STEADY_FEEDBACK_RATE`). Lower the
    rates for inputs that sweep more slowly, raise them when adapting to
    the latest input is the goal. The docs' theory page ("Learning versus
    tracking", "Choosing the rates") derives this and gives the
    measurements.

    **What the error is paired with.** The error :math:`e(t)` that reaches
    the rule was made by the activities of some milliseconds before: it went
    through the readout's synapse and the error connections'. Where the
    input changes within that time (images presented for tens of
    milliseconds) the current :math:`J(t)` and input :math:`x(t)` belong to
    another input than the error does. The gradient of :math:`e(t)` is
    taken through the synapses' kernel :math:`h`,
    :math:`\partial e(t) / \partial S_i \propto \int h(s) \, G'_i(t - s)
    \, x(t - s)^T ds`; the rule keeps its rank-1 form with
    :math:`G'(\bar J)` and :math:`\bar x`, the current and the input filtered
    by ``pre_synapse`` (default ``Lowpass(0.005)``, Nengo's default synapse,
    as `nengo.PES` filters its activities): :math:`J` and :math:`x` above
    stand for these. On inputs that change slowly against the synapse this
    is the same as the unfiltered step; on 30 ms presentations it is the
    difference between pairing the error with its own image or with the
    one before (:doc:`/theory`, "Pairing the error with its cause").

    Updates computed on one step are applied at the start of the next, as for
    Nengo's own rules. The error, the local error and all parameters are
    probeable (see ``probeable``). ``encoders`` and ``scaled_encoders`` both
    probe the live scaled encoders :math:`S` (the signal Nengo multiplies the
    input by); divide row :math:`i` by :math:`g_i / r` for unit encoders.

    If the error, the ensemble's input, the neurons' input current, the
    feedback or the derivative holds NaN or inf, the simulation stops with a
    `nengo.exceptions.SimulationError` that names the signal and where it came
    from, before any parameter is changed. The bias step is bounded like the
    encoder step, :math:`|\Delta b_i| \le \max(g_i, g_{min}) / 2`, and keeps
    :math:`b_i \ge \theta - \iota_{max} g_i` (the neuron keeps firing for
    some inputs within the radius; :math:`\theta` is the current at its
    intercept, :math:`\iota_{max}` = ``MAX_INTERCEPT`` (0.95) or the highest
    build-time intercept) and :math:`b_i \le \theta + g_{max}`; gains stay
    at or below :math:`g_{max}` = ``MAX_GAIN_FRACTION`` (1000) times
    :math:`\hat g`. A rule is in its *stable range* while
    :math:`\Delta t (\kappa_b + \max(\kappa_E, \kappa_g)) \le 0.2`
    (``STABLE_STEP``): gradient descent with step :math:`\eta` on a loss of
    curvature :math:`\lambda` is stable for :math:`\eta \lambda < 2`, the
    step here is :math:`\kappa \Delta t` of a neuron's range per unit error,
    and a readout spanning its output over tuning curves with intercepts up to
    :math:`c` has :math:`\lambda \approx 1 / (1 - c)` per parameter group, up
    to 10 for Nengo's default intercepts. Outside it, a
    `.StableRangeWarning` is raised at build time; a step cut short by a bound
    (a very large error or input) raises one once during the run. See
    :doc:`/theory` (Run-time robustness and precision).

    **Weight learning** (``modifies="weights"``). The post neurons' current is
    :math:`J = c \odot (W a_{pre}) + \dots`, with :math:`c` the post gains for
    a connection into ``ens.neurons`` (Nengo applies them to the weights) or 1
    for a weight-solver connection (gains already in :math:`W`). The rule uses
    the same :math:`\delta` and :math:`\hat\delta` and, by the same idea as
    for the encoders (each neuron's current moves by about
    :math:`\kappa \Delta t \, \hat g \hat\delta_i` per step at typical
    presynaptic activity),

    .. math:: \Delta W = -\kappa \, \Delta t \,
              \mathrm{diag}(\hat g / c) \, \hat\delta \, a_{pre}^T / \bar A^2

    where :math:`a_{pre}` are the presynaptic activities filtered by
    ``pre_synapse`` and :math:`\bar A^2` is the mean of :math:`|a_{pre}|^2`
    over the presynaptic ensemble's evaluation points (its rate tuning
    curves), computed at build time. When the presynaptic neurons are driven
    some other way (a connection into ``pre.neurons``), their rates may be
    far from their tuning curves, and every step off by the ratio: the
    simulator measures :math:`|a_{pre}|^2` over the first second of activity
    and raises an `.ActivityScaleWarning` if it is more than 10 times off.
    Up to that positive per-row scaling this
    is the gradient :math:`\partial L / \partial W = (c \odot \delta)
    a_{pre}^T`. The biases are learned as above with ``bias_learning_rate``;
    ``gain_learning_rate`` is unused (the gains are part of :math:`W`). The
    weight update uses the local error of the previous step (one step of
    delay). The learned weights are probed on the connection,
    ``nengo.Probe(conn, "weights")``. Slices of the post neurons are not
    supported; slices of the pre neurons are.

    **Chaining** (deep networks). A rule whose ``downstream`` connection
    (from its ensemble, layer :math:`l`, into layer :math:`l+1`) itself
    carries a nengo_fa rule takes its error from that rule instead of from an
    error connection: only the rule nearest the output is connected to the
    output error. The error passed back is the downstream rule's *normalised*
    local error, the one it learns from,

    .. math:: \hat\delta_{l+1} = \delta_{l+1} / (\nu_{l+1} \bar{G'}_{l+1}),

    mapped into the space the downstream connection's weights :math:`W_l`
    lead to. When the downstream rule learns encoders, that is the decoded
    space of layer :math:`l+1`, reached through its live scaled encoders:

    .. math:: e_l = \frac{r_{l+1} d_{l+1}}{\hat g_{l+1} n_{l+1}}
              S_{l+1}^T \hat\delta_{l+1}

    (:math:`d_{l+1}` dimensions, :math:`n_{l+1}` neurons; for unit encoders
    spread over the sphere :math:`(d/n) E^T` approximates the pseudo-inverse
    of :math:`E`, so :math:`e_l` is the decoded-space vector whose encoding
    is :math:`\hat\delta_{l+1}`, and every layer takes steps of about the
    same size). When the downstream rule learns weights,
    :math:`e_l = (c / \hat g_{l+1}) \odot \hat\delta_{l+1}`.
    `.BackProp` then uses :math:`F = W_l^T`, so that
    :math:`\delta_l` is the backpropagated local error times one positive
    scalar per layer (the normalisation, which keeps one default rate right
    for every layer). `.FeedbackAlignment` uses
    :math:`e_l = \hat\delta_{l+1}` and a fixed random
    :math:`B_l` (``n_l x n_{l+1}``) instead [1]_. Each layer of a chain adds
    one time step of delay: :math:`\delta_l` at step :math:`t` uses
    :math:`\delta_{l+1}` from step :math:`t - 1`. Chains work for any number
    of layers and whatever order the objects were created in.

    References
    ----------
    .. [1] Lillicrap, T. P., Cownden, D., Tweed, D. B., & Akerman, C. J.
       (2016). Random synaptic feedback weights support error backpropagation
       for deep learning. Nature Communications, 7, 13276.
    """

    probeable = ("error", "delta", "encoders", "scaled_encoders", "gain", "bias")

    modifies = EnumParam(
        "modifies", values=("encoders", "weights"), default="encoders", readonly=True
    )

    learning_rate = FiniteNumberParam(
        "learning_rate", low=0, readonly=True, default=0.3
    )
    gain_learning_rate = FiniteNumberParam(
        "gain_learning_rate", low=0, readonly=True, default=0.3
    )
    bias_learning_rate = FiniteNumberParam(
        "bias_learning_rate", low=0, readonly=True, default=0.3
    )
    derivative = DerivativeParam(
        "derivative", default=None, optional=True, readonly=True
    )
    pre_synapse = SynapseParam("pre_synapse", default=Lowpass(tau=0.005), readonly=True)

    def __str__(self):
        # shown in Nengo's messages about the rule, e.g. when an error is
        # connected to a chained rule ("... must have size_in > 0"): say where
        # its error comes from, in words true in any of them
        down = getattr(self, "downstream", None)
        if self.size_in == 0 and down is not None and chained_rule(down) is not None:
            return (
                f"{self!r} (chained: it takes its error from the rule on {down}, "
                "so an error connection goes to that rule, not to this one)"
            )
        return repr(self)

    def __init__(
        self,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        derivative=Default,
        size_in=0,
        modifies=Default,
        pre_synapse=Default,
    ):
        # before nengo's connection checks read it
        self.modifies = modifies
        super().__init__(learning_rate=learning_rate, size_in=size_in)
        self.gain_learning_rate = gain_learning_rate
        self.bias_learning_rate = bias_learning_rate
        self.derivative = derivative
        self.pre_synapse = pre_synapse


class FeedbackAlignment(HiddenLayerRule):
    r"""Feedback alignment: the error reaches the hidden layer through a fixed
    random matrix.

    The hidden ensemble's encoders, gains and biases are trained with the
    local error :math:`\delta = (B e) \odot G'(J)`, where :math:`B`
    (``n_neurons x error_size``) is random and fixed, instead of the transpose
    of the downstream weights that backpropagation would need. The forward
    weights come to align with :math:`B`, so that :math:`B e` becomes a useful
    descent direction [1]_. See `.HiddenLayerRule` for the updates and their
    normalisation.

    Parameters
    ----------
    error_size : int or NengoObject, optional
        Dimensionality of the error signal. A Nengo object (e.g. the output
        node the error is computed from) can be given instead; its
        ``size_out`` is used. Give either this or ``downstream``.
    feedback : Distribution or (n_neurons, error_size) array_like, optional
        The feedback matrix :math:`B`, or the distribution it is sampled from
        at build time (with a seed derived from the connection's seed, so it
        follows the model seed). Its overall scale does not matter: the update
        is normalised by the RMS row norm of :math:`B`.
    learning_rate : float, optional
        Rate for the encoder directions (or the weights); default 0.7
        (`.STEADY_FEEDBACK_RATE`: a fixed feedback does not track the recent
        input, so the layer can learn faster without tracking it; docs:
        theory, "Choosing the rates"). 0 freezes them.
    gain_learning_rate : float, optional
        Rate for the gains; default 0.7. 0 freezes them.
    bias_learning_rate : float, optional
        Rate for the biases; default 0.7. 0 freezes them.
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`; by default looked up for the
        ensemble's neuron type in `nengo_fa.neurons`.
    downstream : Connection, optional
        The connection from this rule's ensemble (layer :math:`l`) whose
        weights :math:`W` the feedback stands in for. If it carries a nengo_fa
        rule itself (a layer below another trained layer), the rule is
        *chained*: its error is that rule's normalised local error
        :math:`\hat\delta_{l+1}`, fed back through :math:`B_l`
        (``n_l x n_{l+1}``), and no error connection is made; ``error_size``
        becomes :math:`n_{l+1}`. Otherwise (e.g. a `nengo.PES` readout) the
        error is connected as usual and ``error_size`` is
        ``downstream.size_out``. Either way, knowing ``downstream`` lets the
        rule learn its feedback and report how well it aligns.
    modifies : {"encoders", "weights"}, optional
        Learn the post ensemble's encoders (default) or this connection's
        weight matrix; see `.HiddenLayerRule`.
    pre_synapse : Synapse, optional
        The filter of what the rule pairs with the error: the current and
        the input, or the presynaptic activities when learning weights (see
        `.HiddenLayerRule`).
    feedback_learning : FeedbackLearning, optional
        How the feedback matrix learns (`.KolenPollack`,
        `.SymmetricAlignment`, `.ActivationAlignment`, or any
        `.AlignmentTerms`); None (default) keeps it fixed. Needs
        ``downstream``.

    Attributes
    ----------
    error_size : int
        Dimensionality of the error signal.
    feedback : Distribution or ndarray
        The feedback matrix, or its distribution.
    downstream : Connection or None
        The connection whose weights the feedback stands in for.
    feedback_learning : FeedbackLearning or None
        How the feedback matrix learns, if it does.

    See Also
    --------
    BackProp, SignSymmetry

    Notes
    -----
    Probeable: ``"error"``, ``"delta"`` (per-neuron :math:`\delta`),
    ``"encoders"``/``"scaled_encoders"``, ``"gain"``, ``"bias"``,
    ``"feedback"`` (the live :math:`B`), and three alignment diagnostics,
    defined as in the papers (see `.SimAlignmentDiagnostics`):
    ``"delta_angle"``, the angle in degrees between the rule's local error
    and the one backpropagation would give (Lillicrap et al. 2016);
    ``"feedback_angle"``, the angle between :math:`B` and the true feedback
    :math:`W^T` (Akrout et al. 2019); and ``"norm_ratio"``,
    :math:`\|B\|_F / \|W\|_F`. The diagnostics need ``downstream``
    (without it, probing them is a ``BuildError``), are computed only when
    a probe of the network reads them (they cost more than the rule where
    :math:`W` is a chained rule's ``n x n`` forward matrix) and are NaN while
    undefined (e.g. while :math:`W = 0`). For a
    chained rule, :math:`W` is the effective forward matrix from layer
    :math:`l`'s neurons to layer :math:`l+1`'s (:math:`S_{l+1} W_l`, or
    :math:`\mathrm{diag}(c) W_l` for neuron-to-neuron weights), the matrix
    backpropagation would transpose. The initial matrix is also in
    ``sim.data[conn.learning_rule].feedback``.

    **Direct feedback alignment** [2]_ needs no class of its own: put a
    ``FeedbackAlignment(error_size=out)`` on the connection into *every*
    hidden layer and connect the same output error to all of them. Each
    layer gets its own random :math:`B_l` (``n_l x error_size``, sampled from
    its connection's seed), so the output error reaches every layer directly,
    with no delay and no dependence on the layers above. Chained feedback
    alignment [1]_ instead passes the error down layer by layer with
    ``downstream=``; see the second example.

    References
    ----------
    .. [1] Lillicrap, T. P., Cownden, D., Tweed, D. B., & Akerman, C. J.
       (2016). Random synaptic feedback weights support error backpropagation
       for deep learning. Nature Communications, 7, 13276.
    .. [2] Nøkland, A. (2016). Direct feedback alignment provides learning in
       deep neural networks. Advances in Neural Information Processing
       Systems 29, 1037-1045.

    Examples
    --------
    One hidden layer:

    .. testcode::

       with nengo.Network(seed=0) as model:
           stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.cos(np.pi * t)])
           hidden = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           out = nengo.Node(size_in=1)
           readout = nengo.Connection(
               hidden, out, function=lambda x: 0, learning_rule_type=nengo.PES()
           )
           layer1 = nengo.Connection(
               stim, hidden,
               learning_rule_type=nengo_fa.FeedbackAlignment(error_size=out),
           )
           error = nengo.Node(size_in=1)
           nengo.Connection(out, error)
           nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
           nengo.Connection(error, readout.learning_rule)
           nengo.Connection(error, layer1.learning_rule)

    Two hidden layers, direct feedback alignment (every layer gets the output
    error) or chained feedback alignment (the error passes through ``h2``):

    .. testcode::

       direct = True
       with nengo.Network(seed=0) as model:
           stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.cos(np.pi * t)])
           h1 = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           h2 = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           out = nengo.Node(size_in=1)
           readout = nengo.Connection(
               h2, out, function=lambda x: 0, learning_rule_type=nengo.PES()
           )
           into_h2 = nengo.Connection(
               h1, h2, learning_rule_type=nengo_fa.FeedbackAlignment(out)
           )
           if direct:
               rule_h1 = nengo_fa.FeedbackAlignment(out)
           else:
               rule_h1 = nengo_fa.FeedbackAlignment(downstream=into_h2)
           into_h1 = nengo.Connection(stim, h1, learning_rule_type=rule_h1)
           error = nengo.Node(size_in=1)
           nengo.Connection(out, error)
           nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
           nengo.Connection(error, readout.learning_rule)
           nengo.Connection(error, into_h2.learning_rule)
           if direct:
               nengo.Connection(error, into_h1.learning_rule)
    """

    probeable = HiddenLayerRule.probeable + (
        "feedback",
        "delta_angle",
        "feedback_angle",
        "norm_ratio",
    )

    # a fixed feedback tracks nothing
    learning_rate = FiniteNumberParam(
        "learning_rate", low=0, readonly=True, default=STEADY_FEEDBACK_RATE
    )
    gain_learning_rate = FiniteNumberParam(
        "gain_learning_rate", low=0, readonly=True, default=STEADY_FEEDBACK_RATE
    )
    bias_learning_rate = FiniteNumberParam(
        "bias_learning_rate", low=0, readonly=True, default=STEADY_FEEDBACK_RATE
    )
    error_size = IntParam("error_size", low=1, readonly=True)
    feedback = FeedbackParam(
        "feedback",
        default=Gaussian(mean=0, std=1),
        sample_shape=("*", "error_size"),
        readonly=True,
    )
    downstream = DownstreamParam(
        "downstream", default=None, optional=True, readonly=True
    )
    feedback_learning = FeedbackLearningParam(
        "feedback_learning", default=None, optional=True, readonly=True
    )

    _param_init_order = ["downstream", "error_size"]

    def __init__(
        self,
        error_size=None,
        feedback=Default,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        derivative=Default,
        downstream=None,
        modifies=Default,
        pre_synapse=Default,
        feedback_learning=None,
    ):
        self.downstream = downstream
        self.feedback_learning = feedback_learning
        if feedback_learning is not None and downstream is None:
            raise ValidationError(
                "learning the feedback needs the forward weights it stands in "
                "for: give 'downstream'",
                attr="downstream",
                obj=self,
            )
        if isinstance(error_size, NengoObject):
            error_size = error_size.size_out
        size_in = error_size
        if downstream is not None and chained_rule(downstream) is None:
            # the layer next to the output: the error is connected as usual
            if error_size is not None and error_size != downstream.size_out:
                raise ValidationError(
                    f"the error of {downstream} has {downstream.size_out} "
                    f"dimensions; leave error_size out (got {error_size})",
                    attr="error_size",
                    obj=self,
                )
            error_size = size_in = downstream.size_out
        elif downstream is not None:
            n_next = _post_ensemble(downstream).n_neurons
            if error_size is not None and error_size != n_next:
                raise ValidationError(
                    f"with 'downstream', the error is the local error of the "
                    f"{n_next} neurons of {_post_ensemble(downstream)}; leave "
                    f"error_size out (got {error_size})",
                    attr="error_size",
                    obj=self,
                )
            error_size = n_next
            size_in = 0  # no error connection: the error comes from down_rule
        self.error_size = error_size  # validated first: size_in depends on it
        super().__init__(
            learning_rate=learning_rate,
            gain_learning_rate=gain_learning_rate,
            bias_learning_rate=bias_learning_rate,
            derivative=derivative,
            size_in=size_in,
            modifies=modifies,
            pre_synapse=pre_synapse,
        )
        self.feedback = feedback


class _LiveFeedbackRule(HiddenLayerRule):
    """A rule whose feedback is computed from a downstream connection's
    weights (`.BackProp`, `.SignSymmetry`), which waits for a learning
    readout to take shape (``warmup``) and reads it low-passed
    (``feedback_synapse``). Internal."""

    downstream = DownstreamParam("downstream", readonly=True)
    # None: resolved at build time, by whether the feedback tracks (see
    # `resolved_rates` in the builder)
    learning_rate = FiniteNumberParam(
        "learning_rate", low=0, default=None, optional=True, readonly=True
    )
    gain_learning_rate = FiniteNumberParam(
        "gain_learning_rate", low=0, default=None, optional=True, readonly=True
    )
    bias_learning_rate = FiniteNumberParam(
        "bias_learning_rate", low=0, default=None, optional=True, readonly=True
    )
    warmup = WarmupParam("warmup", default="readout", optional=True, readonly=True)
    feedback_synapse = FeedbackSynapseParam(
        "feedback_synapse", default="readout", optional=True, readonly=True
    )

    def __init__(
        self,
        downstream,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        derivative=Default,
        modifies=Default,
        pre_synapse=Default,
        warmup=Default,
        feedback_synapse=Default,
    ):
        self.downstream = downstream
        self.warmup = warmup
        self.feedback_synapse = feedback_synapse
        # chained: the error comes from the downstream rule, not a connection
        size_in = 0 if chained_rule(downstream) is not None else downstream.size_out
        super().__init__(
            learning_rate=learning_rate,
            gain_learning_rate=gain_learning_rate,
            bias_learning_rate=bias_learning_rate,
            derivative=derivative,
            size_in=size_in,
            modifies=modifies,
            pre_synapse=pre_synapse,
        )


class BackProp(_LiveFeedbackRule):
    r"""Backpropagation through the weights of a downstream connection.

    The local error of the hidden ensemble is
    :math:`\delta = (W^T e) \odot G'(J)`, where :math:`W` (``size_out x
    n_neurons``) is ``downstream``'s decoders (or weights) as they are now.
    This is the exact gradient of :math:`\frac{1}{2}|e|^2` [1]_, delayed by
    one time step, and serves as the reference that the biologically
    plausible rules are measured against. See `.HiddenLayerRule` for the
    updates and their normalisation.

    When ``downstream`` learns with `nengo.PES`, the error comes back by
    default through :math:`\bar W`, its weights low-passed over the
    readout's fastest time constant (``feedback_synapse="readout"``): a PES
    readout fed correlated input also tracks the last second or two of it,
    and a layer that learned along that part would lose it once learning
    stops. Otherwise (a fixed readout, or chained) the feedback is the live
    :math:`W`.

    Parameters
    ----------
    downstream : Connection
        The connection leaving the hidden ensemble (or its neurons). It must
        start at the ensemble this rule trains, have a `nengo.Dense` or no
        transform and no weight solver. It can be created before or after
        this rule's connection. If it carries a nengo_fa rule itself (it goes
        into the next trained layer), the error comes from that rule, through
        :math:`W` and the next layer's live encoders, and no error connection
        is made (see Chaining in `.HiddenLayerRule`). Otherwise (e.g. a
        `nengo.PES` readout), connect the output error to this rule.
    learning_rate : float or None, optional
        Rate for the encoder directions (or the weights); 0 freezes them.
        None (the default) chooses it at build time by what the feedback
        reads: `.STEADY_FEEDBACK_RATE` (0.7) where the weights do not track
        the recent input (low-passed from a `nengo.PES` readout, as by
        default, or weights that do not learn), `.TRACKING_FEEDBACK_RATE`
        (0.3) where they do (the live weights of a layer that learns: a
        chained layer, or ``feedback_synapse=None`` under a learning
        readout). As built: ``sim.data[conn.learning_rule].learning_rate``.
    gain_learning_rate : float or None, optional
        Rate for the gains; None (the default) is chosen as for
        ``learning_rate``. 0 freezes them.
    bias_learning_rate : float or None, optional
        Rate for the biases; None (the default) is chosen as for
        ``learning_rate``. 0 freezes them.
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`; by default looked up for the
        ensemble's neuron type in `nengo_fa.neurons`.
    modifies : {"encoders", "weights"}, optional
        Learn the post ensemble's encoders (default) or this connection's
        weight matrix; see `.HiddenLayerRule`.
    pre_synapse : Synapse, optional
        The filter of what the rule pairs with the error: the current and
        the input, or the presynaptic activities when learning weights (see
        `.HiddenLayerRule`).
    warmup : "readout", float or None, optional
        Seconds during which the rule does not learn (its error is held at 0)
        while a learning readout takes shape, counted from the first step on
        which the rule gets a non-zero error (steps before, e.g. a test with
        the error gated off, do not count). ``"readout"`` (the default)
        gives the fastest time constant of ``downstream``'s `nengo.PES` rule,
        :math:`\tau_1 = n / (\kappa_{PES} \lambda_{max}(E[a a^T]))` over the
        ensemble's tuning curves (0, no warm-up, when ``downstream`` has no
        learning PES rule); None or 0: no warm-up. A chained rule is held by
        the warm-up of the rule nearest the output, and takes no number of
        seconds of its own.
    feedback_synapse : "readout", Lowpass or None, optional
        The filter of the weights the error comes back through:
        :math:`\bar W`, the weights low-passed from 0, so that the hidden
        layer learns along the readout's slow part, not along what it tracks
        of the last second or two of input (docs: theory, "Feedback through
        the readout's slow part"). ``"readout"`` (the default) is a
        `nengo.Lowpass` with the same :math:`\tau_1` as the warm-up: the
        readout's fastest time constant, over which it tracks; the live
        weights :math:`W` when ``downstream`` has no learning `nengo.PES`
        rule (e.g. chained), whose weights track nothing. A `nengo.Lowpass`:
        that filter. None: the live weights :math:`W` (the exact gradient,
        delayed by one step). As built:
        ``sim.data[conn.learning_rule].feedback_synapse``.

    Attributes
    ----------
    downstream : Connection
        The connection whose weights carry the error back.
    warmup : "readout", float or None
        The warm-up, as given.
    feedback_synapse : "readout", Lowpass or None
        The filter of the weights the error comes back through, as given.

    See Also
    --------
    FeedbackAlignment, SignSymmetry

    Notes
    -----
    The error has ``downstream.size_out`` dimensions (none to connect when
    chained). Probeable: ``"error"``, ``"delta"``,
    ``"encoders"``/``"scaled_encoders"``, ``"gain"`` and ``"bias"``. Because
    the update is normalised by the RMS norm of :math:`W`, it does nothing
    while :math:`W = 0` (e.g. a readout that starts with
    ``function=lambda x: 0``) and takes full-size steps as soon as the readout
    has any structure.

    **Warm-up.** The normalisation also means that in its first moments,
    when a PES readout is still the imprint of the first few inputs, the
    hidden layer would take full-size steps along it: on the continuous tasks
    of ``benchmarks/generalisation.py`` BackProp without a warm-up makes
    20-40% of its whole change in the readout's first time constant
    :math:`\tau_1` (about 1-2 s at `nengo.PES`'s default rate), in a
    direction almost unrelated to the rest. By default (``warmup="readout"``)
    the rule waits :math:`\tau_1` from the first error; trained, frozen
    and tested, this lowered the frozen error on most of those tasks (docs:
    "What backpropagation's first second does"). A slower readout makes a
    longer warm-up (:math:`\tau_1` scales with :math:`1 / \kappa_{PES}`);
    the length as built, in seconds, is ``sim.data[conn.learning_rule].warmup``.
    ``warmup=None`` starts at once.

    References
    ----------
    .. [1] Rumelhart, D. E., Hinton, G. E., & Williams, R. J. (1986).
       Learning representations by back-propagating errors. Nature, 323,
       533-536.

    Examples
    --------
    Two hidden layers trained by backpropagation; only the rule nearest the
    output gets the error:

    .. testcode::

       with nengo.Network(seed=0) as model:
           stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.cos(np.pi * t)])
           h1 = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           h2 = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           out = nengo.Node(size_in=1)
           readout = nengo.Connection(
               h2, out, function=lambda x: 0, learning_rule_type=nengo.PES()
           )
           into_h2 = nengo.Connection(
               h1, h2, learning_rule_type=nengo_fa.BackProp(readout)
           )
           into_h1 = nengo.Connection(
               stim, h1, learning_rule_type=nengo_fa.BackProp(into_h2)
           )
           error = nengo.Node(size_in=1)
           nengo.Connection(out, error)
           nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
           nengo.Connection(error, readout.learning_rule)
           nengo.Connection(error, into_h2.learning_rule)
    """


class SignSymmetry(_LiveFeedbackRule):
    r"""Sign symmetry: feedback through the signs of the downstream
    weights.

    Like `.BackProp`, but the error comes back through
    :math:`F = \rho \, \mathrm{sign}(W)^T` instead of :math:`W^T` [1]_: the
    feedback pathway needs to know only the sign of each forward weight, not
    its magnitude. :math:`\rho = \sqrt{\mathrm{mean}(W^2)}` is the RMS
    magnitude of the entries of :math:`W`, so that :math:`F` has the same
    Frobenius norm (and RMS row norm :math:`\nu`) as :math:`W^T` when no
    entry is zero, and ``delta`` is on the scale `.BackProp` would give. The
    updates are normalised by :math:`\nu` (see `.HiddenLayerRule`), so
    :math:`\rho` changes only the scale of the probed ``delta``. Both are
    recomputed every step, from the weights low-passed over the readout's
    fastest time constant when ``downstream`` learns with `nengo.PES` (the
    default ``feedback_synapse="readout"``, as for `.BackProp`), from the
    live weights otherwise.

    With ``downstream`` into an Ensemble (decoders :math:`D`, or a decoded
    connection into the next layer) :math:`W` is the decoder matrix, so the
    sign is taken in Nengo's factored form; with a full weight matrix
    (``a.neurons -> b.neurons``) it is the sign of the synaptic weights, as
    in [1]_.

    Parameters
    ----------
    downstream : Connection
        As for `.BackProp`; chaining works the same way.
    learning_rate, gain_learning_rate, bias_learning_rate : float or None, optional
        Rates for the encoder directions (or the weights), the gains and
        the biases; 0 freezes one. None (the default) chooses each at build
        time as for `.BackProp`: 0.7 where the weights whose signs the
        feedback takes do not track the recent input (low-passed, as by
        default, or not learning), 0.3 where they do.
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`; by default looked up for the
        ensemble's neuron type in `nengo_fa.neurons`.
    modifies : {"encoders", "weights"}, optional
        Learn the post ensemble's encoders (default) or this connection's
        weight matrix; see `.HiddenLayerRule`.
    pre_synapse : Synapse, optional
        The filter of what the rule pairs with the error: the current and
        the input, or the presynaptic activities when learning weights (see
        `.HiddenLayerRule`).
    warmup : "readout", float or None, optional
        As for `.BackProp`: by default the rule waits for the fastest time
        constant of ``downstream``'s `nengo.PES` rule from the first error
        (its feedback is the signs of that readout, which at first are those
        of its first imprint); None learns from the first step.
    feedback_synapse : "readout", Lowpass or None, optional
        As for `.BackProp`: the signs are those of the weights low-passed
        from 0 (a step late), over the readout's fastest time constant for
        ``"readout"`` (the default), so that they follow the readout's slow
        part, not what it tracks of the last second or two of input; the
        live weights when ``downstream`` has no learning `nengo.PES` rule.
        None: the signs of the live weights. As built:
        ``sim.data[conn.learning_rule].feedback_synapse``.

    Attributes
    ----------
    downstream : Connection
        The connection whose weights' signs carry the error back.
    warmup : "readout", float or None
        The warm-up, as given.
    feedback_synapse : "readout", Lowpass or None
        The filter of the weights whose signs carry the error back, as
        given.

    See Also
    --------
    BackProp, FeedbackAlignment

    Notes
    -----
    Probeable: ``"error"``, ``"delta"``, ``"encoders"``/``"scaled_encoders"``,
    ``"gain"``, ``"bias"`` and ``"feedback"`` (the
    :math:`\rho \, \mathrm{sign}(W)` it uses, shaped like :math:`W`).

    References
    ----------
    .. [1] Liao, Q., Leibo, J. Z., & Poggio, T. (2016). How important is
       weight symmetry in backpropagation? Proceedings of the AAAI Conference
       on Artificial Intelligence, 30(1).
    """

    probeable = HiddenLayerRule.probeable + ("feedback",)


def _post_ensemble(conn):
    post = conn.post_obj
    return post.ensemble if isinstance(post, Neurons) else post


class DifferenceTargetProp(HiddenLayerRule):
    r"""Difference target propagation: each hidden layer moves toward a target
    passed down through a learned inverse of the layer above.

    Every hidden layer :math:`l` gets a target :math:`\hat h_l` for its
    activities :math:`h_l` and learns locally to move toward it [1]_. The
    layer next to the readout (``downstream`` carries no nengo_fa rule, e.g. a
    `nengo.PES` readout with decoders :math:`D`) takes a small step against
    the output error :math:`e` (simplified DTP [2]_):

    .. math:: \hat h_L = h_L - \alpha D^T e, \qquad
              \alpha = \eta / \|D\|_F^2,

    the activities that would lower the output error by the fraction
    :math:`\eta` (``target_step``) through the live readout (exactly, for a
    one-dimensional output). A layer below a trained layer (``downstream``
    carries a `DifferenceTargetProp` itself) gets the *difference* target

    .. math:: \hat h_l = h_l + g_l(\hat h_{l+1}) - g_l(h_{l+1})
              = h_l - Q_l (h_{l+1} - \hat h_{l+1}),

    where :math:`g_l(h) = Q_l h + c_l` is a learned linear inverse of the
    forward map from layer :math:`l` to layer :math:`l+1` (decoders from
    layer :math:`l+1`'s activities back to layer :math:`l`'s; ``n_l x
    n_{l+1}``, plus the offset :math:`c_l`, which cancels in the
    difference). It starts at zero and is trained online as a denoising
    autoencoder [1]_: layer :math:`l`'s activities are corrupted, the
    corruption is carried to layer :math:`l+1` by the forward connection,
    and :math:`g_l` learns to give back the corrupted activities, by
    normalised least mean squares:

    .. math::

       \epsilon &= \sigma \bar a_l \xi, \qquad
           \xi \sim \mathcal N(0, I) \text{ each step}, \qquad
       \tilde h_{l+1} = h_{l+1} + G'(J_{l+1}) \odot (M_l \epsilon), \\
       r &= Q_l \tilde h_{l+1} + c_l \bar a_{l+1} - (h_l + \epsilon), \\
       [Q_l, c_l] &\leftarrow [Q_l, c_l] - \kappa_Q \Delta t \,
           r \, z^T / |z|^2, \qquad z = [\tilde h_{l+1}; \bar a_{l+1}],

    with :math:`\sigma` = ``noise``, :math:`\bar a_l` the RMS activity of
    layer :math:`l` over its evaluation points (build time), and
    :math:`M_l = S_{l+1} W_l` the live forward matrix from layer :math:`l`'s
    neurons to layer :math:`l+1`'s currents. :math:`h` are the neurons'
    activities filtered by ``activity_synapse``.

    Each layer then learns toward its target with the shared normalised
    step of `.HiddenLayerRule`, its feedback error being the displacement
    :math:`F e = h_l - \hat h_l`, so that
    :math:`\delta_l = (h_l - \hat h_l) \odot G'(J_l)`, the gradient of
    :math:`\frac{1}{2}|h_l - \hat h_l|^2` with the target held fixed. The
    normaliser is :math:`\nu_L = \alpha \|D\|_F / \sqrt{n_L}` at the top and
    :math:`\nu_l = \nu_{Q_l} \nu_{l+1}` below
    (:math:`\nu_{Q_l} = \|Q_l\|_F / \sqrt{n_l}`), so that :math:`\alpha`
    cancels from the steps: it sets only the scale of the probed targets.
    At the top the step is `.BackProp`'s (without its warm-up, which this
    rule does not have); below, the error reaches layer
    :math:`l` through the learned inverse of the layer above instead of the
    transpose of its weights.

    Parameters
    ----------
    downstream : Connection
        The connection leaving the hidden ensemble: the readout (decoders
        :math:`D`; connect the output error to this rule, as for
        `nengo.PES`), or the connection into the next hidden layer, which
        must carry a `DifferenceTargetProp` (then this rule takes its target
        from that one and gets no error connection). As for `.BackProp`, it
        must have decoders or a `nengo.Dense` transform, no weight solver.
    learning_rate : float, optional
        Rate :math:`\kappa_E` for the encoder directions; default 0.3, that
        of `.BackProp`, since the top layer's step is backprop's. 0 freezes
        them.
    gain_learning_rate : float, optional
        Rate for the gains; default 0.3. 0 freezes them.
    bias_learning_rate : float, optional
        Rate for the biases; default 0.3. 0 freezes them.
    inverse_learning_rate : float, optional
        Rate :math:`\kappa_Q` (1/s) of the inverse's normalised LMS; default
        1.0: the inverse settles along the directions the activities take
        within about :math:`1 / \kappa_Q` = 1 s, a few times faster than the
        forward layers change (rate 0.3), and, being normalised by
        :math:`|z|^2`, whatever the size and rates of the layers. Stable for
        :math:`\kappa_Q \Delta t < 2`. Unused by the top layer.
    noise : float, optional
        :math:`\sigma`, the standard deviation of the corruption of
        :math:`h_l`, relative to :math:`\bar a_l`; default 0.1. The
        corruption is what teaches :math:`Q_l` to invert the forward map in
        the directions it maps :math:`h_l`'s changes into, not only along
        the activities the input happens to produce; 0.1 keeps it a small
        fraction (1% of the power) of the activities, so that :math:`M_l`'s
        first-order response stays accurate. 0 trains :math:`Q_l` on the
        clean activities alone (a regression of :math:`h_l` on
        :math:`h_{l+1}`). Unused by the top layer.
    target_step : float, optional
        :math:`\eta` (> 0), the fraction of the output error that the top
        target would remove; default 0.1 (a small step, as in [2]_). It
        scales every layer's probed target and displacement but, being
        normalised away, not the learning.
    activity_synapse : Synapse, optional
        Filter of the activities :math:`h_l`, :math:`h_{l+1}`; default
        ``Lowpass(0.005)``, that of `nengo.PES`'s presynaptic activities.
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`; by default looked up for the
        ensemble's neuron type in `nengo_fa.neurons`.
    pre_synapse : Synapse, optional
        The filter of the current and input the rule pairs with its error
        (see `.HiddenLayerRule`); default ``Lowpass(0.005)``.

    Attributes
    ----------
    downstream : Connection
        The connection the target comes back through.
    error_size : int
        Size of the rule's error: ``downstream.size_out`` at the top; below,
        the number of neurons of the next layer (the error is then the next
        layer's displacement :math:`h_{l+1} - \hat h_{l+1}`, set by the
        rule itself).

    See Also
    --------
    BackProp, FeedbackAlignment

    Notes
    -----
    What it needs that `.FeedbackAlignment` does not: the inverse
    connections, one ``n_l x n_{l+1}`` matrix per layer pair (the same
    count of synapses as a feedback matrix :math:`B_l`, but learned, from
    the activities of both layers and noise injected into layer
    :math:`l`), and, at the top, the live readout decoders (as
    `.BackProp`). Learns encoders, gains and biases only
    (``modifies="encoders"``). Only another `DifferenceTargetProp` can be
    chained to it (a `~nengo.exceptions.BuildError` otherwise): what it
    passes down is a target displacement, not a local error. Each layer of
    the chain uses the target of the layer above from the same time step (no
    delay).

    Probeable: those of `.HiddenLayerRule` (``"error"`` is the output error
    at the top and :math:`h_{l+1} - \hat h_{l+1}` below), ``"target"``
    (:math:`\hat h_l`), ``"displacement"`` (:math:`h_l - \hat h_l`),
    ``"activities"`` (the filtered :math:`h_l`) and, below the top,
    ``"inverse"`` (:math:`[Q_l, c_l]`, ``n_l x (n_{l+1} + 1)``) and
    ``"reconstruction_error"``: :math:`|Q_l h_{l+1} + c_l \bar a_{l+1} -
    h_l| / |h_l|`, the inverse's relative error on the clean activities
    (0 while :math:`h_l = 0`). Probing the inverse's signals of the top
    layer, which has none, is a ``BuildError``.

    The inverse is linear, so the difference correction is exact: whatever
    :math:`g_l`'s reconstruction error, the target moves by
    :math:`Q_l (\hat h_{l+1} - h_{l+1})`. In [1]_ the corrupted activities
    are carried through the forward layer itself; here layer :math:`l+1`'s
    response is computed to first order (through :math:`M_l` and
    :math:`G'(J_{l+1})`, which the inverse's learning reads only to stand in
    for that second pass), so no second simulation of the neurons is
    needed.

    References
    ----------
    .. [1] Lee, D.-H., Zhang, S., Fischer, A., & Bengio, Y. (2015).
       Difference target propagation. Machine Learning and Knowledge
       Discovery in Databases (ECML PKDD), 498-515.
    .. [2] Bartunov, S., Santoro, A., Richards, B. A., Marris, L., Hinton,
       G. E., & Lillicrap, T. P. (2018). Assessing the scalability of
       biologically-motivated deep learning algorithms and architectures.
       Advances in Neural Information Processing Systems 31, 9368-9378.

    Examples
    --------
    Two hidden layers; only the rule nearest the output gets the error:

    .. testcode::

       with nengo.Network(seed=0) as model:
           stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.cos(np.pi * t)])
           h1 = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           h2 = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           out = nengo.Node(size_in=1)
           readout = nengo.Connection(
               h2, out, function=lambda x: 0, learning_rule_type=nengo.PES()
           )
           into_h2 = nengo.Connection(
               h1, h2, learning_rule_type=nengo_fa.DifferenceTargetProp(readout)
           )
           into_h1 = nengo.Connection(
               stim, h1, learning_rule_type=nengo_fa.DifferenceTargetProp(into_h2)
           )
           error = nengo.Node(size_in=1)
           nengo.Connection(out, error)
           nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
           nengo.Connection(error, readout.learning_rule)
           nengo.Connection(error, into_h2.learning_rule)
           target = nengo.Probe(into_h1.learning_rule, "target")
           inverse_error = nengo.Probe(
               into_h1.learning_rule, "reconstruction_error"
           )
    """

    probeable = HiddenLayerRule.probeable + (
        "target",
        "displacement",
        "activities",
        "inverse",
        "reconstruction_error",
    )

    downstream = DownstreamParam("downstream", readonly=True)
    inverse_learning_rate = FiniteNumberParam(
        "inverse_learning_rate", low=0, readonly=True, default=1.0
    )
    noise = FiniteNumberParam("noise", low=0, readonly=True, default=0.1)
    target_step = FiniteNumberParam(
        "target_step", low=0, low_open=True, readonly=True, default=0.1
    )
    activity_synapse = SynapseParam(
        "activity_synapse", default=Lowpass(tau=0.005), readonly=True
    )

    def __init__(
        self,
        downstream,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        inverse_learning_rate=Default,
        noise=Default,
        target_step=Default,
        activity_synapse=Default,
        derivative=Default,
        pre_synapse=Default,
    ):
        self.downstream = downstream
        down_rule = chained_rule(downstream)
        if down_rule is not None and not isinstance(
            down_rule.learning_rule_type, DifferenceTargetProp
        ):
            raise ValidationError(
                f"{downstream} carries a "
                f"{type(down_rule.learning_rule_type).__name__}, which gives no "
                "target: chain a DifferenceTargetProp only to another "
                "DifferenceTargetProp, or to a connection with no nengo_fa rule "
                "(e.g. the PES readout)",
                attr="downstream",
                obj=self,
            )
        # chained: the error is the next layer's displacement, set by the rule
        size_in = 0 if down_rule is not None else downstream.size_out
        super().__init__(
            learning_rate=learning_rate,
            gain_learning_rate=gain_learning_rate,
            bias_learning_rate=bias_learning_rate,
            derivative=derivative,
            size_in=size_in,
            pre_synapse=pre_synapse,
        )
        self.inverse_learning_rate = inverse_learning_rate
        self.noise = noise
        self.target_step = target_step
        self.activity_synapse = activity_synapse

    @property
    def error_size(self):
        # documented in the class's "Attributes" section
        if self.size_in > 0:
            return self.size_in
        return _post_ensemble(self.downstream).n_neurons


class LRA(FeedbackAlignment):
    r"""Local representation alignment (LRA-fdbk): each layer learns toward a
    target activity set by fixed random feedback, with a saturating loss.

    Ororbia, Mali, Kifer & Giles (2018) [1]_ give every hidden layer a
    *target*: the error :math:`e` reaching layer :math:`l` through a fixed
    random matrix :math:`B` displaces the layer's pre-activation, the target
    activity is the nonlinearity applied to the displaced pre-activation,
    and the layer learns to reduce a Cauchy loss between its activity and
    that target. In Nengo's terms, with :math:`J` the neurons' input current
    (filtered by ``pre_synapse``, as every rule pairs it with the error),
    :math:`G` their rate response (interpolated in a table made at build
    time, with a point on the firing threshold), :math:`u = B e / \nu` (:math:`\nu` the
    RMS row norm of :math:`B`), :math:`\hat g` the mean gain and
    :math:`\bar{G'}` the mean slope (see `.HiddenLayerRule`):

    .. math::

       J^* &= J - \beta \hat g \, u
       \qquad \text{(target current)} \\
       m &= \frac{G(J) - G(J^*)}{\hat g \bar{G'}}
       \qquad \text{(activity minus target, in units of } e) \\
       \psi &= \frac{m}{1 + (m / \sigma)^2}
       = \frac{\partial}{\partial m} \frac{\sigma^2}{2}
         \log\left(1 + (m/\sigma)^2\right) \\
       \delta &= \lambda \, \psi \odot G'(J), \qquad
       \lambda = \min\left(1, \frac{c}{\mathrm{rms}(\psi \odot G'(J))
       / \bar{G'}}\right)

    and :math:`\delta` takes the place of FA's :math:`(Be) \odot G'(J)` in
    every update of `.HiddenLayerRule` (with :math:`\nu = 1`: :math:`\psi`
    is already normalised). :math:`G(J) - G(J^*)` is a finite difference, not
    a derivative: where :math:`G` is flat or jumps (a threshold, a saturating
    or stochastic unit), the target still differs from the activity; the
    Cauchy loss :math:`\log(1 + (m/\sigma)^2)` makes each neuron's
    contribution saturate (:math:`|\psi| \le \sigma / 2`), and the bound
    :math:`c` caps the norm of each step's local error, hence of its update.

    For small mismatches (:math:`|m| \ll \sigma`) and a smooth :math:`G`,
    :math:`\psi \approx \beta u \, G'(J) / \bar{G'}`: LRA is FA with its
    local error weighted once more by the normalised slope (for
    rectified-linear neurons exactly FA on the neurons whose target is
    active). So FA's default rates carry over; :math:`\beta = 1` makes the
    target one unit of normalised error away, :math:`\sigma = 1` puts the
    saturation at the size of the FA error for a unit output error, and
    :math:`c = \sigma / 2`, the largest :math:`|\psi|`, lets the bound act
    only where :math:`G'` exceeds its mean (e.g. LIF near threshold). These
    follow from the normalisation, not from tuning on a task.

    Chains like `.FeedbackAlignment` (``downstream=`` a connection that
    carries a rule): the error reaching layer :math:`l` is then layer
    :math:`l+1`'s normalised local error :math:`\hat\delta_{l+1}`, which
    includes :math:`G'_{l+1}`; in Ororbia et al. it is the layer's Cauchy
    error without the derivative. The alignment diagnostics (with
    ``downstream``) describe :math:`B` and FA's local error with the same
    :math:`B`, not LRA's.

    Parameters
    ----------
    error_size : int or NengoObject, optional
        As for `.FeedbackAlignment`.
    feedback : Distribution or (n_neurons, error_size) array_like, optional
        The fixed random matrix :math:`B` (Ororbia et al.'s :math:`E_l`).
    target_step : float, optional
        :math:`\beta`, how far the target current is from the actual one, in
        units of :math:`\hat g` per unit of normalised error.
    cauchy_scale : float, optional
        :math:`\sigma`, the mismatch (in units of the error) beyond which the
        Cauchy loss saturates.
    max_local_error : float, optional
        :math:`c`, the bound on the RMS of the normalised local error
        :math:`\psi \odot G' / \bar{G'}`, which bounds each update's norm.
    learning_rate, gain_learning_rate, bias_learning_rate : float, optional
        As for `.FeedbackAlignment` (default 0.7).
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`; by default looked up in
        `nengo_fa.neurons`.
    downstream : Connection, optional
        As for `.FeedbackAlignment`: the readout (for diagnostics) or the
        connection into the next trained layer (chaining).
    modifies : {"encoders", "weights"}, optional
        As for `.HiddenLayerRule`.
    pre_synapse : Synapse, optional
        The filter of what the rule pairs with the error: the current and
        the input, or the presynaptic activities when learning weights (see
        `.HiddenLayerRule`).

    Notes
    -----
    Probeable: those of `.FeedbackAlignment`. Feedback learning is not
    supported (:math:`B` is fixed, as in Ororbia et al.).

    References
    ----------
    .. [1] Ororbia, A. G., Mali, A., Kifer, D., & Giles, C. L. (2018).
       Conducting credit assignment by aligning local representations.
       arXiv:1803.01834.
    """

    target_step = FiniteNumberParam(
        "target_step", low=0, low_open=True, readonly=True, default=1.0
    )
    cauchy_scale = FiniteNumberParam(
        "cauchy_scale", low=0, low_open=True, readonly=True, default=1.0
    )
    max_local_error = FiniteNumberParam(
        "max_local_error", low=0, low_open=True, readonly=True, default=0.5
    )

    def __init__(
        self,
        error_size=None,
        feedback=Default,
        target_step=Default,
        cauchy_scale=Default,
        max_local_error=Default,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        derivative=Default,
        downstream=None,
        modifies=Default,
        pre_synapse=Default,
    ):
        super().__init__(
            error_size=error_size,
            feedback=feedback,
            learning_rate=learning_rate,
            gain_learning_rate=gain_learning_rate,
            bias_learning_rate=bias_learning_rate,
            derivative=derivative,
            downstream=downstream,
            modifies=modifies,
            pre_synapse=pre_synapse,
        )
        self.target_step = target_step
        self.cauchy_scale = cauchy_scale
        self.max_local_error = max_local_error


class TraceRule(HiddenLayerRule):
    r"""The trace rule: learning from the change that a target causes in
    the hidden neurons' net input, Err x Credit.

    O'Reilly's error-driven learning from local activation differences
    (GeneRec [1]_, contrastive Hebbian learning [2]_, and the trace rule of
    the axon/emergent framework [3]_) compares two states of a hidden
    neuron: the *expectation* (minus phase), while the network produces its
    own output, and the *outcome* (plus phase), once the target has nudged
    the output and top-down connections have carried that nudge to the
    hidden layer. Its weight change is Err x Credit: Err is the neuron's
    outcome minus its expectation, Credit the presynaptic activity.

    Here the top-down connection is a fixed random matrix :math:`B`
    (``n_neurons x error_size``), as for `.FeedbackAlignment`, but the
    fed-back error enters the hidden neurons' *input current*, so it changes
    their activity:

    .. math:: J = S x + b - \frac{\kappa_{td}}{\nu} \, g \odot (B e)

    with :math:`\kappa_{td}` = ``nudge``, :math:`g` the build-time gains and
    :math:`\nu = \|B\|_F / \sqrt{n}`: one unit of error moves each
    neuron's current by about ``nudge`` of its own range. The error is wired
    exactly as for `nengo.PES` (:math:`e = y - y^*`); where it is zero (no
    target yet) the network runs freely. Learning then does not read
    :math:`e` or :math:`B` at all, only the net input: a fast low-pass filter
    of :math:`J` is the outcome, a slow one the expectation,

    .. math::

       \tau_f \dot J_f = J - J_f, \qquad
       \tau_s \dot J_s = (1 - p) (J - J_s),

    where :math:`p` is the *phase*, 1 while a target is present
    (:math:`\max_k |e_k| >` ``phase_threshold``) and 0 otherwise: the
    expectation follows the net input in the minus phase and is held at its
    last value in the plus phase. The rule's local error and its updates are
    those of `.HiddenLayerRule`, with :math:`F e` replaced by the
    normalised difference of the two filters,

    .. math::

       \delta = p \, \frac{\nu}{\kappa_{td} g} \odot (J_s - J_f)
                \odot G'(J),

    so that :math:`S \leftarrow S - \kappa \Delta t \, \hat g \,
    \hat\delta x^T / r^2` (and
    the gain and bias steps) move each neuron towards its outcome:
    GeneRec's :math:`\Delta w \propto (y^+ - y^-) x^-` with
    :math:`y^+ - y^- \approx G'(J)(J_f - J_s)`. Err is
    :math:`J_f - J_s`; Credit is :math:`G'(J) \, x^T` (presynaptic input
    times the postsynaptic slope), evaluated every step. In the plus phase,
    once :math:`J_f` has settled, :math:`J_f - J_s = -(\kappa_{td} / \nu)
    g \odot (B e)` plus whatever else changed the current since the minus
    phase, so :math:`\delta` is `.FeedbackAlignment`'s local error: the rates
    and their derivation are the same (default 0.7). The difference is what
    the rule needs and what it does with it (see Notes).

    Parameters
    ----------
    error_size : int or NengoObject
        Dimensionality of the error signal, or a Nengo object (the output
        node) whose ``size_out`` it is.
    feedback : Distribution or (n_neurons, error_size) array_like, optional
        The top-down matrix :math:`B`, or its distribution (sampled at build
        time from the connection's seed). Its scale does not matter: the
        nudge and the update are normalised by :math:`\nu`.
    nudge : float, optional
        :math:`\kappa_{td}`, the fraction of its range by which one unit of
        error moves a neuron's current (default 0.25). The learning steps
        are divided by it, so it sets a trade-off, not a rate: the nudge
        disturbs the hidden code and the readout's learning in proportion to
        :math:`\kappa_{td}`, while what else is in :math:`J_f - J_s` (the
        part of the last input change the expectation has not followed, a
        fraction :math:`\rho` of a change of about the neuron's range, and
        the changes learned during the plus phase) weighs
        :math:`1 / \kappa_{td}` against the error. Keeping that at most the
        smallest error learned from, :math:`\rho / \kappa_{td} \le`
        ``phase_threshold`` (:math:`\rho` = 1.3% at the default filters and
        a 50 ms minus phase), gives :math:`\kappa_{td} \ge 0.26`; keeping
        the nudge within a tenth of the range for errors up to 0.3 gives
        :math:`\kappa_{td} \le 0.33`. Measured on the phased product task
        of the tests (4 seeds): 0.05 diverged on one seed, 0.1-0.5 did not;
        0.2 and 0.3 gave the lowest frozen errors.
    fast_tau : float, optional
        :math:`\tau_f` (s), the outcome's filter (default 0.002): it only
        smooths :math:`J`, whose decoded input is already filtered by its
        synapse, and should be short against the plus phase.
    slow_tau : float, optional
        :math:`\tau_s` (s), the expectation's filter (default 0.01): longer
        than :math:`\tau_f`, and short enough to settle within the minus
        phase: after an input change through a 5 ms synapse it has followed
        all but 1.3% of it after 50 ms (:math:`5 \tau_s`), the shortest
        minus phase this default is meant for.
    phase_threshold : float, optional
        The largest :math:`|e_k|` taken as "no target" (default 0.05, in the
        error's units): where every error component is at or below it, the
        network is in the minus phase and nothing is learned. Errors smaller
        than this are not learned from.
    learning_rate, gain_learning_rate, bias_learning_rate : float, optional
        :math:`\kappa_E, \kappa_g, \kappa_b`, as for `.FeedbackAlignment`
        (default 0.7 each).
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`; by default looked up for the
        ensemble's neuron type in `nengo_fa.neurons`.
    modifies : {"encoders", "weights"}, optional
        Learn the post ensemble's encoders (default) or this connection's
        weight matrix (`.HiddenLayerRule`); the nudge goes into the post
        neurons' current either way.
    pre_synapse : Synapse, optional
        Filter of the presynaptic activities when learning weights. The
        current and input are not filtered (unlike the other
        `.HiddenLayerRule` types): the local error is made from the rule's
        own traces of the current, with no synaptic delay to match.

    Attributes
    ----------
    error_size : int
        Dimensionality of the error signal.
    feedback : Distribution or ndarray
        The top-down matrix, or its distribution.
    nudge, fast_tau, slow_tau, phase_threshold : float
        As above.

    See Also
    --------
    FeedbackAlignment

    Notes
    -----
    **What it needs that FeedbackAlignment does not.** (1) Top-down
    connections that drive the hidden neurons (the nudge above), which
    change the network's activity and output while the target is present.
    (2) A phase structure: each input held for a while, the target arriving
    part-way through (a minus phase long enough for :math:`J_s` to settle,
    about :math:`3 \tau_s`), and leaving before the next input arrives
    (while the error decays from :math:`|e|` to ``phase_threshold`` through
    its synapses the expectation is still held, so an input change then
    would be learned as if the target had caused it). With a target present
    all the time the expectation is never updated after the first step, and
    the rule learns the input's drift instead, and its own changes to the
    current, which it then reinforces: at the default rates such a network
    can diverge within a second. Use `.FeedbackAlignment` there. The
    reference simulator warns (a ``NengoWarning``) when a target has been
    present for 20 ``slow_tau`` with no minus phase of at least 3
    ``slow_tau`` in between.

    **From discrete phases to continuous time.** GeneRec and CHL settle the
    network twice per pattern and apply one update at the end; axon's trace
    rule computes Err at the end of each trial from a fast (CaP) and a
    slower (CaD) running average of a calcium-like signal, and Credit from a
    synaptic trace of pre x post activity. Here, every step of the plus phase
    contributes :math:`\Delta t` times the update above, so a plus phase of
    length :math:`T_+` moves the parameters by about :math:`(T_+ - \tau_f -
    \tau_e)` times the per-second rate, where :math:`\tau_e` is the error's
    synaptic delay. Err uses the net input (the calcium-like mix of net
    input and activity of axon is not implemented); Credit is the present
    :math:`G'(J) x` rather than a trace, which is the same while the input
    is held within a presentation.

    **The learning rate.** O'Reilly's discussions of these rules note that
    the effective rate stays high: Err does not vanish when the hidden layer
    has nothing more to learn but only when the output matches the target,
    and in spiking networks :math:`J_f - J_s` carries fluctuations that do
    not shrink at all. Two remedies are discussed there: a schedule
    (lowering the rate as training goes on) or modulating the update by the
    size of the activity differences. Here :math:`\delta` is proportional
    to the error (the nudge is), which is the second remedy, and errors
    below ``phase_threshold`` are not learned from at all. A schedule is left
    to the user: a new rule with a lower ``learning_rate`` between runs
    (scaling the error instead also scales the nudge, and changes which
    errors pass ``phase_threshold``).

    **Where it fails.** The readout (e.g. `nengo.PES`) learns from hidden
    activities that the nudge has moved, where GeneRec's output layer
    learns from the minus-phase ones. On some networks this spoils the
    readout: on one seed of six of the phased product task the frozen
    error was 3.6 times PES only's, and `.FeedbackAlignment` given the same
    nudge failed the same way. On the other five, and on digits (5 seeds),
    it learned about as well as `.FeedbackAlignment` (docs: theory,
    "Learning from activation differences", for the numbers). Over 11 seeds
    of that task trained 20 s (``tests/test_trace.py``) it was worse than
    PES only on two (2.0 and 1.09 times its error) and 0.30-0.81 of it on
    the other nine.

    Probeable: ``"error"``, ``"delta"``, ``"encoders"``/``"scaled_encoders"``,
    ``"gain"``, ``"bias"``, ``"feedback"`` (:math:`B`), ``"outcome"``
    (:math:`J_f`), ``"expectation"`` (:math:`J_s`) and ``"phase"``
    (:math:`p`).

    References
    ----------
    .. [1] O'Reilly, R. C. (1996). Biologically plausible error-driven
       learning using local activation differences: the generalized
       recirculation algorithm. Neural Computation, 8(5), 895-938.
    .. [2] Xie, X., & Seung, H. S. (2003). Equivalence of backpropagation and
       contrastive Hebbian learning in a layered network. Neural
       Computation, 15(2), 441-454.
    .. [3] The axon framework's documentation of its trace learning rule
       (emer/axon, "Learning" and "Trace" pages, O'Reilly and
       contributors): Err from the difference of the fast and slow
       calcium-like averages, Credit from a trace of synaptic co-activity.

    Examples
    --------
    Inputs held for 0.1 s, the target arriving after 0.05 s and leaving
    after 0.09 s:

    .. testcode::

       def phase(t):
           return 0.05 <= t % 0.1 < 0.09

       with nengo.Network(seed=0) as model:
           stim = nengo.Node(lambda t: [np.sin(int(t / 0.1)), np.cos(int(t / 0.1))])
           hidden = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           out = nengo.Node(size_in=1)
           readout = nengo.Connection(
               hidden, out, function=lambda x: 0, learning_rule_type=nengo.PES()
           )
           layer1 = nengo.Connection(
               stim, hidden, learning_rule_type=nengo_fa.TraceRule(error_size=out)
           )
           error = nengo.Node(lambda t, e: e * phase(t), size_in=1)
           nengo.Connection(out, error)
           nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
           nengo.Connection(error, readout.learning_rule)
           nengo.Connection(error, layer1.learning_rule)
    """

    probeable = HiddenLayerRule.probeable + (
        "feedback",
        "outcome",
        "expectation",
        "phase",
    )

    # the local error is FeedbackAlignment's once the filters settle: its
    # rates, for the same reason
    learning_rate = FiniteNumberParam(
        "learning_rate", low=0, readonly=True, default=0.7
    )
    gain_learning_rate = FiniteNumberParam(
        "gain_learning_rate", low=0, readonly=True, default=0.7
    )
    bias_learning_rate = FiniteNumberParam(
        "bias_learning_rate", low=0, readonly=True, default=0.7
    )
    error_size = IntParam("error_size", low=1, readonly=True)
    feedback = FeedbackParam(
        "feedback",
        default=Gaussian(mean=0, std=1),
        sample_shape=("*", "error_size"),
        readonly=True,
    )
    nudge = FiniteNumberParam(
        "nudge", low=0, low_open=True, readonly=True, default=0.25
    )
    fast_tau = FiniteNumberParam(
        "fast_tau", low=0, low_open=True, readonly=True, default=0.002
    )
    slow_tau = FiniteNumberParam(
        "slow_tau", low=0, low_open=True, readonly=True, default=0.01
    )
    phase_threshold = FiniteNumberParam(
        "phase_threshold", low=0, readonly=True, default=0.05
    )
    _param_init_order = ["error_size"]

    def __init__(
        self,
        error_size,
        feedback=Default,
        nudge=Default,
        fast_tau=Default,
        slow_tau=Default,
        phase_threshold=Default,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        derivative=Default,
        modifies=Default,
        pre_synapse=Default,
    ):
        if isinstance(error_size, NengoObject):
            error_size = error_size.size_out
        self.error_size = error_size  # validated first: size_in depends on it
        super().__init__(
            learning_rate=learning_rate,
            gain_learning_rate=gain_learning_rate,
            bias_learning_rate=bias_learning_rate,
            derivative=derivative,
            size_in=error_size,
            modifies=modifies,
            pre_synapse=pre_synapse,
        )
        self.feedback = feedback
        self.nudge = nudge
        self.fast_tau = fast_tau
        self.slow_tau = slow_tau
        if self.slow_tau <= self.fast_tau:
            raise ValidationError(
                f"must be longer than fast_tau ({self.fast_tau}): the "
                f"expectation averages over longer than the outcome (got "
                f"{self.slow_tau})",
                attr="slow_tau",
                obj=self,
            )
        self.phase_threshold = phase_threshold


class ERBP(LearningRuleType):
    r"""Event-driven random backpropagation (eRBP) [1]_.

    A rule for spiking networks that changes a synapse only when its
    presynaptic neuron spikes. Each postsynaptic neuron :math:`i` has two
    compartments: the soma (the neuron itself, driven by the feedforward
    input) and a *dendrite* :math:`U_i` that low-pass filters the output
    error :math:`e` (actual minus target, connected exactly as for
    `nengo.PES`) projected through a fixed random matrix :math:`B`
    (``n_post x error_size``):

    .. math:: \tau_U \dot U = B e - U.

    On every spike of presynaptic neuron :math:`j`, each synapse onto it
    changes by an amount proportional to :math:`-U_i`, but only while the
    postsynaptic membrane state :math:`v_i` lies inside a boxcar window
    (one addition and two comparisons per synapse):

    .. math::

       \Delta W_{ij} = -\eta_i \, \frac{U_i}{\nu} \, \Theta(v_i)
                       \, s_j \Delta t,
       \qquad \Theta(v) = [v_{low} < v < v_{high}]

    where :math:`s_j \Delta t` is the number of spikes neuron :math:`j`
    emitted in the step (times its amplitude; Nengo's spikes are
    :math:`1/\Delta t` high), so nothing is computed for the synapses of
    silent neurons: the cost is proportional to the presynaptic spikes.
    :math:`\hat\delta = (U / \nu) \odot \Theta(v)` is probeable as
    ``"delta"``; the boxcar plays the part of :math:`G'(J)` in
    `.FeedbackAlignment`, and the dendrite that of :math:`B e`.

    Every layer that ERBP trains takes the output error directly (as in
    direct feedback alignment): it is not chained, and a nengo_fa rule
    whose ``downstream`` connection carries ERBP treats that connection as
    a readout, as it would one learned by `nengo.PES`, and takes its error
    through a connection.

    Parameters
    ----------
    error_size : int or NengoObject
        Dimensionality of the error signal, or a Nengo object (e.g. the
        output node the error is computed from) whose ``size_out`` is used.
    learning_rate : float, optional
        :math:`\kappa` (1/s; default 0.7, see Notes). 0 freezes the weights.
    feedback : Distribution or (n_post, error_size) array_like, optional
        The fixed random matrix :math:`B`, or the distribution it is sampled
        from at build time (from the connection's seed, the same stream as
        `.FeedbackAlignment`'s, so both rules get the same :math:`B` on the
        same connection). Its scale does not matter: :math:`U` is divided by
        :math:`\nu = \|B\|_F / \sqrt{n_{post}}`.
    tau_dendrite : float, optional
        :math:`\tau_U`, the dendrite's time constant in seconds (default
        0.005, Nengo's default synaptic time constant, like the few
        milliseconds of the paper's error synapses); 0 gives :math:`U = B e`.
    boxcar : (float, float), optional
        :math:`(v_{low}, v_{high})`, the window on the postsynaptic state
        (default ``(0, inf)``). For `nengo.LIF` and its subclasses,
        :math:`v` is the membrane voltage in units of the threshold (Nengo's
        normalised :math:`V`: 0 at reset, 1 at threshold); for other neuron
        types, which have no voltage, the input current above the firing
        threshold in units of the mean gain, :math:`v = (J - \theta) / \hat
        g` (:math:`\theta` = 0 for rectified linear neurons).
    modifies : {"weights", "encoders"}, optional
        ``"weights"`` (default): the connection's full weight matrix, for a
        connection into ``ens.neurons`` (e.g. ``a.neurons -> b.neurons``)
        or into an Ensemble with a weight solver; ``"encoders"``: the post
        ensemble's scaled encoders, from its decoded input (see Notes).

    Attributes
    ----------
    error_size : int
        Dimensionality of the error signal.

    See Also
    --------
    FeedbackAlignment

    Notes
    -----
    **Scaling.** :math:`\eta_i = \kappa \hat g / (c_i \bar A^2)`, with
    :math:`\hat g` the post ensemble's mean gain, :math:`c_i` the gain Nengo
    applies to row :math:`i` of the weights (the post gain for a connection
    into ``ens.neurons``, 1 with a weight solver) and :math:`\bar A^2` the
    mean of :math:`\sum_j a_j^2` over the presynaptic ensemble's evaluation
    points (its rate tuning curves; when the presynaptic neurons are driven
    directly, through a connection into ``pre.neurons``, these may not be
    their rates, and the steps are off by the ratio). Neuron :math:`j`
    spikes at rate :math:`a_j` on average, so the expected change of neuron
    :math:`i`'s current is :math:`c_i \sum_j \dot W_{ij} a_j \approx
    -\kappa \hat g \hat\delta_i`: the same step as `.HiddenLayerRule`'s
    weight learning (with :math:`\Theta` for :math:`G'(J) / \bar{G'}`),
    whatever the ensemble sizes, rates or gains. The default rate is therefore
    `.FeedbackAlignment`'s, 0.7, by the same argument (see
    `.HiddenLayerRule`, "Choosing the rates"); on 8 x 8 digits through
    spiking neurons (one seed) a rate of 3 gave about the same frozen
    accuracy (91.7% against 90.9%).

    **Encoders** (``modifies="encoders"``). The decoded input :math:`x` of
    the post ensemble is not made of spikes, so this mode is not
    event-driven: every step, :math:`\Delta S = -\kappa \Delta t \hat g
    \hat\delta x^T / r^2` (the scaled encoders :math:`S`, radius :math:`r`),
    `.HiddenLayerRule`'s encoder step with its local error replaced.

    **Timing.** The change computed from one step's error, membrane state
    and presynaptic spikes is applied at the start of the next step, as
    Nengo's own rules apply theirs. With ``modifies="weights"`` and no other
    rule on the connection, the rule also computes the connection's product
    :math:`W s` from the columns of the neurons that spiked (replacing
    Nengo's dense product), so the whole connection costs time in proportion
    to the presynaptic spikes.
    Biases and gains are not learned. A NaN or inf in the error stops the
    simulation with a `~nengo.exceptions.SimulationError` before anything
    changes.

    Probeable: ``"error"``, ``"dendrite"`` (:math:`U`), ``"gate"``
    (:math:`\Theta(v)`), ``"delta"`` (:math:`\hat\delta`), and
    ``"weights"`` or ``"encoders"`` (the learned values).

    References
    ----------
    .. [1] Neftci, E. O., Augustine, C., Paul, S., & Detorakis, G. (2017).
       Event-driven random back-propagation: enabling neuromorphic deep
       learning machines. Frontiers in Neuroscience, 11, 324.

    Examples
    --------
    .. testcode::

       with nengo.Network(seed=0) as model:
           stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.cos(np.pi * t)])
           a = nengo.Ensemble(50, 2)
           b = nengo.Ensemble(30, 2)
           nengo.Connection(stim, a)
           out = nengo.Node(size_in=1)
           readout = nengo.Connection(
               b, out, function=lambda x: 0, learning_rule_type=nengo.PES()
           )
           layer = nengo.Connection(
               a.neurons,
               b.neurons,
               transform=np.zeros((30, 50)),
               learning_rule_type=nengo_fa.ERBP(error_size=out),
           )
           error = nengo.Node(size_in=1)
           nengo.Connection(out, error)
           nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
           nengo.Connection(error, readout.learning_rule)
           nengo.Connection(error, layer.learning_rule)
    """

    modifies = EnumParam(
        "modifies", values=("weights", "encoders"), default="weights", readonly=True
    )
    probeable = ("error", "dendrite", "gate", "delta", "weights", "encoders")

    learning_rate = FiniteNumberParam(
        "learning_rate", low=0, readonly=True, default=0.7
    )
    error_size = IntParam("error_size", low=1, readonly=True)
    feedback = FeedbackParam(
        "feedback",
        default=Gaussian(mean=0, std=1),
        sample_shape=("*", "error_size"),
        readonly=True,
    )
    tau_dendrite = FiniteNumberParam(
        "tau_dendrite", low=0, readonly=True, default=0.005
    )
    boxcar = BoxcarParam("boxcar", default=(0.0, np.inf), readonly=True)

    _param_init_order = ["error_size"]

    def __init__(
        self,
        error_size,
        learning_rate=Default,
        feedback=Default,
        tau_dendrite=Default,
        boxcar=Default,
        modifies=Default,
    ):
        # before nengo's connection checks read it
        self.modifies = modifies
        if isinstance(error_size, NengoObject):
            error_size = error_size.size_out
        self.error_size = error_size
        super().__init__(learning_rate=learning_rate, size_in=error_size)
        self.feedback = feedback
        self.tau_dendrite = tau_dendrite
        self.boxcar = boxcar


class SyntheticGradient(HiddenLayerRule):
    r"""Synthetic gradients: the hidden layer learns from a *predicted* error.

    The hidden ensemble's encoders, gains and biases are updated every step
    from a synthetic local error

    .. math:: \hat\delta(t) = (M a(t)) \odot G'(J(t)),

    where :math:`a` are the ensemble's activities and :math:`M`
    (``n x n``) a linear predictor of the feedback error :math:`F e`, so
    that the layer need not wait for the true error [1]_. With a
    ``context`` :math:`c` (e.g. the target, as the label conditioning of
    [1]_), the prediction is :math:`M [a; s c]` (:math:`s` scales the
    context to the activities' power; see `.SimSyntheticGradient`), and
    :math:`M` is ``n x (n + k)``. Whenever a true
    error arrives, :math:`M` learns online to regress it: the error
    :math:`e(t)` is taken to belong to the activities of ``error_delay``
    seconds earlier, :math:`a_\tau = a(t - \tau)`, held in a buffer, and

    .. math::

       \Delta M = -\frac{\kappa_M \Delta t}{\max(|a_\tau|^2, \bar A^2)}
                  (M a_\tau - F e(t)) \, a_\tau^T ,

    normalised least mean squares, with :math:`\bar A^2` the mean of
    :math:`|a|^2` over the ensemble's tuning curves at its evaluation points
    (build time); with a ``context``, :math:`a_\tau` is :math:`z_\tau =
    [a_\tau; s c_\tau]` and the floor :math:`2 \bar A^2`, the mean power of
    :math:`z` (`.SimSyntheticGradient`), so that :math:`\kappa_M` is a rate
    per second whatever the ensemble's size and firing rates (and the step
    stays stable however large the activities grow). The true feedback
    :math:`F` is a fixed random matrix (as `.FeedbackAlignment`'s :math:`B`)
    or, with ``downstream``, the live transpose of ``downstream``'s weights
    (as `.BackProp`). :math:`M` starts at zero, so the layer does not move until
    the predictor has learned something, and the predictor regresses
    :math:`F e` (the error with respect to the activities, as the synthetic
    gradient of [1]_ predicts the gradient with respect to a layer's output),
    which the rule multiplies by the live :math:`G'(J)`. The update of the
    encoders, gains and biases from :math:`\hat\delta` is that of every
    `.HiddenLayerRule` (normalised by :math:`\nu`, the RMS row norm of the
    true :math:`F`).

    **When the error is there.** A step on which the error is exactly zero in
    every dimension carries no error (it is missing): :math:`M` does not
    learn on it. An error that arrives only on some steps is therefore given
    as zero in between (e.g. a Node that outputs the error on some steps and
    0 on the others, connected with ``synapse=None``). The synthetic updates
    go on for at most ``max_gap`` seconds after the last step that carried an
    error: once the error is gated to zero (to freeze the network, or when the
    teacher leaves), the hidden layer stops learning after ``max_gap``, and it
    does not learn before the first error arrives. Connect the error with
    ``synapse=None`` (filter it upstream if need be; building warns
    otherwise): a filtered error decays towards zero after the gate but is
    not exactly zero for seconds, and the rule goes on learning from it.

    Parameters
    ----------
    error_size : int or NengoObject, optional
        Dimensionality of the error (or a Nengo object whose ``size_out`` it
        is). Give this or ``downstream``.
    feedback : Distribution or (n_neurons, error_size) array_like, optional
        Without ``downstream``: the fixed random matrix :math:`F`, or its
        distribution (sampled from the connection's seed). Its scale does not
        matter. Unused with ``downstream``.
    downstream : Connection, optional
        The connection from the hidden ensemble (e.g. its `nengo.PES`
        readout) whose live weights :math:`W` give :math:`F = W^T`, the
        backpropagated error, as for `.BackProp` with
        ``feedback_synapse=None``. It must not carry a
        nengo_fa rule (synthetic gradients are not chained).
    error_delay : float, optional
        :math:`\tau`, how late the error arrives, in seconds (default 0): the
        error on step :math:`t` is regressed on the activities of step
        :math:`t - \tau` (rounded to whole steps). Match it to the delay of
        the path that brings the error.
    max_gap : float, optional
        How long, in seconds, the synthetic updates go on after the last step
        that carried an error (default 0.1; see above).
    context : Node, optional
        A Node whose output :math:`c` (``k`` dimensions) the predictor also
        reads, at the same time as the activities (buffered with them).
        Without it, :math:`M a` can only predict the part of the error that
        is linear in the activities, which is the part the readout can
        learn by itself: on a one-layer network it is needed (see the
        docs' theory page).
    predictor_learning_rate : float, optional
        :math:`\kappa_M` (1/s), the predictor's rate (default 20; see Notes).
    learning_rate : float, optional
        Rate for the encoder directions; default 0.7, as for
        `.FeedbackAlignment` (the synthetic error is an estimate that
        descends only along its part aligned with the true one). 0 freezes
        them.
    gain_learning_rate : float, optional
        Rate for the gains; default 0.7. 0 freezes them.
    bias_learning_rate : float, optional
        Rate for the biases; default 0.7. 0 freezes them.
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`; by default looked up for the
        ensemble's neuron type in `nengo_fa.neurons`.
    pre_synapse : Synapse, optional
        Filter of the activities :math:`a` the predictor reads (its
        presynaptic input; default ``Lowpass(0.005)``, so that spikes give
        rates), and of the current and input the rule pairs with its error
        (as for every `.HiddenLayerRule`).

    Attributes
    ----------
    error_size : int
        Dimensionality of the error.

    See Also
    --------
    FeedbackAlignment, BackProp

    Notes
    -----
    **The predictor's rate.** Normalised LMS is stable for
    :math:`\kappa_M \Delta t \, |a|^2 / \max(|a|^2, \bar A^2) < 2`, i.e.
    for any :math:`\kappa_M < 2 / \Delta t`. Along a direction of
    the activities that holds a fraction :math:`\lambda` of their power, it
    converges with time constant :math:`1 / (\kappa_M \lambda)`. A hidden
    layer encoding a low-dimensional input puts most of the power in a few
    directions (:math:`\lambda` of about 0.05-0.5), and the predictor must
    follow :math:`F e` faster than the layer and its readout change it
    (their rates are about 1/s): :math:`\kappa_M \lambda \gtrsim 1` in the
    weaker directions needs :math:`\kappa_M \approx 20`, well inside the
    stable range at :math:`\Delta t` = 1 ms (:math:`\kappa_M \Delta t` =
    0.02). With errors on a fraction :math:`p` of the steps, the predictor
    learns :math:`p` times as fast.

    **Its cost.** :math:`M` is ``n x (n + k)``: kept as it is, predicting
    and updating it take :math:`O(n^2)` a step (24-30 times PES only's step
    at 1000 neurons). With a fixed feedback (no ``downstream``) the rule
    keeps :math:`M = F P` instead, :math:`P` ``error_size x (n + k)``: from
    :math:`M = 0`, every update of :math:`M` is :math:`F` times one of
    :math:`P` (the error it regresses is :math:`F e`), so this is the same
    rule, up to rounding, at :math:`O(n \, \mathrm{error\_size})` a step
    (1.5-1.6 times PES only's at 1000 neurons). A probe of ``"predictor"``
    needs :math:`M` itself and makes the rule keep it; otherwise
    ``sim.model.sig[conn.learning_rule]["predictor"]`` holds :math:`P`.
    With ``downstream`` the feedback changes and :math:`M` is kept as it is.

    **When to use it.** When the error reaches the layer on only some of the
    steps: it learns on every step, the other rules only on those. On the
    product task with the error on 5% of the steps its frozen error was 4.3
    times lower than PES only's on every seed (BackProp's 1.2 times); with
    the error on every step it has nothing to gain (it was worse than PES
    only); 100 ms late it beat `.FeedbackAlignment` but not `.BackProp`, and
    200 ms late, with the PES readout itself near its stable limit, it was
    unreliable (it diverged on one seed; docs: benchmarks, "A late or
    sparse teacher").

    Only ``modifies="encoders"`` is supported. Probeable: ``"error"``,
    ``"delta"`` (the synthetic local error :math:`\hat\delta` the layer
    learns from), ``"encoders"``/``"scaled_encoders"``, ``"gain"``,
    ``"bias"``, ``"predictor"`` (:math:`M`; see "Its cost" below),
    ``"true_delta"`` (the true local error :math:`\delta_\tau = (F e)
    \odot G'(J_\tau)` of the last step that carried an error),
    ``"predictor_error"``
    (:math:`|\hat\delta_\tau - \delta_\tau| / |\delta_\tau|`, with
    :math:`\hat\delta_\tau = (M a_\tau) \odot G'(J_\tau)`, before the
    update) and ``"prediction_angle"`` (the angle in degrees between
    :math:`\hat\delta_\tau` and :math:`\delta_\tau`); the last three hold
    their value on steps without an error, are 0 before the first one, and
    the last two are NaN while undefined (e.g. a true local error of 0).

    References
    ----------
    .. [1] Jaderberg, M., Czarnecki, W. M., Osindero, S., Vinyals, O.,
       Graves, A., Silver, D., & Kavukcuoglu, K. (2017). Decoupled neural
       interfaces using synthetic gradients. ICML 2017 (arXiv:1608.05343).
    .. [2] Czarnecki, W. M., Swirszcz, G., Jaderberg, M., Osindero, S.,
       Vinyals, O., & Kavukcuoglu, K. (2017). Understanding synthetic
       gradients and decoupled neural interfaces. ICML 2017.

    Examples
    --------
    The product task, with the error arriving 100 ms late through a delay
    node (any Node that outputs the error of 100 ms ago):

    .. testcode::

       class Delay:
           def __init__(self, steps):
               self.buffer = np.zeros(steps)
           def __call__(self, t, x):
               self.buffer = np.roll(self.buffer, -1)
               self.buffer[-1] = x[0]
               return self.buffer[0]

       with nengo.Network(seed=0) as model:
           stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.cos(np.pi * t)])
           hidden = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           out = nengo.Node(size_in=1)
           readout = nengo.Connection(
               hidden, out, function=lambda x: 0, learning_rule_type=nengo.PES()
           )
           layer1 = nengo.Connection(
               stim, hidden,
               learning_rule_type=nengo_fa.SyntheticGradient(
                   error_size=out, error_delay=0.1
               ),
           )
           error = nengo.Node(size_in=1)
           nengo.Connection(out, error)
           nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
           late = nengo.Node(Delay(100), size_in=1)
           nengo.Connection(error, late, synapse=None)
           nengo.Connection(late, readout.learning_rule)
           nengo.Connection(late, layer1.learning_rule)
    """

    probeable = HiddenLayerRule.probeable + (
        "feedback",
        "predictor",
        "true_delta",
        "predictor_error",
        "prediction_angle",
    )

    # the synthetic error descends only along its part aligned with the true
    # one, as feedback alignment's does: the same rates as FeedbackAlignment
    learning_rate = FiniteNumberParam(
        "learning_rate", low=0, readonly=True, default=0.7
    )
    gain_learning_rate = FiniteNumberParam(
        "gain_learning_rate", low=0, readonly=True, default=0.7
    )
    bias_learning_rate = FiniteNumberParam(
        "bias_learning_rate", low=0, readonly=True, default=0.7
    )
    error_size = IntParam("error_size", low=1, readonly=True)
    feedback = FeedbackParam(
        "feedback",
        default=Gaussian(mean=0, std=1),
        sample_shape=("*", "error_size"),
        readonly=True,
    )
    downstream = DownstreamParam(
        "downstream", default=None, optional=True, readonly=True
    )
    error_delay = FiniteNumberParam("error_delay", low=0, readonly=True, default=0.0)
    context = ContextParam("context", default=None, optional=True, readonly=True)
    max_gap = FiniteNumberParam(
        "max_gap", low=0, low_open=True, readonly=True, default=0.1
    )
    predictor_learning_rate = FiniteNumberParam(
        "predictor_learning_rate", low=0, readonly=True, default=20.0
    )

    _param_init_order = ["downstream", "error_size"]

    def __init__(
        self,
        error_size=None,
        feedback=Default,
        downstream=None,
        error_delay=Default,
        max_gap=Default,
        context=None,
        predictor_learning_rate=Default,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        derivative=Default,
        pre_synapse=Default,
    ):
        self.downstream = downstream
        if isinstance(error_size, NengoObject):
            error_size = error_size.size_out
        if downstream is not None:
            if chained_rule(downstream) is not None:
                raise ValidationError(
                    f"{downstream} carries a nengo_fa rule; synthetic gradients "
                    "are not chained: give the connection to the readout",
                    attr="downstream",
                    obj=self,
                )
            if error_size is not None and error_size != downstream.size_out:
                raise ValidationError(
                    f"the error of {downstream} has {downstream.size_out} "
                    f"dimensions; leave error_size out (got {error_size})",
                    attr="error_size",
                    obj=self,
                )
            error_size = downstream.size_out
        if error_size is None:
            raise ValidationError(
                "give 'error_size' (or 'downstream')", attr="error_size", obj=self
            )
        self.error_size = error_size
        super().__init__(
            learning_rate=learning_rate,
            gain_learning_rate=gain_learning_rate,
            bias_learning_rate=bias_learning_rate,
            derivative=derivative,
            size_in=error_size,
            pre_synapse=pre_synapse,
        )
        self.feedback = feedback
        self.error_delay = error_delay
        self.max_gap = max_gap
        self.context = context
        self.predictor_learning_rate = predictor_learning_rate
