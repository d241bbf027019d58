r"""The trace rule's top-down nudge and its local error (`.TraceRule`).

A `.TraceRule` is a `.HiddenLayerRule` whose feedback source does two things
instead of giving the rule a feedback matrix to multiply the error by:

- a `SimTopDownNudge` adds the top-down nudge
  :math:`-\kappa_{td} \, \mathrm{diag}(g) B e / \nu` to the hidden neurons'
  input current (:math:`g` the build-time gains), where it changes their
  activity;
- a `SimTraceError` filters that current into the outcome :math:`J_f` and the
  expectation :math:`J_s`, and gives the rule, as its *feedback error*
  (`.FeedbackError`), :math:`p \, \nu (J_s - J_f) / (\kappa_{td} g)`
  and :math:`\nu`.

The shared `.SimHiddenLayerRule` then computes :math:`\delta` and every step
from that, exactly as for the other rules.
"""

import warnings

import numpy as np
from nengo.builder import Operator, Signal
from nengo.exceptions import NengoWarning
from nengo.rc import rc

from nengo_fa import settings
from nengo_fa.builder import kernels
from nengo_fa.builder.feedback_sources import (
    FeedbackSource,
    fixed_feedback,
    register_feedback_source,
)
from nengo_fa.builder.hidden_layer import feedback_error_signals
from nengo_fa.builder.numerics import rms_row_norm
from nengo_fa.learning_rules import TraceRule

#: A plus phase longer than this many ``slow_tau`` gets a warning: without
#: minus phases the expectation is never updated, and the rule's own changes
#: to the current, learned during the plus phase, feed back into
#: :math:`J_f - J_s` and can grow without bound (measured: a continuous
#: target at the default rates overflowed within 0.3 s on one network).
LONG_PLUS_PHASE = 20


@register_feedback_source(TraceRule)
class TopDownNudge(FeedbackSource):
    """The nudge into the hidden current, and the `SimTraceError` that reads
    the current back (`.TraceRule`)."""

    # the local error is made from the current's own traces: no synaptic
    # delay to match
    pairs_with_seen = False

    def build(self, ctx, ready):
        model, rule_type, rule, ens = ctx.model, ctx.rule_type, ctx.rule, ctx.ens
        n = ens.n_neurons
        B = self.sample(ctx)
        nu = rms_row_norm(B, n)
        # each neuron is nudged by a fraction of its own range
        gain = np.abs(np.asarray(model.params[ens].gain, dtype=np.float64))
        gain = np.broadcast_to(gain, n)
        feedback = Signal(
            B.astype(rc.float_dtype), name="TraceRule:feedback", readonly=True
        )
        model.sig[rule]["feedback"] = feedback
        current = model.sig[ens.neurons]["in"]
        if nu > 0:
            top_down = -(rule_type.nudge / nu) * gain[:, None] * B
            model.add_op(
                SimTopDownNudge(
                    Signal(
                        top_down.astype(rc.float_dtype),
                        name="TraceRule:top_down",
                        readonly=True,
                    ),
                    ctx.error,
                    current,
                    model.sig[ens]["encoders"],
                    Signal(shape=n, name="TraceRule:nudge"),
                    tag=f"{ctx.prefix}: top-down nudge",
                )
            )
        outcome = Signal(shape=n, name="TraceRule:outcome")
        expectation = Signal(shape=n, name="TraceRule:expectation")
        # -1 before the first step: the filters then start at J
        phase = Signal(np.full(1, -1.0, dtype=rc.float_dtype), name="TraceRule:phase")
        model.sig[rule]["outcome"] = outcome
        model.sig[rule]["expectation"] = expectation
        model.sig[rule]["phase"] = phase
        feedback_error = feedback_error_signals(ctx.prefix, n)
        model.add_op(
            SimTraceError(
                current,
                ctx.error,
                outcome,
                expectation,
                phase,
                feedback_error,
                fast_decay=float(np.exp(-model.dt / rule_type.fast_tau)),
                slow_decay=float(np.exp(-model.dt / rule_type.slow_tau)),
                scale=_inverse(rule_type.nudge * gain / nu) if nu > 0 else 0 * gain,
                feedback_norm=nu,
                threshold=rule_type.phase_threshold,
                tag=ctx.prefix,
                long_plus_steps=int(
                    np.ceil(LONG_PLUS_PHASE * rule_type.slow_tau / model.dt)
                ),
                compiled=settings.compiled_kernels(),
            )
        )
        ready(feedback, False, feedback_error)
        return B

    @staticmethod
    def sample(ctx):
        """Sample (or check) :math:`B`, from a stream of the connection's seed."""
        model, rule_type, conn = ctx.model, ctx.rule_type, ctx.rule.connection
        n = ctx.ens.n_neurons
        B = fixed_feedback(model, rule_type, conn, n, ctx.prefix, tag=0x7ACE)
        if not np.any(B):
            warnings.warn(
                f"{ctx.prefix}: 'feedback' is all zero, so no target reaches the "
                "hidden layer and it learns nothing",
                NengoWarning,
            )
        return B


