"""Learning a connection's full weight matrix (``modifies="weights"``).

Nengo's ``build_learning_rule`` gives the rule an ``(n_post, n_pre)`` delta
signal and a ``Copy`` that adds it to the weights: filling it and adding it
are three passes over a temporary as large as the weight matrix, every step.
When the rule is the only one on its connection, the update
:math:`\\Delta W = u \\, a_{pre}^T` is instead applied in place, as a rank-1
update of :math:`W` by the same operator that applies the encoders' update
(`.SimHiddenLayerEncoderUpdate`), which also takes over the connection's
``W x`` so that :math:`W` is read once a step.
"""

import math
import warnings

import numpy as np
from nengo.builder import Operator, Signal
from nengo.builder.connection import slice_signal
from nengo.builder.ensemble import get_activities
from nengo.builder.learning_rules import build_or_passthrough, get_pre_ens
from nengo.builder.operator import Copy, DotInc
from nengo.ensemble import Ensemble, Neurons
from nengo.exceptions import BuildError, SimulationError
from nengo.neurons import Direct
from nengo.rc import rc

from nengo_fa import settings
from nengo_fa.builder import kernels
from nengo_fa.builder.encoder_update import SimHiddenLayerEncoderUpdate
from nengo_fa.builder.numerics import checked_dot, finite, rms_row_norm
from nengo_fa.exceptions import ActivityScaleWarning


def weights_row_gain(model, conn, ens):
    """:math:`c`, the gains Nengo applies to the rows of ``conn``'s weights."""
    if isinstance(conn.post_obj, Neurons):
        return np.array(model.params[ens].gain, dtype=np.float64)
    return np.ones(ens.n_neurons)  # weight solver: the gains are in the weights


def build_weights_learning(
    model,
    rule_type,
    rule,
    ens,
    delta,
    weights_delta,
    gain_scale,
    derivative_scale,
    learning_rate,
):
    """Set up learning of ``rule``'s connection weights (``modifies="weights"``)
    at ``learning_rate`` (the rule's, as the build resolved it).

    Filters the presynaptic activities with ``pre_synapse`` (as `nengo.PES`
    does), installs the in-place update where it applies
    (`inplace_weights_update`), and returns a function that adds the
    `.SimHiddenLayerWeights` operator once the rule's feedback signal is
    known.
    """
    conn = rule.connection
    prefix = f"{type(rule_type).__name__} on {conn}"
    if conn.post_slice != slice(None):
        raise BuildError(
            f"{prefix}: learning weights into a slice of {conn.post_obj} "
            f"({conn.post_slice}) is not supported; connect to all its neurons "
            "(e.g. with zero rows in the transform)"
        )
    pre_ens = (
        get_pre_ens(conn) if isinstance(conn.pre_obj, (Ensemble, Neurons)) else None
    )
    if pre_ens is None or isinstance(pre_ens.neuron_type, Direct):
        raise BuildError(
            f"{prefix}: 'pre' must be neurons to learn weights (got {conn.pre_obj})"
        )
    weights = model.sig[conn]["weights"]
    n_pre = weights.shape[1] if weights is not None and weights.ndim == 2 else None
    if n_pre is None or weights.shape[0] != ens.n_neurons:
        raise BuildError(
            f"{prefix}: 'transform' must be a full (post neurons x pre neurons) "
            f"matrix, shape {(ens.n_neurons, conn.size_mid)}, to learn weights"
        )

    acts = build_or_passthrough(
        model,
        rule_type.pre_synapse,
        slice_signal(model, model.sig[conn.pre_obj]["out"], conn.pre_slice),
    )

    # A^2: mean squared norm of the pre activities over the pre tuning curves
    built_pre = model.params[pre_ens]
    rates = get_activities(built_pre, pre_ens, built_pre.eval_points)
    rates = rates[:, conn.pre_slice]
    act_scale = float(np.mean(np.sum(rates**2, axis=1)))
    act_scale = act_scale if act_scale > 0 else 1.0
    row_gain = weights_row_gain(model, conn, ens)
    row_scale = gain_scale / (row_gain * derivative_scale * act_scale)
    # a step moves neuron i's current by c_i dW_i . a_pre: at most half its
    # range, g_i / 2, as for the encoders
    row_limit = 0.5 * np.abs(model.params[ens].gain) / row_gain
    outputs = weights_delta
    if settings.inplace_encoder_update() and len(learning_rules(conn)) == 1:
        outputs = inplace_weights_update(model, conn, weights, weights_delta, prefix)

    def add_weights_operator(feedback, transpose_feedback):
        model.add_op(
            SimHiddenLayerWeights(
                delta=delta,
                feedback=feedback,
                pre_activities=acts,
                weights_delta=outputs,
                row_scale=row_scale,
                row_limit=row_limit,
                learning_rate=learning_rate,
                fixed_feedback=not transpose_feedback and feedback.readonly,
                act_scale=act_scale,
                tag=f"{prefix}: weights",
                compiled=settings.compiled_kernels(),
            )
        )

    return add_weights_operator


