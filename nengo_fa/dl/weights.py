"""NengoDL builder of `.SimHiddenLayerWeights` (``modifies="weights"``)."""

import numpy as np
import tensorflow as tf
from nengo_dl.builder import Builder

from nengo_fa.builder import SimHiddenLayerWeights
from nengo_fa.dl.common import StackedBuilder, rms, same_shapes, scatter


@Builder.register(SimHiddenLayerWeights)
class SimHiddenLayerWeightsBuilder(StackedBuilder):
    r"""Build a group of `.SimHiddenLayerWeights` operators:
    :math:`\Delta W = -\kappa \Delta t \, \mathrm{diag}(s) \delta
    a_{pre}^T / \nu = u a_{pre}^T`, and 0 while :math:`\nu = 0`; or its
    factors :math:`u, a_{pre}`, which `.SimHiddenLayerEncoderUpdate` applies."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.n = ops[0].delta.shape[0]
        self.delta_data = self.stack(signals, lambda op: op.delta)
        self.feedback_data = self.stack(signals, lambda op: op.feedback)
        self.pre_data = self.stack(signals, lambda op: op.pre_activities)
        self.factored = ops[0].weights_factors is not None
        if self.factored:
            self.u_data, self.a_data = (
                self.stack(signals, lambda op, i=i: op.weights_factors[i], output=True)
                for i in range(2)
            )
        else:
            self.output_data = self.stack(
                signals, lambda op: op.weights_delta, output=True
            )
        self.coef_max = float(np.finfo(signals.dtype.as_numpy_dtype).max)
        dt = signals.dt_val
        coefs = [-op.learning_rate * dt * np.asarray(op.row_scale, float) for op in ops]
        self.coef = self.per_op(
            [np.clip(c, -self.coef_max, self.coef_max) for c in coefs],
            signals.dtype,
            1,
        )  # (1, K, n)
        self.limit = self.per_op([op.row_limit for op in ops], signals.dtype, 1)
        # as make_step: a fixed feedback's norm is computed once, at build time
        self.fixed_nu = None
        if ops[0].fixed_feedback:
            self.fixed_nu = self.per_op(
                [
                    np.sqrt(np.sum(np.square(op.feedback.initial_value)) / self.n)
                    for op in ops
                ],
                signals.dtype,
                0,
            )  # (1, K)

    def build_step(self, signals):
        delta = self.gather(signals, self.delta_data)  # (B, K, n)
        pre = tf.debugging.check_numerics(
            self.gather(signals, self.pre_data),
            "nengo_fa: the presynaptic activities of a weight-learning rule "
            "contain NaN or inf; stopping before the weights change",
        )  # (B, K, n_pre)
        if self.fixed_nu is None:
            nu = rms(self.gather(signals, self.feedback_data), self.n)  # (B, K)
            nu = tf.debugging.check_numerics(
                nu,
                "nengo_fa: the feedback of a weight-learning rule contains NaN "
                "or inf; stopping before the weights change",
            )
        else:
            nu = self.fixed_nu
        aa = tf.reduce_sum(tf.square(pre), axis=-1)  # (B, K)
        ok = (nu > 0) & (aa > 0)
        inv_nu = tf.where(
            ok,
            tf.minimum(1.0 / tf.where(ok, nu, tf.ones_like(nu)), self.coef_max),
            tf.zeros_like(nu),
        )
        u = delta * self.coef * inv_nu[..., None]
        # each row moves its neuron's current by at most half its range
        bound = self.limit / tf.where(ok, aa, tf.ones_like(aa))[..., None]
        u = tf.clip_by_value(u, -bound, bound)
        if self.factored:
            scatter(signals, self.u_data, u)
            scatter(signals, self.a_data, pre)
        else:
            scatter(signals, self.output_data, u[..., :, None] * pre[..., None, :])

    @staticmethod
    def mergeable(x, y):
        return (
            same_shapes(x, y)
            and (x.weights_factors is None) == (y.weights_factors is None)
            and np.shape(x.row_scale) == np.shape(y.row_scale)
            and x.fixed_feedback == y.fixed_feedback
        )
