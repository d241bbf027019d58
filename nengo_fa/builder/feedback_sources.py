r"""Feedback sources: where a rule's feedback matrix :math:`F` comes from.

`.FeedbackAlignment`, `.BackProp` and `.SignSymmetry` differ only in their
feedback. Each rule type has a registered `FeedbackSource` (the same pattern
as `nengo_fa.neurons.register_derivative`); the rule build function
(`nengo_fa.builder.rule`) looks it up through the type's method resolution
order, so a new rule is a declaration plus one registered source:

.. testcode::

   class RandomSignFeedback(nengo_fa.learning_rules.HiddenLayerRule):
       def __init__(self, error_size, **kwargs):
           super().__init__(size_in=error_size, **kwargs)

   @nengo_fa.builder.register_feedback_source(RandomSignFeedback)
   class RandomSignSource(nengo_fa.builder.FeedbackSource):
       def build(self, ctx, ready):
           rng = np.random.RandomState(ctx.model.seeds[ctx.rule.connection])
           F = np.sign(rng.normal(size=(ctx.ens.n_neurons, ctx.rule.size_in)))
           ready(nengo.builder.Signal(F, readonly=True), False)
           return F

See :doc:`/adding_a_rule` for the whole recipe.
"""

import collections
import warnings

import numpy as np
from nengo.builder import Operator, Signal
from nengo.builder.learning_rules import build_or_passthrough, get_post_ens
from nengo.builder.operator import Copy
from nengo.ensemble import Ensemble
from nengo.exceptions import BuildError, NengoWarning
from nengo.rc import rc
from nengo.transforms import Dense, NoTransform

from nengo_fa import settings
from nengo_fa.builder import kernels
from nengo_fa.builder.alignment import (
    FeedbackErrorMixin,
    SimAlignmentDiagnostics,
    SimAlignmentTerms,
    SimForwardMatrix,
    SimKolenPollack,
)
from nengo_fa.builder.chained import build_chained_error, check_downstream_reads
from nengo_fa.builder.deferred import when_built, when_model_built
from nengo_fa.builder.hidden_layer import feedback_error_signals
from nengo_fa.builder.weights import learning_rules, weights_row_gain
from nengo_fa.feedback import AlignmentTerms, KolenPollack
from nengo_fa.learning_rules import BackProp, FeedbackAlignment, SignSymmetry

RuleBuild = collections.namedtuple(
    "RuleBuild",
    (
        "model",
        "rule_type",
        "rule",
        "ens",
        "derivative",
        "error",
        "down_rule",
        "prefix",
        "gain_scale",
        "derivative_scale",
        "threshold",
        "current",
        "pre_decay",
        "feedback_tau",
    ),
)
RuleBuild.__doc__ = """What a feedback source may need about the rule being built.

Attributes
----------
model : Model
    The model being built.
rule_type : HiddenLayerRule
    The rule's type (its parameters).
rule : LearningRule
    The learning rule object.
ens : Ensemble
    The hidden ensemble the rule trains.
derivative : callable
    The ensemble's :math:`G'(J)`, ``derivative(J, out)``.
error : Signal
    The rule's error :math:`e`.
down_rule : LearningRule or None
    The nengo_fa rule this one is chained to (takes its error from), if any.
prefix : str
    ``"<RuleType> on <connection>"``, to begin error messages with.
gain_scale : float
    :math:`\\hat g`, the mean build-time gain of the ensemble.
derivative_scale : float
    :math:`\\bar{G'}`, the mean of :math:`G'` over the active part of the
    tuning curves.
threshold : float
    :math:`\\theta`, the input current below which the neurons stop firing.
current : Signal
    The current :math:`J` the rule pairs its error with, before the filter
    it applies itself: the neurons' input current, or that current filtered
    by Nengo (a ``pre_synapse`` other than a ``Lowpass``).
pre_decay : float
    :math:`a = e^{-\\Delta t / \\tau}` of the ``Lowpass(tau)`` ``pre_synapse``
    that the rule's step applies to ``current`` itself,
    :math:`\\bar J \\leftarrow a \\bar J + (1 - a) J` from zero; 0 when it reads
    ``current`` as it is (see `.HiddenLayerRule`).
feedback_tau : float
    The time constant, in seconds, of the filter through which the rule reads
    its downstream weights (``feedback_synapse`` of `.BackProp` and
    `.SignSymmetry`; ``"readout"``: :math:`\\tau_1` of the downstream
    `nengo.PES` readout); 0 for the live weights, and for every rule without
    one.
"""

