"""Event-driven random backpropagation (`.ERBP`): its build function and
operators.

`.ERBP` shares none of `.HiddenLayerRule`'s stages (no :math:`G'(J)`, no
gain or bias learning, no step bounds), so it has its own operators:
`.SimERBP` computes the dendrite, the boxcar gate and the local error each
step; with ``modifies="weights"``, `.SimERBPWeights` applies the local error
to the columns of the presynaptic neurons that spiked, in place, and computes
the connection's product :math:`W s` from the same columns.
"""

import collections
import math

import numpy as np
from nengo.builder import Builder, Operator, Signal
from nengo.builder.connection import slice_signal
from nengo.builder.ensemble import get_activities
from nengo.builder.learning_rules import get_pre_ens
from nengo.builder.operator import Copy, DotInc, Reset
from nengo.ensemble import Ensemble, Neurons
from nengo.exceptions import BuildError, SimulationError
from nengo.neurons import LIF, Direct
from nengo.rc import rc

from nengo_fa import settings
from nengo_fa.builder import kernels
from nengo_fa.builder.feedback_sources import fixed_feedback
from nengo_fa.builder.numerics import checked_sum, finite, rms_row_norm
from nengo_fa.builder.rule import firing_threshold
from nengo_fa.builder.weights import learning_rules, weights_row_gain
from nengo_fa.learning_rules import ERBP


class SimERBP(Operator):
    r"""The dendrite, the boxcar gate and the local error of `.ERBP`.

    Implements

    .. math::

       U &\leftarrow a U + (1 - a) B e, \qquad a = e^{-\Delta t / \tau_U} \\
       \Theta_i &= [v_{low} < (v_i - o) / m < v_{high}] \\
       \hat\delta &= (U / \nu) \odot \Theta, \qquad u = k \odot \hat\delta

    where :math:`v` is the post neurons' voltage or input current, shifted
    and scaled by the constants :math:`o, m` (0 and 1 for a voltage;
    :math:`\theta` and :math:`\hat g` for a current), :math:`\nu` the RMS
    row norm of :math:`B` and :math:`k` a constant per-row coefficient.
    Then, by ``kind``:

    * ``"inplace"`` (weights): sets the factors :math:`u` and :math:`s` (the
      presynaptic output of this step), which `.SimERBPWeights` applies on
      the next step;
    * ``"delta"`` (weights, Nengo's generic path): sets Nengo's
      ``(n_post, n_pre)`` delta to :math:`u s^T \Delta t` (zero but in the
      columns of the neurons that spiked);
    * ``"encoders"``: sets Nengo's ``(n, d)`` encoder delta to :math:`u x^T`.

    Parameters
    ----------
    error : Signal
        The error :math:`e`.
    feedback : ndarray
        :math:`B`, ``(n, error_size)``, fixed.
    state : Signal
        The post neurons' voltage or input current, ``(n,)``.
    dendrite, gate, delta : Signal
        Outputs :math:`U`, :math:`\Theta` and :math:`\hat\delta`, ``(n,)``.
    outputs : list of Signal
        ``[u, s_last]`` (``"inplace"``), or ``[delta]`` (the other kinds).
    coef : ndarray
        :math:`k`, ``(n,)``.
    decay : float
        :math:`a`.
    window : (float, float, float, float)
        :math:`(v_{low}, v_{high}, o, m)`.
    source : Signal
        The presynaptic output :math:`s` (weights) or the post ensemble's
        decoded input :math:`x` (encoders).
    kind : {"inplace", "delta", "encoders"}
        See above.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[error, state, source]``
    4. updates ``[dendrite, gate, delta] + outputs``
    """

    KINDS = ("inplace", "delta", "encoders")

    def __init__(
        self,
        error,
        feedback,
        state,
        dendrite,
        gate,
        delta,
        outputs,
        coef,
        decay,
        window,
        source,
        kind,
        tag=None,
    ):
        super().__init__(tag=tag)
        assert kind in self.KINDS
        self.feedback = feedback
        self.coef = coef
        self.decay = decay
        self.window = window
        self.kind = kind
        self.sets = []
        self.incs = []
        self.reads = [error, state, source]
        self.updates = [dendrite, gate, delta] + list(outputs)

    error = property(lambda self: self.reads[0])
    state = property(lambda self: self.reads[1])
    source = property(lambda self: self.reads[2])
    dendrite = property(lambda self: self.updates[0])
    gate = property(lambda self: self.updates[1])
    delta = property(lambda self: self.updates[2])
    outputs = property(lambda self: self.updates[3:])

    @property
    def _descstr(self):
        return f"{self.error}, {self.state}, {self.source} -> {self.outputs}"

    def make_step(self, signals, dt, rng):
        error = signals[self.error]
        state = signals[self.state]
        source = signals[self.source]
        U, gate, delta = (signals[s] for s in (self.dendrite, self.gate, self.delta))
        outputs = [signals[s] for s in self.outputs]
        n = U.shape[0]
        dtype = U.dtype
        B = np.asarray(self.feedback, dtype=dtype)
        nu = rms_row_norm(np.asarray(self.feedback, dtype=float), n)
        inv_nu = 1.0 / nu if nu > 0 else 0.0
        coef = np.asarray(self.coef, dtype=dtype)
        decay = self.decay
        low, high, offset, scale = self.window
        fe, v, u = (np.empty(n, dtype=dtype) for _ in range(3))
        inside = np.empty(n, dtype=bool)
        below = np.empty(n, dtype=bool)
        kind = self.kind
        tag = self.tag

        source_name = (
            "the ensemble's input"
            if kind == "encoders"
            else "the presynaptic activity vector"
        )

        def check_finite(values, what):
            if not finite(checked_sum(values), values):
                raise SimulationError(
                    f"{tag}: {what} contains NaN or inf; nothing was changed"
                )

        def step_simerbp():
            check_finite(error, "the error")
            check_finite(source, source_name)
            np.dot(B, error, out=fe)
            np.multiply(U, decay, out=U)
            np.multiply(fe, 1 - decay, out=fe)
            np.add(U, fe, out=U)
            # v in window units, then two comparisons per neuron
            np.subtract(state, offset, out=v)
            np.multiply(v, 1.0 / scale, out=v)
            np.greater(v, low, out=inside)
            np.less(v, high, out=below)
            np.logical_and(inside, below, out=inside)
            gate[...] = inside
            np.multiply(U, gate, out=delta)
            np.multiply(delta, inv_nu, out=delta)
            np.multiply(coef, delta, out=u)
            if kind == "inplace":
                outputs[0][...] = u
                outputs[1][...] = source
            elif kind == "encoders":
                np.outer(u, source, out=outputs[0])
            else:
                outputs[0][...] = 0
                spiked = np.flatnonzero(source)
                outputs[0][:, spiked] = np.outer(u, source[spiked] * dt)

        return step_simerbp


