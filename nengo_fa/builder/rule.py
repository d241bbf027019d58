"""The build function of every `.HiddenLayerRule`."""

import numpy as np
from nengo.builder import Builder, Signal
from nengo.builder.operator import Copy, Reset
from nengo.ensemble import Ensemble, Neurons
from nengo.exceptions import BuildError
from nengo.neurons import Direct

from nengo_fa.builder import encoder_update
from nengo_fa.builder.chained import (
    build_chained_error,
    chained_downstream_rule,
    chained_error_size,
)
from nengo_fa.builder.deferred import publish
from nengo_fa.builder.feedback_sources import RuleBuild, feedback_source
from nengo_fa.builder.hidden_layer import (
    BuiltHiddenLayerRule,
    EnsembleSignals,
    RuleOutputs,
    SimHiddenLayerRule,
    fixed_feedback_norm,
    rule_constants,
)
from nengo_fa.builder.weights import build_weights_learning
from nengo_fa.learning_rules import HiddenLayerRule
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
    ens = _hidden_ensemble(rule_type, rule)
    weights_mode = rule_type.modifies == "weights"
    built_ens = model.params[ens]
    encoders = model.sig[ens]["encoders"]
    bias = model.sig[ens.neurons]["bias"]
    bias.readonly = False  # before the simulator allocates it
    gain = _ensemble_gain_signal(model, ens)

    # a chained rule's error is the local error of the rule downstream of it
    source = feedback_source(rule_type)
    down_rule = chained_downstream_rule(rule_type, rule)
    name = type(rule_type).__name__
    error = Signal(
        shape=(
            rule.size_in
            if down_rule is None
            else chained_error_size(rule_type, source)
        ),
        name=f"{name}:error",
    )
    if down_rule is None:
        model.add_op(Reset(error))
    model.sig[rule]["in"] = error  # error connection will attach here

    derivative = make_derivative(
        ens.neuron_type, built_ens.gain, built_ens.bias, rule_type.derivative
    )
    gain_scale = float(np.mean(np.abs(gain.initial_value)))
    gain_scale = gain_scale if gain_scale > 0 else 1.0
    derivative_scale = _derivative_scale(
        ens.neuron_type, derivative, built_ens.gain, built_ens.bias
    )
    ctx = RuleBuild(
        model,
        rule_type,
        rule,
        ens,
        derivative,
        error,
        down_rule,
        f"{name} on {rule.connection}",
    )

    # nengo's build_learning_rule made an (n, d) delta that it adds to the
    # encoders (or, with modifies="weights", to the weights); the per-neuron
    # local error takes over the name "delta"
    nengo_delta = model.sig[rule]["delta"]
    n = ens.n_neurons
    delta = Signal(shape=n, name=f"{name}:delta")
    gain_delta = Signal(shape=n, name=f"{name}:gain_delta")
    bias_delta = Signal(shape=n, name=f"{name}:bias_delta")
    model.add_op(Copy(gain_delta, gain, inc=True, tag="gain += delta"))
    model.add_op(Copy(bias_delta, bias, inc=True, tag="bias += delta"))

    rates = {} if not weights_mode else {"learning_rate": 0, "gain_learning_rate": 0}
    learns_encoders = not weights_mode and (
        rule_type.learning_rate > 0 or rule_type.gain_learning_rate > 0
    )
    encoders_delta = None if weights_mode else nengo_delta
    inplace = encoder_update.uses_inplace_update(
        model, ens, encoders_delta, learns_encoders
    )
    factors = encoder_update.encoder_factors(name, *encoders.shape) if inplace else None
    if weights_mode:
        add_weights_operator = build_weights_learning(
            model,
            rule_type,
            rule,
            ens,
            delta,
            nengo_delta,
            gain_scale,
            derivative_scale,
        )
    if down_rule is not None:
        build_chained_error(ctx, source)

    def add_operator(feedback, transposed, from_current=False, compiled=False):
        constants = rule_constants(
            rule_type,
            model,
            gain_scale,
            derivative_scale,
            ens.radius,
            derivative,
            feedback_norm=None if transposed else fixed_feedback_norm(feedback),
            from_current=from_current,
            transpose_feedback=transposed,
            compiled=compiled,
            **rates,
        )
        model.add_op(
            SimHiddenLayerRule(
                error,
                feedback,
                EnsembleSignals(
                    model.sig[ens.neurons]["in"],
                    model.sig[ens]["in"],
                    encoders,
                    gain,
                    bias if inplace else None,
                ),
                RuleOutputs(
                    delta,
                    gain_delta,
                    bias_delta,
                    None if inplace else nengo_delta,
                    factors,
                ),
                derivative,
                ens.neuron_type,
                constants,
                tag=ctx.prefix,
            )
        )

    def feedback_ready(feedback, transposed):
        if not inplace:
            add_operator(feedback, transposed)
        if weights_mode:
            add_weights_operator(feedback, transposed)
        publish(model, (rule, "feedback"), (feedback, transposed))

    if inplace:
        encoder_update.request_inplace_update(
            model,
            encoder_update.InplaceRequest(
                rule=rule,
                ensemble=ens,
                encoders=encoders,
                encoders_delta=encoders_delta,
                factors=factors,
                learns=learns_encoders,
                name=name,
                add_operator=add_operator,
            ),
        )
    fixed_feedback = source.build(ctx, feedback_ready)

    model.sig[rule]["error"] = error
    model.sig[rule]["delta"] = delta
    model.sig[rule]["encoders"] = encoders
    model.sig[rule]["scaled_encoders"] = encoders
    model.sig[rule]["gain"] = gain
    model.sig[rule]["bias"] = bias
    model.params[rule] = BuiltHiddenLayerRule(
        feedback=fixed_feedback,
        gain_scale=gain_scale,
        derivative_scale=derivative_scale,
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
        gain = ens.radius * np.linalg.norm(S, axis=1)
        model.sig[ens]["gain"] = Signal(gain, name=f"{ens}.gain")
    return model.sig[ens]["gain"]


def _derivative_scale(neuron_type, derivative, gain, bias):
    """Mean of G'(J) over the active part of the tuning curves on [-1, 1]."""
    xs = np.linspace(-1, 1, 101)
    rates = neuron_type.rates(xs, gain, bias)
    slopes = np.empty_like(rates)
    for i, xi in enumerate(xs):
        derivative(gain * xi + bias, slopes[i])
    active = (rates > 0) & np.isfinite(slopes)
    scale = np.mean(slopes[active]) if np.any(active) else 0.0
    return float(scale) if scale > 0 else 1.0
