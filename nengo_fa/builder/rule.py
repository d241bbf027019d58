"""The build function of every `.HiddenLayerRule`."""

import functools
import warnings

import numpy as np
from nengo.builder import Builder, Signal
from nengo.builder.learning_rules import build_or_passthrough
from nengo.builder.operator import Copy, Reset
from nengo.ensemble import Ensemble, Neurons
from nengo.exceptions import BuildError, SimulationError
from nengo.neurons import Direct
from nengo.rc import rc
from nengo.synapses import Lowpass

from nengo_fa.builder import encoder_update
from nengo_fa.builder.chained import chained_downstream_rule, chained_error_size
from nengo_fa.builder.deferred import publish, when_model_built
from nengo_fa.builder.feedback_sources import RuleBuild, feedback_source
from nengo_fa.builder.hidden_layer import (
    MAX_INTERCEPT,
    STABLE_STEP,
    BuiltHiddenLayerRule,
    EnsembleSignals,
    RuleOutputs,
    SimHiddenLayerRule,
    fixed_feedback_norm,
    rule_constants,
)
from nengo_fa.builder.warmup import (
    build_warmup,
    readout_time_constant,
    refuse_chained_warmup,
)
from nengo_fa.builder.weights import build_weights_learning, learning_rules
from nengo_fa.exceptions import StableRangeWarning
from nengo_fa.learning_rules import (
    STEADY_FEEDBACK_RATE,
    TRACKING_FEEDBACK_RATE,
    HiddenLayerRule,
)
from nengo_fa.neurons import make_derivative


@Builder.register(HiddenLayerRule)
def build_hidden_layer_rule(model, rule_type, rule):
    """Builds a `.HiddenLayerRule` (`.FeedbackAlignment`, `.BackProp`,
    `.SignSymmetry`, and any rule with a registered feedback source).

    Creates the error signal (``model.sig[rule]["in"]``), a learnable gain
    signal for the ensemble (shared between rules on the same ensemble) and
    per-rule update signals, makes the ensemble's bias writable, and adds
    ``Copy(..., inc=True)`` operators that apply the gain and bias updates on
    the next step. The rule's `.FeedbackSource` (`.register_feedback_source`)
    makes the feedback signal, at once or once what it reads is built; then a
    `.SimHiddenLayerRule` is added, directly or, for the in-place encoder
    update, by `.apply_inplace_update` once the whole model is built. With
    ``modifies="weights"``, the encoders and gains are not learned and a
    `.SimHiddenLayerWeights` operator updates the connection's weights. A
    chained rule (whose ``downstream`` carries a nengo_fa rule) gets no error
    connection: a `.SimChainedError` sets its error, once the downstream
    rule's feedback is known.

    Parameters
    ----------
    model : Model
        The model to build into.
    rule_type : HiddenLayerRule
        Learning rule type to build.
    rule : LearningRule
        The learning rule object corresponding to the rule type.

    Notes
    -----
    Sets ``model.params[rule]`` to a `.BuiltHiddenLayerRule`.
    """
    build = _HiddenLayerBuild(model, rule_type, rule)
    build.connect_feedback()
    model.sig[rule]["error"] = build.error
    model.sig[rule]["delta"] = build.delta
    model.sig[rule]["encoders"] = build.encoders
    model.sig[rule]["scaled_encoders"] = build.encoders
    model.sig[rule]["gain"] = build.gain
    model.sig[rule]["bias"] = build.bias
    model.params[rule] = BuiltHiddenLayerRule(
        feedback=build.fixed_feedback,
        gain_scale=build.gain_scale,
        derivative_scale=build.derivative_scale,
        warmup=build.warmup,
        feedback_synapse=build.feedback_synapse,
        **build.rates,
    )