_SOURCES = {}


def register_feedback_source(rule_cls):
    """Register the `FeedbackSource` of a rule type (a class decorator).

    Lookup walks the rule type's method resolution order, as
    `nengo.builder.Builder` does, so a subclass uses its parent's source unless
    it has its own.

    Parameters
    ----------
    rule_cls : type
        A subclass of `.HiddenLayerRule`.
    """

    def register(source_cls):
        _SOURCES[rule_cls] = source_cls
        return source_cls

    return register


def feedback_source(rule_type):
    """The registered `FeedbackSource` (an instance) for ``rule_type``."""
    for cls in type(rule_type).__mro__:
        if cls in _SOURCES:
            return _SOURCES[cls]()
    raise BuildError(
        f"No feedback source registered for {type(rule_type).__name__}; "
        "register one with nengo_fa.builder.register_feedback_source"
    )


class FeedbackSource:
    """Where a `.HiddenLayerRule`'s feedback matrix :math:`F` comes from.

    Subclass it, implement `build`, and register it for a rule type with
    `register_feedback_source`.

    Attributes
    ----------
    replaces_forward_matrix : bool
        For a rule chained to another (``downstream`` carrying a nengo_fa
        rule): whether :math:`F` stands in for the whole product of the next
        layer's weights and encoders, as feedback alignment's random matrix
        does (its error is then the next layer's local error, of size
        ``rule_type.error_size``), rather than being read from the live
        weights (backprop: the error is the next layer's local error encoded
        into its decoded space).
    pairs_with_seen : bool
        Whether the rule's error arrives through synapses, so that it is
        paired with the current and input filtered by ``pre_synapse`` (see
        `.HiddenLayerRule`); False for a local error the source makes from
        the current itself (`.TraceRule`).
    """

    replaces_forward_matrix = False
    pairs_with_seen = True

    def build(self, ctx, ready):
        """Make the feedback signal and pass it to ``ready``.

        Parameters
        ----------
        ctx : RuleBuild
            The rule being built.
        ready : callable
            ``ready(feedback, transposed, feedback_error=None)``, to call once
            (at once, or later, e.g. from `nengo_fa.builder.deferred.when_built`
            once a connection it reads is built) with the feedback
            `~nengo.builder.Signal`: :math:`F` (``n x d_out``), or :math:`F^T`
            (``d_out x n``, e.g. live weights) with ``transposed=True``. A
            read-only signal is taken to never change (its norm is computed
            once). A source whose own operator changes :math:`F` may compute
            the rule's *feedback error* in the same pass over :math:`F` and
            pass the signals it sets as ``feedback_error`` (a
            `.FeedbackError`, see `.SimKolenPollack`); the rule then reads
            them instead of :math:`F`.

        Returns
        -------
        feedback : ndarray or None
            A fixed feedback matrix, shown as ``sim.data[rule].feedback``, or
            None.
        """
        raise NotImplementedError

    def build_chained_error(self, ctx):
        """Make what sets the error of a chained rule (``ctx.down_rule``
        is not None), before `build`. By default a `.SimChainedError` passes
        the downstream rule's normalised local error back
        (`nengo_fa.builder.chained.build_chained_error`); a source whose own
        operator sets the error (`.DifferenceTargetProp`'s) overrides this.
        """
        build_chained_error(ctx, self)


