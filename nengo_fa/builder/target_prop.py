r"""Difference target propagation: targets, and the learned inverses that
carry them down (the feedback source of `.DifferenceTargetProp`).

Every `.DifferenceTargetProp` gives its `.SimHiddenLayerRule` a
`.FeedbackError` whose :math:`F e` is the layer's displacement
:math:`h_l - \hat h_l` and whose :math:`\nu` is the normaliser of
`.DifferenceTargetProp` (Notes there). The layer next to the readout gets
them from a `SimTopTarget`; a layer below from a `SimDifferenceTarget`,
which reads those of the layer above and also trains the inverse.
"""

import numpy as np
from nengo.builder import Operator, Signal
from nengo.builder.ensemble import get_activities
from nengo.builder.learning_rules import build_or_passthrough, get_post_ens
from nengo.exceptions import BuildError, ValidationError
from nengo.rc import rc

from nengo_fa.builder.deferred import when_built, when_published
from nengo_fa.builder.feedback_sources import (
    FeedbackSource,
    check_downstream,
    downstream_weights,
    forward_matrix,
    register_feedback_source,
)
from nengo_fa.builder.hidden_layer import feedback_error_signals
from nengo_fa.builder.numerics import squared_norm
from nengo_fa.learning_rules import DifferenceTargetProp, chained_rule
from nengo_fa.neurons import make_derivative


@register_feedback_source(DifferenceTargetProp)
class TargetFeedback(FeedbackSource):
    """The displacement toward a target (`.DifferenceTargetProp`).

    At the top, the feedback read is the readout's live decoders :math:`D`
    (as `.BackProp`'s); below, the learned inverse :math:`[Q_l, c_l]`.
    Either way the rule reads the `.FeedbackError` this source's operator
    sets, not the matrix.
    """

    replaces_forward_matrix = True  # the error is the next layer's displacement

    def build_chained_error(self, ctx):
        # SimDifferenceTarget sets the error (made in `build`); only check
        down = ctx.rule_type.downstream
        check_downstream(ctx.model, ctx.prefix, down, ctx.ens)
        if down.post_slice != slice(None):
            raise BuildError(
                f"{ctx.prefix}: 'downstream' must go into all of {down.post_obj}, "
                f"whose target this rule follows (it goes into the slice "
                f"{down.post_slice})"
            )
        if not isinstance(ctx.down_rule.learning_rule_type, DifferenceTargetProp):
            raise BuildError(
                f"{ctx.prefix}: the rule on 'downstream' is a "
                f"{type(ctx.down_rule.learning_rule_type).__name__}, which gives "
                "no target; it must be a DifferenceTargetProp"
            )

    def build(self, ctx, ready):
        model, rule, ens, dtp = ctx.model, ctx.rule, ctx.ens, ctx.rule_type
        check_upstream(ctx)
        n = ens.n_neurons
        feedback_error = feedback_error_signals(ctx.prefix, n)
        activities = build_or_passthrough(
            model, dtp.activity_synapse, model.sig[ens.neurons]["out"]
        )
        target = Signal(shape=n, name=f"{ctx.prefix}:target")
        sig = model.sig[rule]
        sig["target"] = target
        sig["displacement"] = feedback_error.fe
        sig["activities"] = activities
        if ctx.down_rule is None:
            check_downstream(model, ctx.prefix, dtp.downstream, ens)

            def add_top():
                weights = downstream_weights(model, ctx.prefix, dtp.downstream, ens)
                model.add_op(
                    SimTopTarget(
                        weights,
                        ctx.error,
                        activities,
                        feedback_error,
                        target,
                        dtp.target_step,
                        tag=f"{ctx.prefix}: target",
                    )
                )
                ready(weights, True, feedback_error)

            when_built(model, [dtp.downstream], add_top)
            return None

        down_ens = get_post_ens(dtp.downstream)
        # made now, so that probes find them whatever the build order
        inverse = Signal(
            np.zeros((n, down_ens.n_neurons + 1), dtype=rc.float_dtype),
            name=f"{ctx.prefix}:inverse",
        )
        sig["inverse"] = inverse
        sig["reconstruction_error"] = Signal(
            shape=1, name=f"{ctx.prefix}:reconstruction_error"
        )

        def add_difference(published):
            _, _, down_feedback_error = published
            built = model.params[down_ens]
            down_type = ctx.down_rule.learning_rule_type
            model.add_op(
                SimDifferenceTarget(
                    down_feedback_error,
                    activities,
                    build_or_passthrough(
                        model, dtp.activity_synapse, model.sig[down_ens.neurons]["out"]
                    ),
                    forward_matrix(model, dtp.downstream, ctx.down_rule, ctx.prefix),
                    model.sig[down_ens.neurons]["in"],
                    inverse,
                    ctx.error,
                    feedback_error,
                    target,
                    sig["reconstruction_error"],
                    derivative=make_derivative(
                        down_ens.neuron_type,
                        built.gain,
                        built.bias,
                        down_type.derivative,
                    ),
                    neuron_type=down_ens.neuron_type,
                    learning_rate=dtp.inverse_learning_rate,
                    noise=dtp.noise,
                    activity_scales=(
                        rms_activity(model, ens),
                        rms_activity(model, down_ens),
                    ),
                    tag=f"{ctx.prefix}: difference target",
                )
            )
            ready(inverse, False, feedback_error)

        when_built(
            model,
            [dtp.downstream],
            lambda: when_published(model, (ctx.down_rule, "feedback"), add_difference),
        )
        return None