class _HiddenLayerBuild:
    """The pieces of one rule's build, and the operators they make."""

    def __init__(self, model, rule_type, rule):
        self.model, self.rule_type, self.rule = model, rule_type, rule
        self.ens = ens = _hidden_ensemble(rule_type, rule)
        self.weights_mode = rule_type.modifies == "weights"
        self.encoders = model.sig[ens]["encoders"]
        self.bias = model.sig[ens.neurons]["bias"]
        self.bias.readonly = False  # before the simulator allocates it
        self.gain = _ensemble_gain_signal(model, ens)
        self.source = feedback_source(rule_type)
        self.name = type(rule_type).__name__
        self.error, down_rule = self._error_signal()
        built_ens = model.params[ens]
        self.derivative = make_derivative(
            ens.neuron_type, built_ens.gain, built_ens.bias, rule_type.derivative
        )
        gain_scale = float(np.mean(np.abs(self.gain.initial_value)))
        if gain_scale == 0 and rule_type.modifies == "encoders":
            raise BuildError(
                f"{self.name} on {rule.connection}: every gain of {ens} is 0, so "
                "its encoders do not reach its neurons and the rule has no "
                "direction to learn, nor a scale for its steps: give the "
                "ensemble non-zero gains"
            )
        self.gain_scale = gain_scale if gain_scale > 0 else 1.0
        self.derivative_scale = _derivative_scale(
            ens.neuron_type, self.derivative, built_ens.gain, built_ens.bias
        )
        self.threshold, self.max_intercept = firing_threshold(
            ens.neuron_type, built_ens.gain, built_ens.bias
        )
        prefix = f"{self.name} on {rule.connection}"
        tau = self.seconds(getattr(rule_type, "feedback_synapse", None))
        self.feedback_synapse = Lowpass(tau) if tau > 0 else None
        self.rates = resolved_rates(rule_type, tau, down_rule)
        check_stable_range(rule_type, self.rates, model.dt, prefix)
        self._update_signals()
        self.ctx = RuleBuild(
            model,
            rule_type,
            rule,
            ens,
            self.derivative,
            self.error,
            down_rule,
            prefix,
            self.gain_scale,
            self.derivative_scale,
            self.threshold,
            self.seen_signals[0],
            self.pre_decay,
            tau,
        )

    @functools.cached_property
    def readout_tau(self):
        """:math:`\\tau_1` of the downstream `nengo.PES` readout
        (`.readout_time_constant`), which ``"readout"`` means for the warm-up
        and the feedback filter alike; computed once, when one of them asks."""
        return readout_time_constant(self.model, self.rule_type.downstream)

    def seconds(self, value):
        """A ``warmup``, or the ``tau`` of a ``feedback_synapse``, in seconds:
        `readout_tau` for ``"readout"``, 0 for None."""
        if value is None:
            return 0.0
        if isinstance(value, str):  # "readout"
            return self.readout_tau
        return float(getattr(value, "tau", value))

    def _error_signal(self):
        # a chained rule's error is the local error of the rule downstream of it
        down_rule = chained_downstream_rule(self.rule_type, self.rule)
        size = (
            self.rule.size_in
            if down_rule is None
            else chained_error_size(self.rule_type, self.source)
        )
        error = Signal(shape=size, name=f"{self.name}:error")
        self.warmup = 0.0
        if down_rule is None:
            self.model.add_op(Reset(error))
            self.error_source = "the connections into this rule's error"
            self.model.sig[self.rule]["in"] = error  # error connection attaches here
            seconds = self.seconds(getattr(self.rule_type, "warmup", None))
            error, steps = build_warmup(
                self.model, self.rule, error, self.name, seconds
            )
            self.warmup = steps * self.model.dt
        else:
            refuse_chained_warmup(
                self.rule_type, f"{self.name} on {self.rule.connection}"
            )
            self.error_source = (
                f"passed back by the rule on {self.rule_type.downstream}, which "
                "this rule is chained to"
            )
            self.model.sig[self.rule]["in"] = error
        return error, down_rule

    def _update_signals(self):
        # nengo's build_learning_rule made an (n, d) delta that it adds to the
        # encoders (or, with modifies="weights", to the weights); the
        # per-neuron local error takes over the name "delta"
        model, name, n = self.model, self.name, self.ens.n_neurons
        self.nengo_delta = model.sig[self.rule]["delta"]
        self.delta = Signal(shape=n, name=f"{name}:delta")
        self.gain_delta = Signal(shape=n, name=f"{name}:gain_delta")
        self.bias_delta = Signal(shape=n, name=f"{name}:bias_delta")
        model.add_op(Copy(self.gain_delta, self.gain, inc=True, tag="gain += delta"))
        model.add_op(Copy(self.bias_delta, self.bias, inc=True, tag="bias += delta"))
        self.learns_encoders = not self.weights_mode and (
            self.rates["learning_rate"] > 0 or self.rates["gain_learning_rate"] > 0
        )
        self.encoders_delta = None if self.weights_mode else self.nengo_delta
        self.inplace = encoder_update.uses_inplace_update(
            model, self.ens, self.encoders_delta, self.learns_encoders
        )
        self.factors = (
            encoder_update.encoder_factors(name, *self.encoders.shape)
            if self.inplace
            else None
        )
        self.seen_signals, self.pre_decay = self._eligibility()

    def _eligibility(self):
        """The current :math:`J` and input :math:`x` the rule pairs with its
        error, filtered by ``pre_synapse``, and the decay of a ``Lowpass``
        one, which the rule's step applies itself (0 for none): any other
        synapse filters them by Nengo's own operators before the step reads
        them (and the step then computes :math:`S \\bar x` from :math:`S`)."""
        model, ens, synapse = self.model, self.ens, self.rule_type.pre_synapse
        current, x = model.sig[ens.neurons]["in"], model.sig[ens]["in"]
        self.filtered_by_nengo = False
        no_filter = synapse is None or (
            isinstance(synapse, Lowpass) and synapse.tau == 0
        )
        if no_filter or not self.source.pairs_with_seen:
            # Lowpass(0) passes its input through, as in Nengo
            return (current, x), 0.0
        if isinstance(synapse, Lowpass):
            return (current, x), float(np.exp(-model.dt / synapse.tau))
        self.filtered_by_nengo = True
        current = build_or_passthrough(model, synapse, current)
        if self.learns_encoders:
            x = build_or_passthrough(model, synapse, x)
        return (current, x), 0.0

    def connect_feedback(self):
        """Weights learning and chained error first (they check their
        connections), then the feedback source, which calls `feedback_ready`."""
        self.add_weights_operator = None
        if self.weights_mode:
            self.add_weights_operator = build_weights_learning(
                self.model,
                self.rule_type,
                self.rule,
                self.ens,
                self.delta,
                self.nengo_delta,
                self.gain_scale,
                self.derivative_scale,
                self.rates["learning_rate"],
            )
        if self.ctx.down_rule is not None:
            self.source.build_chained_error(self.ctx)
        if self.inplace:
            encoder_update.request_inplace_update(
                self.model,
                encoder_update.InplaceRequest(
                    rule=self.rule,
                    ensemble=self.ens,
                    encoders=self.encoders,
                    encoders_delta=self.encoders_delta,
                    factors=self.factors,
                    learns=self.learns_encoders,
                    name=self.name,
                    add_operator=self.add_operator,
                ),
            )
        self.feedback_given = False
        self.fixed_feedback = self.source.build(self.ctx, self.feedback_ready)
        if not self.feedback_given:
            when_model_built(self.model, self.check_feedback_given)

    def check_feedback_given(self):
        """At the end of the build: a source that never called ``ready`` would
        leave a rule that silently does nothing."""
        if not self.feedback_given:
            raise BuildError(
                f"{self.ctx.prefix}: its feedback source "
                f"({type(self.source).__name__}) never gave the rule its "
                "feedback (never called `ready`), e.g. because it waits for an "
                "object that is not part of the model being built"
            )

    def feedback_ready(self, feedback, transposed, feedback_error=None):
        n, d = self.ens.n_neurons, self.error.shape[0]
        shape = (d, n) if transposed else (n, d)
        # (a source that gives the feedback error computes F e itself)
        if feedback_error is None and feedback.shape != shape:
            raise BuildError(
                f"{self.ctx.prefix}: its feedback source "
                f"({type(self.source).__name__}) gave a feedback of shape "
                f"{feedback.shape}; expected {shape} (F{'^T' if transposed else ''}"
                ": the hidden neurons by the error's dimensions)"
            )
        self.feedback_given = True
        if not self.inplace:
            self.add_operator(feedback, transposed, feedback_error)
        if self.add_weights_operator is not None:
            self.add_weights_operator(feedback, transposed)
        publish(
            self.model,
            (self.rule, "feedback"),
            (feedback, transposed, feedback_error),
        )

    def add_operator(
        self,
        feedback,
        transposed,
        feedback_error=None,
        from_current=False,
        compiled=False,
        row_norms=None,
        current_offset=None,
    ):
        """Add the rule's `.SimHiddenLayerRule`, reading ``feedback`` or,
        where its operator gives them, ``feedback_error`` (and ``row_norms``,
        :math:`|S_i|` set by the encoder update, if given, and
        ``current_offset``, :math:`o` with :math:`J = S x + b + o`, used
        where the rule pairs its error with :math:`J` and :math:`x`
        themselves)."""
        ens, model = self.ens, self.model
        rates = dict(self.rates)
        if self.weights_mode:  # the weights operator learns them, not this one
            rates.update(learning_rate=0, gain_learning_rate=0)
        # J - b is S x, not the S x-bar of an input Nengo filtered
        from_current = from_current and not self.filtered_by_nengo
        constants = rule_constants(
            rates,
            model,
            self.gain_scale,
            self.derivative_scale,
            ens.radius,
            self.threshold,
            self.max_intercept,
            feedback_norm=None if transposed else fixed_feedback_norm(feedback),
            from_current=from_current,
            transpose_feedback=transposed,
            compiled=compiled,
            pre_decay=self.pre_decay,
            **rates,
        )
        signals = EnsembleSignals(
            *self.seen_signals, self.encoders, self.gain, self.bias
        )
        if (
            from_current
            or self.filtered_by_nengo
            or self.pre_decay > 0
            or signals.current is not model.sig[ens.neurons]["in"]
        ):
            current_offset = None
        seen = None
        if self.pre_decay > 0:
            n, d = self.encoders.shape
            seen = tuple(
                Signal(np.zeros(size, dtype=rc.float_dtype), name=f"{self.name}:{what}")
                for size, what in ((n, "current_seen"), (d, "x_seen"), (n, "Sx_seen"))
            )
        outputs = RuleOutputs(
            self.delta,
            self.gain_delta,
            self.bias_delta,
            None if self.inplace else self.nengo_delta,
            self.factors,
        )
        model.add_op(
            SimHiddenLayerRule(
                self.error,
                feedback if feedback_error is None else feedback_error,
                signals,
                outputs,
                self.derivative,
                ens.neuron_type,
                constants,
                tag=self.ctx.prefix,
                error_source=self.error_source,
                row_norms=row_norms,
                seen=seen,
                current_offset=current_offset,
            )
        )