#: the tag of feedback alignment's stream of the connection's seed, shared by
#: the rules that draw "the same B a FeedbackAlignment would"
FEEDBACK_SEED_TAG = 0xFA


def fixed_feedback(
    model, rule_type, conn, n, prefix, tag=FEEDBACK_SEED_TAG, nonzero=False
):
    """A rule's fixed feedback matrix (``n x rule_type.error_size``, float64).

    ``rule_type.feedback`` is either an array, checked against the shape, or
    a distribution, sampled from a stream of its own derived from the
    connection's seed and ``tag`` (so that rules with the same ``tag`` on the
    same connection draw the same matrix). Raises a ``BuildError`` starting
    with ``prefix`` for a wrong shape or non-finite values, and, with
    ``nonzero``, for a matrix that is all zero (a rule that cannot do
    without feedback).
    """
    shape = (n, rule_type.error_size)
    if isinstance(rule_type.feedback, np.ndarray):
        feedback = np.array(rule_type.feedback, dtype=np.float64)
        if feedback.shape != shape:
            raise BuildError(
                f"{prefix}: 'feedback' has shape {feedback.shape}, but the post "
                f"ensemble has {n} neurons and the error has {shape[1]} "
                f"dimensions: expected {shape}"
            )
    else:
        seed = np.random.SeedSequence([model.seeds[conn], tag]).generate_state(1)
        rng = np.random.RandomState(seed[0])
        feedback = np.asarray(
            rule_type.feedback.sample(*shape, rng=rng), dtype=np.float64
        )
    if not np.all(np.isfinite(feedback)):
        raise BuildError(f"{prefix}: 'feedback' is not finite")
    if nonzero and not np.any(feedback):
        raise BuildError(f"{prefix}: 'feedback' must be finite and not all zero")
    return feedback


@register_feedback_source(FeedbackAlignment)
class FixedFeedback(FeedbackSource):
    """A fixed random matrix, or a learned one (`.FeedbackAlignment`)."""

    replaces_forward_matrix = True
    #: Whether an all-zero fixed feedback is a `~nengo.exceptions.BuildError`
    #: (it is a warning for `.FeedbackAlignment`, which then learns nothing).
    needs_feedback = False

    def build(self, ctx, ready):
        feedback = self.sample(ctx)
        feedback_error = None
        if ctx.rule_type.feedback_learning is not None:
            # set by the feedback learning's operator, in its pass over F
            feedback_error = feedback_error_signals(ctx.prefix, ctx.ens.n_neurons)
        ready(ctx.model.sig[ctx.rule]["feedback"], False, feedback_error)
        self.build_alignment(ctx, feedback_error)
        return feedback

    @classmethod
    def sample(cls, ctx):
        """Sample (or check) the fixed feedback matrix of a `.FeedbackAlignment`."""
        model, fa, conn = ctx.model, ctx.rule_type, ctx.rule.connection
        feedback = fixed_feedback(
            model, fa, conn, ctx.ens.n_neurons, ctx.prefix, nonzero=cls.needs_feedback
        )
        if fa.feedback_learning is None and not np.any(feedback):
            warnings.warn(
                f"{ctx.prefix}: 'feedback' is all zero and does not "
                "learn, so no error reaches the hidden layer and it learns nothing",
                NengoWarning,
            )
        model.sig[ctx.rule]["feedback"] = Signal(
            feedback.astype(rc.float_dtype),
            name="FeedbackAlignment:feedback",
            readonly=fa.feedback_learning is None,
        )
        return feedback

    @staticmethod
    def build_alignment(ctx, feedback_error=None):
        """Alignment diagnostics and feedback learning of a `.FeedbackAlignment`.

        Without ``downstream`` there is nothing to compare with, and nothing
        is added. With ``downstream``, once it is built, adds the
        `.SimAlignmentDiagnostics` operator if a probe reads the diagnostics
        (`diagnostics_probed`) and, if the feedback learns, the operator of
        its `.FeedbackLearning` (`FEEDBACK_LEARNING`), which also sets
        ``feedback_error`` (a `.FeedbackError`). For a chained rule, the true
        feedback is the transpose of the effective forward matrix into the
        next layer's neurons, set every step by a `.SimForwardMatrix`, which
        is added only where the diagnostics or the feedback learning read it.
        """
        model, rule, ens = ctx.model, ctx.rule, ctx.ens
        down, prefix = ctx.rule_type.downstream, ctx.prefix
        if down is None:
            return  # nothing to compare with: the diagnostics cannot be probed
        keys = ("delta_angle", "feedback_angle", "norm_ratio")
        diagnostics = [Signal(shape=1, name=f"FA:{key}") for key in keys]
        model.sig[rule].update(zip(keys, diagnostics))
        if ctx.down_rule is None:
            check_downstream(model, prefix, down, ens)
        feedback = model.sig[rule]["feedback"]
        learning = ctx.rule_type.feedback_learning

        def add_operators():
            probed = diagnostics_probed(model, rule, keys)
            if learning is None and not probed:
                return  # nothing reads the weights: no forward matrix either
            if ctx.down_rule is None:
                weights = downstream_weights(model, prefix, down, ens)
            else:
                weights = forward_matrix(model, down, ctx.down_rule, prefix)
            if learning is not None:
                feedback_learning_builder(learning, prefix)(
                    ctx, learning, weights, feedback, feedback_error
                )
            if not probed:
                return
            model.add_op(
                SimAlignmentDiagnostics(
                    ctx.error,
                    feedback,
                    weights,
                    model.sig[ens.neurons]["in"],
                    *diagnostics,
                    derivative=ctx.derivative,
                    neuron_type=ens.neuron_type,
                    tag=f"{prefix}: alignment",
                    compiled=settings.compiled_kernels(),
                )
            )

        when_built(model, [down], add_operators)


