"""Compiled loops for the hidden-layer update in the reference simulator. Internal.

`.SimHiddenLayerRule` and `.SimHiddenLayerEncoderUpdate` do per-neuron work
that, in numpy, takes about 20 calls on short vectors a step; at the sizes
people simulate, the fixed cost of those calls (about 1 us each) is most of
the rule's cost. These loops do the same arithmetic in one pass, compiled by
numba [Lam2015]_ on first use (`compiled`; about 3 s the first time, then
loaded from numba's cache on disk in well under a second). ``AVAILABLE`` is
False when numba is not installed; the operators then use their numpy code,
which gives the same results up to rounding
(``tests/test_speed_equivalence.py``).

.. [Lam2015] Lam, S. K., Pitrou, A., & Seibert, S. (2015). Numba: a LLVM-based
   Python JIT compiler. Proceedings of the Second Workshop on the LLVM
   Compiler Infrastructure in HPC, 1-6.
"""

import math

import numpy as np

from nengo_fa.settings import NUMBA_AVAILABLE

#: Whether numba is installed (`nengo_fa.settings.NUMBA_AVAILABLE`).
AVAILABLE = NUMBA_AVAILABLE

_compiled = {}


def compiled(function):
    """``function`` compiled by numba (once, then cached on disk).

    A kernel that calls helper functions lists them in its ``helpers``
    attribute; they are compiled first and bound to their names in the
    kernel's own module, which is how numba resolves them inside the caller.
    """
    if hasattr(function, "py_func"):
        # compiled already: a helper's module name is bound to its compiled
        # form once a kernel that calls it is compiled
        return function
    if function not in _compiled:
        import numba  # deferred: importing numba takes about 0.5 s

        for helper in getattr(function, "helpers", ()):
            function.__globals__[helper.__name__] = compiled(helper)
        # IEEE division (inf or NaN, no ZeroDivisionError): a loop whose
        # divisions may raise is not vectorised
        options = {"error_model": "numpy", **getattr(function, "numba_options", {})}
        _compiled[function] = numba.njit(cache=True, nogil=True, **options)(function)
    return _compiled[function]


#: The layout of the ``params`` argument of `hidden_layer_prologue` and
#: `hidden_layer_update`: the scalars of `.SimHiddenLayerRule`, then two that
#: the prologue writes for the update.
RULE_PARAMS = (
    "radius",  # r
    "scale",  # dt * gain_scale / derivative_scale: c is this over nu
    "gain_scale",  # the mean build-time gain
    "learning_rate",  # kE
    "gain_learning_rate",  # kg
    "bias_learning_rate",  # kb
    "min_gain",  # the gain floor
    "max_gain",  # the gain ceiling (and the bias ceiling above threshold)
    "threshold",  # theta: the current below which neurons stop firing
    "max_intercept",  # the bias floor is theta - max_intercept * g
    "coef_max",  # the largest finite number of the signals' dtype
    "given_norm",  # nu when it is known; negative: computed from FT
    "from_current",  # 1: S x is current - bias; 0: it is sx
    "input_sq",  # written: |x|^2
    "feedback_norm",  # written: nu
    "n_bad",  # written: 1 if delta or S x holds NaN or inf
    "n_bounded",  # written: steps beyond half the mean gain (out of range)
    "n_clipped",  # written: rows whose new gain the floor or the ceiling set
)
(
    _RADIUS,
    _SCALE,
    _GAIN_SCALE,
    _KE,
    _KG,
    _KB,
    _MIN_GAIN,
    _MAX_GAIN,
    _THRESHOLD,
    _MAX_INTERCEPT,
    _COEF_MAX,
    GIVEN_NORM,
    _FROM_CURRENT,
    INPUT_SQ,
    _NORM,
    N_BAD,
    N_BOUNDED,
    N_CLIPPED,
) = range(len(RULE_PARAMS))


def rule_params(**values):
    """The ``params`` array of the rule's kernels, from the scalars named in
    `RULE_PARAMS` (those not given, the written ones, start at 0)."""
    params = np.zeros(len(RULE_PARAMS))
    for name, value in values.items():
        params[RULE_PARAMS.index(name)] = value
    return params


def derivative_loop(derivative):
    """``(loop, args)``: the compiled form of ``derivative``
    (`nengo_fa.neurons.Derivative.compiled_form`), compiled, so that
    ``loop(J, out, *args)`` writes :math:`G'(J)` into ``out``; None for a
    derivative without one, or without numba."""
    form = getattr(derivative, "compiled_form", None)
    if form is None or not AVAILABLE:
        return None
    loop, scale, params = form
    return compiled(loop), (scale,) + tuple(params)


def derivative_call(derivative):
    """``f(J, out)`` writing :math:`G'(J)`: ``derivative``'s compiled loop
    (`derivative_loop`) where it has one, else ``derivative`` itself."""
    loop = derivative_loop(derivative)
    if loop is None:
        return derivative
    compiled_loop, args = loop

    def call(J, out):
        compiled_loop(J, out, *args)

    return call


def sum_squares(v):
    """:math:`v \\cdot v`, summed in index order."""
    total = 0.0
    for k in range(v.shape[0]):
        total += v[k] * v[k]
    return total


def sum4(v):
    """The sum of ``v`` as four partial sums: independent adds, in a fixed
    order."""
    n = v.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    n4 = n - n % 4
    for i in range(0, n4, 4):
        s0 += v[i]
        s1 += v[i + 1]
        s2 += v[i + 2]
        s3 += v[i + 3]
    for i in range(n4, n):
        s0 += v[i]
    return (s0 + s1) + (s2 + s3)


