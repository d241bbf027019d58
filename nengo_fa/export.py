"""Keeping what was learned: write live parameters back into a model, or a file.

While a simulation runs, the learning rules change signals inside the
simulator, not the model's objects: ``ens.encoders`` and ``sim.data[ens]``
keep their build-time values. `.freeze_params` copies the live values back
into the objects, so that building the model again gives the trained network;
`.save_params` and `.load_params` do the same through a ``.npz`` file, for a
model built again in another process.

What is kept, for each kind of object:

- `nengo.Ensemble`: encoders (unit rows), gains and biases. The simulator
  holds scaled encoders :math:`S = \\mathrm{diag}(g / r) E`; nengo_fa's rules
  add the live gains :math:`g` (for other ensembles :math:`g_i = r |S_i|`), so
  :math:`E = S / (g / r)`. The rebuilt ensemble is given ``gain`` and ``bias``,
  which fixes its tuning: its ``max_rates`` and ``intercepts`` are ignored.
- `nengo.Connection`: the weights that the simulator applies. From an ensemble
  (decoded), they become the decoders of a `nengo.solvers.NoSolver`, with the
  transform set to the identity; otherwise (from a node or neurons) they become
  the transform.
- The feedback matrix :math:`B` of a `.FeedbackAlignment` rule on the
  connection, learned or fixed, becomes the rule's ``feedback``.

Learning rules stay on the objects: gate their error to zero (or remove the
rules) to run the frozen network as it was trained.
"""

import numpy as np
from nengo import Connection, Ensemble, Network
from nengo.connection import LearningRule
from nengo.exceptions import SimulatorClosed, ValidationError
from nengo.neurons import Direct
from nengo.solvers import NoSolver
from nengo.transforms import Dense, NoTransform

from .learning_rules import FeedbackAlignment

__all__ = ["freeze_params", "learned_params", "load_params", "save_params"]


def _rules(conn):
    """The learning rules of a connection, as a list."""
    rules = conn.learning_rule
    if rules is None:
        return []
    if isinstance(rules, LearningRule):
        return [rules]
    return list(rules.values()) if isinstance(rules, dict) else list(rules)


def _frozen_objects(network, objs):
    """Ensembles and connections to freeze: all of ``network``'s, or ``objs``'s."""
    if objs is None:
        objs = [network]
    elif isinstance(objs, (Ensemble, Connection, Network)):
        objs = [objs]
    found = []
    for obj in objs:
        if isinstance(obj, Network):
            found.extend(obj.all_ensembles)
            found.extend(obj.all_connections)
        elif isinstance(obj, (Ensemble, Connection)):
            found.append(obj)
        else:
            raise ValidationError(
                f"can only freeze Ensembles, Connections and Networks, not "
                f"{type(obj).__name__}",
                attr="objs",
                obj=obj,
            )
    return list(dict.fromkeys(found))


def _connection_is_frozen(model, conn):
    """Whether ``conn`` has weights that can be written back as a transform."""
    weights = model.sig[conn].get("weights")
    return weights is not None and isinstance(conn.transform, (Dense, NoTransform))


def _check_connection(conn):
    if isinstance(conn.pre_obj, Ensemble) and conn.solver.weights:
        raise ValidationError(
            "cannot freeze a connection whose solver solves for the full weight "
            "matrix: connect `pre.neurons` to `post.neurons` with a transform",
            attr="solver",
            obj=conn,
        )


def _ensemble_params(sim, ens):
    sig = sim.model.sig
    S = np.array(sim.signals[sig[ens]["encoders"]], dtype=np.float64)
    if "gain" in sig[ens]:  # a nengo_fa rule learns the gains of this ensemble
        gain = np.array(sim.signals[sig[ens]["gain"]], dtype=np.float64)
    else:
        gain = ens.radius * np.linalg.norm(S, axis=1)
    scale = gain / ens.radius
    # a neuron whose gain is 0 has no direction: keep its build-time encoder
    zero = scale == 0
    encoders = np.array(sim.data[ens].encoders, dtype=np.float64)
    encoders[~zero] = S[~zero] / scale[~zero, None]
    bias = np.array(sim.signals[sig[ens.neurons]["bias"]], dtype=np.float64)
    return {"encoders": encoders, "gain": gain, "bias": bias}


