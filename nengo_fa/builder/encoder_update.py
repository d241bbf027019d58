"""The in-place encoder update, and the one build pass that installs it.

Nengo's ``build_learning_rule`` gives a rule with ``modifies="encoders"`` an
``(n, d)`` delta signal and a ``Copy(delta, encoders, inc=True)``. Filling that
delta and adding it costs several passes over an ``(n, d)`` array per step,
several times the cost of the ensemble itself. When a nengo_fa rule is the
only one learning an ensemble's encoders, the update is instead applied in
place by a `.SimHiddenLayerEncoderUpdate`, from per-neuron factors, with the
same result up to rounding. That means replacing operators Nengo built, which
is done in one place, `apply_inplace_update`, once the whole model is built.
"""

import collections

import numpy as np
from nengo.builder import Operator, Signal
from nengo.builder.operator import Copy, DotInc
from nengo.rc import rc
from scipy.linalg.blas import get_blas_funcs

from nengo_fa import settings
from nengo_fa.builder import kernels
from nengo_fa.builder.deferred import when_model_built, when_published
from nengo_fa.builder.numerics import BLOCK

#: Elements per BLAS ``ger`` call: below OpenBLAS's threshold for running it
#: multithreaded (9216 elements), which is slow on a busy machine.
GER_BLOCK = BLOCK