def diagnostics_probed(model, rule, keys):
    """Whether a probe of the network being built reads one of ``keys`` of
    ``rule`` (True when that cannot be known: no top-level network).

    The diagnostics cost more than the rule itself where the true feedback is
    a chained rule's ``n x n`` forward matrix (recomputed every step), so
    they are computed only when probed; the signals of unprobed ones stay at
    0. Probes are built after connections, so this reads the network's
    probes, not the model's.
    """
    if model.toplevel is None:
        return True

    def reads(probe):
        # a connection's learning_rule is a new LearningRule at each access
        target = probe.target
        return (
            probe.attr in keys
            and getattr(target, "connection", None) is rule.connection
            and getattr(target, "learning_rule_type", None) is rule.learning_rule_type
        )

    return any(reads(p) for p in model.toplevel.all_probes)


def build_kolen_pollack(ctx, learning, weights, feedback, feedback_error):
    """Add the `.SimKolenPollack` of a `.KolenPollack` feedback, once the
    whole model is built: reading the change of :math:`W` from the delta of
    the one learning rule that changes it (`weights_change`), or, where
    something else changes it too (or without a toplevel network, where the
    whole model is not known), from :math:`W` and a copy of its previous
    value."""
    model = ctx.model

    def add_operator(change):
        previous = None
        if change is None:
            previous = Signal(weights.initial_value, name="KolenPollack:previous")
        model.add_op(
            SimKolenPollack(
                weights,
                previous,
                feedback,
                learning.decay,
                tag=ctx.prefix,
                error=ctx.error,
                feedback_error=feedback_error,
                compiled=settings.compiled_kernels(),
                change=change,
            )
        )

    if model.toplevel is None:
        add_operator(None)
    else:
        when_model_built(model, lambda: add_operator(weights_change(model, weights)))


def weights_change(model, weights):
    """The delta signal that the ``Copy`` of one learning rule adds to
    ``weights`` each step, where that ``Copy`` is the only operator that
    writes ``weights`` (then :math:`W_t - W_{t-1}` is that delta); else
    None."""
    writers = [
        op
        for op in model.operators
        if any(sig.base is weights.base for sig in op.sets + op.incs + op.updates)
    ]
    if len(writers) != 1:
        return None
    (op,) = writers
    if not (
        isinstance(op, Copy)
        and op.inc
        and op.dst is weights
        and op.src.shape == weights.shape
        and op.src_slice is None
        and op.dst_slice is None
    ):
        return None
    return op.src


