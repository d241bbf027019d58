"""The hidden-layer operator: local error and updates of encoders, gains, biases."""

import collections

from nengo.builder import Operator, Signal

from nengo_fa.builder import kernels, stages
from nengo_fa.builder.numerics import rms_row_norm

#: Gains are kept at or above this fraction of the mean build-time gain.
MIN_GAIN_FRACTION = 1e-3
#: Gains are kept at or below this multiple of the mean build-time gain, and
#: biases at most this multiple above the firing threshold.
MAX_GAIN_FRACTION = 1e3
#: Learning never raises a neuron's intercept (in units of the radius) above
#: this, or above its build-time intercept if that is higher: the neuron keeps
#: firing for some inputs within the radius, so that it can learn again.
MAX_INTERCEPT = 0.95
#: The stable range: one step at unit normalised error moves each neuron's
#: current by at most this fraction of its range (see `.HiddenLayerRule`).
STABLE_STEP = 0.2

BuiltHiddenLayerRule = collections.namedtuple(
    "BuiltHiddenLayerRule",
    (
        "feedback",
        "gain_scale",
        "derivative_scale",
        "warmup",
        "feedback_synapse",
        "learning_rate",
        "gain_learning_rate",
        "bias_learning_rate",
    ),
)
BuiltHiddenLayerRule.__doc__ = """Build-time information about a `.HiddenLayerRule`.

Available as ``sim.data[conn.learning_rule]``.

Attributes
----------
feedback : ndarray or None
    The fixed feedback matrix :math:`F` (``n_neurons x error_size``), or None
    when the feedback is read live from another connection (`.BackProp`).
gain_scale : float
    :math:`\\hat g`, the mean build-time gain of the hidden ensemble.
derivative_scale : float
    :math:`\\bar{G'}`, the mean derivative of the active neurons over the
    ensemble's radius.
warmup : float
    The warm-up as built, in seconds from the first error (`.BackProp`'s
    ``warmup``: :math:`\\tau_1` for ``"readout"``); 0 for none, and for a
    chained rule, which the warm-up of the rule nearest the output holds.
feedback_synapse : Lowpass or None
    The filter of the weights the error comes back through, as built
    (``feedback_synapse`` of `.BackProp` and `.SignSymmetry`:
    ``Lowpass(tau_1)`` for
    ``"readout"``); None for the live weights, and for every rule whose
    feedback is not read from downstream weights.
learning_rate, gain_learning_rate, bias_learning_rate : float
    The rates the rule learns with: as given, and where `.BackProp` or
    `.SignSymmetry` was given None (their default), the rate the build chose
    for its feedback (`.STEADY_FEEDBACK_RATE` or `.TRACKING_FEEDBACK_RATE`).
"""


