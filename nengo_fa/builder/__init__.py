"""Build functions and operators for the reference simulator.

Importing this package registers its build functions with
`nengo.builder.Builder` (``nengo_fa`` imports it). Only nengo_fa's own types
are registered, so models that do not use nengo_fa build exactly as before.

One module per topic, as in `nengo.builder`:

- `~nengo_fa.builder.rule`: the build function of every `.HiddenLayerRule`;
- `~nengo_fa.builder.feedback_sources`: where each rule's feedback comes from
  (`register_feedback_source`), including `.SimSignFeedback` and
  `.SimFilteredFeedback`;
- `~nengo_fa.builder.hidden_layer`: `.SimHiddenLayerRule` and its
  `.RuleConstants`; its numpy and compiled stages are in
  `~nengo_fa.builder.stages` and `~nengo_fa.builder.kernels`;
- `~nengo_fa.builder.encoder_update`: the in-place encoder update and the one
  pass that installs it;
- `~nengo_fa.builder.alignment`: learned feedback and alignment diagnostics;
- `~nengo_fa.builder.chained`: chained rules' errors;
- `~nengo_fa.builder.target_prop`: the targets and learned inverses of
  `.DifferenceTargetProp`;
- `~nengo_fa.builder.weights`: learning neuron-to-neuron weights;
- `~nengo_fa.builder.lra`: local representation alignment's targets;
- `~nengo_fa.builder.trace`: the trace rule's top-down nudge and local error;
- `~nengo_fa.builder.erbp`: event-driven random backpropagation (`.ERBP`),
  its own build function and operators;
- `~nengo_fa.builder.synthetic`: synthetic gradients' predictor;
- `~nengo_fa.builder.warmup`: a rule's warm-up (`.SimErrorWarmup`);
- `~nengo_fa.builder.deferred`: build steps that wait for other objects.
"""

from nengo_fa.builder.alignment import (
    SimAlignmentDiagnostics,
    SimAlignmentTerms,
    SimForwardMatrix,
    SimKolenPollack,
)
from nengo_fa.builder.chained import SimChainedError
from nengo_fa.builder.encoder_update import SimHiddenLayerEncoderUpdate
from nengo_fa.builder.erbp import SimERBP, SimERBPWeights, build_erbp
from nengo_fa.builder.feedback_sources import (
    FeedbackSource,
    RuleBuild,
    SimFilteredFeedback,
    SimSignFeedback,
    register_feedback_source,
)
from nengo_fa.builder.hidden_layer import (
    MIN_GAIN_FRACTION,
    BuiltHiddenLayerRule,
    RuleConstants,
    SimHiddenLayerRule,
)
from nengo_fa.builder.lra import SimLRATarget
from nengo_fa.builder.rule import build_hidden_layer_rule
from nengo_fa.builder.synthetic import SimSyntheticGradient
from nengo_fa.builder.target_prop import SimDifferenceTarget, SimTopTarget
from nengo_fa.builder.trace import SimTopDownNudge, SimTraceError
from nengo_fa.builder.warmup import SimErrorWarmup
from nengo_fa.builder.weights import SimHiddenLayerWeights

#: Every operator type that nengo_fa's build functions add.
OPERATORS = (
    SimHiddenLayerRule,
    SimHiddenLayerEncoderUpdate,
    SimChainedError,
    SimSignFeedback,
    SimFilteredFeedback,
    SimHiddenLayerWeights,
    SimForwardMatrix,
    SimKolenPollack,
    SimAlignmentTerms,
    SimAlignmentDiagnostics,
    SimERBP,
    SimERBPWeights,
    SimTopTarget,
    SimDifferenceTarget,
    SimLRATarget,
    SimTopDownNudge,
    SimTraceError,
    SimSyntheticGradient,
    SimErrorWarmup,
)
