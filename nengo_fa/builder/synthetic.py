r"""Synthetic gradients (`.SyntheticGradient`): the predictor operator and the
rule's feedback source.

The rule is built like every `.HiddenLayerRule` (`nengo_fa.builder.rule`);
its feedback source adds a `.SimSyntheticGradient`, which sets the rule's
*feedback error* (`.FeedbackError`) to the predicted :math:`M a` instead of
the true :math:`F e`, and regresses :math:`M` on the true one whenever an
error arrives.
"""

import math
import warnings

import numpy as np
from nengo.builder import Operator, Signal
from nengo.builder.ensemble import get_activities
from nengo.builder.learning_rules import build_or_passthrough
from nengo.exceptions import BuildError, NengoWarning, SimulationError
from nengo.rc import rc

from nengo_fa import settings
from nengo_fa.builder import kernels
from nengo_fa.builder.deferred import when_built
from nengo_fa.builder.feedback_sources import (
    FeedbackSource,
    check_downstream,
    diagnostics_probed,
    downstream_weights,
    fixed_feedback,
    register_feedback_source,
)
from nengo_fa.builder.hidden_layer import FeedbackError, feedback_error_signals
from nengo_fa.builder.numerics import angle, rms_row_norm
from nengo_fa.learning_rules import SyntheticGradient

#: The `SimSyntheticGradient` state signals, by their key in ``model.sig[rule]``.
STATE_KEYS = ("predictor", "input_buffer", "current_buffer", "since")
#: Its diagnostics, probeable, by their key in ``model.sig[rule]``.
DIAGNOSTIC_KEYS = ("true_delta", "predictor_error", "prediction_angle")
#: The error of a step whose error or true feedback error is not finite.
NOT_FINITE = (
    "{tag}: the error (or the feedback F e) contains NaN or inf; "
    "the synthetic-gradient predictor was not changed"
)