class RuleConstants(
    collections.namedtuple(
        "RuleConstants",
        (
            "radius",
            "scale",
            "gain_scale",
            "learning_rate",
            "gain_learning_rate",
            "bias_learning_rate",
            "min_gain",
            "max_gain",
            "threshold",
            "max_intercept",
            "feedback_norm",
            "from_current",
            "transpose_feedback",
            "compiled",
            "pre_decay",
        ),
    )
):
    r"""The build-time constants of one `.SimHiddenLayerRule`.

    Computed once, by the build function, and read by every backend: the
    numpy stages (`nengo_fa.builder.stages`), the compiled loops (as the
    ``params`` array of `kernel_params`) and NengoDL's builder.

    Attributes
    ----------
    radius : float
        :math:`r`.
    scale : float
        :math:`\Delta t \, \hat g / \bar{G'}`; the step's coefficient is
        :math:`c = ` ``scale`` :math:`/ \nu`.
    gain_scale : float
        :math:`\hat g`, the mean build-time gain: a step that would move a
        current by more than :math:`\hat g / 2` is out of the stable range
        (a `.StableRangeWarning`; a neuron whose own gain is small may meet
        its bound before that, as part of normal learning).
    learning_rate, gain_learning_rate, bias_learning_rate : float
        :math:`\kappa_E, \kappa_g, \kappa_b`.
    min_gain : float
        :math:`g_{min}` = ``MIN_GAIN_FRACTION`` :math:`\hat g`.
    max_gain : float
        :math:`g_{max}` = ``MAX_GAIN_FRACTION`` :math:`\hat g`.
    threshold : float
        :math:`\theta`, the input current below which the neurons stop
        firing (at Nengo's intercept: 0 for rectified linear, 1 for LIF).
    max_intercept : float
        :math:`\iota_{max}`: the bias step keeps
        :math:`b_i \ge \theta - \iota_{max} g_i` (the neuron fires for
        some inputs within the radius) and :math:`b_i \le \theta + g_{max}`.
    feedback_norm : float or None
        :math:`\nu`, the RMS row norm of a fixed feedback matrix; None when
        the feedback changes (live weights, learned feedback) and :math:`\nu`
        is computed every step.
    from_current : bool
        Whether :math:`J = S x + b` exactly, so that :math:`S x` is read as
        :math:`J - b` (decided once the whole model is built).
    transpose_feedback : bool
        Whether the feedback signal holds :math:`F^T` (live weights).
    compiled : bool
        Whether the step runs the compiled loops (the ``compiled_kernels``
        setting, with the in-place encoder update).
    pre_decay : float
        :math:`a = e^{-\Delta t / \tau}` of a ``Lowpass(tau)``
        ``pre_synapse``, which the step applies itself to the current and
        the input it pairs with the error (`.SimHiddenLayerRule`, ``seen``);
        0 when it reads them as they are.
    """

    __slots__ = ()

    @property
    def learns_encoders(self):
        """Whether the encoders or the gains learn."""
        return self.learning_rate > 0 or self.gain_learning_rate > 0

    @property
    def current_is_projection(self):
        """Whether the step reads :math:`S x` as :math:`J - b` itself (with
        an input it filters, it keeps the filtered :math:`S \\bar x` instead)."""
        return self.from_current and self.pre_decay == 0

    @property
    def same_rates(self):
        r""":math:`\kappa_g = \kappa_E > 0`: then :math:`g' = m`."""
        return self.learning_rate > 0 and self.gain_learning_rate == self.learning_rate

    def kernel_params(self, coef_max):
        """The ``params`` array of the compiled loops (`.kernels.RULE_PARAMS`),
        with ``coef_max`` the largest finite number of the signals' dtype."""
        return kernels.rule_params(
            coef_max=coef_max,
            radius=self.radius,
            scale=self.scale,
            gain_scale=self.gain_scale,
            learning_rate=self.learning_rate,
            gain_learning_rate=self.gain_learning_rate,
            bias_learning_rate=self.bias_learning_rate,
            min_gain=self.min_gain,
            max_gain=self.max_gain,
            threshold=self.threshold,
            max_intercept=self.max_intercept,
            given_norm=-1.0 if self.feedback_norm is None else self.feedback_norm,
            from_current=self.current_is_projection,
        )


def rule_constants(
    rates,
    model,
    gain_scale,
    derivative_scale,
    radius,
    threshold,
    max_intercept,
    **options,
):
    """`RuleConstants` of a rule with ``rates`` (a dict of the three rates,
    keyed by their parameters' names, as the build resolved them);
    ``options`` gives the fields that depend on the model as a whole
    (``feedback_norm``, ``from_current``, ``transpose_feedback``,
    ``compiled``)."""
    values = dict(
        radius=radius,
        scale=model.dt * gain_scale / derivative_scale,
        gain_scale=gain_scale,
        **rates,
        # a gain of 0 would lose the encoder's direction: keep gains positive
        min_gain=MIN_GAIN_FRACTION * gain_scale,
        max_gain=MAX_GAIN_FRACTION * gain_scale,
        threshold=threshold,
        max_intercept=max_intercept,
        feedback_norm=None,
        from_current=False,
        transpose_feedback=False,
        compiled=False,
        pre_decay=0.0,
    )
    values.update(options)
    return RuleConstants(**values)


def fixed_feedback_norm(feedback):
    """:math:`\\nu` of a feedback signal that never changes, else None."""
    if not feedback.readonly:
        return None
    return rms_row_norm(feedback.initial_value, feedback.shape[0])


EnsembleSignals = collections.namedtuple(
    "EnsembleSignals", ("current", "x", "scaled_encoders", "gain", "bias")
)
EnsembleSignals.__doc__ = """The signals of the hidden ensemble a rule reads:
:math:`J` ``(n,)``, :math:`x` ``(d,)``, :math:`S` ``(n, d)``, :math:`g`
``(n,)`` and :math:`b` ``(n,)``."""

