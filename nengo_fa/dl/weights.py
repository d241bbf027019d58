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
    a_{pre}^T / \nu`, and 0 while :math:`\nu = 0`."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.n = ops[0].delta.shape[0]
        self.delta_data = self.stack(signals, lambda op: op.delta)
        self.feedback_data = self.stack(signals, lambda op: op.feedback)
        self.pre_data = self.stack(signals, lambda op: op.pre_activities)
        self.output_data = self.stack(signals, lambda op: op.weights_delta, output=True)
        self.coef = self.per_op(
            [
                -op.learning_rate * signals.dt_val * np.asarray(op.row_scale, float)
                for op in ops
            ],
            signals.dtype,
            1,
        )  # (1, K, n)
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
        pre = self.gather(signals, self.pre_data)  # (B, K, n_pre)
        if self.fixed_nu is None:
            nu = rms(self.gather(signals, self.feedback_data), self.n)  # (B, K)
        else:
            nu = self.fixed_nu
        has_feedback = nu > 0
        inv_nu = tf.where(
            has_feedback,
            1.0 / tf.where(has_feedback, nu, tf.ones_like(nu)),
            tf.zeros_like(nu),
        )
        u = delta * self.coef * inv_nu[..., None]
        scatter(signals, self.output_data, u[..., :, None] * pre[..., None, :])

    @staticmethod
    def mergeable(x, y):
        return (
            same_shapes(x, y)
            and np.shape(x.row_scale) == np.shape(y.row_scale)
            and x.fixed_feedback == y.fixed_feedback
        )