def _connection_params(sim, conn):
    params = {}
    if _connection_is_frozen(sim.model, conn):
        _check_connection(conn)
        params["weights"] = np.array(
            sim.signals[sim.model.sig[conn]["weights"]], dtype=np.float64
        )
    for rule in _rules(conn):
        if isinstance(rule.learning_rule_type, FeedbackAlignment):
            feedback = sim.model.sig[rule]["feedback"]
            params["feedback"] = np.array(sim.signals[feedback], dtype=np.float64)
    return params


def learned_params(sim, objs=None):
    """The live parameters of ``objs`` in ``sim``, as numpy arrays.

    Parameters
    ----------
    sim : nengo.Simulator
        An open simulator (inside its ``with`` block: closing it frees the
        signals).
    objs : Ensemble, Connection, Network or list of them, optional
        What to read; a network stands for all its ensembles and connections.
        By default, everything in ``sim``'s model.

    Returns
    -------
    params : dict
        For each object, a dict of arrays: ``"encoders"`` (unit rows),
        ``"gain"`` and ``"bias"`` for an ensemble; ``"weights"`` (the matrix
        applied, transform included) and ``"feedback"`` (of a
        `.FeedbackAlignment` rule) for a connection. Objects with nothing to
        keep (direct-mode ensembles, connections without weights) are left out.
    """
    if getattr(sim, "closed", False) or getattr(sim, "signals", None) is None:
        raise SimulatorClosed(
            "the simulator is closed, so its live parameters are gone: call this "
            "inside the simulator's `with` block"
        )
    params = {}
    for obj in _frozen_objects(sim.model.toplevel, objs):
        if obj not in sim.model.params:
            raise ValidationError(
                f"{obj} is not part of the simulator's model",
                attr="objs",
                obj=obj,
            )
        if isinstance(obj, Ensemble):
            if not isinstance(obj.neuron_type, Direct):
                params[obj] = _ensemble_params(sim, obj)
        else:
            found = _connection_params(sim, obj)
            if found:
                params[obj] = found
    return params


def _set_feedback(conn, feedback):
    (rule,) = [
        r for r in _rules(conn) if isinstance(r.learning_rule_type, FeedbackAlignment)
    ]
    rule_type = rule.learning_rule_type
    # `feedback` is a readonly parameter of a frozen object: write its value
    # directly, checked as the parameter would check it
    param = FeedbackAlignment.feedback
    param.data[rule_type] = param.coerce_ndarray(rule_type, np.array(feedback))


class _Zeros:
    """A connection function that gives the size the frozen decoders need.

    Its values are never used: a `nengo.solvers.NoSolver` ignores them.
    """

    def __init__(self, size):
        self.size = size

    def __call__(self, x):
        return np.zeros(self.size)


def _apply(params):
    """Write ``params`` (as from `.learned_params`) into the objects."""
    for obj, values in params.items():
        if isinstance(obj, Ensemble):
            obj.normalize_encoders = False  # the rows are unit rows already
            obj.encoders = values["encoders"]
            obj.gain = values["gain"]
            obj.bias = values["bias"]
            continue
        if "weights" in values:
            weights = values["weights"]
            if isinstance(obj.pre_obj, Ensemble):
                # decoded: the decoders include the transform, which becomes
                # the identity; the function stays when its size still fits
                if obj.size_mid != weights.shape[0]:
                    obj.function = _Zeros(weights.shape[0])
                obj.transform = None
                obj.solver = NoSolver(weights.T, weights=False)
            else:
                obj.transform = weights
        if "feedback" in values:
            _set_feedback(obj, values["feedback"])


def _check_unshared(params):
    """A rule type shared by several connections cannot hold their feedbacks."""
    owners = {}
    for obj, values in params.items():
        if "feedback" in values:
            for rule in _rules(obj):
                rule_type = rule.learning_rule_type
                if isinstance(rule_type, FeedbackAlignment):
                    if id(rule_type) in owners:
                        raise ValidationError(
                            f"{obj} and {owners[id(rule_type)]} share one "
                            "FeedbackAlignment instance, which can hold only "
                            "one feedback matrix: give each connection its own",
                            attr="learning_rule_type",
                            obj=obj,
                        )
                    owners[id(rule_type)] = obj


