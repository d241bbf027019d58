r"""NengoDL builders of `.SimHiddenLayerRule` and `.SimHiddenLayerEncoderUpdate`.

The step is written in the named stages of `.SimHiddenLayerRule` (the same
names as `nengo_fa.builder.stages`): feedback error, local error, bias step,
step bounds, encoder/gain step, row scaling and bias limits, reading each
operator's `.RuleConstants`.
"""

import numpy as np
import tensorflow as tf
from nengo.exceptions import BuildError
from nengo_dl.builder import Builder, OpBuilder

from nengo_fa.builder import SimHiddenLayerEncoderUpdate, SimHiddenLayerRule
from nengo_fa.dl.common import repeat_per_neuron, scatter, with_batch
from nengo_fa.dl.derivatives import FAMILIES, tensorflow_derivative


def op_derivative(op):
    """``(family, params)`` of an operator's derivative in TensorFlow."""
    return tensorflow_derivative(op.derivative, op.neuron_type)


def type_name(op):
    """The rule's type name, from the operator's tag (``"<Type> on ..."``)."""
    return (op.tag or "nengo_fa").split(" on ")[0]


def _where_positive(values, expression, fallback):
    """``expression(safe)`` where ``values > 0`` (``safe`` is ``values`` with
    ones elsewhere), else ``fallback``."""
    ok = values > 0
    return tf.where(
        ok, expression(tf.where(ok, values, tf.ones_like(values))), fallback
    )