def check_upstream(ctx):
    """Raise a `~nengo.exceptions.BuildError` if a rule other than a
    `.DifferenceTargetProp` is chained to this one: what this rule passes
    down is a displacement normalised as its own chain needs
    (`.DifferenceTargetProp`, Notes), not the normalised local error that
    other chained rules expect."""
    if ctx.model.toplevel is None:
        return
    for conn in ctx.model.toplevel.all_connections:
        if conn.learning_rule_type is None:
            continue
        try:
            up = chained_rule(conn)
        except ValidationError:
            continue  # several nengo_fa rules: that connection's own error

        up_type = None if up is None else up.learning_rule_type
        if (
            up_type is not None
            and getattr(up_type, "downstream", None) is ctx.rule.connection
            and up_type.size_in == 0
            and not isinstance(up_type, DifferenceTargetProp)
        ):
            raise BuildError(
                f"{ctx.prefix}: the {type(up_type).__name__} on {conn} is chained "
                "to this rule, which passes down a target, not a local error; "
                "chain only DifferenceTargetProp rules to a DifferenceTargetProp"
            )


def rms_activity(model, ens):
    """The RMS rate of ``ens``'s neurons over its evaluation points (1 if 0)."""
    built = model.params[ens]
    rates = get_activities(built, ens, built.eval_points)
    scale = float(np.sqrt(np.mean(np.square(rates))))
    return scale if np.isfinite(scale) and scale > 0 else 1.0


class SimTopTarget(Operator):
    r"""Set the target of the layer next to the readout (`.DifferenceTargetProp`).

    Implements

    .. math::

       \Delta_L = \alpha D^T e, \qquad \alpha = \eta / \|D\|_F^2, \qquad
       \nu_L = \alpha \|D\|_F / \sqrt{n}, \qquad \hat h_L = h_L - \Delta_L,

    with :math:`\Delta_L = 0`, :math:`\nu_L = 0` while :math:`D = 0`.

    Parameters
    ----------
    weights : Signal
        The readout's decoders :math:`D`, shape ``(d_out, n)``.
    error : Signal
        The output error :math:`e`, shape ``(d_out,)``.
    activities : Signal
        The filtered activities :math:`h_L`, shape ``(n,)``.
    feedback_error : FeedbackError
        Output: :math:`\Delta_L` and :math:`\nu_L`, read by the rule.
    target : Signal
        Output: :math:`\hat h_L`.
    target_step : float
        :math:`\eta`.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[fe, nu, target]``
    2. incs ``[]``
    3. reads ``[weights, error, activities]``
    4. updates ``[]``
    """

    def __init__(
        self, weights, error, activities, feedback_error, target, target_step, tag=None
    ):
        super().__init__(tag=tag)
        self.target_step = target_step
        self.sets = list(feedback_error) + [target]
        self.incs = []
        self.reads = [weights, error, activities]
        self.updates = []

    weights = property(lambda self: self.reads[0])
    error = property(lambda self: self.reads[1])
    activities = property(lambda self: self.reads[2])
    displacement = property(lambda self: self.sets[0])
    norm = property(lambda self: self.sets[1])
    target = property(lambda self: self.sets[2])

    @property
    def _descstr(self):
        return f"{self.weights}, {self.error} -> {self.target}"

    def make_step(self, signals, dt, rng):
        D = signals[self.weights]
        e = signals[self.error]
        h = signals[self.activities]
        disp = signals[self.displacement]
        nu = signals[self.norm]
        target = signals[self.target]
        n = h.shape[0]
        eta = self.target_step

        def step_simtoptarget():
            dd = squared_norm(D)
            if dd > 0:
                alpha = eta / dd
                np.dot(e, D, out=disp)
                np.multiply(disp, alpha, out=disp)
                nu[0] = alpha * np.sqrt(dd / n)
            else:
                disp[...] = 0
                nu[0] = 0
            np.subtract(h, disp, out=target)

        return step_simtoptarget