def freeze_params(sim, objs=None):
    """Write the live parameters of ``sim`` back into the model's objects.

    After training, building the model again (in any simulator) starts from
    the trained encoders, gains, biases, weights and feedback matrices, as
    NengoDL's ``Simulator.freeze_params`` does for its trained parameters.

    Parameters
    ----------
    sim : nengo.Simulator
        An open simulator of the model (call this inside its ``with`` block).
    objs : Ensemble, Connection, Network or list of them, optional
        What to freeze; a network stands for all its ensembles and
        connections. By default, everything in ``sim``'s model.

    Notes
    -----
    ``sim.data[ens]`` and ``sim.data[conn]`` keep the values the model was
    *built* with, before any learning; the live values are in ``sim.signals``,
    and `.learned_params` reads them.

    An ensemble is given ``encoders`` (with ``normalize_encoders=False``),
    ``gain`` and ``bias``; a decoded connection a `nengo.solvers.NoSolver`
    with its weights as decoders and an identity transform (its function is
    dropped when its output no longer fits the weights); any other connection
    its weights as ``transform``. A `.FeedbackAlignment` rule's ``feedback`` is
    set to its live matrix, so a learned feedback goes on learning from there.
    Learning rules stay in place: gate their errors to zero, or remove them,
    to run the frozen network unchanged.

    Examples
    --------
    .. testcode::

       with nengo.Network(seed=0) as net:
           stim = nengo.Node(np.sin)
           ens = nengo.Ensemble(10, 1)
           conn = nengo.Connection(stim, ens, learning_rule_type=nengo_fa.BackProp(
               nengo.Connection(ens, nengo.Node(size_in=1), function=lambda x: 0)
           ))

       with nengo.Simulator(net, progress_bar=False) as sim:
           sim.run(0.01)
           nengo_fa.freeze_params(sim)
       print(ens.gain.shape)

    .. testoutput::

       (10,)
    """
    params = learned_params(sim, objs)
    _check_unshared(params)
    _apply(params)


def _object_keys(network):
    """Stable names for a network's ensembles and connections, by their order."""
    keys = {ens: f"ensemble{i}" for i, ens in enumerate(network.all_ensembles)}
    keys.update(
        {conn: f"connection{i}" for i, conn in enumerate(network.all_connections)}
    )
    return keys


def save_params(sim, path, objs=None):
    """Save the live parameters of ``sim`` to a ``.npz`` file.

    The file holds one array per parameter, named after the object's position
    in ``sim.model.toplevel`` (``"ensemble3.gain"``, ``"connection5.weights"``),
    so `.load_params` can put them into the same network built again, for
    example by the same script in another process.

    Parameters
    ----------
    sim : nengo.Simulator
        An open simulator.
    path : str or path-like
        The file to write (``numpy.savez``; ``.npz`` is appended if missing).
    objs : Ensemble, Connection, Network or list of them, optional
        What to save; by default, everything in ``sim``'s model.
    """
    keys = _object_keys(sim.model.toplevel)
    arrays = {
        f"{keys[obj]}.{name}": value
        for obj, values in learned_params(sim, objs).items()
        for name, value in values.items()
    }
    np.savez(path, **arrays)


def load_params(network, path):
    """Load parameters saved by `.save_params` into ``network``'s objects.

    ``network`` must be built the same way as the saved one (the same
    ensembles and connections, created in the same order). Afterwards,
    building it gives the trained network, as after `.freeze_params`.

    Parameters
    ----------
    network : nengo.Network
        The network to write the parameters into.
    path : str or path-like
        A file written by `.save_params`.
    """
    objects = {key: obj for obj, key in _object_keys(network).items()}
    params = {}
    with np.load(path) as data:
        for name in data.files:
            key, _, param = name.partition(".")
            if key not in objects:
                raise ValidationError(
                    f"{path} has parameters for {key!r}, which {network} lacks: "
                    "is it built the same way as the saved network?",
                    attr="network",
                    obj=network,
                )
            params.setdefault(objects[key], {})[param] = data[name]
    for obj, values in params.items():
        _check_shapes(obj, values, path)
    _check_unshared(params)
    _apply(params)


def _check_shapes(obj, values, path):
    if isinstance(obj, Ensemble):
        expected = {
            "encoders": (obj.n_neurons, obj.dimensions),
            "gain": (obj.n_neurons,),
            "bias": (obj.n_neurons,),
        }
    else:
        pre = obj.pre_obj.n_neurons if isinstance(obj.pre_obj, Ensemble) else None
        expected = {"weights": (obj.size_out, pre or obj.size_mid)}
    for name, shape in expected.items():
        if name in values and values[name].shape != shape:
            raise ValidationError(
                f"the {name} saved in {path} have shape {values[name].shape}, but "
                f"{obj} needs {shape}: is the network built the same way as the "
                "saved one?",
                attr=name,
                obj=obj,
            )