@Builder.register(SimHiddenLayerRule)
class SimHiddenLayerRuleBuilder(OpBuilder):
    r"""Build a group of `.SimHiddenLayerRule` operators in TensorFlow.

    Computes what the reference simulator computes, for all the operators of
    the group at once, with the neurons of all the ensembles concatenated
    (``N`` neurons in all):

    .. math::

       \delta &= (F e) \odot G'(J), \quad
       u = \Delta t \, \hat g \, \delta / (\nu \bar{G'}) \\
       \Delta b &= -\kappa_b u, \quad
       \Delta g = g' - g, \quad
       \Delta S = (\alpha - 1) S + \alpha \beta x^T

    (see `.SimHiddenLayerRule` for :math:`\beta, g'` and
    :math:`\alpha = g' / m`). Per-operator constants (`.RuleConstants`)
    become per-neuron vectors, so operators with different constants merge.
    """

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.sizes = [op.scaled_encoders.shape[0] for op in ops]
        self.n_total = sum(self.sizes)
        self.d = ops[0].scaled_encoders.shape[1]
        self.d_out = ops[0].error.shape[0]
        self.transpose = ops[0].transpose_feedback
        self.factored = ops[0].factored
        self.rule_names = "/".join(sorted({type_name(op) for op in ops}))
        self._combine_signals(signals)
        self._feedback(signals)
        self._constants(signals.dtype)

    def _combine_signals(self, signals):
        ops = self.ops
        K = len(ops)
        self.error_data = signals.combine([op.error for op in ops])
        self.error_data = self.error_data.reshape((K, self.d_out))
        self.x_data = signals.combine([op.x for op in ops]).reshape((K, self.d))
        names = (
            "current",
            "scaled_encoders",
            "gain",
            "bias",
            "delta",
            "gain_delta",
            "bias_delta",
        )
        for name in names:
            setattr(
                self, f"{name}_data", signals.combine([getattr(op, name) for op in ops])
            )
        self.seen = ops[0].seen is not None  # see mergeable
        if self.seen:
            # the rule's own Lowpass of J and x (its S x-bar is recomputed)
            self.J_seen_data = signals.combine([op.seen[0] for op in ops])
            # written as the factor x is, read as x is
            self.x_seen_flat = signals.combine([op.seen[1] for op in ops])
            self.x_seen_data = self.x_seen_flat.reshape((K, self.d))
        if self.factored:
            # (alpha, beta, x) for SimHiddenLayerEncoderUpdate
            self.factor_data = [
                signals.combine([op.encoders_factors[i] for op in ops])
                for i in range(3)
            ]
        else:
            self.encoders_delta_data = signals.combine(
                [op.encoders_delta for op in ops]
            )

    def _per_neuron(self, values, dtype):
        v = np.concatenate(
            [np.full(n, value, dtype=float) for n, value in zip(self.sizes, values)]
        )
        return tf.constant(v, dtype=dtype)

    def _feedback(self, signals):
        # feedback rows F_i (N, d_out): a constant when every op's F is fixed
        ops = self.ops
        self.feedback_constant = None
        self.nu = None
        self.given = ops[0].feedback_error is not None  # see mergeable
        if self.given:
            # F e and nu, set by F's own operator (a FeedbackError)
            self.fe_data = signals.combine([op.feedback_error.fe for op in ops])
            self.nu_data = signals.combine([op.feedback_error.nu for op in ops])
        elif all(op.constants.feedback_norm is not None for op in ops):
            F = np.concatenate([op.feedback.initial_value for op in ops], axis=0)
            self.feedback_constant = tf.constant(F, dtype=signals.dtype)
            self.nu = self._per_neuron(
                [op.constants.feedback_norm for op in ops], signals.dtype
            )
        else:
            self.feedback_data = signals.combine([op.feedback for op in ops])

    def _constants(self, dtype):
        ops = self.ops
        c = [op.constants for op in ops]

        def per_neuron(f):
            return self._per_neuron([f(ci) for ci in c], dtype)

        self.radius = per_neuron(lambda ci: ci.radius)
        self.base_scale = per_neuron(lambda ci: ci.scale)
        self.min_gain = per_neuron(lambda ci: ci.min_gain)
        self.max_gain = per_neuron(lambda ci: ci.max_gain)
        self.threshold = per_neuron(lambda ci: ci.threshold)
        self.max_intercept = per_neuron(lambda ci: ci.max_intercept)
        self.floor_theta = per_neuron(
            lambda ci: ci.threshold if ci.bias_learning_rate > 0 else -np.inf
        )
        # coefficients are capped here, so that 0 * c is 0
        self.coef_max = float(np.finfo(dtype.as_numpy_dtype).max)
        self.kb = per_neuron(lambda ci: ci.bias_learning_rate)
        self.kg = per_neuron(lambda ci: ci.gain_learning_rate)
        self.kE_r2 = per_neuron(lambda ci: ci.learning_rate / ci.radius**2)
        self.kg_kE = per_neuron(
            lambda ci: (
                ci.gain_learning_rate / ci.learning_rate if ci.learning_rate > 0 else 0
            )
        )
        decay = [ci.pre_decay for ci in c]
        self.decay_J = per_neuron(lambda ci: ci.pre_decay)
        self.decay_x = tf.constant(np.array(decay)[:, None], dtype=dtype)
        self.learns_encoders = tf.constant(
            np.repeat([ci.learns_encoders for ci in c], self.sizes)
        )
        self.learns_directions = tf.constant(
            np.repeat([ci.learning_rate > 0 for ci in c], self.sizes)
        )
        # the gains are measured from S where they learn; where their rate is
        # 0 the gain signal keeps them exactly, as in the reference simulator
        self.measures_gains = tf.constant(
            np.repeat(
                [ci.learns_encoders and ci.gain_learning_rate > 0 for ci in c],
                self.sizes,
            )
        )
        families = [op_derivative(op) for op in ops]
        family = families[0][0]
        assert all(f == family for f, _ in families)  # see mergeable
        self.derivative = FAMILIES[family]
        self.derivative_params = {
            key: self._per_neuron([params[key] for _, params in families], dtype)
            for key in families[0][1]
        }

    # --- stages -------------------------------------------------------------

    def feedback_error(self, signals, error):
        """:math:`F e` per neuron, and :math:`\\nu` of each op's :math:`F`."""
        if self.given:
            fe = with_batch(signals.gather(self.fe_data), self.fe_data)
            nu = with_batch(signals.gather(self.nu_data), self.nu_data)  # (B, K)
            return fe, tf.repeat(nu, self.sizes, axis=1)
        e = repeat_per_neuron(error, self.sizes)  # (B, N or 1, d_out)
        if self.feedback_constant is not None:
            return tf.reduce_sum(self.feedback_constant * e, axis=-1), self.nu
        F = with_batch(signals.gather(self.feedback_data), self.feedback_data)
        if self.transpose:
            # F^T of each op is (d_out, n), with the same n and d_out in a group
            n = self.sizes[0]
            F = tf.reshape(F, (-1, len(self.ops), self.d_out, n))
            F = tf.reshape(
                tf.transpose(F, (0, 1, 3, 2)), (-1, self.n_total, self.d_out)
            )
        fe = tf.reduce_sum(F * e, axis=-1)
        # live feedback: the RMS row norm of each op's F, every step
        sq = tf.reduce_sum(tf.square(F), axis=-1)  # (B, N)
        sq = tf.math.segment_sum(
            tf.transpose(sq), np.repeat(np.arange(len(self.sizes)), self.sizes)
        )  # (K, B)
        sizes = np.asarray(self.sizes, dtype=sq.dtype.as_numpy_dtype)
        nu = tf.repeat(tf.sqrt(tf.transpose(sq) / sizes), self.sizes, axis=1)
        return fe, nu

    def local_error(self, J, fe, nu):
        """:math:`\\delta`, and :math:`c` (0 where :math:`\\nu = 0`, capped
        at the largest finite number)."""
        delta = self.derivative(J, **self.derivative_params) * fe
        c = _where_positive(
            nu,
            lambda safe: tf.minimum(self.base_scale / safe, self.coef_max),
            tf.zeros_like(nu),
        )
        return delta, c

    def coef(self, rate, c):
        """``rate * c``, capped: finite, so that a finite delta times it is
        never NaN."""
        return tf.minimum(rate * c, self.coef_max)

    def bias_step(self, delta, c, gain):
        """:math:`\\Delta b`, at most half the neuron's range."""
        half = 0.5 * tf.maximum(gain, self.min_gain)
        return tf.clip_by_value(delta * -self.coef(self.kb, c), -half, half)

    def bias_limits(self, bias_delta, gain, gain_delta, bias):
        """Keep :math:`b + \\Delta b \\ge \\theta - \\iota_{max} g'`
        (pushing the bias up where the gain shrank) and from going above
        :math:`\\theta + g_{max}`; frozen biases stay as they are."""
        floor = self.floor_theta - self.max_intercept * (gain + gain_delta) - bias
        db = tf.maximum(bias_delta, floor)
        ceiling = self.threshold + self.max_gain - bias
        return tf.minimum(db, tf.maximum(ceiling, 0.0))

    def step_bounds(self, delta, c, xx, gain):
        """:math:`\\beta`, bounded to :math:`|\\beta| |x| \\le \\max(g, g_{min}) /
        (2 r)`; 0 without input."""
        has_x = xx > 0
        b_max = (
            tf.maximum(gain, self.min_gain)
            / (2.0 * self.radius)
            * tf.math.rsqrt(tf.where(has_x, xx, tf.ones_like(xx)))
        )
        beta = delta * -self.coef(self.kE_r2, c)
        return tf.where(has_x, tf.clip_by_value(beta, -b_max, b_max), 0.0 * beta)

    def encoder_gain_step(self, delta, c, beta, sx, xx, gain):
        """``(dg_E, dg)``: the gain change of :math:`S + \\beta x`, and
        :math:`\\Delta g` before the floor and the ceiling."""
        # t = m^2 - g^2, and dg_E = m - g = t / (m + g) without cancellation
        t = tf.square(self.radius) * beta * (2.0 * sx + beta * xx)
        m_g = tf.sqrt(tf.maximum(tf.square(gain) + t, 0.0)) + gain
        dg_E = _where_positive(m_g, lambda safe: t / safe, 0.0 * t)
        # with directions fixed (kE = 0): dg = -kg u (S x) / g, at most half
        # the gain
        g_floor = tf.maximum(gain, self.min_gain)
        dg_fixed = sx / g_floor * delta * -self.coef(self.kg, c)
        dg_fixed = tf.clip_by_value(dg_fixed, -0.5 * g_floor, 0.5 * g_floor)
        dg = tf.where(self.learns_directions, dg_E * self.kg_kE, dg_fixed)
        return dg_E, dg

    def row_scaling(self, gain, dg_E, dg, ok):
        """``(alpha, gain_delta)``, no update at all where not ``ok``."""
        g_new = tf.clip_by_value(gain + dg, self.min_gain, self.max_gain)
        m = gain + dg_E  # the gain of S + beta x
        ok = (m > 0) & ok
        alpha = tf.where(ok, g_new / tf.where(ok, m, tf.ones_like(m)), tf.ones_like(m))
        return alpha, tf.where(ok, g_new - gain, 0.0 * gain)

    def build_step(self, signals):
        def gather(data):
            return with_batch(signals.gather(data), data)

        def check(tensor, what):
            # NengoDL's counterpart of the reference simulator's checks
            return tf.debugging.check_numerics(
                tensor,
                f"nengo_fa: {what} of a {self.rule_names} rule contains NaN or "
                "inf; stopping before it reaches the encoders, gains and biases",
            )

        error = check(gather(self.error_data), "the error")
        x_ops = check(gather(self.x_data), "the ensemble's input")  # (B, K, d)
        J, S = gather(self.current_data), gather(self.scaled_encoders_data)
        if self.seen:
            # what the error is paired with: J and x through the rule's Lowpass
            a_J, a_x = self.decay_J, self.decay_x
            J = a_J * gather(self.J_seen_data) + (1.0 - a_J) * J
            x_ops = a_x * gather(self.x_seen_data) + (1.0 - a_x) * x_ops
            scatter(signals, self.J_seen_data, J)
            scatter(signals, self.x_seen_flat, x_ops)
        gain_signal, bias = gather(self.gain_data), gather(self.bias_data)
        # the gains the scaled encoders have, g = r |S_i|, measured every step
        # in every precision where the gains learn: the reference simulator
        # measures them below float64 and, in float64, on rows at the gain
        # floor or ceiling (see NumpyStep.measure_bounded_rows); here one more
        # reduction over S costs about what sx does, and no per-row case is
        # needed
        measured = self.radius * tf.sqrt(tf.reduce_sum(tf.square(S), axis=-1))
        gain = tf.where(self.measures_gains, measured, gain_signal)

        fe, nu = self.feedback_error(signals, error)
        nu = check(nu, "the feedback")
        delta, c = self.local_error(J, fe, nu)
        x = repeat_per_neuron(x_ops, self.sizes)  # (B, N or 1, d)
        sx = check(tf.reduce_sum(S * x, axis=-1), "S x, the encoded input,")
        delta = check(delta, "the local error delta")
        bias_delta = self.bias_step(delta, c, gain)
        xx = tf.reduce_sum(tf.square(x), axis=-1)
        beta = self.step_bounds(delta, c, xx, gain)
        dg_E, dg = self.encoder_gain_step(delta, c, beta, sx, xx, gain)
        # no update at all without feedback, input or encoder learning
        ok = (nu > 0) & (xx > 0) & self.learns_encoders
        alpha, gain_delta = self.row_scaling(gain, dg_E, dg, ok)
        beta = alpha * beta
        bias_delta = self.bias_limits(bias_delta, gain, gain_delta, bias)
        gain_delta = gain_delta + (gain - gain_signal)

        scatter(signals, self.delta_data, delta)
        scatter(signals, self.bias_delta_data, bias_delta)
        scatter(signals, self.gain_delta_data, gain_delta)
        if self.factored:
            for data, value in zip(self.factor_data, (alpha, beta, x_ops)):
                scatter(signals, data, value)
        else:
            encoders_delta = beta[..., None] * x + (alpha - 1.0)[..., None] * S
            scatter(signals, self.encoders_delta_data, encoders_delta)

    @staticmethod
    def mergeable(x, y):
        # the generic checks already ensure the same d (encoder columns) and,
        # for fixed feedback, the same error size; F^T needs the same n too
        cx, cy = x.constants, y.constants
        if (
            cx.transpose_feedback != cy.transpose_feedback
            or (x.feedback_error is None) != (y.feedback_error is None)
            or (cx.feedback_norm is None) != (cy.feedback_norm is None)
            or x.factored != y.factored
            or x.error.shape != y.error.shape
            or (x.seen is None) != (y.seen is None)
        ):
            return False
        if cx.transpose_feedback and x.scaled_encoders.shape != y.scaled_encoders.shape:
            return False
        try:
            return op_derivative(x)[0] == op_derivative(y)[0]
        except BuildError:
            return False  # raised again, clearly, in build_pre