def _hidden_ensemble(rule_type, rule):
    """The ensemble ``rule`` trains, checked."""
    conn = rule.connection
    ens = conn.post_obj
    if rule_type.modifies == "weights" and isinstance(ens, Neurons):
        ens = ens.ensemble
    if not isinstance(ens, Ensemble):  # Nengo's own validation should catch this
        raise BuildError(
            f"{type(rule_type).__name__} on {conn}: 'post' must be an Ensemble "
            f"(got {type(ens).__name__})"
        )
    if isinstance(ens.neuron_type, Direct):
        raise BuildError(
            f"{type(rule_type).__name__} on {conn}: {ens} has Direct neurons, so "
            "it has no encoders, gains or biases to learn. Use a neuron type."
        )
    return ens


def _ensemble_gain_signal(model, ens):
    """The ensemble's gains as a learnable signal, shared by all its rules."""
    if "gain" not in model.sig[ens]:
        S = model.sig[ens]["encoders"].initial_value
        gain = (ens.radius * np.linalg.norm(S, axis=1)).astype(rc.float_dtype)
        model.sig[ens]["gain"] = Signal(gain, name=f"{ens}.gain")
    return model.sig[ens]["gain"]


def _derivative_scale(neuron_type, derivative, gain, bias):
    """Mean of G'(J) over the active part of the tuning curves on [-1, 1]."""
    xs = np.linspace(-1, 1, 101)
    rates = neuron_type.rates(xs, gain, bias)
    slopes = np.empty_like(rates)
    try:
        for i, xi in enumerate(xs):
            derivative(gain * xi + bias, slopes[i])
    except SimulationError as e:
        raise BuildError(str(e)) from e
    active = (rates > 0) & np.isfinite(slopes)
    scale = np.mean(slopes[active]) if np.any(active) else 0.0
    return float(scale) if scale > 0 else 1.0