class SimDifferenceTarget(Operator):
    r"""Set the difference target of a layer below another, and train the
    inverse it comes through (`.DifferenceTargetProp`).

    Implements, with :math:`[Q, c]` the inverse (``n x (m + 1)``), the
    layer above's displacement :math:`\Delta_{l+1}` and normaliser
    :math:`\nu_{l+1}`:

    .. math::

       e_l &= \Delta_{l+1}, \qquad \Delta_l = Q \Delta_{l+1}, \qquad
       \nu_l = \frac{\|Q\|_F}{\sqrt n} \nu_{l+1}, \qquad
       \hat h_l = h_l - \Delta_l, \\
       \rho &= |Q h_{l+1} + c \bar a_{l+1} - h_l| / |h_l| \quad
       (0 \text{ if } h_l = 0), \\
       \epsilon &= \sigma \bar a_l \xi, \qquad
       z = [h_{l+1} + G'(J_{l+1}) \odot (M \epsilon); \bar a_{l+1}], \\
       r &= [Q, c] z - (h_l + \epsilon), \qquad
       [Q, c] \leftarrow [Q, c] - \kappa_Q \Delta t \, r z^T / |z|^2

    with :math:`\xi` standard normal, drawn every step from a stream seeded
    from the simulator's (so ``reset()`` repeats it), and :math:`M` the live
    forward matrix from layer :math:`l`'s neurons to layer :math:`l+1`'s
    currents: the corruption of :math:`h_l` carried to layer :math:`l+1` to
    first order. :math:`\Delta_l` and :math:`\nu_l` are computed from
    :math:`Q` before its update.

    Parameters
    ----------
    down_feedback_error : FeedbackError
        :math:`\Delta_{l+1}` ``(m,)`` and :math:`\nu_{l+1}` ``(1,)``, set by
        the layer above's operator.
    activities, down_activities : Signal
        The filtered activities :math:`h_l` ``(n,)`` and :math:`h_{l+1}`
        ``(m,)``.
    forward : Signal
        :math:`M`, ``(m, n)`` (set by a `.SimForwardMatrix`).
    down_current : Signal
        :math:`J_{l+1}`, ``(m,)``.
    inverse : Signal
        :math:`[Q, c]`, ``(n, m + 1)``.
    error : Signal
        Output: the rule's error :math:`e_l`.
    feedback_error : FeedbackError
        Output: :math:`\Delta_l` and :math:`\nu_l`, read by the rule.
    target : Signal
        Output: :math:`\hat h_l`.
    reconstruction_error : Signal
        Output: :math:`\rho`, shape ``(1,)``.
    derivative : callable
        ``derivative(J, out)``: :math:`G'` of layer :math:`l+1`.
    neuron_type : NeuronType
        Layer :math:`l+1`'s neuron type (for NengoDL's builder).
    learning_rate : float
        :math:`\kappa_Q`.
    noise : float
        :math:`\sigma`.
    activity_scales : (float, float)
        :math:`\bar a_l` and :math:`\bar a_{l+1}`, the RMS activities.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[error, fe, nu, target, reconstruction_error]``
    2. incs ``[]``
    3. reads ``[down_fe, down_nu, activities, down_activities, forward,
       down_current]``
    4. updates ``[inverse]``
    """

    def __init__(
        self,
        down_feedback_error,
        activities,
        down_activities,
        forward,
        down_current,
        inverse,
        error,
        feedback_error,
        target,
        reconstruction_error,
        derivative,
        neuron_type,
        learning_rate,
        noise,
        activity_scales,
        tag=None,
    ):
        super().__init__(tag=tag)
        self.derivative = derivative
        self.neuron_type = neuron_type
        self.learning_rate = learning_rate
        self.noise = noise
        self.activity_scales = tuple(activity_scales)
        self.sets = [error] + list(feedback_error) + [target, reconstruction_error]
        self.incs = []
        self.reads = list(down_feedback_error) + [
            activities,
            down_activities,
            forward,
            down_current,
        ]
        self.updates = [inverse]

    error = property(lambda self: self.sets[0])
    displacement = property(lambda self: self.sets[1])
    norm = property(lambda self: self.sets[2])
    target = property(lambda self: self.sets[3])
    reconstruction_error = property(lambda self: self.sets[4])
    down_displacement = property(lambda self: self.reads[0])
    down_norm = property(lambda self: self.reads[1])
    activities = property(lambda self: self.reads[2])
    down_activities = property(lambda self: self.reads[3])
    forward = property(lambda self: self.reads[4])
    down_current = property(lambda self: self.reads[5])
    inverse = property(lambda self: self.updates[0])

    @property
    def _descstr(self):
        return f"{self.down_displacement} -> {self.target}"

    def make_step(self, signals, dt, rng):
        QC = signals[self.inverse]
        Q, c = QC[:, :-1], QC[:, -1]
        d_up = signals[self.down_displacement]
        nu_up = signals[self.down_norm]
        h = signals[self.activities]
        h_up = signals[self.down_activities]
        M = signals[self.forward]
        J_up = signals[self.down_current]
        e = signals[self.error]
        disp = signals[self.displacement]
        nu = signals[self.norm]
        target = signals[self.target]
        rho = signals[self.reconstruction_error]
        derivative = self.derivative
        n, m = Q.shape
        a_bar, a_bar_up = self.activity_scales
        sigma_a = self.noise * a_bar
        step_size = self.learning_rate * dt
        # a stream of its own, from the simulator's: reset() repeats it
        noise = np.random.Generator(
            np.random.PCG64(rng.randint(np.iinfo(np.int32).max))
        )
        eps = np.empty(n)
        gp = np.empty(m)
        u = np.empty(m)
        z = np.empty(m + 1)
        z[m] = a_bar_up
        r = np.empty(n)
        outer = np.empty(QC.shape)

        def step_simdifferencetarget():
            e[...] = d_up
            np.dot(Q, d_up, out=disp)
            qq = max(squared_norm(QC) - float(np.dot(c, c)), 0.0)
            nu[0] = np.sqrt(qq / n) * nu_up[0]
            np.subtract(h, disp, out=target)
            # the reconstruction of the clean activities...
            z[:m] = h_up
            np.dot(QC, z, out=r)
            np.subtract(r, h, out=r)
            hh = float(np.dot(h, h))
            rho[0] = np.sqrt(np.dot(r, r) / hh) if hh > 0 else 0.0
            if sigma_a > 0:
                # ... and of corrupted ones, which the inverse learns from:
                # h_l + eps, and layer l+1's response to it, to first order
                noise.standard_normal(out=eps)
                np.multiply(eps, sigma_a, out=eps)
                np.dot(M, eps, out=u)
                derivative(J_up, gp)
                np.multiply(u, gp, out=u)
                z[:m] += u
                np.dot(QC, z, out=r)
                np.subtract(r, h, out=r)
                np.subtract(r, eps, out=r)
            # normalised LMS: r z^T / |z|^2, with |z| >= a_bar_up > 0
            np.multiply(r, step_size / np.dot(z, z), out=r)
            np.outer(r, z, out=outer)
            np.subtract(QC, outer, out=QC)

        return step_simdifferencetarget