def feedback_error(error, FT, fe, scratch, nu):
    """The *feedback error* stage: :math:`F e` into ``fe`` from
    :math:`F^T` (``(d_out, n)``), and the RMS row norm :math:`\\nu` of
    :math:`F` when ``nu`` is negative (otherwise ``nu`` is returned as
    given). ``scratch`` holds the squares of :math:`F` summed over each row.

    The rows of :math:`F^T` go four at a time, each group summed as
    ``(e0 f0 + e1 f1) + (e2 f2 + e3 f3)`` and then added to ``fe``: a
    quarter of the passes over ``fe`` and ``scratch`` that one row at a time
    takes (measured 1.5-1.9x faster at n = 1000-5000, d_out = 10).
    """
    n = fe.shape[0]
    d_out = FT.shape[0]
    norm = nu < 0
    fe[:] = 0.0
    scratch[:] = 0.0
    k = 0
    while k + 4 <= d_out:
        e0, e1, e2, e3 = error[k], error[k + 1], error[k + 2], error[k + 3]
        if norm:
            for i in range(n):
                f0, f1 = FT[k, i], FT[k + 1, i]
                f2, f3 = FT[k + 2, i], FT[k + 3, i]
                fe[i] += (e0 * f0 + e1 * f1) + (e2 * f2 + e3 * f3)
                scratch[i] += (f0 * f0 + f1 * f1) + (f2 * f2 + f3 * f3)
        else:
            for i in range(n):
                fe[i] += (e0 * FT[k, i] + e1 * FT[k + 1, i]) + (
                    e2 * FT[k + 2, i] + e3 * FT[k + 3, i]
                )
        k += 4
    while k < d_out:
        ek = error[k]
        if norm:
            for i in range(n):
                f = FT[k, i]
                fe[i] += ek * f
                scratch[i] += f * f
        else:
            for i in range(n):
                fe[i] += ek * FT[k, i]
        k += 1
    if norm:
        nu = math.sqrt(sum4(scratch) / n) if n > 0 else 0.0
    return nu


feedback_error.helpers = (sum4,)


def hidden_layer_prologue(error, FT, fe, x, scratch, params):
    """The first stages of a step of `.SimHiddenLayerRule`: the checks and
    the *feedback error* (:math:`F e` and :math:`\\nu`, `feedback_error`).

    ``FT`` is :math:`F^T`, shape ``(d_out, n)``; with no rows, ``fe`` holds
    :math:`F e` on entry. Writes :math:`|x|^2` and :math:`\\nu` into
    ``params`` (laid out as `RULE_PARAMS`). ``scratch`` is an ``(n,)`` work
    array.

    Returns 0, or, having written nothing but ``fe`` and ``scratch``, a
    negative code for the cases that the numpy stages
    (`nengo_fa.builder.stages.NumpyStep`) handle: -1 if :math:`|x|^2` is
    not finite, -2 if it is 0, -3 if :math:`e \\cdot e` is not finite, -4 if
    :math:`\\nu` is not finite; or `NO_FEEDBACK` if :math:`\\nu` is 0 (no
    feedback yet, e.g. a readout that starts at zero), a step without an
    update that `hidden_layer_no_feedback` takes.

    It is a separate function from `hidden_layer_update` on purpose: with
    these loops in the same function, LLVM no longer vectorised the
    per-neuron loop (measured 2.3-2.5x slower at n=1000).
    """
    if not math.isfinite(sum_squares(error)):
        return -3
    xx = sum_squares(x)
    if not math.isfinite(xx):
        return -1
    if xx == 0:
        return -2
    nu = params[GIVEN_NORM]
    if FT.shape[0] > 0:
        nu = feedback_error(error, FT, fe, scratch, nu)
    if nu == 0.0:
        return NO_FEEDBACK
    if not 0.0 < nu < math.inf:
        return -4
    params[INPUT_SQ] = xx
    params[_NORM] = nu
    return 0


hidden_layer_prologue.helpers = (sum_squares, feedback_error)

#: `hidden_layer_prologue`'s code for :math:`\\nu = 0`.
NO_FEEDBACK = -5


def hidden_layer_no_feedback(fe, delta, bias_delta, gain_delta, beta, alpha, params):
    """A step of `.SimHiddenLayerRule` without feedback (:math:`\\nu = 0`,
    after `hidden_layer_prologue` returned `NO_FEEDBACK`), as the numpy
    stages take it: the local error :math:`(F e) \\odot G'(J)` (``delta``
    holds :math:`G'(J)` on entry, and :math:`F e` is 0), checked, and no
    update at all. Writes ``params[N_BAD]`` and clears the other counts."""
    bad = 0.0
    for i in range(delta.shape[0]):
        d = fe[i] * delta[i]
        delta[i] = d
        bad += d * 0.0
        bias_delta[i] = 0.0
        gain_delta[i] = 0.0
        beta[i] = 0.0
        alpha[i] = 1.0
    params[N_BAD] = bad != 0.0
    params[N_BOUNDED] = 0.0
    params[N_CLIPPED] = 0.0


