"""Chained rules: a hidden layer that takes its error from the rule above it."""

import numpy as np
from nengo.builder import Operator
from nengo.builder.learning_rules import get_post_ens, get_pre_ens
from nengo.ensemble import Neurons
from nengo.exceptions import BuildError

from nengo_fa.builder.deferred import when_built, when_published
from nengo_fa.builder.numerics import rms_row_norm
from nengo_fa.builder.weights import weights_row_gain
from nengo_fa.learning_rules import chained_rule


def chained_downstream_rule(rule_type, rule):
    """The nengo_fa rule that ``rule`` takes its error from, or None."""
    down = getattr(rule_type, "downstream", None)
    down_rule = None if down is None else chained_rule(down)
    expects_chain = rule.size_in == 0
    if (down_rule is not None) != expects_chain:
        raise BuildError(
            f"{type(rule_type).__name__} on {rule.connection}: the learning rule of "
            f"'downstream' ({down}) changed after this rule was made; make the "
            "rule again so that it knows where its error comes from"
        )
    if down_rule is not None:
        check_no_cycle(rule_type, rule)
    return down_rule


def check_no_cycle(rule_type, rule):
    """Raise a `~nengo.exceptions.BuildError` if following ``downstream``
    from ``rule`` leads back to it: then no rule of the chain gets an error
    from outside it."""
    chain = [rule.connection]
    down = rule_type.downstream
    while down is not None:
        down_rule = chained_rule(down)
        if down_rule is None:
            return  # the chain ends at a rule that gets its error connected
        if any(conn is down_rule.connection for conn in chain):
            names = " -> ".join(str(conn) for conn in chain + [down])
            raise BuildError(
                f"{type(rule_type).__name__} on {rule.connection}: the chain of "
                f"'downstream' connections is a cycle ({names}): every rule in it "
                "takes its error from the next one, so no error ever enters and "
                "nothing is learned. End the chain at a connection that carries no "
                "nengo_fa rule (e.g. the readout) and connect the output error to "
                "the rule nearest it"
            )
        chain.append(down_rule.connection)
        down = getattr(down_rule.learning_rule_type, "downstream", None)


def chained_error_size(rule_type, source):
    """Size of a chained rule's error: what its feedback matrix multiplies."""
    down = rule_type.downstream
    down_ens = get_post_ens(down)
    if source.replaces_forward_matrix:
        return rule_type.error_size  # n_{l+1}, set by the rule
    if chained_rule(down).learning_rule_type.modifies == "weights":
        return down_ens.n_neurons
    return down_ens.dimensions


def check_downstream_reads(prefix, down, ens):
    """Check that ``down`` starts at ``ens`` and, from its neurons, reads all
    of them (the feedback has a row for every neuron)."""
    if get_pre_ens(down) is not ens:
        raise BuildError(
            f"{prefix}: 'downstream' must start at {ens} or its neurons, the "
            f"ensemble this rule trains (it starts at {down.pre_obj})"
        )
    if isinstance(down.pre_obj, Neurons) and down.pre_slice != slice(None):
        raise BuildError(
            f"{prefix}: 'downstream' must read all of {ens.neurons} "
            f"(it reads the slice {down.pre_slice})"
        )