class SimERBPWeights(Operator):
    r"""Apply `.ERBP`'s weight update in place, at presynaptic spikes only,
    and compute the connection's product from the columns that spiked.

    Implements

    .. math::

       W_{:,j} &\mathrel{+}= u \, s'_j \Delta t
           \quad \text{for } j: s'_j \ne 0 \\
       y &\mathrel{+}= \sum_{j: s_j \ne 0} W_{:,j} s_j

    with :math:`u` and :math:`s'` (the presynaptic output of the previous
    step) set by `.SimERBP` on the previous step, and :math:`s` the
    presynaptic output of this step. The weights change exactly as with
    Nengo's generic path (a delta :math:`u s'^T \Delta t` added by a
    ``Copy``); the second line is the connection's product :math:`y = W s`
    (Nengo's ``DotInc``, which the builder removes). For spiking presynaptic
    neurons both cost time in proportion to the number of spikes, not to
    the size of :math:`W`. The compiled loop also skips the rows outside the
    boxcar (:math:`u_i = 0`) in the update.

    Parameters
    ----------
    weights : Signal
        :math:`W`, ``(n_post, n_pre)``, changed in place.
    u : Signal
        The per-row step, ``(n_post,)``.
    last_spikes : Signal
        :math:`s'`, ``(n_pre,)``.
    spikes : Signal
        :math:`s`, ``(n_pre,)``.
    output : Signal
        :math:`y`, ``(n_post,)``.
    compiled : bool, optional
        Whether to use the compiled loop.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[weights, output]``
    3. reads ``[u, last_spikes, spikes]``
    4. updates ``[]``
    """

    def __init__(
        self, weights, u, last_spikes, spikes, output, compiled=False, tag=None
    ):
        super().__init__(tag=tag)
        self.compiled = compiled
        self.sets = []
        self.incs = [weights, output]
        self.reads = [u, last_spikes, spikes]
        self.updates = []

    weights = property(lambda self: self.incs[0])
    output = property(lambda self: self.incs[1])
    u = property(lambda self: self.reads[0])
    last_spikes = property(lambda self: self.reads[1])
    spikes = property(lambda self: self.reads[2])

    @property
    def _descstr(self):
        return f"{self.weights}[:, spiked] += u s' dt; {self.output} += W s"

    def make_step(self, signals, dt, rng):
        W = signals[self.weights]
        u = signals[self.u]
        last = signals[self.last_spikes]
        s = signals[self.spikes]
        y = signals[self.output]
        if self.compiled:
            kernel = kernels.compiled(kernels.erbp_weights)
            scratch = np.empty(s.shape[0], dtype=np.int64)

            def step_simerbpweights_compiled():
                kernel(W, u, last, s, dt, y, scratch)

            return step_simerbpweights_compiled

        def step_simerbpweights():
            spiked = np.flatnonzero(last)
            if spiked.size and np.any(u):
                W[:, spiked] += np.outer(u, last[spiked] * dt)
            spiked = np.flatnonzero(s)
            if spiked.size:
                y[...] += W[:, spiked] @ s[spiked]

        return step_simerbpweights


