"""NengoDL builder of `.SimErrorWarmup` (`.BackProp`'s ``warmup``)."""

import tensorflow as tf
from nengo_dl.builder import Builder

from nengo_fa.builder import SimErrorWarmup
from nengo_fa.dl.common import StackedBuilder, scatter


@Builder.register(SimErrorWarmup)
class SimErrorWarmupBuilder(StackedBuilder):
    r"""Build a group of `.SimErrorWarmup` operators: the error is 0 while
    the step count is below the warm-up's steps, the error in from then on,
    and the count goes up by one a step, from the first with a non-zero
    error, until it reaches them."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.k = len(ops)
        self.in_data = self.stack(signals, lambda op: op.error_in)
        self.error_data = self.stack(signals, lambda op: op.error, output=True)
        self.count_data = self.stack(signals, lambda op: op.count, output=True)
        self.steps = self.per_op([op.steps for op in ops], signals.dtype, 1)

    def build_step(self, signals):
        e = self.gather(signals, self.in_data)  # (B, K, d)
        count = tf.reshape(self.gather(signals, self.count_data), (-1, self.k, 1))
        on = count >= self.steps
        some = tf.reduce_any(tf.not_equal(e, 0), axis=-1, keepdims=True)
        started = tf.logical_or(count > 0, some)
        counts = tf.logical_and(tf.logical_not(on), started)
        scatter(signals, self.error_data, tf.where(on, e, tf.zeros_like(e)))
        scatter(signals, self.count_data, tf.where(counts, count + 1, count))