class SimSyntheticGradient(Operator):
    r"""Predict a rule's feedback error and learn the predictor.

    Implements, with the notation of `.SyntheticGradient`, each step:

    1. *buffer*: push the predictor's input :math:`z(t) = [a(t); s c(t)]`
       (the filtered activities, and the context scaled by
       :math:`s = \sqrt{\bar A^2 / k}` if there is one) and the current
       :math:`J(t)` into buffers of ``K + 1`` rows; the oldest row is
       :math:`z_\tau, J_\tau` (:math:`\tau = K \Delta t`);
    2. *availability*: the step carries an error if any component of
       :math:`e(t)` is nonzero; ``since`` counts the steps since the last one
       that did;
    3. *prediction*: the rule's feedback error is :math:`M z(t)` while
       ``since`` :math:`\le` ``gap``, else 0; :math:`\nu` is the RMS row norm
       of the true :math:`F`;
    4. *regression*, on steps with an error: :math:`g = F e(t)`,
       :math:`r = M z_\tau - g`, :math:`M \leftarrow M - c \, r z_\tau^T`
       with :math:`c = \kappa_M \Delta t / \max(|z_\tau|^2, \bar Z^2)`
       (:math:`\bar Z^2 = \bar A^2`, or :math:`2 \bar A^2` with a
       context: the step is normalised by the typical power of :math:`z`,
       and by its own where it is larger, so that it stays stable,
       :math:`c |z_\tau|^2 \le \kappa_M \Delta t`, whatever the gains
       grow to), and the diagnostics
       from :math:`G'(J_\tau)`.

    With ``factored`` (a fixed :math:`F`), the operator keeps :math:`M` as
    :math:`F P`, :math:`P` ``(d_out, n + k)``: :math:`M` starts at 0 and each
    update, :math:`-c \, (M z_\tau - F e) z_\tau^T = F \, (-c \, (P
    z_\tau - e) z_\tau^T)`, is :math:`F` times one of :math:`P`, so
    :math:`M = F P` holds at every step, exactly: the prediction is
    :math:`F (P z)` and the regression :math:`P \leftarrow P - c \, (P
    z_\tau - e) z_\tau^T`, :math:`O(n \, d_{out})` a step instead of the
    :math:`O(n (n + k))` of :math:`M`. The same results up to rounding.

    Parameters
    ----------
    error : Signal
        :math:`e` ``(d_out,)``.
    feedback : Signal
        :math:`F` ``(n, d_out)``, or :math:`F^T` with ``transposed``.
    activities, current : Signal
        :math:`a` and :math:`J` ``(n,)``.
    context : Signal or None
        :math:`c` ``(k,)``, or None.
    state : tuple of Signal
        :math:`M` ``(n, n + k)`` (with ``factored``, :math:`P` ``(d_out, n +
        k)``), the buffers of :math:`z` ``(K + 1, n + k)``
        and :math:`J` ``(K + 1, n)``, and ``since`` ``(1,)``, in the order of
        `STATE_KEYS`.
    diagnostics : tuple of Signal
        ``true_delta`` ``(n,)``, ``predictor_error`` and ``prediction_angle``
        ``(1,)``.
    feedback_error : FeedbackError
        The rule's :math:`F e` (here :math:`M a`) and :math:`\nu`, set.
    derivative : callable
        ``derivative(J, out)``, :math:`G'(J)`.
    neuron_type : NeuronType
        The hidden ensemble's neuron type (for NengoDL's builder).
    rate : float
        :math:`\kappa_M \Delta t`.
    power : float
        :math:`\bar Z^2`.
    context_scale : float
        :math:`s`.
    gap : int
        ``max_gap`` in steps.
    transposed : bool
        Whether ``feedback`` holds :math:`F^T` (live weights).
    factored : bool, optional
        Whether the predictor is kept as :math:`P` (above); only for a fixed
        :math:`F` (not ``transposed``).
    compiled : bool, optional
        Whether a factored predictor's step runs in compiled loops
        (`nengo_fa.builder.kernels.synthetic_predict` and
        `nengo_fa.builder.kernels.synthetic_update`; the ``compiled_kernels``
        setting when the model was built).
    tag : str, optional
        A label, for debugging and error messages.

    Notes
    -----
    1. sets ``[fe, nu]``
    2. incs ``[]``
    3. reads ``[error, feedback, activities, current]``, plus ``context``
    4. updates ``[predictor, input_buffer, current_buffer, since,
       true_delta, predictor_error, prediction_angle]``
    """

    def __init__(
        self,
        error,
        feedback,
        activities,
        current,
        context,
        state,
        diagnostics,
        feedback_error,
        derivative,
        neuron_type,
        rate,
        power,
        context_scale,
        gap,
        transposed,
        factored=False,
        compiled=False,
        tag=None,
    ):
        super().__init__(tag=tag)
        self.compiled = bool(compiled)
        if factored and transposed:
            raise ValueError("a factored predictor needs a fixed feedback")
        self.factored = bool(factored)
        self.derivative = derivative
        self.neuron_type = neuron_type
        self.rate = float(rate)
        self.power = float(power)
        self.context_scale = float(context_scale)
        self.gap = int(gap)
        self.transposed = bool(transposed)
        self.sets = list(feedback_error)
        self.incs = []
        self.reads = [error, feedback, activities, current]
        if context is not None:
            self.reads.append(context)
        self.updates = list(state) + list(diagnostics)

    error = property(lambda self: self.reads[0])
    feedback = property(lambda self: self.reads[1])
    activities = property(lambda self: self.reads[2])
    current = property(lambda self: self.reads[3])
    context = property(lambda self: self.reads[4] if len(self.reads) > 4 else None)
    predictor = property(lambda self: self.updates[0])
    input_buffer = property(lambda self: self.updates[1])
    current_buffer = property(lambda self: self.updates[2])
    since = property(lambda self: self.updates[3])
    true_delta = property(lambda self: self.updates[4])
    predictor_error = property(lambda self: self.updates[5])
    prediction_angle = property(lambda self: self.updates[6])

    @property
    def feedback_error(self):
        """The `.FeedbackError` this operator sets."""
        return FeedbackError(*self.sets)

    @property
    def delay_steps(self):
        """``K``, the error's delay in steps."""
        return self.input_buffer.shape[0] - 1

    @property
    def _descstr(self):
        return f"M {self.activities} -> {self.sets[0]}, learning from {self.error}"

    def _arrays(self, signals):
        """The arrays of the signals: ``e, F, a, J, c`` (None without a
        context), the state and diagnostics (`STATE_KEYS`,
        `DIAGNOSTIC_KEYS`), then ``fe, nu``."""
        reads = [signals[sig] for sig in self.reads[:4]]
        c = None if self.context is None else signals[self.context]
        updates = [signals[sig] for sig in self.updates]
        return (*reads, c, *updates, *(signals[sig] for sig in self.sets))

    def make_step(self, signals, dt, rng):
        if self.factored and self.compiled and kernels.AVAILABLE:
            return self._compiled_step(signals)
        e, F, a, J, c, M, zbuf, jbuf, since, *rest = self._arrays(signals)
        true_delta, pred_error, prediction_angle, fe, nu = rest
        n = a.shape[0]
        g, pred, gp, r = (np.zeros(n, dtype=M.dtype) for _ in range(4))
        outer = np.zeros_like(M)  # (the shape of P, with factored)
        z = np.zeros(M.shape[1], dtype=M.dtype)
        rate, power = self.rate, self.power
        gap, transposed = self.gap, self.transposed
        s = self.context_scale
        derivative, tag = self.derivative, self.tag
        factored = self.factored
        if factored:
            d_out = M.shape[0]
            pz, rho = np.zeros(d_out, dtype=M.dtype), np.zeros(d_out, dtype=M.dtype)

        def regress(z_tau, g):
            """``pred`` (:math:`M z_\\tau`) and ``r`` (:math:`M z_\\tau -
            g`), and with ``factored`` ``rho`` (:math:`P z_\\tau - e`)."""
            if factored:
                np.dot(M, z_tau, out=pz)
                np.subtract(pz, e, out=rho)
                np.dot(F, pz, out=pred)
                np.dot(F, rho, out=r)
            else:
                np.dot(M, z_tau, out=pred)
                np.subtract(pred, g, out=r)

        def update(z_tau):
            # normalised LMS: M -= c r z_tau^T (P -= c rho z_tau^T)
            step = rate / max(np.dot(z_tau, z_tau), power)
            residual = rho if factored else r
            np.multiply(residual, step, out=residual)
            np.outer(residual, z_tau, out=outer)
            np.subtract(M, outer, out=M)

        def step_simsyntheticgradient():
            # buffer: the oldest row is the state the error belongs to
            z[:n] = a
            if c is not None:
                np.multiply(c, s, out=z[n:])
            zbuf[:-1] = zbuf[1:]
            zbuf[-1] = z
            jbuf[:-1] = jbuf[1:]
            jbuf[-1] = J
            available = bool(np.any(e != 0))
            since[0] = 0 if available else since[0] + 1
            nu[0] = rms_row_norm(F, n)
            if since[0] > gap:
                fe[...] = 0
            elif factored:
                np.dot(F, np.dot(M, z, out=pz), out=fe)
            else:
                np.dot(M, z, out=fe)
            if not available:
                return
            if transposed:
                np.dot(e, F, out=g)
            else:
                np.dot(F, e, out=g)
            if not math.isfinite(np.dot(g, g)):
                raise SimulationError(NOT_FINITE.format(tag=tag))
            z_tau = zbuf[0]
            regress(z_tau, g)
            # diagnostics, in the local-error space of the state at t - tau
            derivative(jbuf[0], gp)
            np.multiply(g, gp, out=true_delta)
            np.multiply(pred, gp, out=pred)
            ref = math.sqrt(np.dot(true_delta, true_delta))
            prediction_angle[0] = angle(
                np.dot(pred, true_delta), math.sqrt(np.dot(pred, pred)), ref
            )
            np.multiply(r, gp, out=gp)
            pred_error[0] = math.sqrt(np.dot(gp, gp)) / ref if ref > 0 else math.nan
            update(z_tau)

        return step_simsyntheticgradient

    def _compiled_step(self, signals):
        """The step with a factored predictor in compiled loops (:math:`F`,
        and so :math:`\\nu`, is fixed)."""
        e, F, a, J, c, P, zbuf, jbuf, since, *rest = self._arrays(signals)
        true_delta, pred_error, prediction_angle, fe, nu = rest
        c = np.zeros(0, dtype=P.dtype) if c is None else c
        n, d_out = a.shape[0], P.shape[0]
        g, pred, gp, r = (np.zeros(n, dtype=P.dtype) for _ in range(4))
        pz, rho = np.zeros(d_out, dtype=P.dtype), np.zeros(d_out, dtype=P.dtype)
        nu_value = rms_row_norm(F, n)
        FT = np.ascontiguousarray(F.T)  # F is fixed
        predict = kernels.compiled(kernels.synthetic_predict)
        finish = kernels.compiled(kernels.synthetic_update)
        derivative = kernels.derivative_call(self.derivative)
        s, gap, rate, power = self.context_scale, self.gap, self.rate, self.power
        tag = self.tag
        outputs = np.zeros(2)
        args = (e, FT, P, a, c, s, J, zbuf, jbuf, since, gap, fe, g, pz, rho, pred, r)

        def step_simsyntheticgradient_compiled():
            code = predict(*args)
            nu[0] = nu_value
            if code == 0:
                return
            if code < 0:
                raise SimulationError(NOT_FINITE.format(tag=tag))
            derivative(jbuf[0], gp)
            finish(g, gp, pred, r, rho, P, zbuf[0], rate, power, true_delta, outputs)
            pred_error[0], prediction_angle[0] = outputs

        return step_simsyntheticgradient_compiled


