"""NengoDL builders of the learned-feedback and alignment operators."""

import numpy as np
import tensorflow as tf
from nengo.exceptions import BuildError
from nengo_dl.builder import Builder

from nengo_fa.builder import (
    SimAlignmentDiagnostics,
    SimAlignmentTerms,
    SimForwardMatrix,
    SimKolenPollack,
)
from nengo_fa.dl.common import StackedBuilder, angle, same_shapes, scatter
from nengo_fa.dl.derivatives import FAMILIES
from nengo_fa.dl.hidden_layer import op_derivative


@Builder.register(SimForwardMatrix)
class SimForwardMatrixBuilder(StackedBuilder):
    r"""Build a group of `.SimForwardMatrix` operators:
    :math:`M = S_{l+1} W_l` or :math:`M = \mathrm{diag}(c) W_l`."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.matrix_data = self.stack(signals, lambda op: op.matrix, output=True)
        self.has_encoders = ops[0].encoders is not None
        if self.has_encoders:
            self.encoder_data = self.stack(signals, lambda op: op.encoders)
        else:
            self.row_gain = self.per_op([op.row_gain for op in ops], signals.dtype, 2)

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)
        if self.has_encoders:
            S = self.gather(signals, self.encoder_data)
            M = tf.matmul(S, W)
        else:
            M = self.row_gain * W
        scatter(signals, self.matrix_data, M)

    @staticmethod
    def mergeable(x, y):
        return same_shapes(x, y) and (x.encoders is None) == (y.encoders is None)


@Builder.register(SimKolenPollack)
class SimKolenPollackBuilder(StackedBuilder):
    r"""Build a group of `.SimKolenPollack` operators:
    :math:`B \leftarrow (1 - \lambda \Delta t) B + (W_t - W_{t-1})^T`
    (:math:`W_t - W_{t-1}` read as the ``change`` the operators are given, or
    from :math:`W` and its previous value), and the rule's feedback error
    from the :math:`B` it replaces."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.from_change = ops[0].change is not None
        self.feedback_in = self.stack(signals, lambda op: op.feedback)
        self.feedback_out = self.stack(signals, lambda op: op.feedback, output=True)
        if self.from_change:
            self.change_data = self.stack(signals, lambda op: op.change)
        else:
            self.weights_data = self.stack(signals, lambda op: op.weights)
            self.previous_in = self.stack(signals, lambda op: op.previous)
            self.previous_out = self.stack(signals, lambda op: op.previous, output=True)
        self.keep = self.per_op(
            [1.0 - op.decay * signals.dt_val for op in ops], signals.dtype, 2
        )
        self.feedback_error = self.stack_feedback_error(signals)

    def build_step(self, signals):
        B = self.gather(signals, self.feedback_in)  # (B, K, n, d_out)
        self.scatter_feedback_error(signals, self.feedback_error, B)
        if self.from_change:
            change = self.gather(signals, self.change_data)  # (B, K, d_out, n)
        else:
            W = self.gather(signals, self.weights_data)
            change = W - self.gather(signals, self.previous_in)
            scatter(signals, self.previous_out, W)
        B = B * self.keep + tf.linalg.matrix_transpose(change)
        scatter(signals, self.feedback_out, B)

    @staticmethod
    def mergeable(x, y):
        return same_shapes(x, y) and (x.change is None) == (y.change is None)