def firing_threshold(neuron_type, gain, bias):
    """:math:`(\\theta, \\iota_{max})` for the bias floor (see `.RuleConstants`).

    :math:`\\theta` is the input current at the neurons' intercepts,
    :math:`g_i c_i + b_i` with Nengo's ``max_rates_intercepts`` (the same
    for every neuron: 0 for rectified linear, 1 for LIF), and
    :math:`\\iota_{max}` the larger of `.MAX_INTERCEPT` and the highest
    build-time intercept, so that no neuron starts beyond the floor.
    """
    gain = np.asarray(gain, dtype=float)
    bias = np.asarray(bias, dtype=float)
    try:
        _, intercepts = neuron_type.max_rates_intercepts(gain, bias)
        with np.errstate(all="ignore"):
            thresholds = gain * np.asarray(intercepts, dtype=float) + bias
    except (NotImplementedError, ValueError, TypeError, FloatingPointError):
        intercepts = thresholds = np.full_like(bias, np.nan)
    ok = np.isfinite(thresholds) & np.isfinite(intercepts) & (gain > 0)
    if not np.any(ok):
        # no intercept to go by: the floor is set by the gain ceiling alone
        return float(np.median(bias)) if bias.size else 0.0, np.inf
    theta = float(np.median(thresholds[ok]))
    return theta, float(max(MAX_INTERCEPT, np.max(intercepts[ok])))