def build_alignment_terms(ctx, learning, weights, feedback, feedback_error):
    """Add the `.SimAlignmentTerms` of an `.AlignmentTerms` feedback."""
    activities = None
    if learning.uses_activities:
        activities = build_or_passthrough(
            ctx.model,
            learning.activity_synapse,
            ctx.model.sig[ctx.ens.neurons]["out"],
        )
    ctx.model.add_op(
        SimAlignmentTerms(
            weights,
            activities,
            feedback,
            learning,
            tag=ctx.prefix,
            error=ctx.error,
            feedback_error=feedback_error,
            compiled=settings.compiled_kernels(),
        )
    )


#: The build function of each kind of `.FeedbackLearning`:
#: ``build(ctx, learning, weights, feedback, feedback_error)``, where
#: ``feedback_error`` is the `.FeedbackError` its operator sets (or None).
FEEDBACK_LEARNING = {
    KolenPollack: build_kolen_pollack,
    AlignmentTerms: build_alignment_terms,
}


def feedback_learning_builder(learning, prefix):
    """The `FEEDBACK_LEARNING` entry for ``learning`` (MRO lookup)."""
    for cls in type(learning).__mro__:
        if cls in FEEDBACK_LEARNING:
            return FEEDBACK_LEARNING[cls]
    raise BuildError(f"{prefix}: unknown feedback learning {learning!r}")


@register_feedback_source(BackProp)
class LiveTranspose(FeedbackSource):
    """:math:`F = W^T`, the live weights of ``downstream`` (`.BackProp`)."""

    def build(self, ctx, ready):
        down = ctx.rule_type.downstream
        check_downstream(ctx.model, ctx.prefix, down, ctx.ens)
        tau = ctx.feedback_tau
        if not tau > 0:
            when_built(ctx.model, [down], lambda: ready(self.weights(ctx), True))
            return None
        # W low-passed (`.BackProp`'s ``feedback_synapse``), with F e fused
        feedback_error = feedback_error_signals(ctx.prefix, ctx.ens.n_neurons)

        def add_operator():
            filtered = self.low_passed(ctx, self.weights(ctx), feedback_error)
            ctx.model.sig[ctx.rule]["feedback"] = filtered
            ready(filtered, True, feedback_error)

        when_built(ctx.model, [down], add_operator)
        return None

    @staticmethod
    def weights(ctx):
        return downstream_weights(
            ctx.model, ctx.prefix, ctx.rule_type.downstream, ctx.ens
        )

    @staticmethod
    def low_passed(ctx, weights, feedback_error):
        """A signal of ``weights`` low-passed over ``ctx.feedback_tau`` from
        0, set each step by a `.SimFilteredFeedback`, which also computes
        the rule's feedback error (:math:`F e` into ``feedback_error``)
        from the filtered weights."""
        filtered = Signal(
            np.zeros(weights.shape, dtype=rc.float_dtype),
            name=f"{ctx.prefix}: filtered weights",
        )
        ctx.model.add_op(
            SimFilteredFeedback(
                weights,
                filtered,
                float(np.exp(-ctx.model.dt / ctx.feedback_tau)),
                tag=ctx.prefix,
                error=ctx.error,
                feedback_error=feedback_error,
                compiled=settings.compiled_kernels(),
            )
        )
        return filtered


