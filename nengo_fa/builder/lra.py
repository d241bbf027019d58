r"""Local representation alignment (`.LRA`): its feedback source and operator.

`.LRA` is `.FeedbackAlignment` whose feedback error is not :math:`B e` but
the Cauchy error between the neurons' activity and a target activity
(`.SimLRATarget`). The rule reads it through a `.FeedbackError`, as it reads
learned feedback, so every update, bound, chain and backend of
`.SimHiddenLayerRule` is shared with the other rules.
"""

import math

import numpy as np
from nengo.builder import Operator, Signal
from nengo.exceptions import BuildError, SimulationError
from nengo.neurons import RatesToSpikesNeuronType
from nengo.rc import rc

from nengo_fa import settings
from nengo_fa.builder import kernels
from nengo_fa.builder.feedback_sources import FixedFeedback, register_feedback_source
from nengo_fa.builder.hidden_layer import feedback_error_signals
from nengo_fa.builder.numerics import blocked_dot, rms_row_norm
from nengo_fa.learning_rules import LRA
from nengo_fa.neurons import InterpolatedDerivative

#: the table of :math:`G(J)` that `.SimLRATarget` interpolates has this many
#: points per unit of the smallest gain (how far that neuron's current moves
#: as its input moves by one radius, half its range)...
RATE_TABLE_RESOLUTION = 2000
#: ... and at least `RATE_TABLE_MIN_POINTS`, at most `RATE_TABLE_MAX_POINTS`
#: points over the currents the ensemble reaches (``neuron_type.rates`` of
#: the spiking types that have no closed form, e.g. Izhikevich, takes about
#: 80 us a point)
RATE_TABLE_MIN_POINTS = 2001
#: (see `RATE_TABLE_MIN_POINTS`)
RATE_TABLE_MAX_POINTS = 20001


class RateTable:
    r"""The neurons' rate response :math:`G(J)`, tabulated at build time on
    the evenly spaced currents ``J`` from ``neuron_type.rates`` (times the
    amplitude of a spiking wrapper) and interpolated linearly, clamped at the
    ends.

    Attributes
    ----------
    currents : ndarray
        ``J``.
    J0, dJ : float
        The first current of the table and its spacing.
    values : ndarray
        :math:`G` at the table's currents.
    """

    def __init__(self, neuron_type, J):
        J = np.asarray(J, dtype=float)
        n_points, lo, hi = len(J), J[0], J[-1]
        rates = np.asarray(neuron_type.rates(J, np.ones(1), np.zeros(1)), dtype=float)
        rates = rates.reshape(-1)
        if isinstance(neuron_type, RatesToSpikesNeuronType):
            rates = rates * neuron_type.amplitude  # `rates` leaves it out
        if rates.size != n_points or not np.all(np.isfinite(rates)):
            raise BuildError(
                f"{neuron_type}.rates is not finite on the currents "
                f"[{lo:.3g}, {hi:.3g}]; LRA cannot tabulate its rate response"
            )
        self.currents = J
        self.J0 = float(lo)
        self.dJ = float((hi - lo) / (n_points - 1))
        self.values = rates

    def interpolator(self, n):
        """``f(J, out)``: :math:`G(J)` for ``n`` neurons, without allocating."""
        return InterpolatedDerivative(self.currents, self.values, n)


def rate_table(neuron_type, gain, bias, gain_scale, target_step, cauchy_scale, theta):
    """The `RateTable` for an ensemble: the currents its neurons reach
    (:math:`b \\pm 1.5 g`), widened by the largest target displacement
    that still counts (:math:`\\beta \\hat g` times a few :math:`\\sigma`),
    `RATE_TABLE_RESOLUTION` points per smallest gain (within the bounds on
    the points), with a point on the firing threshold ``theta``, where
    :math:`G` has its kink (rectified linear neurons are then exact)."""
    gain = np.abs(gain)
    reach = 1.5 * gain
    margin = 4 * target_step * gain_scale * max(cauchy_scale, 1.0)
    lo = float(np.min(bias - reach)) - margin
    hi = float(np.max(bias + reach)) + margin
    positive = gain[gain > 0]
    finest = float(np.min(positive)) if positive.size else gain_scale
    span = hi - lo
    dJ = min(
        max(finest / RATE_TABLE_RESOLUTION, span / (RATE_TABLE_MAX_POINTS - 1)),
        span / (RATE_TABLE_MIN_POINTS - 1),
    )
    if not lo < theta < hi:
        theta = lo
    # theta itself is a point (not one rounding error above it, where an LIF
    # neuron already fires at a couple of Hz)
    below = math.ceil((theta - lo) / dJ)
    above = math.ceil((hi - theta) / dJ)
    return RateTable(neuron_type, theta + dJ * np.arange(-below, above + 1))