def hidden_layer_update(
    fe,
    delta,
    current,
    bias,
    sx,
    x,
    x_out,
    gain,
    bias_delta,
    beta,
    gain_delta,
    alpha,
    params,
):
    """The rest of a step of `.SimHiddenLayerRule`, one neuron at a time,
    after `hidden_layer_prologue` returned 0.

    On entry ``delta`` holds :math:`G'(J)` and ``fe`` :math:`F e`;
    :math:`S x` is ``current - bias`` or ``sx`` (see `RULE_PARAMS`). Writes
    the local error into ``delta``, the bias, encoder and gain updates into
    ``bias_delta``, ``beta``, ``gain_delta`` and ``alpha`` and copies ``x``
    into ``x_out``, with the arithmetic of the numpy stages
    (`nengo_fa.builder.stages.NumpyStep`): local error, bias step, step
    bounds, encoder/gain step and row scaling (`hidden_layer_finish` follows).
    Returns the number of rows whose ``alpha`` is not 1, and writes into
    ``params`` how many rows' new gain the floor or the ceiling set (those
    rows are scaled again from their measured length:
    `nengo_fa.builder.stages.NumpyStep.measure_bounded_rows`).
    """
    r = params[_RADIUS]
    kE = params[_KE]
    kg = params[_KG]
    kb = params[_KB]
    min_gain = params[_MIN_GAIN]
    max_gain = params[_MAX_GAIN]
    big = params[_COEF_MAX]
    from_current = params[_FROM_CURRENT] != 0.0
    xx = params[INPUT_SQ]
    # c, and the coefficients below, capped so that 0 * c is 0
    c = min(params[_SCALE] / params[_NORM], big)
    x_out[:] = x
    n = delta.shape[0]
    r2 = r * r
    step_limit = 0.5 / (r * math.sqrt(xx))
    kbc = -min(kb * c, big)
    kEc = -min(kE * c / r2, big)
    kgc = -min(kg * c, big)
    # kg / kE is exactly 1 with equal rates, so that alpha is exactly 1
    ratio = kg / kE if kE > 0 else 0.0
    tiny = 1e-300
    n_scaled = 0
    n_clipped = 0
    # no data-dependent branches in the loop, so that it is vectorised (one
    # more select, e.g. for G'(J), was enough to stop that; so was counting
    # the non-finite values here: `hidden_layer_finish` does that, and the
    # bias limits, which need the new gain)
    for i in range(n):
        d = delta[i] * fe[i]
        delta[i] = d
        g = gain[i]
        g_floor = max(g, min_gain)
        # the bias step, bounded by `hidden_layer_finish` (here, the bound and
        # the gain ceiling together were enough to stop the vectorisation)
        bias_delta[i] = d * kbc
        s = current[i] - bias[i] if from_current else sx[i]
        if kE > 0:
            # the gradient step b x, at most half the length of the row
            limit = g_floor * step_limit
            b = min(max(d * kEc, -limit), limit)
            # t = m^2 - g^2 and dg_E = m - g = t / (m + g), where m is the
            # gain of S_i + b x (t = 0 where m + g = 0)
            t = (b * xx + s + s) * b * r2
            m_g = math.sqrt(max(g * g + t, 0.0)) + g
            dg_E = t / max(m_g, tiny)
            dg = dg_E * ratio
        else:
            # directions fixed: dg = -kg u (S x) / g, at most half the gain
            b = 0.0
            dg_E = 0.0
            half = 0.5 * g_floor
            dg = min(max(s / g_floor * d * kgc, -half), half)
        m = g + dg_E
        g_next = g + dg
        g_new = min(max(g_next, min_gain), max_gain)
        n_clipped += g_new != g_next
        # a row with m = 0 has no direction to scale: it stays as it is
        has_row = m > 0
        a = g_new / max(m, tiny) if has_row else 1.0
        alpha[i] = a
        beta[i] = b * a
        gain_delta[i] = g_new - g if has_row else 0.0
        n_scaled += a != 1.0
    params[N_CLIPPED] = n_clipped
    return n_scaled


def hidden_layer_finish(delta, current, bias, sx, gain, bias_delta, gain_delta, params):
    """The last stages of a step of `.SimHiddenLayerRule`, after
    `hidden_layer_update`, in one more pass: the bound of the *bias step*
    (at most half the neuron's range) and the *bias limits* (the bias never
    below :math:`\\theta - \\iota_{max} g'`, where the neuron would stop
    firing within the radius, raised where the gain shrank, nor above
    :math:`\\theta + g_{max}`; frozen biases stay as they are), and the
    check of :math:`\\delta` and :math:`S x`.

    Writes into ``params`` whether :math:`\\delta` or :math:`S x` holds NaN
    or inf (then no output is to be used) and how many steps would move a
    current by more than half the mean gain (out of the stable range). The
    bias bound and the gain ceiling in `hidden_layer_update`'s loop were
    enough to stop its vectorisation; this loop is vectorised. Sums in any
    order (``reassoc``); ``x * 0`` is 0 for a finite ``x`` and NaN otherwise,
    which no reassociation changes.
    """
    from_current = params[_FROM_CURRENT] != 0.0
    big = params[_COEF_MAX]
    c = min(params[_SCALE] / params[_NORM], big)
    r = params[_RADIUS]
    kb = params[_KB]
    # |d| beyond this moves a current by more than half the mean gain
    encoder_coef = params[_KE] * c / r * math.sqrt(params[INPUT_SQ])
    coef = max(kb * c, encoder_coef)
    limit = 0.5 * params[_GAIN_SCALE] / coef if coef > 0 else math.inf
    min_gain = params[_MIN_GAIN]
    # frozen biases (kb = 0) stay as they are: no floor, bias_delta is 0
    theta = params[_THRESHOLD] if kb > 0 else -math.inf
    max_intercept = params[_MAX_INTERCEPT]
    max_bias = params[_THRESHOLD] + params[_MAX_GAIN]
    bad = 0.0
    out = 0.0
    for i in range(delta.shape[0]):
        d = delta[i]
        b_i = bias[i]
        s = current[i] - b_i if from_current else sx[i]
        bad += d * 0.0 + s * 0.0
        out += 1.0 if abs(d) > limit else 0.0
        g = gain[i]
        half = 0.5 * max(g, min_gain)
        db = min(max(bias_delta[i], -half), half)
        db = max(db, theta - max_intercept * (g + gain_delta[i]) - b_i)
        bias_delta[i] = min(db, max(max_bias - b_i, 0.0))
    params[N_BAD] = bad != 0.0
    params[N_BOUNDED] = out


hidden_layer_finish.numba_options = {"fastmath": {"reassoc"}}


def hidden_layer_step(
    error,
    FT,
    fe,
    x,
    scratch,
    delta,
    current,
    bias,
    sx,
    x_out,
    gain,
    bias_delta,
    beta,
    gain_delta,
    alpha,
    params,
):
    """`hidden_layer_prologue`, `hidden_layer_update` and
    `hidden_layer_finish` in one call, for a step that reads :math:`S x` as
    :math:`J - b` or has it in ``sx`` already: one call from Python instead
    of three (each costs about 0.1 us per argument to dispatch, and a
    microsecond all told at n = 1000, d = 64).

    Returns the prologue's negative code (nothing but ``fe`` and
    ``scratch`` written), or the number of rows whose ``alpha`` is not 1
    (0 after a step without feedback, `hidden_layer_no_feedback`).
    When a gain met its floor or its ceiling (``params[N_CLIPPED]``), the
    finish is left to the caller, after it has measured those rows
    (`nengo_fa.builder.stages.NumpyStep.measure_bounded_rows`). The three
    stay separate functions, each vectorised on its own (see
    `hidden_layer_prologue`).
    """
    code = hidden_layer_prologue(error, FT, fe, x, scratch, params)
    if code == NO_FEEDBACK:
        hidden_layer_no_feedback(fe, delta, bias_delta, gain_delta, beta, alpha, params)
        return 0
    if code != 0:
        return code
    n_scaled = hidden_layer_update(
        fe,
        delta,
        current,
        bias,
        sx,
        x,
        x_out,
        gain,
        bias_delta,
        beta,
        gain_delta,
        alpha,
        params,
    )
    if params[N_CLIPPED] == 0:
        hidden_layer_finish(
            delta, current, bias, sx, gain, bias_delta, gain_delta, params
        )
    return n_scaled