def learning_rules(conn):
    """The learning rule types on ``conn`` (a list, empty for none)."""
    types = conn.learning_rule_type
    if types is None:
        return []
    if isinstance(types, dict):
        return list(types.values())
    return list(types) if isinstance(types, (list, tuple)) else [types]


def inplace_weights_update(model, conn, weights, weights_delta, prefix):
    """Apply a weight-learning rule's update in place (see the module).

    Drops Nengo's ``Copy`` of the ``(n_post, n_pre)`` delta (which then is
    never allocated) and adds a `.SimHiddenLayerEncoderUpdate` that applies
    :math:`W \\leftarrow W + u \\, a^T` from factors that the rule's
    `.SimHiddenLayerWeights` sets on the step before and, with the compiled
    loops, takes over the connection's ``DotInc`` (:math:`W x`). Returns the
    factors :math:`(u, a)`.
    """
    model.operators[:] = [
        op
        for op in model.operators
        if not (isinstance(op, Copy) and op.src is weights_delta and op.dst is weights)
    ]
    n_post, n_pre = weights.shape
    dtype = rc.float_dtype
    u = Signal(np.zeros(n_post, dtype=dtype), name=f"{prefix}: weights u")
    a = Signal(np.zeros(n_pre, dtype=dtype), name=f"{prefix}: weights a")
    # no rows are scaled: alpha is 1
    ones = Signal(np.ones(n_post, dtype=dtype), name=f"{prefix}: ones", readonly=True)
    compiled = settings.compiled_kernels()
    encode = None
    if compiled:
        products = [
            op for op in model.operators if isinstance(op, DotInc) and op.A is weights
        ]
        if len(products) == 1:
            model.operators.remove(products[0])
            encode = (products[0].X, products[0].Y)
    model.add_op(
        SimHiddenLayerEncoderUpdate(
            weights,
            ones,
            u,
            a,
            tag=f"{prefix}: weights += u a^T",
            encode=encode,
            compiled=compiled,
        )
    )
    return u, a


#: seconds of presynaptic activity over which `ActivityCheck` measures
#: :math:`|a_{pre}|^2`
ACT_CHECK_TIME = 1.0
#: the factor by which the measured mean of :math:`|a_{pre}|^2` may differ
#: from :math:`\bar A^2` before `ActivityCheck` warns
ACT_CHECK_RATIO = 10.0