class SimTopDownNudge(Operator):
    r"""Add `.TraceRule`'s top-down nudge to the hidden neurons' current.

    Implements :math:`J \mathrel{+}= A e`, with :math:`A = -\kappa_{td} \,
    \mathrm{diag}(g) B / \nu`, as Nengo's ``DotInc`` would (and sets
    ``nudge`` to the :math:`A e` it adds, so that the rule's step can read
    :math:`S x` as :math:`J - b - A e` where nothing else drives the
    neurons: `~nengo_fa.builder.encoder_update.current_offset`), after every
    write to the ensemble's scaled encoders :math:`S` (it lists them as
    read): the encoder update that also adds :math:`S x` to :math:`J`
    (`.SimHiddenLayerEncoderUpdate`) then always comes first. Two operators
    that add to the same signal are otherwise unordered, Nengo's optimizer
    ordered these two either way from one build to the next, and the sum
    then differed by rounding (1e-14 to 2.5e-9 after 0.3 s).

    Parameters
    ----------
    top_down : Signal
        :math:`A`, ``(n, error_size)``.
    error : Signal
        :math:`e`.
    current : Signal
        :math:`J`, ``(n,)``.
    after : Signal
        The scaled encoders :math:`S` (read only to order this operator).
    nudge : Signal
        Output: :math:`A e`, ``(n,)``.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[nudge]``
    2. incs ``[current]``
    3. reads ``[top_down, error, after]``
    4. updates ``[]``
    """

    def __init__(self, top_down, error, current, after, nudge, tag=None):
        super().__init__(tag=tag)
        self.sets = [nudge]
        self.incs = [current]
        self.reads = [top_down, error, after]
        self.updates = []

    top_down = property(lambda self: self.reads[0])
    error = property(lambda self: self.reads[1])
    current = property(lambda self: self.incs[0])
    nudge = property(lambda self: self.sets[0])

    @property
    def added_current(self):
        """``(current, nudge)``: what this operator adds to which current
        (`~nengo_fa.builder.encoder_update.current_offset`)."""
        return self.current, self.nudge

    @property
    def _descstr(self):
        return f"{self.current} += {self.top_down} . {self.error}"

    def make_step(self, signals, dt, rng):
        A, e, J, nudge = (
            signals[sig]
            for sig in (self.top_down, self.error, self.current, self.nudge)
        )

        def step_simtopdownnudge():
            np.dot(A, e, out=nudge)
            np.add(J, nudge, out=J)

        return step_simtopdownnudge


def _inverse(x):
    """1 / x, and 0 where x is 0 (a neuron of gain 0 is not nudged)."""
    out = np.zeros_like(x)
    np.divide(1.0, x, out=out, where=x > 0)
    return out