FeedbackError = collections.namedtuple("FeedbackError", ("fe", "nu"))
FeedbackError.__doc__ = """:math:`F e` ``(n,)`` and :math:`\\nu` ``(1,)``,
set every step by the operator that updates or sets a live feedback matrix
(`.SimKolenPollack`, `.SimAlignmentTerms`, `.SimSignFeedback`) in the same
pass over :math:`F`, for the rule to read instead of :math:`F`."""


def feedback_error_signals(name, n):
    """New `FeedbackError` signals for a rule on ``n`` neurons."""
    return FeedbackError(
        Signal(shape=n, name=f"{name}:feedback_error"),
        Signal(shape=1, name=f"{name}:feedback_norm"),
    )


RuleOutputs = collections.namedtuple(
    "RuleOutputs",
    ("delta", "gain_delta", "bias_delta", "encoders_delta", "encoders_factors"),
)
RuleOutputs.__doc__ = """The signals a rule updates: :math:`\\delta`,
:math:`\\Delta g`, :math:`\\Delta b` (all ``(n,)``) and either the ``(n, d)``
``encoders_delta`` that Nengo's ``Copy`` adds or the ``encoders_factors``
:math:`(\\alpha, \\beta', x)` that `.SimHiddenLayerEncoderUpdate` applies in
place (the other None)."""