BuiltERBP = collections.namedtuple("BuiltERBP", ("feedback", "coef", "voltage"))
BuiltERBP.__doc__ = """What the build of an `.ERBP` leaves in ``model.params[rule]``.

Available as ``sim.data[conn.learning_rule]``.

Attributes
----------
feedback : ndarray
    :math:`B`.
coef : ndarray
    :math:`k`, the per-row coefficient of :math:`\\hat\\delta` (see
    `.SimERBP`).
voltage : bool
    Whether the boxcar reads the voltage (else the input current).
"""


@Builder.register(ERBP)
def build_erbp(model, erbp, rule):
    """Builds an `.ERBP` rule into a model.

    Samples :math:`B`, creates the error signal (``model.sig[rule]["in"]``)
    and the signals of the dendrite, the gate and the local error, and adds a
    `.SimERBP`. With ``modifies="weights"`` and no other rule on the
    connection, replaces Nengo's ``Copy`` of the ``(n_post, n_pre)`` delta
    and the connection's ``DotInc`` with a `.SimERBPWeights` (unless the
    ``inplace_encoder_update`` setting is off); otherwise fills Nengo's
    delta. With ``modifies="encoders"``, fills Nengo's ``(n, d)`` encoder
    delta.

    Parameters
    ----------
    model : Model
        The model to build into.
    erbp : ERBP
        Learning rule type to build.
    rule : LearningRule
        The learning rule object corresponding to the rule type.

    Notes
    -----
    Sets ``model.params[rule]`` to a `.BuiltERBP`.
    """
    conn = rule.connection
    prefix = f"ERBP on {conn}"
    ens = _post_ensemble(conn, prefix)
    n = ens.n_neurons
    built = model.params[ens]
    dtype = rc.float_dtype
    feedback = fixed_feedback(model, erbp, conn, n, prefix)
    voltage = isinstance(ens.neuron_type, LIF) and "voltage" in model.sig[ens.neurons]
    gain_scale = float(np.mean(np.abs(built.gain))) or 1.0
    if voltage:
        state, offset, scale = model.sig[ens.neurons]["voltage"], 0.0, 1.0
    else:
        theta, _ = firing_threshold(ens.neuron_type, built.gain, built.bias)
        state, offset, scale = model.sig[ens.neurons]["in"], theta, gain_scale

    error = Signal(np.zeros(erbp.error_size, dtype=dtype), name=f"{prefix}: error")
    model.add_op(Reset(error))
    model.sig[rule]["in"] = error
    model.sig[rule]["error"] = error
    nengo_delta = model.sig[rule]["delta"]
    local = [
        Signal(np.zeros(n, dtype=dtype), name=f"{prefix}: {name}") for name in LOCAL
    ]
    decay = math.exp(-model.dt / erbp.tau_dendrite) if erbp.tau_dendrite > 0 else 0.0

    if erbp.modifies == "encoders":
        coef = np.full(n, -erbp.learning_rate * model.dt * gain_scale / ens.radius**2)
        kind, outputs, source = "encoders", [nengo_delta], model.sig[ens]["in"]
        model.sig[rule]["encoders"] = model.sig[ens]["encoders"]
    else:
        coef, kind, outputs, source = _weights_learning(
            model, erbp, rule, ens, gain_scale, nengo_delta, prefix
        )
    for name, sig in zip(LOCAL, local):
        model.sig[rule][name] = sig
    model.add_op(
        SimERBP(
            error,
            feedback,
            state,
            *local,
            outputs,
            coef,
            decay,
            (erbp.boxcar[0], erbp.boxcar[1], offset, scale),
            source,
            kind,
            tag=prefix,
        )
    )
    model.params[rule] = BuiltERBP(feedback, coef, voltage)