@register_feedback_source(SignSymmetry)
class SignFeedback(LiveTranspose):
    """The scaled signs of ``downstream``'s live weights (`.SignSymmetry`),
    set every step by a `.SimSignFeedback`."""

    def build(self, ctx, ready):
        down = ctx.rule_type.downstream
        check_downstream(ctx.model, ctx.prefix, down, ctx.ens)
        # made now so that probes can find it whatever the build order
        sign_feedback = Signal(
            shape=(down.size_out, ctx.ens.n_neurons), name="SignSymmetry:feedback"
        )
        ctx.model.sig[ctx.rule]["feedback"] = sign_feedback

        feedback_error = feedback_error_signals(ctx.prefix, ctx.ens.n_neurons)

        def add_operator():
            weights = self.weights(ctx)
            filtered, decay = None, 0.0
            if ctx.feedback_tau > 0:
                # the signs of W low-passed (``feedback_synapse``), from 0
                # (read a step late: the filter updates what the signs read)
                filtered = Signal(
                    np.zeros(weights.shape, dtype=rc.float_dtype),
                    name=f"{ctx.prefix}: filtered weights",
                )
                decay = float(np.exp(-ctx.model.dt / ctx.feedback_tau))
            ctx.model.add_op(
                SimSignFeedback(
                    weights,
                    sign_feedback,
                    tag=ctx.prefix,
                    error=ctx.error,
                    feedback_error=feedback_error,
                    compiled=settings.compiled_kernels(),
                    filtered=filtered,
                    decay=decay,
                )
            )
            ready(sign_feedback, True, feedback_error)

        when_built(ctx.model, [down], add_operator)
        return None


def check_downstream(model, prefix, down, ens):
    """Check that ``down`` leaves ``ens`` with weights a rule can read."""
    check_downstream_reads(prefix, down, ens)
    if not isinstance(down.transform, (Dense, NoTransform)) or not down.has_weights:
        raise BuildError(
            f"{prefix}: 'downstream' must have a Dense transform or decoders "
            f"(got {type(down.transform).__name__})"
        )
    if isinstance(down.pre_obj, Ensemble) and down.solver.weights:
        # its weights are decoders composed with the post encoders, not the
        # (n_out, n) matrix this rule reads
        if any(getattr(r, "modifies", None) == "weights" for r in learning_rules(down)):
            fix = (
                f"connect {ens.neurons} to {down.post_obj.neurons} with a full "
                "transform instead (its weight-learning rule learns that too)"
            )
        else:
            fix = "set weights=False"
        raise BuildError(
            f"{prefix}: 'downstream' uses a weight solver ({down.solver}); it "
            f"needs decoders or a full transform from {ens.neurons}, so {fix}"
        )
    if model.toplevel is not None and down not in model.toplevel.all_connections:
        raise BuildError(
            f"{prefix}: 'downstream' ({down}) is not part of the model being built"
        )


def downstream_weights(model, prefix, down, ens):
    """The weights signal of a built ``down``, checked against ``ens``."""
    weights = model.sig[down]["weights"]
    if weights is None or weights.shape != (down.size_out, ens.n_neurons):
        raise BuildError(
            f"{prefix}: expected 'downstream' weights of shape "
            f"{(down.size_out, ens.n_neurons)}, got "
            f"{None if weights is None else weights.shape}"
        )
    return weights


def forward_matrix(model, down, down_rule, prefix):
    """Signal of the effective weights from ``down``'s pre neurons to the next
    layer's neurons (the matrix whose transpose backprop would use)."""
    down_ens = get_post_ens(down)
    weights = model.sig[down]["weights"]
    if down_rule.learning_rule_type.modifies == "encoders":
        encoders = model.sig[down_ens]["encoders"]
        row_gain = None
        initial = encoders.initial_value @ weights.initial_value
    else:
        encoders = None
        row_gain = weights_row_gain(model, down, down_ens)
        initial = row_gain[:, None] * weights.initial_value
    matrix = Signal(initial.astype(rc.float_dtype), name="FA:forward_matrix")
    model.add_op(
        SimForwardMatrix(
            weights, encoders, matrix, row_gain, tag=f"{prefix}: forward matrix"
        )
    )
    return matrix