@register_feedback_source(LRA)
class LRATargets(FixedFeedback):
    """`.LRA`'s source: the fixed random :math:`B` of `.FeedbackAlignment`,
    and a `.SimLRATarget` that turns :math:`B e` into the Cauchy error
    between the activities and their targets, read by the rule as its
    *feedback error*."""

    needs_feedback = True  # its targets are displaced along B e / nu_B

    def build(self, ctx, ready):
        model, lra, ens = ctx.model, ctx.rule_type, ctx.ens
        feedback = self.sample(ctx)
        feedback_error = feedback_error_signals(ctx.prefix, ens.n_neurons)
        built = model.params[ens]
        table = rate_table(
            ens.neuron_type,
            built.gain,
            built.bias,
            ctx.gain_scale,
            lra.target_step,
            lra.cauchy_scale,
            ctx.threshold,
        )
        # the targets are those of the current the rule pairs the error with,
        # filtered as the rule filters it (its own copy of that filter)
        seen = None
        if ctx.pre_decay > 0:
            seen = Signal(
                np.zeros(ens.n_neurons, dtype=rc.float_dtype),
                name=f"{ctx.prefix}: LRA current_seen",
            )
        model.add_op(
            SimLRATarget(
                ctx.error,
                ctx.current,
                model.sig[ctx.rule]["feedback"],
                feedback_error,
                table,
                ctx.derivative,
                ens.neuron_type,
                LRAConstants(
                    feedback_norm=rms_row_norm(feedback, ens.n_neurons),
                    gain_scale=ctx.gain_scale,
                    derivative_scale=ctx.derivative_scale,
                    target_step=lra.target_step,
                    cauchy_scale=lra.cauchy_scale,
                    max_local_error=lra.max_local_error,
                    pre_decay=ctx.pre_decay,
                ),
                tag=f"{ctx.prefix}: targets",
                compiled=settings.compiled_kernels(),
                seen=seen,
            )
        )
        ready(model.sig[ctx.rule]["feedback"], False, feedback_error)
        self.build_alignment(ctx, None)
        return feedback


class LRAConstants:
    """The build-time constants of a `.SimLRATarget` (see `.LRA`)."""

    __slots__ = (
        "feedback_norm",
        "gain_scale",
        "derivative_scale",
        "target_step",
        "cauchy_scale",
        "max_local_error",
        "pre_decay",
    )

    def __init__(self, **values):
        for key in self.__slots__:
            setattr(self, key, float(values[key]))

    def __getstate__(self):
        return {key: getattr(self, key) for key in self.__slots__}

    def __setstate__(self, state):
        for key, value in state.items():
            setattr(self, key, value)


