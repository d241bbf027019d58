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

A connection into ``ens.neurons``, whose input Nengo multiplies by the gains
the ensemble was built with, has its weights scaled by build-time over learned
gain where the ensemble's gains were learned. Connections from direct-mode
ensembles are left as they are, and so are connections with a weight solver
while nothing they were solved from has changed (after that, they cannot be
kept: a ``ValidationError``). ``docs/keeping.rst`` has the details.

Learning rules stay on the objects: gate their error to zero (or remove the
rules) to run the frozen network as it was trained.
"""

import numpy as np
from nengo import Connection, Ensemble, Network
from nengo.connection import LearningRule
from nengo.ensemble import Neurons
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
    elif not isinstance(objs, (list, tuple, set)):
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
                f"{type(obj).__name__} {obj} (for a slice or the neurons of an "
                "ensemble, give the ensemble)",
                attr="objs",
                obj=obj,
            )
    return list(dict.fromkeys(found))


def _connection_is_frozen(model, conn):
    """Whether ``conn`` has weights that can be written back as a transform."""
    weights = model.sig[conn].get("weights")
    return weights is not None and isinstance(conn.transform, (Dense, NoTransform))


def _solves_for_weights(conn):
    """Whether ``conn``'s solver gives its full weight matrix (decoded from
    an ensemble of neurons into an ensemble)."""
    return (
        isinstance(conn.pre_obj, Ensemble)
        and not _is_direct(conn.pre_obj)
        and isinstance(conn.post_obj, Ensemble)
        and conn.solver.weights
    )


def _changed(sim, ens):
    """Whether the live gains, biases or scaled encoders of ``ens`` differ
    from the ones it was built with."""
    sig, built = sim.model.sig, sim.data[ens]
    live = (
        sim.signals[sig[ens]["encoders"]],
        sim.signals[sig[ens.neurons]["bias"]],
    )
    return not (
        np.array_equal(live[0], built.scaled_encoders)
        and np.array_equal(live[1], built.bias)
    )


def _check_weight_solver(sim, conn):
    """A full weight matrix from a solver cannot be written back into
    ``conn``: Nengo composes any solver's values with the post ensemble's
    encoders. It is rebuilt the same only while nothing it was solved from
    has changed; raise a `ValidationError` otherwise."""
    learned = any(rule.modifies == "weights" for rule in _rules(conn))
    if learned or _changed(sim, conn.pre_obj) or _changed(sim, conn.post_obj):
        raise ValidationError(
            "cannot keep the weights of a connection whose solver solves for the "
            "full weight matrix once they were learned, or its pre or post "
            "ensemble was (Nengo would solve them again from the learned "
            "ensembles): connect `pre.neurons` to `post.neurons` with a "
            "transform instead",
            attr="solver",
            obj=conn,
        )


def _live(sim, signal):
    """A float64 copy of ``signal``'s live value in ``sim``."""
    return np.array(sim.signals[signal], dtype=np.float64)


def _ensemble_params(sim, ens):
    sig = sim.model.sig
    S = _live(sim, sig[ens]["encoders"])
    if "gain" in sig[ens]:  # a nengo_fa rule learns the gains of this ensemble
        gain = _live(sim, sig[ens]["gain"])
    else:
        gain = ens.radius * np.linalg.norm(S, axis=1)
    scale = gain / ens.radius
    # a neuron whose gain is 0 has no direction: keep its build-time encoder
    zero = scale == 0
    encoders = np.array(sim.data[ens].encoders, dtype=np.float64)
    encoders[~zero] = S[~zero] / scale[~zero, None]
    bias = _live(sim, sig[ens.neurons]["bias"])
    return {"encoders": encoders, "gain": gain, "bias": bias}


def _is_direct(ens):
    return isinstance(ens.neuron_type, Direct)


def _connection_params(sim, conn):
    params = {}
    if isinstance(conn.pre_obj, Ensemble) and _is_direct(conn.pre_obj):
        # its weights are its transform, which nothing learns: kept as it is
        return params
    if _solves_for_weights(conn):
        _check_weight_solver(sim, conn)
    elif _connection_is_frozen(sim.model, conn):
        params["weights"] = _live(sim, sim.model.sig[conn]["weights"])
    for rule in _rules(conn):
        if isinstance(rule.learning_rule_type, FeedbackAlignment):
            feedback = sim.model.sig[rule]["feedback"]
            params["feedback"] = _live(sim, feedback)
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
        applied, transform included; into the neurons of an ensemble whose
        gains were learned, scaled by build-time over learned gain, and then
        given for every such connection, asked for or not) and
        ``"feedback"`` (of a `.FeedbackAlignment` rule) for a connection.
        Objects with nothing to keep (direct-mode ensembles and their
        connections, connections without weights, connections with a weight
        solver that nothing changed) are left out.
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
            if not _is_direct(obj):
                params[obj] = _ensemble_params(sim, obj)
        else:
            found = _connection_params(sim, obj)
            if found:
                params[obj] = found
    _rescale_into_neurons(sim, params)
    return params