class ActivityCheck:
    """Compare the presynaptic activities a weight-learning rule sees with
    the scale its steps are normalised by, once.

    :math:`\bar A^2` comes from the presynaptic ensemble's tuning curves at
    build time. When those neurons are driven some other way (a connection
    into ``pre.neurons``, a gain or bias set by hand), their rates can differ
    from their tuning curves by orders of magnitude, and every step with
    them: the step bounds then hide it. This measures the mean of
    :math:`|a_{pre}|^2` over the first `ACT_CHECK_TIME` seconds of steps in
    which the presynaptic neurons are active, and raises an
    `.ActivityScaleWarning` if it differs from :math:`\bar A^2` by more than
    `ACT_CHECK_RATIO`. It does not change the steps.
    """

    def __init__(self, op, dt):
        self.op = op
        self.n_steps = max(int(round(ACT_CHECK_TIME / dt)), 1)
        self.count = 0
        self.total = 0.0

    def add(self, aa):
        """Add one step's :math:`|a_{pre}|^2`; True once the check is done."""
        self.count += 1
        self.total += aa
        if self.count < self.n_steps:
            return False
        measured = self.total / self.count
        ratio = measured / self.op.act_scale
        if not 1 / ACT_CHECK_RATIO <= ratio <= ACT_CHECK_RATIO:
            warnings.warn(
                f"{self.op.tag}: over its first {ACT_CHECK_TIME:g} s of activity, "
                f"the presynaptic activities' mean squared norm was {measured:.3g}, "
                f"{ratio:.3g} times the {self.op.act_scale:.3g} that the rule's "
                "steps are scaled by (from the presynaptic ensemble's tuning "
                "curves), so each step is about that many times what "
                "learning_rate says (up to the step bounds). Its neurons are "
                "likely driven some other way than through their encoders (e.g. a "
                "connection into pre.neurons): encode the input instead, or "
                "scale learning_rate by the inverse ratio.",
                ActivityScaleWarning,
            )
        return True