class SimLRATarget(Operator):
    r"""Set `.LRA`'s feedback error: the Cauchy error between the neurons'
    activity and their target activity.

    Implements, with :math:`u = B e / \nu_B`,

    .. math::

       m = \frac{G(J) - G(J - \beta \hat g u)}{\hat g \bar{G'}}, \quad
       \psi = \frac{m}{1 + (m/\sigma)^2}, \quad
       fe = \lambda \psi, \quad
       \lambda = \min\left(1, \frac{c \bar{G'}}
                 {\mathrm{rms}(\psi \odot G'(J))}\right)

    and :math:`\nu = 1` (``fe`` is already normalised). :math:`G` is
    interpolated in a `RateTable`. :math:`J` is the current the rule pairs
    the error with: ``current`` as it is, or, with ``seen``, filtered as the
    rule's step filters it, :math:`\bar J \leftarrow a \bar J + (1 - a)
    J` (:math:`a` = ``constants.pre_decay``), so that the bound holds for
    the local error :math:`\psi \odot G'(\bar J)` the rule forms.

    Parameters
    ----------
    error : Signal
        The rule's error :math:`e`.
    current : Signal
        The current the rule pairs the error with, before the rule's own
        filter (`.RuleBuild`'s ``current``).
    feedback : Signal
        The fixed :math:`B`, shape ``(n, error_size)``.
    feedback_error : FeedbackError
        Output: :math:`fe` and :math:`\nu`.
    table : RateTable
        :math:`G(J)`.
    derivative : callable
        ``derivative(J, out)`` writes :math:`G'(J)` into ``out``.
    neuron_type : NeuronType
        The ensemble's neuron type (for NengoDL's builder).
    constants : LRAConstants
        :math:`\nu_B, \hat g, \bar{G'}, \beta, \sigma, c, a`.
    tag : str, optional
        A label associated with the operator, for debugging purposes.
    compiled : bool, optional
        Whether to interpolate :math:`G` and evaluate :math:`G'` with their
        compiled loops (`nengo_fa.builder.kernels.derivative_loop`), and do
        the rest in two more (`nengo_fa.builder.kernels.lra_target` and
        `nengo_fa.builder.kernels.lra_error`; the ``compiled_kernels``
        setting when the model was built).
    seen : Signal, optional
        :math:`\bar J` (``n``), with a ``pre_decay`` above 0.

    Notes
    -----
    1. sets ``[fe, nu]``
    2. incs ``[]``
    3. reads ``[error, current, feedback]``
    4. updates ``[]``, or ``[seen]``
    """

    def __init__(
        self,
        error,
        current,
        feedback,
        feedback_error,
        table,
        derivative,
        neuron_type,
        constants,
        tag=None,
        compiled=False,
        seen=None,
    ):
        super().__init__(tag=tag)
        self.compiled = compiled
        self.table = table
        self.derivative = derivative
        self.neuron_type = neuron_type
        self.constants = constants
        self.sets = list(feedback_error)
        self.incs = []
        self.reads = [error, current, feedback]
        self.updates = [] if seen is None else [seen]

    @property
    def error(self):
        return self.reads[0]

    @property
    def current(self):
        return self.reads[1]

    @property
    def feedback(self):
        return self.reads[2]

    @property
    def seen(self):
        return self.updates[0] if self.updates else None

    @property
    def fe(self):
        return self.sets[0]

    @property
    def nu(self):
        return self.sets[1]

    @property
    def _descstr(self):
        return f"error={self.error}, current={self.current} -> {self.fe}"

    def make_step(self, signals, dt, rng):
        e = signals[self.error]
        J = signals[self.current]
        B = signals[self.feedback]
        fe = signals[self.fe]
        nu = signals[self.nu]
        n = len(fe)
        c = self.constants
        # u = B e / nu_B, then the target current J - beta g u, in one factor
        shift = -c.target_step * c.gain_scale / c.feedback_norm
        to_error = 1.0 / (c.gain_scale * c.derivative_scale)
        inv_sigma = 1.0 / c.cauchy_scale
        bound = c.max_local_error * c.derivative_scale * math.sqrt(n)
        rate = self._loop(self.table.interpolator(n))
        derivative = self._loop(self.derivative)
        target, activity, gp = (np.empty(n, dtype=fe.dtype) for _ in range(3))
        tag = self.tag
        J_seen = None if self.seen is None else signals[self.seen]
        a = c.pre_decay

        def step_simlratarget():
            finite = math.isfinite(blocked_dot(e, e) + blocked_dot(J, J))
            if not finite and not (np.all(np.isfinite(e)) and np.all(np.isfinite(J))):
                raise SimulationError(
                    f"{tag}: the error or the neurons' input current contains "
                    "NaN or inf; nothing was changed"
                )
            if J_seen is None:
                J_paired = J
            else:
                # as the rule's step filters it (`NumpyStep.filter_inputs`)
                np.multiply(J_seen, a, out=J_seen)
                np.multiply(J, 1 - a, out=gp)
                np.add(J_seen, gp, out=J_seen)
                J_paired = J_seen
            np.dot(B, e, out=target)
            np.multiply(target, shift, out=target)
            np.add(target, J_paired, out=target)  # the target current
            rate(J_paired, activity)
            rate(target, target)
            np.subtract(activity, target, out=fe)
            np.multiply(fe, to_error, out=fe)  # m
            np.multiply(fe, inv_sigma, out=target)
            np.square(target, out=target)
            np.add(target, 1.0, out=target)
            np.divide(fe, target, out=fe)  # psi
            derivative(J_paired, gp)
            np.multiply(gp, fe, out=gp)
            norm = math.sqrt(blocked_dot(gp, gp))
            if norm > bound:
                np.multiply(fe, bound / norm, out=fe)
            nu[0] = 1.0

        if not (self.compiled and kernels.AVAILABLE):
            return step_simlratarget
        BT = np.ascontiguousarray(B.T)  # B is fixed
        pre = kernels.compiled(kernels.lra_target)
        post = kernels.compiled(kernels.lra_error)
        seen = np.zeros(0, dtype=fe.dtype) if J_seen is None else J_seen
        J_paired = J if J_seen is None else J_seen

        def step_simlratarget_compiled():
            if not pre(e, J, BT, seen, a, shift, target):
                step_simlratarget()  # raises: e or J is not finite
                return
            rate(J_paired, activity)
            rate(target, target)
            derivative(J_paired, gp)
            post(activity, target, gp, fe, to_error, inv_sigma, bound)
            nu[0] = 1.0

        return step_simlratarget_compiled

    def _loop(self, function):
        """``function(J, out)``, or its compiled loop where there is one."""
        return kernels.derivative_call(function) if self.compiled else function
