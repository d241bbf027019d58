"""NengoDL builder of `.SimSignFeedback` (the sign-symmetry feedback source)."""

import numpy as np
import tensorflow as tf
from nengo_dl.builder import Builder

from nengo_fa.builder import SimSignFeedback
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