hidden_layer_step.helpers = (
    hidden_layer_prologue,
    hidden_layer_no_feedback,
    hidden_layer_update,
    hidden_layer_finish,
)


def local_error_bias(fe, delta, bias_delta, gain_delta, params):
    """The *local error* and the *bias step* (before its bounds, which
    `hidden_layer_finish` applies) of a `.SimHiddenLayerRule` that learns
    neither encoders nor gains (``modifies="weights"``, or biases only), after
    `hidden_layer_prologue` returned 0: :math:`\\delta = (F e) \\odot G'(J)`
    into ``delta`` (which holds :math:`G'(J)` on entry),
    :math:`\\Delta b = -\\kappa_b c \\delta` into ``bias_delta`` and 0 into
    ``gain_delta``, as `nengo_fa.builder.stages.NumpyStep` computes them."""
    big = params[_COEF_MAX]
    c = min(params[_SCALE] / params[_NORM], big)
    kbc = -min(params[_KB] * c, big)
    for i in range(delta.shape[0]):
        d = delta[i] * fe[i]
        delta[i] = d
        bias_delta[i] = d * kbc
        gain_delta[i] = 0.0


def weights_factors(delta, F, pre, u, a, coef, limit, fixed_nu, coef_max):
    """A step of `.SimHiddenLayerWeights` with the in-place update: the
    factors :math:`u` (into ``u``) and :math:`a_{pre}` (``pre``, copied into
    ``a``) of :math:`\\Delta W = u \\, a_{pre}^T`, with
    :math:`u_i = \\mathrm{coef}_i \\delta_i / \\nu` bounded to
    :math:`|u_i| |a_{pre}|^2 \\le \\mathrm{limit}_i`, in the order of the
    numpy code. :math:`\\nu` is ``fixed_nu``, or, when that is negative, the
    RMS row norm of the feedback ``F`` (``n`` rows, or their transpose).

    Returns 0; 1 when there is nothing to learn from (:math:`\\nu = 0` or
    :math:`a_{pre} = 0`: ``u`` is set to 0); or, having written nothing, -1 if
    :math:`\\nu` and -2 if :math:`|a_{pre}|^2` is not finite (the numpy code
    raises, or checks ``pre`` element by element).
    """
    n = delta.shape[0]
    nu = fixed_nu
    if nu < 0:
        nu = math.sqrt(squared_sum(F) / n)
    if not math.isfinite(nu):
        return -1
    aa = 0.0
    for j in range(pre.shape[0]):
        aa += pre[j] * pre[j]
    if not math.isfinite(aa):
        return -2
    if nu == 0.0 or aa == 0.0:
        u[:] = 0.0
        return 1
    inv_nu = min(1.0 / nu, coef_max)
    inv_aa = 1.0 / aa
    for i in range(n):
        v = delta[i] * coef[i] * inv_nu
        bound = limit[i] * inv_aa
        u[i] = max(min(v, bound), -bound)
    a[:] = pre
    return 0


def row_norms(S, radius, out):
    """:math:`r |S_i|` for every row of :math:`S`, into ``out`` (the gains
    that the scaled encoders have)."""
    n, d = S.shape
    for i in range(n):
        total = 0.0
        for j in range(d):
            total += S[i, j] * S[i, j]
        out[i] = radius * math.sqrt(total)


row_norms.numba_options = {"fastmath": {"reassoc"}}


#: Up to this many dimensions, the encoder updates go column by column over
#: every row: a loop over a row this short costs more than the work it skips
#: (measured 1.5-5x faster at n=5000 for d <= 3, and slower from d=4).
COLUMNS_MAX_D = 3


def encoder_update(S, alpha, beta, x):
    """:math:`S \\leftarrow \\mathrm{diag}(\\alpha) S + \\beta x^T` in place,
    skipping the rows that do not change (:math:`\\alpha_i = 1`,
    :math:`\\beta_i = 0`: inactive neurons) unless :math:`d` is at most
    `COLUMNS_MAX_D`."""
    n, d = S.shape
    if d <= COLUMNS_MAX_D:
        for j in range(d):
            xj = x[j]
            for i in range(n):
                S[i, j] = alpha[i] * S[i, j] + beta[i] * xj
        return
    for i in range(n):
        a = alpha[i]
        b = beta[i]
        if a != 1.0:
            for j in range(d):
                S[i, j] = a * S[i, j] + b * x[j]
        elif b != 0.0:
            for j in range(d):
                S[i, j] += b * x[j]


def dot(a, b):
    """:math:`a \\cdot b` for 1-D arrays, single-threaded.

    Summed in any order (``fastmath`` reassociation, so that the sum is
    vectorised): the result differs from ``np.dot`` by rounding only.
    """
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


dot.numba_options = {"fastmath": {"reassoc"}}


def filter_inputs(current, x, bias, J_seen, x_seen, sx, alpha, beta, S, a, recur):
    """`nengo_fa.builder.stages.NumpyStep.filter_inputs`: the rule's own
    ``Lowpass`` (decay ``a``) of the current and the input it pairs with the
    error and, with ``recur``, :math:`S \\bar x` from the factors
    ``alpha, beta`` of the encoder update that this step's :math:`S` had
    (measured from :math:`S` on the rows where ``alpha > 1``)."""
    b = 1 - a
    d = x_seen.shape[0]
    xx_prev = 0.0
    for j in range(d):
        xx_prev += x_seen[j] * x_seen[j]
        x_seen[j] = a * x_seen[j] + b * x[j]
    for i in range(J_seen.shape[0]):
        J_seen[i] = a * J_seen[i] + b * current[i]
    if not recur:
        return
    # every row by the recurrence, in a loop without branches (vectorised:
    # measured 5x faster at n = 5000), then the rare rows scaled up measured
    n_up = 0
    for i in range(sx.shape[0]):
        sx[i] = a * (sx[i] * alpha[i] + beta[i] * xx_prev) + b * (current[i] - bias[i])
        n_up += alpha[i] > 1.0
    if n_up == 0:
        return
    for i in range(sx.shape[0]):
        if alpha[i] > 1.0:
            acc = 0.0
            for j in range(d):
                acc += S[i, j] * x_seen[j]
            sx[i] = acc


