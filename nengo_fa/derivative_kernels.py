"""Compiled loops of the built-in derivatives, and the functions they need.

Each loop is the compiled form (`nengo_fa.neurons.Derivative.compiled_form`)
of one `~nengo_fa.neurons.Derivative`: ``loop(J, out, scale, *params)`` writes
``scale`` times :math:`G'(J)` into ``out``, with the arithmetic of the
derivative's numpy code, in the same order, so that the two agree up to
rounding. The reference simulator compiles them with numba
(`nengo_fa.builder.kernels.compiled`); here they are plain Python, so that
importing nengo_fa does not import numba.

numba calls the C library for ``math.exp`` and ``math.log1p``, one element
at a time (about 10 ns each), while numpy runs them on vectors (1.4 and
2.6 ns per element measured): a loop with those calls was twice as slow as
the numpy code at 5000 neurons. `exp` and `log1p` here are written with no
calls and no branches, so that LLVM vectorises the loops that use them. They
follow fdlibm's algorithms (``e_exp.c``, ``s_log1p.c``: errors below one unit
in the last place), with its constants. Internal.
"""

import math

import numpy as np

# fdlibm's constants
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SQRT2 = 1.4142135623730951
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000
# the input currents are clipped to +-J_CLIP (`nengo_fa.neurons.J_CLIP`)
_J_CLIP = 1e30


def _pow2(k):
    """:math:`2^k` for an integer ``k`` in [-1022, 1023], from its bits."""
    return np.int64((k + 1023) << 52).view(np.float64)


def exp(x):
    """:math:`e^x` (fdlibm's ``exp``), with no calls or branches.

    ``x`` is reduced to :math:`r = x - k \\ln 2`, :math:`|r| \\le \\ln 2 / 2`,
    :math:`e^r` comes from fdlibm's rational approximation, and :math:`2^k`
    from its bits, in two factors so that results down to the subnormals are
    right. Gives 0 below -746, inf above 709.79, NaN for NaN.
    """
    # clamped (a NaN to -746, restored below), so that k is a small integer
    xc = x if x > -746.0 else -746.0
    xc = xc if xc < 710.0 else 710.0
    k = np.floor(xc * _INV_LN2 + 0.5)
    hi = xc - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    ki = np.int64(k)
    k1 = ki >> 1
    y = y * _pow2(k1) * _pow2(ki - k1)
    return y if x == x else x


exp.helpers = (_pow2,)


def log1p(x):
    """:math:`\\log(1 + x)` for :math:`x > -1` (fdlibm's ``log1p``), with
    no calls or branches; inf for inf, NaN for NaN.

    :math:`u = 1 + x = 2^k m` with :math:`m \\in [\\sqrt 2 / 2, \\sqrt 2)`
    from the bits of :math:`u`; :math:`\\log(1 + f)`, :math:`f = m - 1` (or
    :math:`f = x` exactly when :math:`k = 0`), from fdlibm's series in
    :math:`s = f / (2 + f)`, and the rounding of :math:`1 + x` added back as
    :math:`c / u`.
    """
    u = 1.0 + x
    bits = np.float64(u).view(np.int64)
    k = (bits >> 52) - 1023
    m = np.int64((bits & _MANTISSA) | _ONE_BITS).view(np.float64)
    big = m > _SQRT2
    m = 0.5 * m if big else m
    k = k + 1 if big else k
    # the rounding error of u = 1 + x (u - 1, or u - x, is exact: Sterbenz)
    c = (1.0 - (u - x) if u >= 2.0 else x - (u - 1.0)) / u
    f = m - 1.0 if k != 0 else x
    c = c if k != 0 else 0.0
    dk = float(k)
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    y = dk * _LN2_HI - ((hfsq - (s * (hfsq + (t2 + t1)) + (dk * _LN2_LO + c))) - f)
    # inf and NaN went through the bits as finite numbers
    return y if x < math.inf else x


def relu_loop(J, out, scale):
    """:math:`a [J > 0]` (`~nengo_fa.neurons.RectifiedLinearDerivative`),
    ``scale`` :math:`= a`."""
    for i in range(J.shape[0]):
        out[i] = scale if J[i] > 0.0 else 0.0


def logistic_loop(J, out, scale, slope):
    """:math:`c \\, e^{-k|J|} / (1 + e^{-k|J|})^2`
    (`~nengo_fa.neurons.LogisticDerivative`), ``scale`` :math:`= c`,
    ``slope`` :math:`= k`."""
    for i in range(J.shape[0]):
        e = exp(abs(J[i]) * -slope)
        denom = e + 1.0
        out[i] = e / (denom * denom) * scale