class SimHiddenLayerRule(Operator):
    r"""Compute the updates of a hidden ensemble from a fed-back error.

    Implements, with the notation of `.HiddenLayerRule`, in named stages
    (the same names in the numpy step, the compiled loops and NengoDL):

    1. *feedback error*: :math:`F e`, and :math:`\nu`, the RMS row norm of
       :math:`F`;
    2. *local error*: :math:`\delta = (F e) \odot G'(J)` and
       :math:`u = c \, \delta` with :math:`c = \Delta t \, \hat g / (\nu
       \bar{G'})`;
    3. *bias step*: :math:`\Delta b = -\kappa_b u`, bounded to
       :math:`|\Delta b_i| \le \max(g_i, g_{min}) / 2`, half the neuron's
       range; once the gain step is known (*bias limits*), kept so that
       :math:`b_i + \Delta b_i \ge \theta - \iota_{max} g_i'` (raised where
       the gain shrank, so that the neuron keeps firing within the radius)
       and from going above :math:`\theta + g_{max}` (with
       :math:`\kappa_b = 0` the biases stay as they are);
    4. *step bounds*: :math:`\beta_i = -\kappa_E u_i / r^2`, bounded to
       :math:`|\beta_i| |x| \le \max(g_i, g_{min}) / (2 r)`, at most half the
       length of the encoder row;
    5. *encoder/gain step*: :math:`m_i = r \, |S_i + \beta_i x|` and
       :math:`g_i' = \min(\max(g_i + (\kappa_g / \kappa_E)(m_i - g_i),
       g_{min}), g_{max})` (with :math:`\kappa_E = 0`: :math:`\beta = 0` and
       :math:`g_i' = g_i - \kappa_g u_i p_i / r`, where
       :math:`p_i = E_i \cdot x`, the change bounded to half the gain, then
       kept within :math:`[g_{min}, g_{max}]`);
    6. *row scaling*: :math:`S_i' = (g_i' / m_i) (S_i + \beta_i x)`.

    Before anything is written, the step checks that every value the updates
    are computed from is finite: the error, the input :math:`x`, the
    feedback (through :math:`\nu`), :math:`F e`, :math:`G'(J)` (for
    derivatives that are not nengo_fa's own), and :math:`\delta` together
    with :math:`S x` (one dot product, :math:`\delta \cdot S x`, which is
    not finite if either holds NaN or inf). If one is not, it raises a
    `~nengo.exceptions.SimulationError` naming the signal and where it came
    from, having set its outputs to "no update". The bounds (and
    :math:`c` capped at the largest finite number) keep every output finite
    otherwise; the first step that a bound cuts short raises a
    `.StableRangeWarning`.

    :math:`g_{min}` and :math:`g_{max}` are ``MIN_GAIN_FRACTION`` and
    ``MAX_GAIN_FRACTION`` times :math:`\hat g`; :math:`\theta` and
    :math:`\iota_{max}` are described in `.RuleConstants`.
    :math:`S_i \cdot x`, which :math:`m_i` needs, is :math:`J_i - b_i` when
    nothing but the encoders and the bias drives the neurons
    (``constants.from_current``), :math:`J_i - b_i - o_i` when one other
    operator adds to the current and sets :math:`o` to what it added
    (``current_offset``: `.TraceRule`'s top-down nudge), and is computed from
    :math:`S` otherwise.

    With ``seen`` (a ``Lowpass`` ``pre_synapse``, decay
    :math:`a` = ``constants.pre_decay``), the step first filters what it
    pairs with the error, :math:`\bar J \leftarrow a \bar J + (1 - a) J`
    and :math:`\bar x \leftarrow a \bar x + (1 - a) x` (Nengo's
    ``Lowpass``, from the step's own value on), and takes :math:`J` and
    :math:`x` above to be these. :math:`S \bar x` is then kept from step to
    step: the encoder update took :math:`S` to
    :math:`\mathrm{diag}(\alpha) S + \beta \bar x_{prev}^T`, so

    .. math:: S \bar x \leftarrow a \left(\alpha \odot S \bar x_{prev}
              + \beta \, |\bar x_{prev}|^2\right) + (1 - a) (J - b)

    with ``constants.from_current`` (one pass over :math:`n` values, not
    over :math:`S`), and is computed from :math:`S` otherwise. A row that
    the update scaled up (:math:`\alpha_i > 1`, at the gain floor) would
    carry a rounding error on times :math:`a \alpha_i` a step: its
    :math:`S_i \cdot \bar x` is measured from :math:`S` instead.

    When :math:`\kappa_g = \kappa_E`, :math:`g_i' = m_i` and the scale
    :math:`g_i' / m_i` is exactly 1 for every neuron whose gain stays above
    :math:`g_{min}`: the update of :math:`S` is then a single rank-1 update,
    plain gradient descent on :math:`S`.

    With the in-place update (``encoders_factors``) and ``constants.compiled``,
    the step runs as compiled loops (`nengo_fa.builder.kernels`): the
    derivative's own (`nengo_fa.neurons.Derivative.compiled_form`), the
    checks and the feedback error, then all the per-neuron stages (only the
    local error and the bias step where neither encoders nor gains learn,
    e.g. with ``modifies="weights"``). Otherwise
    every stage is numpy code (`nengo_fa.builder.stages.NumpyStep`), with the
    same results up to rounding.

    Parameters
    ----------
    error : Signal
        The error :math:`e`, shape ``(d_out,)``.
    feedback : Signal or FeedbackError
        :math:`F`, shape ``(n, d_out)``, or :math:`F^T` (shape
        ``(d_out, n)``) when ``constants.transpose_feedback``; or, for a
        live feedback whose own operator gives the *feedback error*,
        :math:`F e` and :math:`\nu` (a `.FeedbackError`): then the step does
        not read :math:`F`.
    ensemble : EnsembleSignals
        The signals of the hidden ensemble.
    outputs : RuleOutputs
        The signals the operator updates, applied on the next step by
        ``Copy(..., inc=True)`` or `.SimHiddenLayerEncoderUpdate`.
    derivative : callable
        ``derivative(J, out)`` writes :math:`G'(J)` into ``out`` (a
        `nengo_fa.neurons.Derivative` for the built-in neuron types).
    neuron_type : NeuronType
        The hidden ensemble's neuron type (for NengoDL's builder).
    constants : RuleConstants
        The build-time constants.
    tag : str, optional
        A label associated with the operator, for debugging purposes.
    error_source : str, optional
        Where the error comes from, for error messages.
    row_norms : Signal, optional
        :math:`|S_i|`, set by the `.SimHiddenLayerEncoderUpdate` that also
        encodes, for the gains the step measures below float64; without it
        the step computes them.
    seen : (Signal, Signal, Signal), optional
        The step's own state with a ``Lowpass`` ``pre_synapse``:
        :math:`\bar J` ``(n,)``, :math:`\bar x` ``(d,)`` and
        :math:`S \bar x` ``(n,)``, filtered by the step itself (see above).
    current_offset : Signal, optional
        :math:`o` ``(n,)``, with :math:`J = S x + b + o` (see above); only
        without ``seen`` and ``constants.from_current``.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[error, feedback, current, x, scaled_encoders, gain, bias]``
       (``feedback``: ``fe, nu`` with a `.FeedbackError`), plus ``row_norms``
       and then ``current_offset`` if given
    4. updates ``[delta, gain_delta, bias_delta, encoders_delta]``, or
       ``[delta, gain_delta, bias_delta, alpha, beta, x]`` with
       ``encoders_factors``, then the three signals of ``seen`` if given
    """

    def __init__(
        self,
        error,
        feedback,
        ensemble,
        outputs,
        derivative,
        neuron_type,
        constants,
        tag,
        error_source="the connections into its error",
        row_norms=None,
        seen=None,
        current_offset=None,
    ):
        super().__init__(tag=tag)
        self.error_source = error_source
        self.derivative = derivative
        self.neuron_type = neuron_type
        self.constants = constants
        if (seen is None) != (constants.pre_decay == 0):
            raise ValueError("give 'seen' exactly when constants.pre_decay > 0")
        self.sets = []
        self.incs = []
        given = isinstance(feedback, FeedbackError)
        self.reads = [error] + (list(feedback) if given else [feedback])
        # where the ensemble's signals start in reads
        self._ens = len(self.reads)
        self.reads += list(ensemble)
        self._row_norms = row_norms is not None
        if row_norms is not None:
            self.reads.append(row_norms)
        if current_offset is not None and (seen is not None or constants.from_current):
            raise ValueError("'current_offset' needs no 'seen' and no from_current")
        self._offset = current_offset is not None
        if current_offset is not None:
            self.reads.append(current_offset)
        self.factored = outputs.encoders_factors is not None
        if self.factored == (outputs.encoders_delta is not None):
            raise ValueError("give either 'encoders_delta' or 'encoders_factors'")
        self.updates = list(outputs[:3]) + (
            list(outputs.encoders_factors)
            if self.factored
            else [outputs.encoders_delta]
        )
        # the filter's state, carried from step to step
        self._seen = seen is not None
        if seen is not None:
            self.updates += list(seen)

    @property
    def error(self):
        return self.reads[0]

    @property
    def feedback(self):
        """:math:`F` (or :math:`F^T`), or None with a `.FeedbackError`."""
        return self.reads[1] if self._ens == 2 else None

    @property
    def feedback_error(self):
        """The `.FeedbackError` the step reads instead of :math:`F`, or None."""
        return FeedbackError(*self.reads[1:3]) if self._ens == 3 else None

    @property
    def current(self):
        return self.reads[self._ens]

    @property
    def x(self):
        return self.reads[self._ens + 1]

    @property
    def scaled_encoders(self):
        return self.reads[self._ens + 2]

    @property
    def gain(self):
        return self.reads[self._ens + 3]

    @property
    def bias(self):
        return self.reads[self._ens + 4]

    @property
    def row_norms(self):
        return self.reads[self._ens + 5] if self._row_norms else None

    @property
    def current_offset(self):
        """:math:`o`, with :math:`J = S x + b + o`, or None."""
        return self.reads[-1] if self._offset else None

    @property
    def seen(self):
        """:math:`(\\bar J, \\bar x, S \\bar x)`, the step's filter state, or
        None (see ``constants.pre_decay``)."""
        return tuple(self.updates[-3:]) if self._seen else None

    @property
    def delta(self):
        return self.updates[0]

    @property
    def gain_delta(self):
        return self.updates[1]

    @property
    def bias_delta(self):
        return self.updates[2]

    @property
    def encoders_delta(self):
        return None if self.factored else self.updates[3]

    @property
    def encoders_factors(self):
        return tuple(self.updates[3:6]) if self.factored else None

    @property
    def transpose_feedback(self):
        return self.constants.transpose_feedback

    @property
    def projection_from_current(self):
        """Whether :math:`S x` is read as :math:`J - b` (see `.RuleConstants`)."""
        return self.constants.from_current

    @property
    def _descstr(self):
        feedback = self.feedback or self.feedback_error.fe
        return f"error={self.error}, feedback={feedback} -> {self.delta}"

    def make_step(self, signals, dt, rng):
        numpy_step = stages.NumpyStep(self, signals)
        use_kernels = self.factored and self.constants.compiled and kernels.AVAILABLE
        if not use_kernels:
            return numpy_step.step_simhiddenlayerrule
        if not self.constants.learns_encoders:
            # modifies="weights", or biases only
            return stages.compiled_local_step(self, signals, numpy_step)
        return stages.compiled_step(self, signals, numpy_step)