class SimTraceError(Operator):
    r"""Outcome, expectation and phase of a `.TraceRule`, and the feedback
    error that its `.SimHiddenLayerRule` reads.

    Implements, with :math:`a_f = e^{-\Delta t / \tau_f}` and
    :math:`a_s = e^{-\Delta t / \tau_s}`:

    1. *phase*: :math:`p = [\max_k |e_k| > \theta_p]`;
    2. *outcome*: :math:`J_f \leftarrow a_f J_f + (1 - a_f) J`;
    3. *expectation* (held while :math:`p = 1`):
       :math:`J_s \leftarrow a_s J_s + (1 - a_s) J` where :math:`p = 0`;
    4. *feedback error*: :math:`F e := p \, c \odot (J_s - J_f)` with
       :math:`c_i = \nu / (\kappa_{td} g_i)`, and :math:`\nu`.

    On the first step (``phase`` is -1, its initial value) both filters start
    at :math:`J`.

    Parameters
    ----------
    current : Signal
        :math:`J`, the hidden neurons' input current (after the nudge).
    error : Signal
        The rule's error :math:`e`.
    outcome, expectation : Signal
        :math:`J_f`, :math:`J_s` ``(n,)``.
    phase : Signal
        :math:`p` ``(1,)``.
    feedback_error : FeedbackError
        The signals the rule reads instead of :math:`F e` and :math:`\nu`.
    fast_decay, slow_decay : float
        :math:`a_f`, :math:`a_s`.
    scale : ndarray
        :math:`c` ``(n,)``.
    feedback_norm : float
        :math:`\nu`.
    threshold : float
        :math:`\theta_p`, ``phase_threshold``.
    tag : str, optional
        A label associated with the operator, for debugging purposes.
    long_plus_steps : int, optional
        Warn (a ``NengoWarning``, once) when a plus phase lasts this many
        steps: the rule then runs without the phases it needs
        (`LONG_PLUS_PHASE`).
    compiled : bool, optional
        Whether the filters and :math:`F e` run in one compiled loop
        (`nengo_fa.builder.kernels.trace_error`; the ``compiled_kernels``
        setting when the model was built).

    Notes
    -----
    1. sets ``[fe, nu]``
    2. incs ``[]``
    3. reads ``[current, error]``
    4. updates ``[outcome, expectation, phase]``
    """

    def __init__(
        self,
        current,
        error,
        outcome,
        expectation,
        phase,
        feedback_error,
        fast_decay,
        slow_decay,
        scale,
        feedback_norm,
        threshold,
        tag=None,
        long_plus_steps=None,
        compiled=False,
    ):
        super().__init__(tag=tag)
        self.compiled = bool(compiled)
        self.long_plus_steps = long_plus_steps
        self.fast_decay = fast_decay
        self.slow_decay = slow_decay
        self.scale = np.asarray(scale, dtype=np.float64)
        self.feedback_norm = feedback_norm
        self.threshold = threshold
        self.sets = list(feedback_error)
        self.incs = []
        self.reads = [current, error]
        self.updates = [outcome, expectation, phase]

    @property
    def current(self):
        return self.reads[0]

    @property
    def error(self):
        return self.reads[1]

    @property
    def outcome(self):
        return self.updates[0]

    @property
    def expectation(self):
        return self.updates[1]

    @property
    def phase(self):
        return self.updates[2]

    @property
    def fe(self):
        return self.sets[0]

    @property
    def nu(self):
        return self.sets[1]

    @property
    def _descstr(self):
        return f"{self.current} -> {self.fe}"

    def make_step(self, signals, dt, rng):
        J = signals[self.current]
        e = signals[self.error]
        J_f = signals[self.outcome]
        J_s = signals[self.expectation]
        phase = signals[self.phase]
        fe = signals[self.fe]
        nu = signals[self.nu]
        a_f, a_s, scale = self.fast_decay, self.slow_decay, self.scale
        threshold = self.threshold
        nu_value = self.feedback_norm
        has_error = e.shape[0] > 0
        tmp = np.empty_like(J_f)
        long_plus = self.long_plus_steps
        # a minus phase that lets the expectation settle: 3 slow_tau
        settle = max(1, int(np.ceil(3 / np.log(1 / a_s)))) if 0 < a_s < 1 else 1
        plus_steps = minus_steps = 0
        tag = self.tag

        def numpy_filters_and_error(on, first):
            """The filters and F e (`kernels.trace_error`, in numpy)."""
            if first:
                J_f[...] = J
                J_s[...] = J
            else:
                np.multiply(J_f, a_f, out=J_f)
                np.add(J_f, np.multiply(J, 1 - a_f, out=tmp), out=J_f)
                if not on:
                    np.multiply(J_s, a_s, out=J_s)
                    np.add(J_s, np.multiply(J, 1 - a_s, out=tmp), out=J_s)
            if on:
                np.subtract(J_s, J_f, out=fe)
                np.multiply(fe, scale, out=fe)
            else:
                fe[...] = 0.0

        filters_and_error = numpy_filters_and_error
        if self.compiled and kernels.AVAILABLE:
            # the same in one compiled loop
            trace_error = kernels.compiled(kernels.trace_error)

            def filters_and_error(on, first):
                trace_error(J, J_f, J_s, a_f, a_s, on, first, scale, fe)

        def warn_long_plus():
            warnings.warn(
                f"{tag}: a target has been present for {long_plus * dt:g} s "
                "with no minus phase long enough for the expectation to settle "
                "(every error component at or below phase_threshold for 3 "
                "slow_tau). The rule needs phases: without them its expectation "
                "is not updated, what it learns in the plus phase feeds back "
                "into what it learns from, and the network can diverge. For an "
                "error that is always present, use FeedbackAlignment.",
                NengoWarning,
            )

        def step_simtraceerror():
            nonlocal plus_steps, minus_steps, long_plus
            # NaN compares False: no plus phase; the rule's own check then
            # reports the error
            on = has_error and np.max(np.abs(e)) > threshold
            minus_steps = 0 if on else minus_steps + 1
            if minus_steps >= settle:
                plus_steps = 0
            elif on:
                plus_steps += 1
            if long_plus is not None and plus_steps >= long_plus:
                warn_long_plus()
                long_plus = None  # once
            filters_and_error(on, phase[0] < 0)
            phase[0] = float(on)
            nu[0] = nu_value

        return step_simtraceerror