logistic_loop.helpers = (exp,)


#: Smoothed LIF: from here up, :math:`e^{-y} < 2^{-53}` and below half a unit
#: in the last place of :math:`y`, so that :math:`1 + e^{-y} = 1` and
#: :math:`y + \\log(1 + e^{-y}) = y` exactly: the main branch needs one
#: ``log1p`` and no ``exp``.
LIF_FAR = 40.0


def smoothed_lif_middle(y, scale, tau_rc, tau_ref, sigma):
    """The main branch of the smoothed LIF derivative (for
    :math:`y = (J - 1) / \\sigma \\ge` ``y_tail``), as
    `~nengo_fa.neurons.SmoothedLIFDerivative` computes it."""
    j = log1p(exp(-abs(y)))
    j = (j + (y if y > 0.0 else 0.0)) * sigma
    inv_sigmoid = exp(-y) + 1.0
    c = log1p(1.0 / j) * tau_rc + tau_ref
    return scale / (c * c * inv_sigmoid * j * (j + 1.0))


smoothed_lif_middle.helpers = (exp, log1p)
# inlined by numba, so that the loop over the neurons near the threshold is
# vectorised (LLVM left a function this size a call)
smoothed_lif_middle.numba_options = {"inline": "always"}


def smoothed_lif_loop(
    J, out, scale, tau_rc, tau_ref, sigma, log_sigma, y_tail, index, near
):
    """The smoothed LIF derivative (`~nengo_fa.neurons.SmoothedLIFDerivative`,
    whose ``__call__`` has the same steps with comments), ``scale`` :math:`=
    a \\tau_{RC}`; ``index`` (integers) and ``near`` are work arrays of
    ``J``'s length.

    The first loop gives every neuron the tail (:math:`y` below ``y_tail``)
    or the main branch as it is from `LIF_FAR` up, where it needs one
    ``log1p`` (vectorised: both computed, one kept), and lists the few
    neurons near the threshold, between the two; the next loops compute the
    main branch in full for those only (vectorised over the list). That
    gives the same bits as computing it for every neuron: above `LIF_FAR`
    it equals its short form exactly.
    """
    n = J.shape[0]
    m = 0
    for i in range(n):
        v = J[i]
        # np.clip keeps NaN
        v = _J_CLIP if v > _J_CLIP else v
        v = -_J_CLIP if v < -_J_CLIP else v
        y = (v - 1.0) / sigma
        # the main branch from LIF_FAR up: j = y sigma, 1 / sigmoid(y) = 1
        j = (y if y > LIF_FAR else LIF_FAR) * sigma
        c = log1p(1.0 / j) * tau_rc + tau_ref
        far = c * c * j * (j + 1.0)
        # tail
        t = y if y < y_tail else y_tail
        t = (-t - log_sigma) * tau_rc + tau_ref
        tail = t * t * sigma
        # one division, of the denominator kept
        v = scale / (tail if y < y_tail else far)
        out[i] = v if y == y else y
        near[i] = y
    for i in range(n):
        # the list of neurons near the threshold, without branches (near[m]
        # is written at or before near[i], which is read first)
        y = near[i]
        index[m] = i
        near[m] = y
        m += 1 if y_tail <= y < LIF_FAR else 0
    for k in range(m):
        near[k] = smoothed_lif_middle(near[k], scale, tau_rc, tau_ref, sigma)
    for k in range(m):
        out[index[k]] = near[k]


smoothed_lif_loop.helpers = (log1p, smoothed_lif_middle)


def interpolated_loop(J, out, scale, J0, inv_dJ, values, slopes):
    """Linear interpolation in a table, clamped at its ends
    (`~nengo_fa.neurons.InterpolatedDerivative`)."""
    last = values.shape[0] - 1
    for i in range(J.shape[0]):
        pos = (J[i] - J0) * inv_dJ
        # np.clip keeps NaN, which gives NaN below
        pos = 0.0 if pos < 0.0 else pos
        pos = float(last) if pos > last else pos
        index = np.floor(pos)
        k = np.int64(index if index > 0.0 else 0.0)
        slope = slopes[k if k < last else last - 1]
        out[i] = (values[k] + slope * (pos - index)) * scale
