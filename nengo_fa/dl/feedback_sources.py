"""NengoDL builders of `.SimSignFeedback` (the sign-symmetry feedback source)
and `.SimFilteredFeedback` (`.BackProp`'s low-passed weights)."""

import numpy as np
import tensorflow as tf
from nengo_dl.builder import Builder

from nengo_fa.builder import SimFilteredFeedback, SimSignFeedback
from nengo_fa.dl.common import StackedBuilder, rms, same_shapes, scatter


@Builder.register(SimSignFeedback)
class SimSignFeedbackBuilder(StackedBuilder):
    r"""Build a group of `.SimSignFeedback` operators:
    :math:`F = \sqrt{\mathrm{mean}(W^2)} \, \mathrm{sign}(W)` (of
    :math:`\bar W`, then low-passed, with ``filtered``), and the rule's
    feedback error from it."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.feedback_data = self.stack(signals, lambda op: op.feedback, output=True)
        self.size = int(np.prod(ops[0].weights.shape))
        self.feedback_error = self.stack_feedback_error(signals)
        self.filter_on = ops[0].filtered is not None
        if self.filter_on:
            # written as the other outputs are, read as the weights are
            self.filtered_flat = self.stack(
                signals, lambda op: op.filtered, output=True
            )
            self.filtered_data = self.filtered_flat.reshape(
                (len(ops),) + ops[0].filtered.shape
            )
            self.decay = self.per_op([op.decay for op in ops], signals.dtype, 2)

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        source = W
        if self.filter_on:
            source = self.gather(signals, self.filtered_data)
            a = self.decay
            scatter(signals, self.filtered_flat, source * a + W * (1.0 - a))
        rho = rms(source, self.size)
        F = tf.sign(source) * rho[..., None, None]
        scatter(signals, self.feedback_data, F)
        self.scatter_feedback_error(signals, self.feedback_error, F, transposed=True)

    @staticmethod
    def mergeable(x, y):
        return same_shapes(x, y) and (x.filtered is None) == (y.filtered is None)


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