def encoder_update_encode(S, alpha, beta, x, x_new, current):
    """`encoder_update`, then :math:`J \\mathrel{+}= S x_{new}`, in one pass
    over :math:`S` (the ensemble's encoding, which it replaces). The dot
    products are summed in any order (vectorised), so :math:`J` differs from
    ``np.dot``'s by rounding only."""
    n, d = S.shape
    if d <= COLUMNS_MAX_D:
        for j in range(d):
            xj = x[j]
            yj = x_new[j]
            for i in range(n):
                v = alpha[i] * S[i, j] + beta[i] * xj
                S[i, j] = v
                current[i] += v * yj
        return
    for i in range(n):
        a = alpha[i]
        b = beta[i]
        acc = 0.0
        if a != 1.0:
            for j in range(d):
                v = a * S[i, j] + b * x[j]
                S[i, j] = v
                acc += v * x_new[j]
        elif b != 0.0:
            for j in range(d):
                v = S[i, j] + b * x[j]
                S[i, j] = v
                acc += v * x_new[j]
        else:
            for j in range(d):
                acc += S[i, j] * x_new[j]
        current[i] += acc


encoder_update_encode.numba_options = {"fastmath": {"reassoc"}}


def encoder_update_encode_norms(S, alpha, beta, x, x_new, current, norms):
    """`encoder_update_encode`, and :math:`|S_i|` of the updated rows into
    ``norms``, in the same pass."""
    n, d = S.shape
    if d <= COLUMNS_MAX_D:
        norms[:] = 0.0
        for j in range(d):
            xj = x[j]
            yj = x_new[j]
            for i in range(n):
                v = alpha[i] * S[i, j] + beta[i] * xj
                S[i, j] = v
                current[i] += v * yj
                norms[i] += v * v
        for i in range(n):
            norms[i] = math.sqrt(norms[i])
        return
    for i in range(n):
        a = alpha[i]
        b = beta[i]
        # summed in S's own dtype: float64 sums of float32 products halved
        # the speed of this loop in float32
        acc = S[i, 0] - S[i, 0]
        sq = acc
        if a != 1.0:
            for j in range(d):
                v = a * S[i, j] + b * x[j]
                S[i, j] = v
                acc += v * x_new[j]
                sq += v * v
        elif b != 0.0:
            for j in range(d):
                v = S[i, j] + b * x[j]
                S[i, j] = v
                acc += v * x_new[j]
                sq += v * v
        else:
            for j in range(d):
                v = S[i, j]
                acc += v * x_new[j]
                sq += v * v
        current[i] += acc
        norms[i] = math.sqrt(sq)


encoder_update_encode_norms.numba_options = {"fastmath": {"reassoc"}}


# --- learned and sign feedback ------------------------------------------------


def squared_distance(A, B):
    """:math:`|A - B|^2` of two arrays of one shape, summed in any order
    (``reassoc``, so that it is vectorised): a check, not a result. Over
    the flattened arrays (a view of a contiguous one), so that an array of
    few columns is as fast as one of many."""
    a = A.ravel()
    b = B.ravel()
    total = 0.0
    for j in range(a.shape[0]):
        c = a[j] - b[j]
        total += c * c
    return total


squared_distance.numba_options = {"fastmath": {"reassoc"}}


def squared_sum(A):
    """:math:`|A|^2` of an array, summed in any order (``reassoc``), over
    the flattened array as `squared_distance`."""
    a = A.ravel()
    total = 0.0
    for j in range(a.shape[0]):
        total += a[j] * a[j]
    return total


squared_sum.numba_options = {"fastmath": {"reassoc"}}


# (defined above, with the other steps of the hidden-layer rule)
weights_factors.helpers = (squared_sum,)


def kolen_pollack(B, W, W_prev, keep, safe, limit, error, fe, scratch):
    """A step of `.SimKolenPollack` that also gives the *feedback error* of
    the :math:`B` it replaces: :math:`F e` into ``fe`` and :math:`\\nu`
    (returned), then :math:`B \\leftarrow \\lambda' B + (W - W_{prev})^T`,
    :math:`W_{prev} \\leftarrow W` in the same pass over :math:`B`
    (:math:`\\lambda'` is ``keep``). Given a ``W_prev`` without elements,
    ``W`` is the change itself, :math:`D = W_t - W_{t-1}` (the delta that
    the one learning rule of :math:`W` added): :math:`B \\leftarrow
    \\lambda' B + D^T`.

    No element of the update can overflow when the change's norm is below
    ``safe`` (:math:`(1 - \\lambda') \\times` ``limit``, the dtype's
    largest number), or, without a decay to pay for it, when
    :math:`\\lambda' \\|B\\|_F` (:math:`\\ge \\lambda' \\max|B|`: a
    vectorised pass) plus that norm is below ``limit``. Returns, having
    written nothing, -1 if the change is not finite and -2 if neither
    bound holds (the update might overflow): the numpy code handles both.
    """
    n, d_out = B.shape
    given = W_prev.size == 0
    ss = squared_sum(W) if given else squared_distance(W, W_prev)
    if not math.isfinite(ss):
        return -1.0
    norm = math.sqrt(ss)
    if not norm < safe and not keep * math.sqrt(squared_sum(B)) + norm < limit:
        return -2.0
    for i in range(n):
        acc = 0.0
        sq = 0.0
        for k in range(d_out):
            b = B[i, k]
            acc += b * error[k]
            sq += b * b
            w = W[k, i]
            if given:
                B[i, k] = b * keep + w
            else:
                B[i, k] = b * keep + (w - W_prev[k, i])
                W_prev[k, i] = w
        fe[i] = acc
        scratch[i] = sq
    return math.sqrt(sum4(scratch) / n) if n > 0 else 0.0


kolen_pollack.helpers = (squared_sum, sum4, squared_distance)