def build_chained_error(ctx, source):
    """Feed the downstream rule's normalised local error to a chained rule.

    Adds a `.SimChainedError` operator once the downstream connection is built
    and its rule's feedback is known. ``ctx`` is the rule's `.RuleBuild`,
    ``source`` its `.FeedbackSource`.
    """
    model, rule_type, ens = ctx.model, ctx.rule_type, ctx.ens
    down_rule, error, prefix = ctx.down_rule, ctx.error, ctx.prefix
    down = rule_type.downstream
    down_type = down_rule.learning_rule_type
    down_ens = get_post_ens(down)
    check_downstream_reads(prefix, down, ens)
    if down.post_slice != slice(None):
        raise BuildError(
            f"{prefix}: 'downstream' must go into all of {down.post_obj} to "
            f"carry its rule's local error back (it goes into the slice "
            f"{down.post_slice})"
        )
    if model.toplevel is not None and down not in model.toplevel.all_connections:
        raise BuildError(
            f"{prefix}: 'downstream' ({down}) is not part of the model being built"
        )

    def add_chain_operator(published):
        down_feedback = published[0]
        built = model.params[down_rule]
        encoders = None
        if source.replaces_forward_matrix:
            scale = 1.0  # B_l takes the place of the whole W_l^T M
        elif down_type.modifies == "encoders":
            # (d / n) E^T ~ pinv(E) for spread-out unit encoders E: e_l is the
            # decoded-space vector that the next layer would encode as its
            # normalised local error, so every layer takes steps of one size
            encoders = model.sig[down_ens]["encoders"]
            scale = (
                down_ens.radius
                * down_ens.dimensions
                / (built.gain_scale * down_ens.n_neurons)
            )
        else:
            scale = weights_row_gain(model, down, down_ens) / built.gain_scale
        model.add_op(
            SimChainedError(
                delta=model.sig[down_rule]["delta"],
                feedback=down_feedback,
                error=error,
                scale=scale,
                derivative_scale=built.derivative_scale,
                encoders=encoders,
                tag=f"{prefix}: error from {down}",
            )
        )

    when_built(
        model,
        [down],
        lambda: when_published(model, (down_rule, "feedback"), add_chain_operator),
    )


class SimChainedError(Operator):
    r"""Pass a downstream rule's normalised local error back as an error.

    Implements, with the notation of `.HiddenLayerRule`,

    .. math:: e_l = M^T \delta_{l+1} / (\nu_{l+1} \bar{G'}_{l+1})

    with :math:`M = s S_{l+1}` (``encoders`` given; :math:`s` a scalar) or
    :math:`M = \mathrm{diag}(s)` (no ``encoders``), and :math:`\nu_{l+1}`
    the RMS row norm of the downstream rule's feedback, recomputed every step.
    :math:`e_l = 0` while :math:`\nu_{l+1} = 0`.

    Parameters
    ----------
    delta : Signal
        The downstream rule's local error :math:`\delta_{l+1}`, shape
        ``(n_{l+1},)``. It is an updated signal, so this reads the value of
        the previous step.
    feedback : Signal
        The downstream rule's feedback :math:`F_{l+1}` (or its transpose).
    error : Signal
        Output: the error :math:`e_l` of the upstream rule.
    scale : float or ndarray
        :math:`s`.
    derivative_scale : float
        :math:`\bar{G'}_{l+1}`.
    encoders : Signal, optional
        The live scaled encoders :math:`S_{l+1}`, shape ``(n_{l+1}, d_{l+1})``.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[error]``
    2. incs ``[]``
    3. reads ``[delta, feedback]`` (``+ [encoders]``)
    4. updates ``[]``
    """

    def __init__(
        self, delta, feedback, error, scale, derivative_scale, encoders=None, tag=None
    ):
        super().__init__(tag=tag)
        self.scale = scale
        self.derivative_scale = derivative_scale
        self.sets = [error]
        self.incs = []
        self.reads = [delta, feedback] + ([] if encoders is None else [encoders])
        self.updates = []

    @property
    def error(self):
        return self.sets[0]

    @property
    def delta(self):
        return self.reads[0]

    @property
    def feedback(self):
        return self.reads[1]

    @property
    def encoders(self):
        return self.reads[2] if len(self.reads) > 2 else None

    @property
    def _descstr(self):
        return f"{self.delta} -> {self.error}"

    def make_step(self, signals, dt, rng):
        delta = signals[self.delta]
        feedback = signals[self.feedback]
        error = signals[self.error]
        S = None if self.encoders is None else signals[self.encoders]
        n = delta.shape[0]
        scale = self.scale
        gbar = self.derivative_scale
        tmp = np.empty(n, dtype=error.dtype)
        coef_max = float(np.finfo(error.dtype).max)

        def step_simchainederror():
            nu = rms_row_norm(feedback, n)
            if nu == 0:
                error[...] = 0
                return
            np.multiply(delta, scale, out=tmp)
            # capped, so that 0 * c is 0 whatever nu
            np.multiply(tmp, min(1.0 / (nu * gbar), coef_max), out=tmp)
            if S is None:
                error[...] = tmp
            else:
                np.dot(tmp, S, out=error)  # S^T tmp

        return step_simchainederror