@Builder.register(SimAlignmentTerms)
class SimAlignmentTermsBuilder(StackedBuilder):
    r"""Build a group of `.SimAlignmentTerms` operators (see there for
    :math:`\Delta B`; the activity terms vanish while :math:`a = 0`)."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        dtype = signals.dtype
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.feedback_in = self.stack(signals, lambda op: op.feedback)
        self.feedback_out = self.stack(signals, lambda op: op.feedback, output=True)
        self.use_activities = ops[0].activities is not None and any(
            op.terms.uses_activities for op in ops
        )
        if self.use_activities:
            self.activity_data = self.stack(signals, lambda op: op.activities)

        def per_op(attr):
            return self.per_op([getattr(op.terms, attr) for op in ops], dtype, 2)

        self.decay, self.self_ = per_op("decay"), per_op("self_")
        self.amp, self.sparse = per_op("amp"), per_op("sparse")
        self.null = per_op("null")
        self.normalise = any(op.terms.normalise_forward for op in ops)
        if self.normalise:
            # per op: 1 normalises W, 0 leaves it
            self.normalise_on = self.per_op(
                [float(op.terms.normalise_forward) for op in ops], dtype, 2
            )
        self.rate = self.per_op(
            [-op.terms.learning_rate * signals.dt_val for op in ops], dtype, 2
        )
        self.feedback_error = self.stack_feedback_error(signals)

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        B = self.gather(signals, self.feedback_in)  # (B, K, n, d_out)
        self.scatter_feedback_error(signals, self.feedback_error, B)
        if self.normalise:
            W = self.normalised(W)
        grad = B * self.decay - self.self_ * tf.linalg.matrix_transpose(W)
        if self.use_activities:
            a = self.gather(signals, self.activity_data)  # (B, K, n)
            norm = tf.sqrt(tf.reduce_sum(tf.square(a), axis=-1, keepdims=True))
            active = norm > 0
            x = tf.where(
                active, a / tf.where(active, norm, tf.ones_like(norm)), 0.0 * a
            )
            Wx = tf.reduce_sum(W * x[..., None, :], axis=-1)  # (B, K, d_out)
            xB = tf.reduce_sum(x[..., None] * B, axis=-2)  # (B, K, d_out)
            BWx = tf.reduce_sum(B * Wx[..., None, :], axis=-1)  # (B, K, n)
            grad += -self.amp * (x[..., None] * Wx[..., None, :])
            grad += self.sparse * (x[..., None] * xB[..., None, :])
            grad += self.null * (BWx[..., None] * Wx[..., None, :])
        scatter(signals, self.feedback_out, B + grad * self.rate)

    def normalised(self, W):
        """:math:`\\sqrt{n} W / \\|W\\|_F` (0 while :math:`W = 0`) where an
        op normalises, else :math:`W`."""
        norm = tf.sqrt(tf.reduce_sum(tf.square(W), axis=(-2, -1), keepdims=True))
        nonzero = norm > 0
        n = tf.cast(tf.shape(W)[-1], W.dtype)
        safe = tf.where(nonzero, norm, tf.ones_like(norm))
        scale = tf.where(nonzero, tf.sqrt(n) / safe, tf.zeros_like(norm))
        return W * (self.normalise_on * scale + (1.0 - self.normalise_on))

    @staticmethod
    def mergeable(x, y):
        return same_shapes(x, y) and (x.activities is None) == (y.activities is None)


@Builder.register(SimAlignmentDiagnostics)
class SimAlignmentDiagnosticsBuilder(StackedBuilder):
    """Build a group of `.SimAlignmentDiagnostics` operators."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.error_data = self.stack(signals, lambda op: op.error)
        self.feedback_data = self.stack(signals, lambda op: op.feedback)
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.current_data = self.stack(signals, lambda op: op.current)
        self.outputs = [
            self.stack(signals, lambda op, i=i: op.updates[i], output=True)
            for i in range(3)
        ]
        families = [op_derivative(op) for op in ops]
        self.derivative = FAMILIES[families[0][0]]
        self.derivative_params = {
            key: self.per_op([params[key] for _, params in families], signals.dtype, 0)
            for key in families[0][1]
        }

    def build_step(self, signals):
        e = self.gather(signals, self.error_data)  # (B, K, d_out)
        B = self.gather(signals, self.feedback_data)  # (B, K, n, d_out)
        W = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        J = self.gather(signals, self.current_data)  # (B, K, n)
        Wt = tf.linalg.matrix_transpose(W)
        b_norm = tf.sqrt(tf.reduce_sum(tf.square(B), axis=(-2, -1)))
        w_norm = tf.sqrt(tf.reduce_sum(tf.square(W), axis=(-2, -1)))
        has_w = w_norm > 0
        ratio = tf.where(
            has_w,
            b_norm / tf.where(has_w, w_norm, tf.ones_like(w_norm)),
            np.nan * tf.ones_like(w_norm),
        )
        feedback_angle = angle(tf.reduce_sum(B * Wt, axis=(-2, -1)), b_norm, w_norm)
        gp = self.derivative(
            J, **{k: v[..., None] for k, v in self.derivative_params.items()}
        )
        u = tf.reduce_sum(B * e[..., None, :], axis=-1) * gp
        v = tf.reduce_sum(Wt * e[..., None, :], axis=-1) * gp
        delta_angle = angle(
            tf.reduce_sum(u * v, axis=-1),
            tf.sqrt(tf.reduce_sum(tf.square(u), axis=-1)),
            tf.sqrt(tf.reduce_sum(tf.square(v), axis=-1)),
        )
        for data, value in zip(self.outputs, (delta_angle, feedback_angle, ratio)):
            scatter(signals, data, value)

    @staticmethod
    def mergeable(x, y):
        if not same_shapes(x, y):
            return False
        try:
            return op_derivative(x)[0] == op_derivative(y)[0]
        except BuildError:
            return False