def resolved_rates(rule_type, feedback_tau, down_rule):
    """The rule's three rates, as a dict keyed by their parameters' names:
    as given, and for a rate of None (the default of `.BackProp` and
    `.SignSymmetry`) `.TRACKING_FEEDBACK_RATE` where the rule's feedback is
    the live weights of a connection that learns (``feedback_tau`` 0 and a
    chained ``down_rule``, or a learning rule on ``downstream``), else
    `.STEADY_FEEDBACK_RATE`."""
    names = ("learning_rate", "gain_learning_rate", "bias_learning_rate")
    rates = {name: getattr(rule_type, name) for name in names}
    if all(rate is not None for rate in rates.values()):
        return rates
    tracks = feedback_tau == 0 and (
        down_rule is not None
        or any(rule.learning_rate != 0 for rule in learning_rules(rule_type.downstream))
    )
    default = TRACKING_FEEDBACK_RATE if tracks else STEADY_FEEDBACK_RATE
    return {name: default if rate is None else rate for name, rate in rates.items()}


def check_stable_range(rule_type, rates, dt, prefix):
    """Warn (`.StableRangeWarning`) if ``dt`` and the ``rates`` (as
    `resolved_rates` gives them) put the rule outside its stable range (see
    Notes in `.HiddenLayerRule`)."""
    k_current = max(rates["learning_rate"], rates["gain_learning_rate"])
    if rule_type.modifies == "weights":
        k_current = rates["learning_rate"]
    step = dt * (rates["bias_learning_rate"] + k_current)
    if step > STABLE_STEP:
        warnings.warn(
            f"{prefix}: with dt={dt:g}, one step at unit error moves each neuron's "
            f"current by {step:.3g} of its range (dt times the sum of the bias "
            "rate and the larger of the encoder and gain rates), beyond the "
            f"stable range ({STABLE_STEP:g}, see HiddenLayerRule). Its steps stay "
            "bounded, but learning may oscillate: lower the rates or dt.",
            StableRangeWarning,
        )