def sign_feedback(W, F, error, fe, scratch, filtered, a):
    """A step of `.SimSignFeedback` that also gives the *feedback error*:
    :math:`F^T = \\rho \\, \\mathrm{sign}(W)` into ``F``, then
    :math:`F e` into ``fe`` and :math:`\\nu` (returned) by
    `feedback_error`. With ``filtered`` (:math:`\\bar W`, the shape of
    :math:`W`; no elements: none), the signs and :math:`\\rho` are those of
    :math:`\\bar W`, which is then low-passed in the same call,
    :math:`\\bar W \\leftarrow a \\bar W + (1 - a) W` (`low_pass`)."""
    filter_on = filtered.size > 0
    src = filtered if filter_on else W
    size = src.size
    rho = math.sqrt(squared_sum(src) / size) if size > 0 else 0.0
    for k in range(src.shape[0]):
        for i in range(src.shape[1]):
            w = src[k, i]
            # np.sign: 0 for 0, NaN for NaN
            s = 1.0 if w > 0.0 else (-1.0 if w < 0.0 else w * 0.0)
            F[k, i] = s * rho
    if filter_on:
        # a loop of its own: each vectorises, together they did not
        low_pass(W, filtered, a)
    return feedback_error(error, F, fe, scratch, -1.0)


def low_pass(W, F, a):
    """A step of `.SimFilteredFeedback`: :math:`F^T \\leftarrow a F^T +
    (1 - a) W` into ``F``."""
    b = 1.0 - a
    for k in range(W.shape[0]):
        for i in range(W.shape[1]):
            F[k, i] = F[k, i] * a + W[k, i] * b


sign_feedback.helpers = (feedback_error, squared_sum, low_pass)


def filtered_feedback(W, F, a, error, fe, scratch):
    """A step of `.SimFilteredFeedback` that also gives the *feedback
    error*: `low_pass`, then :math:`F e` into ``fe`` and :math:`\\nu`
    (returned) by `feedback_error`."""
    low_pass(W, F, a)
    return feedback_error(error, F, fe, scratch, -1.0)


filtered_feedback.helpers = (low_pass, feedback_error)


def alignment_sums(error, B, W, gp):
    """The sums `.SimAlignmentDiagnostics` needs, in one pass over
    :math:`B` (``(n, d_out)``) and :math:`W` (``(d_out, n)``):
    :math:`|B|^2, |W|^2, \\langle B, W^T \\rangle` and, with
    :math:`u = (B e) \\odot G'`, :math:`v = (W^T e) \\odot G'` (``gp`` holds
    :math:`G'(J)`), :math:`u \\cdot v, |u|^2, |v|^2`. Summed in any order
    (``reassoc``): they are measurements."""
    n, d_out = B.shape
    bb = ww = bw = uv = uu = vv = 0.0
    for i in range(n):
        u = 0.0
        v = 0.0
        for k in range(d_out):
            b = B[i, k]
            w = W[k, i]
            bb += b * b
            ww += w * w
            bw += b * w
            u += b * error[k]
            v += w * error[k]
        g = gp[i]
        u *= g
        v *= g
        uv += u * v
        uu += u * u
        vv += v * v
    return bb, ww, bw, uv, uu, vv


alignment_sums.numba_options = {"fastmath": {"reassoc"}}


def angle(dot, norm_a, norm_b):
    """Angle in degrees from a dot product and norms; NaN if a norm is 0 or
    anything is not finite."""
    if norm_a == 0.0 or norm_b == 0.0:
        return math.nan
    if not (math.isfinite(dot) and math.isfinite(norm_a) and math.isfinite(norm_b)):
        return math.nan
    # |dot| <= norm_a norm_b: dividing by one norm, then the other, neither
    # overflows nor underflows where their product would
    cos = dot / norm_a / norm_b
    return math.degrees(math.acos(min(max(cos, -1.0), 1.0)))


def alignment_diagnostics(error, B, W, gp, delta_angle, feedback_angle, norm_ratio):
    """`.SimAlignmentDiagnostics` from :math:`G'(J)` (``gp``): its three
    outputs, from `alignment_sums`."""
    bb, ww, bw, uv, uu, vv = alignment_sums(error, B, W, gp)
    b_norm, w_norm = math.sqrt(bb), math.sqrt(ww)
    norm_ratio[0] = b_norm / w_norm if 0.0 < w_norm < math.inf else math.nan
    feedback_angle[0] = angle(bw, b_norm, w_norm)
    delta_angle[0] = angle(uv, math.sqrt(uu), math.sqrt(vv))


alignment_diagnostics.helpers = (alignment_sums, angle)


def forward_projection(W, a, x, Wx):
    """One pass over :math:`W`: returns :math:`(|W|^2, |a|^2)` and, while
    :math:`0 < |a|^2 < \\infty`, writes :math:`\\hat x = a / |a|` into ``x``
    and :math:`W \\hat x` into ``Wx``."""
    aa = 0.0
    for i in range(a.shape[0]):
        aa += a[i] * a[i]
    active = aa > 0.0 and aa < math.inf
    if active:
        norm = math.sqrt(aa)
        for i in range(a.shape[0]):
            x[i] = a[i] / norm
    d_out, n = W.shape
    ww = 0.0
    for k in range(d_out):
        acc = 0.0
        if active:
            for i in range(n):
                w = W[k, i]
                ww += w * w
                acc += w * x[i]
        else:
            for i in range(n):
                ww += W[k, i] * W[k, i]
        Wx[k] = acc
    return ww, aa


forward_projection.numba_options = {"fastmath": {"reassoc"}}


def feedback_rows(B, error, active, x, fe, xB, scratch):
    """One pass over the rows of :math:`B` (shape ``(n, d_out)``):
    :math:`B e` into ``fe``, each row's :math:`|B_i|^2` into ``scratch``
    and, if ``active``, :math:`\\hat x^T B` into ``xB``."""
    n, d_out = B.shape
    xB[:] = 0.0
    for i in range(n):
        acc = 0.0
        sq = 0.0
        for k in range(d_out):
            b = B[i, k]
            acc += b * error[k]
            sq += b * b
        fe[i] = acc
        scratch[i] = sq
        if active:
            # while the row is in cache; nothing without activity terms
            xi = x[i]
            for k in range(d_out):
                xB[k] += xi * B[i, k]