class SimHiddenLayerEncoderUpdate(Operator):
    r"""Apply a factored encoder update in place.

    Implements

    .. math:: S \leftarrow \mathrm{diag}(\alpha) S + \beta x^T

    with the factors :math:`\alpha, \beta, x` that `.SimHiddenLayerRule`
    computed on the previous step, so that :math:`S` changes exactly as with
    Nengo's generic path (an ``(n, d)`` delta added by ``Copy(..., inc=True)``)
    but without the ``(n, d)`` delta: one BLAS rank-1 update (``dger``) on
    :math:`S` itself, after scaling the rows whose :math:`\alpha_i \ne 1`
    (none with equal gain and encoder rates, unless a gain meets its floor).
    With numba installed, one compiled pass does both and skips the rows that
    do not change (:math:`\alpha_i = 1, \beta_i = 0`, e.g. every inactive
    rectified linear neuron).

    This is an *increment* only if nothing else changes :math:`S` in the same
    step, because the scaling acts on all of :math:`S`; the builder uses it
    only when the rule is the ensemble's only encoder-learning rule.

    With ``encode``, the operator also takes over the ensemble's encoding,
    :math:`J \mathrel{+}= S x` (Nengo's ``DotInc``, which the builder then
    removes, see `apply_inplace_update`), so that :math:`S` is read once a
    step instead of twice. The builder does this with the compiled loops.

    Parameters
    ----------
    scaled_encoders : Signal
        :math:`S`, shape ``(n, d)``, changed in place.
    alpha, beta : Signal
        The row scales and the rank-1 weights, shape ``(n,)``.
    x : Signal
        The input the update was computed for, shape ``(d,)``.
    tag : str, optional
        A label associated with the operator, for debugging purposes.
    encode : (Signal, Signal), optional
        The ensemble's input :math:`x` of this step (shape ``(d,)``) and the
        neurons' input current :math:`J` (shape ``(n,)``), to do
        :math:`J \mathrel{+}= S x` after the update.
    compiled : bool, optional
        Whether to use the compiled loop (the ``compiled_kernels`` setting
        when the model was built).
    row_norms : Signal, optional
        With ``encode``: set to :math:`|S_i|` after the update, in the same
        pass, for `.SimHiddenLayerRule` below float64 (see
        `nengo_fa.builder.stages.NumpyStep`).

    Notes
    -----
    1. sets ``[]``, or ``[row_norms]``
    2. incs ``[scaled_encoders]``, plus ``J`` with ``encode``
    3. reads ``[alpha, beta, x]``, plus the ensemble's input with ``encode``
    4. updates ``[]``
    """

    def __init__(
        self,
        scaled_encoders,
        alpha,
        beta,
        x,
        tag=None,
        encode=None,
        compiled=False,
        row_norms=None,
    ):
        super().__init__(tag=tag)
        self.compiled = compiled
        self.sets = [] if row_norms is None else [row_norms]
        self.incs = [scaled_encoders]
        self.reads = [alpha, beta, x]
        self.updates = []
        if encode is not None:
            encode_input, current = encode
            self.incs.append(current)
            self.reads.append(encode_input)

    @property
    def scaled_encoders(self):
        return self.incs[0]

    @property
    def alpha(self):
        return self.reads[0]

    @property
    def beta(self):
        return self.reads[1]

    @property
    def x(self):
        return self.reads[2]

    @property
    def row_norms(self):
        """The signal set to :math:`|S_i|` after the update, or None."""
        return self.sets[0] if self.sets else None

    @property
    def encode(self):
        """``(x, J)`` when the operator also encodes (``J += S x``), or None."""
        return (self.reads[3], self.incs[1]) if len(self.incs) > 1 else None

    @property
    def _descstr(self):
        return f"{self.scaled_encoders} <- alpha * S + beta x^T"

    def make_step(self, signals, dt, rng):
        S = signals[self.scaled_encoders]
        alpha = signals[self.alpha]
        beta = signals[self.beta]
        x = signals[self.x]
        n = S.shape[0]
        if self.encode is not None:
            x_new, current = (signals[s] for s in self.encode)
        if self.compiled and kernels.AVAILABLE:
            # one pass that skips the rows that do not change (for rectified
            # linear neurons, every inactive one), and encodes in the same pass
            if self.encode is not None and self.row_norms is not None:
                encode_norms = kernels.compiled(kernels.encoder_update_encode_norms)
                norms = signals[self.row_norms]

                def step_simhiddenlayerencoderupdate():
                    encode_norms(S, alpha, beta, x, x_new, current, norms)

            elif self.encode is not None:
                encode = kernels.compiled(kernels.encoder_update_encode)

                def step_simhiddenlayerencoderupdate():
                    encode(S, alpha, beta, x, x_new, current)

            else:
                encoder_update = kernels.compiled(kernels.encoder_update)

                def step_simhiddenlayerencoderupdate():
                    encoder_update(S, alpha, beta, x)

            return step_simhiddenlayerencoderupdate

        if self.encode is not None:
            # numpy: the update below, then the encoding it replaced
            update = self._make_update_step(S, alpha, beta, x, n)
            encoded = np.empty(n, dtype=S.dtype)
            norms = None if self.row_norms is None else signals[self.row_norms]

            def step_simhiddenlayerencoderupdate():
                update()
                np.dot(S, x_new, out=encoded)
                np.add(current, encoded, out=current)
                if norms is not None:
                    np.einsum("ij,ij->i", S, S, out=norms)
                    np.sqrt(norms, out=norms)

            return step_simhiddenlayerencoderupdate
        return self._make_update_step(S, alpha, beta, x, n)

    @staticmethod
    def _make_update_step(S, alpha, beta, x, n):
        """The numpy code: rows scaled where alpha != 1, then blocked dger."""
        rows = max(1, GER_BLOCK // max(S.shape[1], 1))
        starts = range(0, n, rows)
        gers = [inplace_ger(S[i : i + rows]) for i in starts]
        ger = gers[0] if gers and all(gers) else None
        min_reduce, max_reduce = np.minimum.reduce, np.maximum.reduce

        def scale_rows():
            # alpha is 1 but for the rows whose gains were floored (and every
            # row when the gain and encoder rates differ)
            if n == 0 or min_reduce(alpha) == 1.0 == max_reduce(alpha):
                return
            idx = np.flatnonzero(alpha != 1.0)
            if 4 * idx.size > n:
                np.multiply(S, alpha[:, None], out=S)
            else:
                S[idx] *= alpha[idx, None]

        if ger is None:
            scratch = np.empty_like(S)

            def step_simhiddenlayerencoderupdate():
                scale_rows()
                np.multiply(beta[:, None], x, out=scratch)
                np.add(S, scratch, out=S)

        else:
            # The rank-1 update goes in blocks of rows to keep OpenBLAS
            # single-threaded: scipy bundles its own OpenBLAS, whose threads
            # compete with numpy's for the same cores (10x slower measured on
            # 2 cores). Each S_rows.T is Fortran-ordered, so
            # S_rows.T += x beta^T updates S in place.
            blocks = [(S[i : i + rows].T, beta[i : i + rows]) for i in starts]

            def step_simhiddenlayerencoderupdate():
                scale_rows()
                for S_rows_T, beta_rows in blocks:
                    ger(1.0, x, beta_rows, a=S_rows_T, overwrite_a=True)

        return step_simhiddenlayerencoderupdate


def inplace_ger(S):
    """BLAS ``ger`` that updates ``S`` in place through ``S.T``, or None."""
    if S.dtype not in (np.float32, np.float64) or not S.flags.c_contiguous:
        return None
    if S.size == 0:
        return None
    ger = get_blas_funcs("ger", (S,))
    n, d = S.shape
    # a zero update: checks that the wrapper writes into S and makes no copy
    zeros = np.zeros(max(n, d), dtype=S.dtype)
    out = ger(0.0, zeros[:d], zeros[:n], a=S.T, overwrite_a=True)
    return ger if np.shares_memory(out, S) else None


def encoder_learning_rules(model, ens):
    """The learning rule types that modify ``ens``'s encoders, or None if the
    model does not say (no toplevel network)."""
    if model.toplevel is None:
        return None
    types = []
    for conn in model.toplevel.all_connections:
        if conn.post_obj is not ens or conn.learning_rule_type is None:
            continue
        rule_types = conn.learning_rule_type
        if isinstance(rule_types, dict):
            rule_types = list(rule_types.values())
        elif not isinstance(rule_types, (list, tuple)):
            rule_types = [rule_types]
        types.extend(t for t in rule_types if t.modifies == "encoders")
    return types


def uses_inplace_update(model, ens, encoders_delta, learns_encoders):
    """Whether a rule's encoder update goes in place (see the module).

    With several encoder-learning rules on one ensemble each must see the
    encoders of the start of the step, so the generic path is kept; a rule
    that does not learn the encoders takes the in-place path, which then
    only drops the generic ``Copy`` of its all-zero delta.
    """
    if encoders_delta is None:
        return True  # modifies="weights": nengo made no encoder delta
    if not settings.inplace_encoder_update():
        return False
    if not learns_encoders:
        return True
    learners = encoder_learning_rules(model, ens)
    return learners is not None and len(learners) == 1


def encoder_factors(name, n, d):
    """The signals :math:`(\\alpha, \\beta', x)` of an in-place update."""
    return (
        Signal(np.ones(n, dtype=rc.float_dtype), name=f"{name}:encoders_alpha"),
        Signal(np.zeros(n, dtype=rc.float_dtype), name=f"{name}:encoders_beta"),
        Signal(np.zeros(d, dtype=rc.float_dtype), name=f"{name}:encoders_x"),
    )


InplaceRequest = collections.namedtuple(
    "InplaceRequest",
    (
        "rule",
        "ensemble",
        "encoders",
        "encoders_delta",
        "factors",
        "learns",
        "name",
        "add_operator",
    ),
)
InplaceRequest.__doc__ = """A rule's in-place encoder update, to install.

``encoders_delta`` is the ``(n, d)`` delta of Nengo's generic path (None
with ``modifies="weights"``), ``factors`` the signals
:math:`(\\alpha, \\beta', x)`, ``learns`` whether the encoders or gains
learn, and ``add_operator(feedback, transposed, feedback_error,
from_current=..., compiled=..., row_norms=..., current_offset=...)`` adds the
rule's operator."""


def request_inplace_update(model, request):
    """Have `apply_inplace_update` install ``request``'s in-place update
    once the whole model is built (at once if there is no toplevel network,
    then without the parts that need the whole model)."""
    if model.toplevel is None:
        apply_inplace_update(model, request, whole_model=False)
        return
    when_model_built(
        model, lambda: apply_inplace_update(model, request, whole_model=True)
    )


def apply_inplace_update(model, request, whole_model):
    """Install one in-place encoder update: the one pass that changes
    Nengo's operators.

    Drops the generic ``Copy`` of the ``(n, d)`` delta, takes over the
    ensemble's encoding ``DotInc`` (`take_encoding`, with the compiled
    loops), adds the `.SimHiddenLayerEncoderUpdate`, decides whether
    :math:`S x` can be read as :math:`J - b` (`only_encoding_drives`, which
    needs the ``whole_model``) or as :math:`J - b - o` (`current_offset`),
    and adds the rule's operator once its feedback
    is known (``request.add_operator``).
    """
    ens, encoders, learns = request.ensemble, request.encoders, request.learns
    if request.encoders_delta is not None:
        # drop nengo's generic copy of the (n, d) delta: it is never allocated
        model.operators[:] = [
            op
            for op in model.operators
            if not (
                isinstance(op, Copy)
                and op.src is request.encoders_delta
                and op.dst is encoders
            )
        ]
    compiled = settings.compiled_kernels()
    row_norms = None
    if learns:
        encode = take_encoding(model, ens, encoders) if compiled else None
        if encode is not None and np.dtype(rc.float_dtype).itemsize < 8:
            # below float64 the rule measures the gains from S (see
            # NumpyStep): in the pass that updates and encodes S
            row_norms = Signal(
                np.zeros(ens.n_neurons, dtype=rc.float_dtype),
                name=f"{request.name}:row_norms",
            )
        model.add_op(
            SimHiddenLayerEncoderUpdate(
                encoders,
                *request.factors,
                tag=f"{request.name}: encoders += update",
                encode=encode,
                compiled=compiled,
                row_norms=row_norms,
            )
        )
    from_current = whole_model and learns and only_encoding_drives(model, ens)
    offset = None
    if whole_model and learns and not from_current:
        offset = current_offset(model, ens)
    when_published(
        model,
        (request.rule, "feedback"),
        lambda feedback: request.add_operator(
            *feedback,
            from_current=from_current,
            compiled=compiled,
            row_norms=row_norms,
            current_offset=offset,
        ),
    )


def take_encoding(model, ens, encoders):
    """Remove the ensemble's encoding ``DotInc`` (``J += S x``), so that the
    encoder update does it in the same pass over :math:`S`; returns
    ``(x, J)``, or None (nothing removed)."""
    x, J = model.sig[ens]["in"], model.sig[ens.neurons]["in"]
    encodings = [op for op in model.operators if _is_encoding(op, encoders, x, J)]
    if len(encodings) != 1:
        return None
    model.operators.remove(encodings[0])
    return x, J


def only_encoding_drives(model, ens):
    """Whether ``ens``'s neurons get only the bias and the encoded input.

    Then the input current is exactly :math:`J = S x + b`, and
    `.SimHiddenLayerRule` reads :math:`S x` as :math:`J - b` instead of
    recomputing it. Anything else writing into the current (a connection to
    ``ens.neurons``, noise, another operator) makes this False.
    """
    others = _other_drivers(model, ens)
    return others is not None and len(others) == 0


def current_offset(model, ens):
    """The signal :math:`o` with :math:`J = S x + b + o`, where one operator
    besides the bias and the encoded input adds to ``ens``'s current and
    sets :math:`o` to what it adds (its ``added_current``: `.TraceRule`'s
    `.SimTopDownNudge`); else None. `.SimHiddenLayerRule` then reads
    :math:`S x` as :math:`J - b - o` (``current_offset``) instead of
    recomputing it."""
    others = _other_drivers(model, ens)
    if others is None or len(others) != 1:
        return None
    J = model.sig[ens.neurons]["in"]
    added = getattr(others[0], "added_current", None)
    if added is None or added[0] is not J:
        return None
    return added[1]


def _other_drivers(model, ens):
    """The operators that write into ``ens``'s input current other than the
    bias and the encoding (`take_encoding`'s ``DotInc`` or the encoder
    update that replaced it); None unless both of those are among them."""
    J = model.sig[ens.neurons]["in"]
    bias = model.sig[ens.neurons]["bias"]
    encoders = model.sig[ens]["encoders"]
    x = model.sig[ens]["in"]
    bias_copies, encodings, others = 0, 0, []
    for op in model.operators:
        if not any(sig.base is J.base for sig in op.sets + op.incs):
            continue
        if _is_bias_copy(op, bias, J):
            bias_copies += 1
        elif _is_encoding(op, encoders, x, J) or (
            isinstance(op, SimHiddenLayerEncoderUpdate)
            and op.scaled_encoders is encoders
            and op.encode == (x, J)
        ):
            encodings += 1
        else:
            others.append(op)
    return others if bias_copies == 1 and encodings == 1 else None


def _is_bias_copy(op, bias, J):
    return isinstance(op, Copy) and op.src is bias and op.dst is J and not op.inc


def _is_encoding(op, encoders, x, J):
    return isinstance(op, DotInc) and op.A is encoders and op.X is x and op.Y is J