class SimHiddenLayerWeights(Operator):
    r"""Update a connection's full weight matrix from a local error.

    Implements, with the notation of `.HiddenLayerRule`,

    .. math:: \Delta W = -\kappa \, \Delta t \, \mathrm{diag}(s) \,
              \delta \, a_{pre}^T / \nu = u \, a_{pre}^T

    with the constant row scale :math:`s = \hat g / (c \bar{G'} \bar A^2)`
    and :math:`\nu` the RMS row norm of the feedback. :math:`\Delta W = 0`
    while :math:`\nu = 0`. Each row's step is bounded so that it moves the
    neuron's current, :math:`c_i \Delta W_i \cdot a_{pre}`, by at most
    half its range, :math:`g_i / 2`, as the encoder steps are bounded. A
    non-finite :math:`a_{pre}` or feedback raises a
    `~nengo.exceptions.SimulationError` before the weights change.

    Parameters
    ----------
    delta : Signal
        The local error :math:`\delta`, shape ``(n_post,)`` (an updated
        signal: the value of the previous step is read).
    feedback : Signal
        The feedback matrix of the rule (or its transpose), for :math:`\nu`.
    pre_activities : Signal
        The filtered presynaptic activities :math:`a_{pre}`.
    weights_delta : Signal or (Signal, Signal)
        Output: :math:`\Delta W`, added to the weights on the next step; or
        its factors :math:`(u, a_{pre})`, applied in place on the next step
        (`inplace_weights_update`).
    row_scale : ndarray
        :math:`s`, shape ``(n_post,)``.
    row_limit : ndarray
        :math:`g_i / (2 c_i)`, shape ``(n_post,)``: the bound of
        :math:`|\Delta W_i| |a_{pre}|^2`.
    learning_rate : float
        :math:`\kappa`.
    fixed_feedback : bool
        Whether the feedback never changes (then :math:`\nu` is computed once).
    act_scale : float, optional
        :math:`\bar A^2`, the mean of :math:`|a_{pre}|^2` over the presynaptic
        tuning curves that ``row_scale`` divides by. If given, the mean of
        :math:`|a_{pre}|^2` over the first `ACT_CHECK_TIME` seconds in which
        the presynaptic neurons are active is compared with it, and an
        `.ActivityScaleWarning` is raised once if the two differ by more
        than a factor of `ACT_CHECK_RATIO`.
    tag : str, optional
        A label associated with the operator, for debugging purposes.
    compiled : bool, optional
        Whether to use the compiled loop (the ``compiled_kernels`` setting
        when the model was built) for the factors of the in-place update
        (`nengo_fa.builder.kernels.weights_factors`).

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[delta, feedback, pre_activities]``
    4. updates ``[weights_delta]``, or ``[u, a]``
    """

    def __init__(
        self,
        delta,
        feedback,
        pre_activities,
        weights_delta,
        row_scale,
        row_limit,
        learning_rate,
        fixed_feedback,
        act_scale=None,
        tag=None,
        compiled=False,
    ):
        super().__init__(tag=tag)
        self.compiled = compiled
        self.row_scale = row_scale
        self.row_limit = row_limit
        self.learning_rate = learning_rate
        self.fixed_feedback = fixed_feedback
        self.act_scale = act_scale
        self.sets = []
        self.incs = []
        self.reads = [delta, feedback, pre_activities]
        factored = isinstance(weights_delta, tuple)
        self.updates = list(weights_delta) if factored else [weights_delta]

    @property
    def delta(self):
        return self.reads[0]

    @property
    def feedback(self):
        return self.reads[1]

    @property
    def pre_activities(self):
        return self.reads[2]

    @property
    def weights_delta(self):
        """:math:`\\Delta W`, or None with factors."""
        return self.updates[0] if len(self.updates) == 1 else None

    @property
    def weights_factors(self):
        """:math:`(u, a_{pre})`, or None."""
        return tuple(self.updates) if len(self.updates) == 2 else None

    @property
    def _descstr(self):
        return f"{self.delta}, {self.pre_activities} -> {self.updates}"

    def make_step(self, signals, dt, rng):
        delta = signals[self.delta]
        feedback = signals[self.feedback]
        pre = signals[self.pre_activities]
        factors = self.weights_factors
        if factors is None:
            weights_delta = signals[self.weights_delta]
            u = np.empty(delta.shape[0], dtype=weights_delta.dtype)
        else:
            u, a = (signals[sig] for sig in factors)
        n = delta.shape[0]
        dtype = u.dtype
        coef_max = float(np.finfo(dtype).max)
        coef = -self.learning_rate * dt * np.asarray(self.row_scale, dtype=float)
        coef = np.clip(coef, -coef_max, coef_max).astype(dtype)
        limit = np.asarray(self.row_limit, dtype=dtype)
        fixed_nu = rms_row_norm(feedback, n) if self.fixed_feedback else None
        bound = np.empty(n, dtype=dtype)
        tag = self.tag
        check = None if self.act_scale is None else ActivityCheck(self, dt)

        def no_update():
            if factors is None:
                weights_delta[...] = 0
            else:
                u[...] = 0

        def fail(what):
            no_update()
            raise SimulationError(
                f"{tag}: {what} contains NaN or inf; the weights were not changed"
            )

        def step_simhiddenlayerweights():
            nonlocal check
            nu = rms_row_norm(feedback, n) if fixed_nu is None else fixed_nu
            if not math.isfinite(nu):
                fail("the feedback")
            aa = checked_dot(pre, pre)
            if not finite(aa, pre):
                fail("the presynaptic activity vector")
            if nu == 0 or aa == 0:
                no_update()
                return
            if check is not None and check.add(aa):
                check = None
            np.multiply(delta, coef, out=u)
            np.multiply(u, min(1.0 / nu, coef_max), out=u)
            # |u_i| |a|^2 <= limit_i (aa may overflow: then the bound is 0)
            np.multiply(limit, 1.0 / aa, out=bound)
            np.minimum(u, bound, out=u)
            np.negative(bound, out=bound)
            np.maximum(u, bound, out=u)
            if factors is None:
                np.outer(u, pre, out=weights_delta)
            else:
                a[...] = pre

        if factors is None or not (self.compiled and kernels.AVAILABLE):
            return step_simhiddenlayerweights
        # one compiled call instead of about ten numpy calls on short vectors
        # (their fixed cost is most of the step at n = 100)
        weights_factors = kernels.compiled(kernels.weights_factors)
        given_nu = -1.0 if fixed_nu is None else float(fixed_nu)

        def step_simhiddenlayerweights_compiled():
            nonlocal check
            code = weights_factors(
                delta, feedback, pre, u, a, coef, limit, given_nu, coef_max
            )
            if code < 0:
                step_simhiddenlayerweights()  # a rare case: raises, or checks
            elif code == 0 and check is not None and check.add(np.dot(pre, pre)):
                check = None  # `ActivityCheck` is done: stop computing |a|^2

        return step_simhiddenlayerweights_compiled
