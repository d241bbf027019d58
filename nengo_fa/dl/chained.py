"""NengoDL builder of `.SimChainedError`."""

import numpy as np
import tensorflow as tf
from nengo_dl.builder import Builder

from nengo_fa.builder import SimChainedError
from nengo_fa.dl.common import StackedBuilder, rms, same_shapes, scatter


@Builder.register(SimChainedError)
class SimChainedErrorBuilder(StackedBuilder):
    r"""Build a group of `.SimChainedError` operators.

    :math:`e_l = M^T \delta_{l+1} / (\nu_{l+1} \bar{G'}_{l+1})`, and 0
    while :math:`\nu_{l+1} = 0`.
    """

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        dtype = signals.dtype
        self.n = ops[0].delta.shape[0]
        self.delta_data = self.stack(signals, lambda op: op.delta)
        self.feedback_data = self.stack(signals, lambda op: op.feedback)
        self.error_data = self.stack(signals, lambda op: op.error, output=True)
        self.has_encoders = ops[0].encoders is not None
        if self.has_encoders:
            self.encoder_data = self.stack(signals, lambda op: op.encoders)
        self.scale = self.per_op([op.scale for op in ops], dtype, 1)  # (1, K, n)
        self.inv_gbar = self.per_op(
            [1.0 / op.derivative_scale for op in ops], dtype, 0
        )  # (1, K)

    def build_step(self, signals):
        delta = self.gather(signals, self.delta_data)  # (B, K, n)
        nu = rms(self.gather(signals, self.feedback_data), self.n)  # (B, K)
        has_feedback = nu > 0
        coef = tf.where(
            has_feedback,
            self.inv_gbar / tf.where(has_feedback, nu, tf.ones_like(nu)),
            tf.zeros_like(nu),
        )
        e = delta * self.scale * coef[..., None]
        if self.has_encoders:
            S = self.gather(signals, self.encoder_data)  # (B, K, n, d)
            e = tf.reduce_sum(e[..., None] * S, axis=-2)
        scatter(signals, self.error_data, e)

    @staticmethod
    def mergeable(x, y):
        return same_shapes(x, y) and np.shape(x.scale) == np.shape(y.scale)