def alignment_gradient(B, W, coefs, active, x, Wx, xB, out, add):
    """:math:`\\Delta B` of `.SimAlignmentTerms`, its terms added in the
    order of the numpy code (those of weight 0 left out, and the activity
    terms without activity): into ``out``, or, with ``add``, added to
    ``out`` (which may be :math:`B` itself: each row's terms are read
    before it is written). Returns :math:`|\\Delta B|^2` (0 with ``add``)."""
    n, d_out = B.shape
    decay, self_, rate = coefs[0], coefs[1], coefs[5]
    amp = coefs[2] if active else 0.0
    sparse = coefs[3] if active else 0.0
    null = coefs[4] if active else 0.0
    gg = 0.0
    for i in range(n):
        bwx = 0.0
        if null > 0.0:
            for k in range(d_out):
                bwx += B[i, k] * Wx[k]
        for k in range(d_out):
            g = B[i, k] * decay
            if self_ > 0.0:
                g += W[k, i] * -self_
            if amp > 0.0:
                g += x[i] * (-amp * Wx[k])
            if sparse > 0.0:
                g += x[i] * (sparse * xB[k])
            if null > 0.0:
                g += bwx * (null * Wx[k])
            g *= rate
            if add:
                out[i, k] += g
            else:
                out[i, k] = g
                gg += g * g
    return gg


def alignment_bound(coefs, active, bb, ww):
    """A bound on :math:`\\max |\\Delta B_{ik}|` from :math:`|B|_F^2`
    (``bb``) and :math:`|W|_F^2` (``ww``): with :math:`|\\hat x| = 1`,
    :math:`|\\hat x_i| \\le 1`, :math:`|(W \\hat x)_k| \\le |W|_F`,
    :math:`|(\\hat x^T B)_k| \\le |B|_F` and :math:`|B_i \\cdot W \\hat x|
    \\le |B|_F |W|_F`; inf if a term overflows."""
    b, w = math.sqrt(bb), math.sqrt(ww)
    bound = abs(coefs[0]) * b + abs(coefs[1]) * w
    if active:
        bound += abs(coefs[2]) * w + abs(coefs[3]) * b + abs(coefs[4]) * b * w * w
    return abs(coefs[5]) * bound


def alignment_terms(B, W, a, coefs, x, Wx, xB, grad, error, fe, scratch, limit):
    """A step of `.SimAlignmentTerms` that also gives the *feedback error*
    of the :math:`B` it replaces: :math:`B e` into ``fe`` and :math:`\\nu`
    (returned), then :math:`B \\leftarrow B + \\Delta B`. ``coefs`` holds
    :math:`c_d, c_s, c_a, c_{sp}, c_n` and :math:`-\\kappa \\Delta t`;
    ``a`` has no elements when no term needs the activities; ``x``, ``Wx``,
    ``xB`` and ``grad`` are work arrays; ``limit`` is the dtype's largest
    number.

    Three passes: one over :math:`W` (its norm and :math:`W \\hat x`), one
    over :math:`B` (:math:`B e`, its norm, :math:`\\hat x^T B`), and one that
    adds :math:`\\Delta B` to :math:`B` in place where `alignment_bound`
    shows that nothing can overflow (with :math:`|B|_F` plus the bound below
    half of ``limit``); otherwise :math:`\\Delta B` goes to ``grad`` first,
    and is checked before it is added.

    Returns, having changed nothing, -1 if :math:`W` is not finite, -2 if
    :math:`a` is not, -3 if :math:`\\Delta B` is not (an overflow).
    """
    n = B.shape[0]
    ww, aa = forward_projection(W, a, x, Wx)
    if not math.isfinite(ww):
        return -1.0
    if not math.isfinite(aa):
        return -2.0
    active = aa > 0.0
    feedback_rows(B, error, active, x, fe, xB, scratch)
    bb = sum4(scratch)
    nu = math.sqrt(bb / n) if n > 0 else 0.0
    if math.sqrt(bb) + alignment_bound(coefs, active, bb, ww) < 0.5 * limit:
        alignment_gradient(B, W, coefs, active, x, Wx, xB, B, True)
        return nu
    if not math.isfinite(
        alignment_gradient(B, W, coefs, active, x, Wx, xB, grad, False)
    ):
        return -3.0
    for i in range(n):
        for k in range(B.shape[1]):
            B[i, k] += grad[i, k]
    return nu


alignment_terms.helpers = (
    sum4,
    forward_projection,
    feedback_rows,
    alignment_gradient,
    alignment_bound,
)


def erbp_weights(W, u, last, s, dt, y, spiked):
    """`.SimERBPWeights`: ``W[:, j] += u * last[j] * dt`` for the ``j`` with
    ``last[j] != 0``, skipping rows with ``u[i] == 0``; then
    ``y += W[:, j] s[j]`` over the ``j`` with ``s[j] != 0``. ``spiked`` is
    scratch for the indices. Time in proportion to the spikes."""
    n_post, n_pre = W.shape
    m = 0
    for j in range(n_pre):
        if last[j] != 0:
            spiked[m] = j
            m += 1
    if m > 0:
        for i in range(n_post):
            ui = u[i] * dt
            if ui != 0:
                for k in range(m):
                    j = spiked[k]
                    W[i, j] += ui * last[j]
    m = 0
    for j in range(n_pre):
        if s[j] != 0:
            spiked[m] = j
            m += 1
    if m > 0:
        for i in range(n_post):
            acc = 0.0
            for k in range(m):
                j = spiked[k]
                acc += W[i, j] * s[j]
            y[i] += acc


# --- synthetic gradients --------------------------------------------------------


def _rows_dot(A, v, out):
    """``out = A v`` for a matrix of long rows, each row's sum in any order
    (``reassoc``: vectorised, as numpy's ``dot``)."""
    for i in range(A.shape[0]):
        acc = 0.0
        for k in range(A.shape[1]):
            acc += A[i, k] * v[k]
        out[i] = acc


_rows_dot.numba_options = {"fastmath": {"reassoc"}}


def _columns_sum(AT, v, out):
    """``out = A v`` from :math:`A^T` (``AT``, a few long rows): ``v[k]``
    times row ``k``, added row by row (vectorised along the rows)."""
    out[:] = 0.0
    for k in range(AT.shape[0]):
        vk = v[k]
        for i in range(AT.shape[1]):
            out[i] += AT[k, i] * vk