def _rescale_into_neurons(sim, params):
    """Scale the weights of the connections into the neurons of each
    ensemble in ``params`` whose gains changed, by build-time over learned
    gain.

    Nengo multiplies what a connection sends to ``ens.neurons`` by the
    ensemble's gains when it is built: the simulator that learned the gains
    goes on using the build-time ones there, and the rebuilt network would use
    the learned ones. Such a connection is kept too when it was not asked
    for, as its weights change with its ensemble.
    """
    for conn in sim.model.toplevel.all_connections:
        post = conn.post_obj
        if not isinstance(post, Neurons) or post.ensemble not in params:
            continue
        built = np.asarray(sim.data[post.ensemble].gain, dtype=np.float64)
        learned = params[post.ensemble]["gain"]
        if np.array_equal(built, learned):
            continue
        if np.any(learned[built != 0] == 0):
            raise ValidationError(
                f"a gain of {post.ensemble} was learned down to 0, so what {conn} "
                "sends to its neurons cannot be kept",
                attr="gain",
                obj=post.ensemble,
            )
        ratio = np.divide(built, learned, out=np.ones_like(built), where=learned != 0)
        ratio = ratio[conn.post_slice]
        params.setdefault(conn, {})
        weights = params[conn].get("weights")
        signal = sim.model.sig[conn].get("weights")
        if weights is None and signal is not None:
            # not asked for, or from a direct-mode ensemble
            weights = _live(sim, signal)
        if weights is None:
            if not isinstance(conn.transform, NoTransform):
                raise ValidationError(
                    f"cannot keep what {conn} sends to the neurons of "
                    f"{post.ensemble}, whose gains were learned: its "
                    f"{type(conn.transform).__name__} transform cannot be scaled "
                    "per neuron; use a Dense transform",
                    attr="transform",
                    obj=conn,
                )
            weights = np.ones(conn.size_out)
        if weights.ndim == 2:
            params[conn]["weights"] = weights * ratio[:, None]
        else:
            params[conn]["weights"] = weights * ratio


def _set_feedback(conn, feedback):
    rules = [
        r for r in _rules(conn) if isinstance(r.learning_rule_type, FeedbackAlignment)
    ]
    if len(rules) != 1:
        raise ValidationError(
            f"there is a feedback matrix for {conn}, but it has no "
            "FeedbackAlignment rule to take it: is the network built the same way "
            "as the saved one?",
            attr="learning_rule_type",
            obj=conn,
        )
    rule_type = rules[0].learning_rule_type
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
            if isinstance(obj.pre_obj, Ensemble) and not _is_direct(obj.pre_obj):
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
    if not isinstance(network, Network):
        raise ValidationError(
            f"must be the nengo.Network the parameters were saved from, built "
            f"again, not {type(network).__name__} {network}",
            attr="network",
            obj=network,
        )
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
    """Check the arrays loaded for ``obj``: the names it can take (all three
    for an ensemble), numeric values, and their shapes."""
    if isinstance(obj, Ensemble):
        expected = {
            "encoders": [(obj.n_neurons, obj.dimensions)],
            "gain": [(obj.n_neurons,)],
            "bias": [(obj.n_neurons,)],
        }
        required = expected
    else:
        pre = obj.pre_obj
        if isinstance(pre, Ensemble) and not _is_direct(pre):
            shapes = [(obj.size_out, pre.n_neurons)]  # decoded
        else:
            # the transform's own shape: a scalar, elementwise or full matrix
            shapes = [(obj.size_out, obj.size_mid), ()]
            if obj.size_out == obj.size_mid:
                shapes.append((obj.size_out,))
        expected = {"weights": shapes, "feedback": None}
        required = {}
    for name in required:
        if name not in values:
            raise _file_error(path, obj, name, f"lacks the {name} of {obj}")
    for name, value in values.items():
        if name not in expected:
            raise _file_error(path, obj, name, f"has a {name!r}, which {obj} has not")
        if not np.issubdtype(value.dtype, np.number):
            raise _file_error(
                path, obj, name, f"holds {value.dtype} values for the {name} of {obj}"
            )
        shapes = expected[name]
        if shapes is not None and value.shape not in shapes:
            raise _file_error(
                path,
                obj,
                name,
                f"has the {name} in shape {value.shape}, but {obj} needs "
                f"{' or '.join(str(shape) for shape in shapes)}",
            )


def _file_error(path, obj, name, what):
    return ValidationError(
        f"{path} {what}: is the network built the same way as the saved one?",
        attr=name,
        obj=obj,
    )