@register_feedback_source(SyntheticGradient)
class SyntheticFeedback(FeedbackSource):
    """The predicted feedback error of a `.SyntheticGradient`, set by a
    `.SimSyntheticGradient` that regresses it on the true one: a fixed random
    :math:`F`, or the live :math:`W^T` of ``downstream``."""

    def build(self, ctx, ready):
        model, rule, ens, sg = ctx.model, ctx.rule, ctx.ens, ctx.rule_type
        n = ens.n_neurons
        if sg.modifies != "encoders":
            raise BuildError(f"{ctx.prefix}: only modifies='encoders' is supported")
        check_error_synapses(ctx)
        feedback_error = feedback_error_signals(ctx.prefix, n)
        # M = F P with a fixed F, unless a probe reads M itself
        factored = sg.downstream is None and not diagnostics_probed(
            model, rule, ("predictor",)
        )
        state, diagnostics = self.signals(ctx, factored)
        activities = build_or_passthrough(
            model, sg.pre_synapse, model.sig[ens.neurons]["out"]
        )
        a_sq = activity_scale(model, ens)
        context = None if sg.context is None else model.sig[sg.context]["out"]
        k = 0 if context is None else context.size
        rate = sg.predictor_learning_rate * model.dt
        power = a_sq * (2 if k else 1)
        context_scale = np.sqrt(a_sq / k) if k else 0.0
        gap = int(round(sg.max_gap / model.dt))

        def add_operator(feedback, transposed):
            model.add_op(
                SimSyntheticGradient(
                    ctx.error,
                    feedback,
                    activities,
                    model.sig[ens.neurons]["in"],
                    context,
                    state,
                    diagnostics,
                    feedback_error,
                    ctx.derivative,
                    ens.neuron_type,
                    rate,
                    power,
                    context_scale,
                    gap,
                    transposed,
                    factored=factored,
                    compiled=settings.compiled_kernels(),
                    tag=ctx.prefix,
                )
            )
            ready(feedback, transposed, feedback_error)

        if sg.downstream is None:
            F = self.sample(ctx)
            model.sig[rule]["feedback"] = Signal(
                F.astype(rc.float_dtype), name=f"{ctx.prefix}:feedback", readonly=True
            )
            add_operator(model.sig[rule]["feedback"], False)
            return F

        down = sg.downstream
        check_downstream(model, ctx.prefix, down, ens)

        def add_live():
            weights = downstream_weights(model, ctx.prefix, down, ens)
            model.sig[rule]["feedback"] = weights
            add_operator(weights, True)

        when_built(model, [down], add_live)
        return None

    @staticmethod
    def signals(ctx, factored=False):
        """The state and diagnostic signals, also in ``model.sig[rule]``
        (the predictor :math:`M`, ``n x m``, or with ``factored`` its factor
        :math:`P`, ``error_size x m``)."""
        model, rule, n = ctx.model, ctx.rule, ctx.ens.n_neurons
        sg = ctx.rule_type
        rows = int(round(sg.error_delay / model.dt)) + 1
        gap = int(round(sg.max_gap / model.dt))
        m = n + (0 if sg.context is None else sg.context.size_out)
        name = ctx.prefix

        def zeros(shape):
            return np.zeros(shape, dtype=rc.float_dtype)

        rows_M = sg.error_size if factored else n
        state = (
            Signal(zeros((rows_M, m)), name=f"{name}:predictor"),
            Signal(zeros((rows, m)), name=f"{name}:input_buffer"),
            Signal(zeros((rows, n)), name=f"{name}:current_buffer"),
            # no error yet: no synthetic updates before the first one
            Signal(zeros(1) + gap + 1, name=f"{name}:since"),
        )
        diagnostics = (
            Signal(zeros(n), name=f"{name}:true_delta"),
            Signal(zeros(1), name=f"{name}:predictor_error"),
            Signal(zeros(1), name=f"{name}:prediction_angle"),
        )
        model.sig[rule].update(zip(STATE_KEYS, state))
        model.sig[rule].update(zip(DIAGNOSTIC_KEYS, diagnostics))
        return state, diagnostics

    @staticmethod
    def sample(ctx):
        """The fixed random :math:`F` (``n x error_size``), checked: from a
        distribution, the same matrix a `.FeedbackAlignment` on the same
        connection would sample, so that the two differ only in predicted
        versus true feedback error."""
        model, sg, conn = ctx.model, ctx.rule_type, ctx.rule.connection
        return fixed_feedback(
            model, sg, conn, ctx.ens.n_neurons, ctx.prefix, nonzero=True
        )


def check_error_synapses(ctx):
    """Warn if a connection into the rule's error has a synapse: a filtered
    error is never exactly 0 once it has been nonzero, so the rule would
    take every step for one carrying an error (and go on learning after the
    error is gated off)."""
    if ctx.model.toplevel is None:
        return
    for conn in ctx.model.toplevel.all_connections:
        post = conn.post_obj
        ours = (
            getattr(post, "connection", None) is ctx.rule.connection
            and getattr(post, "learning_rule_type", None) is ctx.rule_type
        )
        if ours and conn.synapse is not None:
            warnings.warn(
                f"{ctx.prefix}: the error connection {conn} has a synapse "
                f"({conn.synapse}); a SyntheticGradient takes steps where the "
                "error is exactly 0 as missing, which a filtered error never is. "
                "Connect it with synapse=None (filter the error upstream).",
                NengoWarning,
            )


def activity_scale(model, ens):
    r""":math:`\bar A^2`, the mean of :math:`|a|^2` over ``ens``'s tuning
    curves at its evaluation points (1 if they are all silent)."""
    built = model.params[ens]
    rates = get_activities(built, ens, built.eval_points)
    scale = float(np.mean(np.sum(rates**2, axis=1)))
    return scale if scale > 0 else 1.0