def low_pass(W, F, a, scaled):
    """:math:`F \\leftarrow a F + (1 - a) W` in place, the numpy step of
    `.SimFilteredFeedback` and of `.SimSignFeedback`'s filter (``scaled``: a
    work array of ``W``'s shape; compiled:
    `nengo_fa.builder.kernels.low_pass`)."""
    np.multiply(F, a, out=F)
    np.multiply(W, 1 - a, out=scaled)
    np.add(F, scaled, out=F)


class SimFilteredFeedback(FeedbackErrorMixin, Operator):
    r"""Set a feedback that is the live weights low-passed
    (`.BackProp`'s ``feedback_synapse``).

    Implements :math:`F^T \leftarrow a F^T + (1 - a) W` (``Lowpass(tau)``:
    :math:`a = e^{-\Delta t / \tau}`; :math:`F^T` starts at 0) and, with
    ``feedback_error``, the rule's *feedback error* :math:`F e` and
    :math:`\nu` from the :math:`F` it sets, in the same call (compiled:
    `nengo_fa.builder.kernels.filtered_feedback`; without them,
    `nengo_fa.builder.kernels.low_pass`).

    Parameters
    ----------
    weights : Signal
        :math:`W`, shape ``(d_out, n)``.
    feedback : Signal
        :math:`F^T`, the shape of :math:`W`, updated in place.
    decay : float
        :math:`a`.
    tag : str, optional
        A label associated with the operator, for debugging purposes.
    error : Signal, optional
        The rule's error :math:`e`, with ``feedback_error``.
    feedback_error : FeedbackError, optional
        Set to :math:`F e` and :math:`\nu` (see `.FeedbackError`).
    compiled : bool, optional
        Whether to use the compiled loop (the ``compiled_kernels`` setting
        when the model was built).

    Notes
    -----
    1. sets ``[]``, plus ``[fe, nu]`` with ``feedback_error``
    2. incs ``[]``
    3. reads ``[weights]``, plus ``error`` with ``feedback_error``
    4. updates ``[feedback]``
    """

    def __init__(
        self,
        weights,
        feedback,
        decay,
        tag=None,
        error=None,
        feedback_error=None,
        compiled=False,
    ):
        super().__init__(tag=tag)
        self.decay = decay
        self.compiled = compiled
        self.sets = []
        self.incs = []
        self.reads = [weights]
        self.updates = [feedback]
        self.add_feedback_error(error, feedback_error)

    @property
    def feedback(self):
        return self.updates[0]

    @property
    def weights(self):
        return self.reads[0]

    @property
    def _descstr(self):
        return f"lowpass({self.weights}) -> {self.feedback}"

    def make_step(self, signals, dt, rng):
        W = signals[self.weights]
        F = signals[self.feedback]
        a = self.decay
        # the rule's feedback error, from the F this step sets
        feedback_error, given = self.feedback_error_step(signals, F, transposed=True)
        if given is not None and self.compiled and kernels.AVAILABLE:
            filtered_feedback = kernels.compiled(kernels.filtered_feedback)
            e, fe, nu = given
            scratch = np.empty(W.shape[1])

            def step_simfilteredfeedback_compiled():
                nu[0] = filtered_feedback(W, F, a, e, fe, scratch)

            return step_simfilteredfeedback_compiled
        if self.compiled and kernels.AVAILABLE:
            # without a feedback error (another operator reads F)
            compiled_low_pass = kernels.compiled(kernels.low_pass)

            def step_simfilteredfeedback_compiled():
                compiled_low_pass(W, F, a)

            return step_simfilteredfeedback_compiled

        scaled = np.empty_like(F)

        def step_simfilteredfeedback():
            low_pass(W, F, a, scaled)
            if feedback_error is not None:
                feedback_error()

        return step_simfilteredfeedback