#: The per-neuron signals of `.SimERBP`, in its order, as probed.
LOCAL = ("dendrite", "gate", "delta")


def _post_ensemble(conn, prefix):
    ens = (
        conn.post_obj.ensemble if isinstance(conn.post_obj, Neurons) else conn.post_obj
    )
    if not isinstance(ens, Ensemble):  # Nengo's own validation should catch this
        raise BuildError(f"{prefix}: 'post' must be an Ensemble or its neurons")
    if isinstance(ens.neuron_type, Direct):
        raise BuildError(
            f"{prefix}: {ens} has Direct neurons, so no membrane state for the "
            "boxcar and nothing to learn. Use a neuron type."
        )
    return ens


def _weights_learning(model, erbp, rule, ens, gain_scale, nengo_delta, prefix):
    """``(coef, kind, outputs, source)`` of `.SimERBP` for weight learning,
    and the `.SimERBPWeights` where it applies."""
    conn = rule.connection
    if conn.post_slice != slice(None):
        raise BuildError(
            f"{prefix}: learning weights into a slice of {conn.post_obj} "
            f"({conn.post_slice}) is not supported; connect to all its neurons"
        )
    pre_ens = (
        get_pre_ens(conn) if isinstance(conn.pre_obj, (Ensemble, Neurons)) else None
    )
    if pre_ens is None or isinstance(pre_ens.neuron_type, Direct):
        raise BuildError(
            f"{prefix}: 'pre' must be neurons, whose spikes drive the updates "
            f"(got {conn.pre_obj})"
        )
    W = model.sig[conn]["weights"]
    if W is None or W.ndim != 2 or W.shape[0] != ens.n_neurons:
        raise BuildError(
            f"{prefix}: 'transform' must be a full (post neurons x pre neurons) "
            "matrix to learn weights"
        )
    model.sig[rule]["weights"] = W
    built_pre = model.params[pre_ens]
    rates = get_activities(built_pre, pre_ens, built_pre.eval_points)
    act_scale = float(np.mean(np.sum(rates[:, conn.pre_slice] ** 2, axis=1)))
    act_scale = act_scale if act_scale > 0 else 1.0
    row_gain = weights_row_gain(model, conn, ens)
    coef = -erbp.learning_rate * gain_scale / (row_gain * act_scale)
    products = [op for op in model.operators if isinstance(op, DotInc) and op.A is W]
    # the presynaptic output as the connection reads it (its pre_slice applied)
    spikes = (
        products[0].X
        if len(products) == 1
        else slice_signal(model, model.sig[conn]["in"], conn.pre_slice)
    )
    alone = len(learning_rules(conn)) == 1
    if not (settings.inplace_encoder_update() and alone and len(products) == 1):
        return coef, "delta", [nengo_delta], spikes
    # in place: drop Nengo's Copy of the delta (never allocated) and DotInc
    product = products[0]
    model.operators[:] = [
        op
        for op in model.operators
        if op is not product
        and not (isinstance(op, Copy) and op.src is nengo_delta and op.dst is W)
    ]
    dtype = rc.float_dtype
    u = Signal(np.zeros(ens.n_neurons, dtype=dtype), name=f"{prefix}: u")
    last = Signal(np.zeros(spikes.shape[0], dtype=dtype), name=f"{prefix}: last spikes")
    model.add_op(
        SimERBPWeights(
            W,
            u,
            last,
            spikes,
            product.Y,
            compiled=settings.compiled_kernels(),
            tag=f"{prefix}: weights",
        )
    )
    return coef, "inplace", [u, last], spikes
