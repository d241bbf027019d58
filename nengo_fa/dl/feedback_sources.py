"""NengoDL builders of `.SimSignFeedback` (the sign-symmetry feedback source)
and `.SimFilteredFeedback` (`.BackProp`'s low-passed weights)."""

import numpy as np
import tensorflow as tf
from nengo_dl.builder import Builder

from nengo_fa.builder import SimFilteredFeedback, SimSignFeedback
from nengo_fa.dl.common import StackedBuilder, rms, scatter


@Builder.register(SimSignFeedback)
class SimSignFeedbackBuilder(StackedBuilder):
    r"""Build a group of `.SimSignFeedback` operators:
    :math:`F = \sqrt{\mathrm{mean}(W^2)} \, \mathrm{sign}(W)`, and the
    rule's feedback error from it."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.feedback_data = self.stack(signals, lambda op: op.feedback, output=True)
        self.size = int(np.prod(self.ops[0].weights.shape))
        self.feedback_error = self.stack_feedback_error(signals)

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        rho = rms(W, self.size)
        F = tf.sign(W) * rho[..., None, None]
        scatter(signals, self.feedback_data, F)
        self.scatter_feedback_error(signals, self.feedback_error, F, transposed=True)


@Builder.register(SimFilteredFeedback)
class SimFilteredFeedbackBuilder(StackedBuilder):
    r"""Build a group of `.SimFilteredFeedback` operators:
    :math:`F^T \leftarrow a F^T + (1 - a) W`, and the rule's feedback error
    from it."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.weights_data = self.stack(signals, lambda op: op.weights)
        # written as the other outputs are, read as the weights are
        self.feedback_flat = self.stack(signals, lambda op: op.feedback, output=True)
        self.feedback_data = self.feedback_flat.reshape(
            (len(ops),) + ops[0].feedback.shape
        )
        self.decay = self.per_op([op.decay for op in ops], signals.dtype, 2)
        self.feedback_error = self.stack_feedback_error(signals)

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        a = self.decay
        F = self.gather(signals, self.feedback_data) * a + W * (1.0 - a)
        scatter(signals, self.feedback_flat, F)
        self.scatter_feedback_error(signals, self.feedback_error, F, transposed=True)