class SimSignFeedback(FeedbackErrorMixin, Operator):
    r"""Set the sign-symmetry feedback from live weights.

    Implements :math:`F = \rho \, \mathrm{sign}(W)` with
    :math:`\rho = \sqrt{\mathrm{mean}(W^2)}`, so that :math:`\|F\|_F =
    \|W\|_F` when no weight is zero, and, with ``feedback_error``, the
    rule's *feedback error* :math:`F e` and :math:`\nu` in the same call
    (compiled: `nengo_fa.builder.kernels.sign_feedback`).

    With ``filtered`` (`.SignSymmetry`'s ``feedback_synapse``), the signs
    and :math:`\rho` are those of :math:`\bar W`, the weights low-passed
    (from 0), as it stands at the start of the step, and the same call then
    low-passes it, :math:`\bar W \leftarrow a \bar W + (1 - a) W`: what a
    `.SimFilteredFeedback` updating :math:`\bar W` and a `.SimSignFeedback`
    reading it give, in one pass instead of two.

    Parameters
    ----------
    weights : Signal
        :math:`W`, shape ``(d_out, n)``.
    feedback : Signal
        Output: :math:`F^T`, the shape of :math:`W`.
    tag : str, optional
        A label associated with the operator, for debugging purposes.
    error : Signal, optional
        The rule's error :math:`e`, with ``feedback_error``.
    feedback_error : FeedbackError, optional
        Set to :math:`F e` and :math:`\nu` (see `.FeedbackError`).
    compiled : bool, optional
        Whether to use the compiled loop (the ``compiled_kernels`` setting
        when the model was built).
    filtered : Signal, optional
        :math:`\bar W`, the shape of :math:`W`, updated in place (see above).
    decay : float, optional
        :math:`a`, with ``filtered``.

    Notes
    -----
    1. sets ``[feedback]``, plus ``[fe, nu]`` with ``feedback_error``
    2. incs ``[]``
    3. reads ``[weights]``, plus ``error`` with ``feedback_error``
    4. updates ``[]``, or ``[filtered]``
    """

    def __init__(
        self,
        weights,
        feedback,
        tag=None,
        error=None,
        feedback_error=None,
        compiled=False,
        filtered=None,
        decay=0.0,
    ):
        super().__init__(tag=tag)
        self.compiled = compiled
        self.decay = decay
        self.sets = [feedback]
        self.incs = []
        self.reads = [weights]
        self.updates = [] if filtered is None else [filtered]
        self.add_feedback_error(error, feedback_error)

    @property
    def feedback(self):
        return self.sets[0]

    @property
    def weights(self):
        return self.reads[0]

    @property
    def filtered(self):
        """:math:`\bar W`, whose signs the feedback takes, or None."""
        return self.updates[0] if self.updates else None

    @property
    def _descstr(self):
        source = self.weights if self.filtered is None else self.filtered
        return f"sign({source}) -> {self.feedback}"

    def make_step(self, signals, dt, rng):
        W = signals[self.weights]
        F = signals[self.feedback]
        filtered = None if self.filtered is None else signals[self.filtered]
        src = W if filtered is None else filtered
        size = W.size
        a = self.decay
        # the rule's feedback error, from the F this step sets
        feedback_error, given = self.feedback_error_step(signals, F, transposed=True)
        if given is not None and self.compiled and kernels.AVAILABLE:
            sign_feedback = kernels.compiled(kernels.sign_feedback)
            e, fe, nu = given
            row_sums = np.empty(W.shape[1])
            # no elements: no filter
            bar = np.zeros((0, 0), dtype=W.dtype) if filtered is None else filtered

            def step_simsignfeedback_compiled():
                nu[0] = sign_feedback(W, F, e, fe, row_sums, bar, a)

            return step_simsignfeedback_compiled

        scaled = None if filtered is None else np.empty_like(W)

        def step_simsignfeedback():
            flat = src.reshape(-1)
            rho = np.sqrt(np.dot(flat, flat) / size)
            np.sign(src, out=F)
            np.multiply(F, rho, out=F)
            if feedback_error is not None:
                feedback_error()
            if filtered is not None:
                low_pass(W, filtered, a, scaled)

        return step_simsignfeedback