def synthetic_predict(
    e, FT, P, a, c, s, J, zbuf, jbuf, since, gap, fe, g, pz, rho, pred, r
):
    """The first stages of a step of `.SimSyntheticGradient` with a factored
    predictor (:math:`M = F P`), from :math:`F^T` (``FT``): the buffers
    (``c`` has no elements without a context), the availability, the
    prediction :math:`F (P z)` into ``fe`` (0 past ``gap``), and, on a step
    with an error, :math:`g = F e`,
    :math:`P z_\\tau` (``pz``), :math:`\\rho = P z_\\tau - e`, ``pred``
    :math:`= F P z_\\tau` and ``r`` :math:`= F \\rho`.

    Returns 0 on a step without an error (done), 1 with one (the
    diagnostics and the update follow: `synthetic_update`), -1, having
    changed nothing but the buffers, ``since``, ``fe`` and the work arrays,
    if :math:`F e` is not finite.
    """
    n = a.shape[0]
    rows = zbuf.shape[0]
    for k in range(rows - 1):
        zbuf[k, :] = zbuf[k + 1, :]
        jbuf[k, :] = jbuf[k + 1, :]
    last = rows - 1
    for i in range(n):
        zbuf[last, i] = a[i]
        jbuf[last, i] = J[i]
    for j in range(c.shape[0]):
        zbuf[last, n + j] = c[j] * s
    available = False
    for k in range(e.shape[0]):
        available = available or e[k] != 0.0
    since[0] = 0.0 if available else since[0] + 1.0
    if since[0] > gap:
        fe[:] = 0.0
    else:
        _rows_dot(P, zbuf[last], pz)
        _columns_sum(FT, pz, fe)
    if not available:
        return 0
    if rows == 1:
        # no delay: z_tau is z, whose P z and F P z are above (a step with an
        # error has since = 0, within the gap)
        pred[:] = fe
    else:
        _rows_dot(P, zbuf[0], pz)
        _columns_sum(FT, pz, pred)
    _columns_sum(FT, e, g)
    gg = 0.0
    for i in range(n):
        gg += g[i] * g[i]
    if not math.isfinite(gg):
        return -1
    for k in range(e.shape[0]):
        rho[k] = pz[k] - e[k]
    _columns_sum(FT, rho, r)
    return 1


synthetic_predict.helpers = (_rows_dot, _columns_sum)


def synthetic_update(g, gp, pred, r, rho, P, z_tau, rate, power, true_delta, out):
    """The rest of a step of `.SimSyntheticGradient` with a factored
    predictor, from :math:`G'(J_\\tau)` (``gp``): the true local error into
    ``true_delta``, ``out[0]`` the predictor's relative error, ``out[1]``
    the prediction's angle, then :math:`P \\leftarrow P - c \\, \\rho
    z_\\tau^T`, :math:`c` = ``rate`` / max(:math:`|z_\\tau|^2`, ``power``)."""
    n = g.shape[0]
    tt = pt = pp = rr = 0.0
    for i in range(n):
        t = g[i] * gp[i]
        p = pred[i] * gp[i]
        q = r[i] * gp[i]
        true_delta[i] = t
        tt += t * t
        pt += p * t
        pp += p * p
        rr += q * q
    ref = math.sqrt(tt)
    out[1] = angle(pt, math.sqrt(pp), ref)
    out[0] = math.sqrt(rr) / ref if ref > 0.0 else math.nan
    zz = 0.0
    for j in range(z_tau.shape[0]):
        zz += z_tau[j] * z_tau[j]
    step = rate / max(zz, power)
    for k in range(P.shape[0]):
        u = rho[k] * step
        for j in range(P.shape[1]):
            P[k, j] -= u * z_tau[j]


synthetic_update.helpers = (angle,)


# --- local representation alignment -----------------------------------------------


def lra_target(e, J, BT, J_seen, a, shift, target):
    """The first stage of a step of `.SimLRATarget`, from :math:`B^T`
    (``BT``): the rule's filter of the current into ``J_seen`` (``J_seen``
    has no elements without it, ``a`` its decay), then the target current
    :math:`\\bar J + \\mathrm{shift} \\, B e` into ``target``. Returns
    False, having changed nothing, if :math:`e` or :math:`J` is not
    finite."""
    for k in range(e.shape[0]):
        if not math.isfinite(e[k]):
            return False
    n = J.shape[0]
    for i in range(n):
        if not math.isfinite(J[i]):
            return False
    _columns_sum(BT, e, target)
    b = 1.0 - a
    if J_seen.shape[0] > 0:
        for i in range(n):
            J_seen[i] = J_seen[i] * a + J[i] * b
            target[i] = target[i] * shift + J_seen[i]
    else:
        for i in range(n):
            target[i] = target[i] * shift + J[i]
    return True


lra_target.helpers = (_columns_sum,)


def lra_error(activity, target, gp, fe, to_error, inv_sigma, bound):
    """The rest of a step of `.SimLRATarget`, from the activities at the
    current and at the target and :math:`G'`: the Cauchy error
    :math:`\\psi` into ``fe``, scaled down to the bound on the local
    error."""
    ss = 0.0
    for i in range(fe.shape[0]):
        m = (activity[i] - target[i]) * to_error
        t = m * inv_sigma
        psi = m / (t * t + 1.0)
        fe[i] = psi
        q = gp[i] * psi
        ss += q * q
    norm = math.sqrt(ss)
    if norm > bound:
        scale = bound / norm
        for i in range(fe.shape[0]):
            fe[i] *= scale


lra_error.numba_options = {"fastmath": {"reassoc"}}


# --- the trace rule -----------------------------------------------------------------


def trace_error(J, J_f, J_s, a_f, a_s, on, first, scale, fe):
    """The filters and feedback error of `.SimTraceError`, given its phase
    (``on``): on the ``first`` step both filters start at :math:`J`; then
    :math:`J_f \\leftarrow a_f J_f + (1 - a_f) J`, :math:`J_s` the same
    with :math:`a_s` outside the plus phase (held in it), and :math:`F e =
    c \\odot (J_s - J_f)` in the plus phase, 0 outside it."""
    b_f = 1.0 - a_f
    b_s = 1.0 - a_s
    for i in range(J.shape[0]):
        j = J[i]
        if first:
            f = j
            s = j
        else:
            f = J_f[i] * a_f + j * b_f
            s = J_s[i] if on else J_s[i] * a_s + j * b_s
        J_f[i] = f
        J_s[i] = s
        fe[i] = (s - f) * scale[i] if on else 0.0