@Builder.register(SimHiddenLayerEncoderUpdate)
class SimHiddenLayerEncoderUpdateBuilder(OpBuilder):
    r"""Build a group of `.SimHiddenLayerEncoderUpdate` operators.

    :math:`S \leftarrow \mathrm{diag}(\alpha) S + \beta x^T`, written as a
    new value of :math:`S` (the builder guarantees that no other operator
    changes :math:`S` in the same step); then, for operators that took over
    the ensemble's encoding, :math:`J \mathrel{+}= S x`.
    """

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.sizes = [op.scaled_encoders.shape[0] for op in ops]
        d = ops[0].scaled_encoders.shape[1]
        self.encoder_data = signals.combine([op.scaled_encoders for op in ops])
        self.alpha_data = signals.combine([op.alpha for op in ops])
        self.beta_data = signals.combine([op.beta for op in ops])
        self.x_data = signals.combine([op.x for op in ops]).reshape((len(ops), d))
        self.encodes = ops[0].encode is not None
        self.norms_data = None
        if ops[0].row_norms is not None:
            self.norms_data = signals.combine([op.row_norms for op in ops])
        if self.encodes:
            # J += S x_new, the ensemble encoding the operator took over
            self.x_new_data = signals.combine([op.encode[0] for op in ops])
            self.x_new_data = self.x_new_data.reshape((len(ops), d))
            self.current_data = signals.combine([op.encode[1] for op in ops])

    def build_step(self, signals):
        def gather(data):
            return with_batch(signals.gather(data), data)

        S = gather(self.encoder_data)
        alpha, beta = gather(self.alpha_data), gather(self.beta_data)
        x = repeat_per_neuron(gather(self.x_data), self.sizes)
        S = alpha[..., None] * S + beta[..., None] * x
        scatter(signals, self.encoder_data, S)
        if self.norms_data is not None:
            norms = tf.sqrt(tf.reduce_sum(tf.square(S), axis=-1))
            scatter(signals, self.norms_data, norms)
        if self.encodes:
            x_new = repeat_per_neuron(gather(self.x_new_data), self.sizes)
            encoded = tf.reduce_sum(S * x_new, axis=-1)
            scatter(signals, self.current_data, encoded, mode="inc")

    @staticmethod
    def mergeable(x, y):
        # the generic checks ensure the same d
        same_norms = (x.row_norms is None) == (y.row_norms is None)
        return (x.encode is None) == (y.encode is None) and same_norms
