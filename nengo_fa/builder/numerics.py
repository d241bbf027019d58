"""Small numerical helpers shared by the operators. Internal."""

import math

import numpy as np

from nengo_fa.builder import kernels as _kernels

#: Elements per block for BLAS level-1/2 calls on large arrays. Above about
#: 10000 elements OpenBLAS runs ``ddot`` and ``dger`` multithreaded, which was
#: measured 1000x slower on a busy 2-core machine (14 ms for a 50000-element
#: dot product); blocks below that stay single-threaded.
BLOCK = 8192


def blocked_dot(a, b):
    """``a . b`` for 1-D arrays, without threaded BLAS: a compiled loop
    (``_kernels.dot``) for long arrays when numba is available, else numpy's
    ``dot`` over blocks of `BLOCK` elements."""
    if a.size > BLOCK and _kernels.AVAILABLE:
        return _kernels.compiled(_kernels.dot)(a, b)
    total = 0.0
    for i in range(0, a.size, BLOCK):
        total += np.dot(a[i : i + BLOCK], b[i : i + BLOCK])
    return total


def squared_norm(A):
    """Squared Frobenius norm of a contiguous array, without threaded BLAS."""
    flat = A.reshape(-1)  # a view for the contiguous arrays signals hold
    return blocked_dot(flat, flat)


def checked_dot(a, b):
    """``a . b`` as a float for a check: inf or NaN where it overflows (NaN
    where huge terms of both signs meet), without numpy's overflow warning
    or the error Nengo's simulator raises for an invalid value."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.dot(a, b))


def checked_sum(a):
    """``sum(a)`` as a float for a check, as `checked_dot`."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sum(a))


def finite(value, array):
    """Whether ``array`` is finite, given ``value``, a sum (or a sum of
    products) of its elements that is finite unless an element is NaN or inf
    or the sum overflowed; the exact test runs only in the rare cases."""
    return math.isfinite(value) or bool(np.all(np.isfinite(array)))


#: Below this squared norm (and at infinity) `rms_row_norm` rescales by the
#: largest element, so that the squares neither underflow nor overflow.
_TINY_SQUARED = 1e-280


def rms_row_norm(F, n):
    """``||F||_F / sqrt(n)``: the RMS row norm of F, or of F^T, with n rows
    (exact for tiny and huge elements too: 0 only if F is all zero)."""
    ss = squared_norm(F)
    if _TINY_SQUARED <= ss < np.inf or not F.size:
        return np.sqrt(ss / n)
    peak = float(np.max(np.abs(F)))
    if peak == 0 or not np.isfinite(peak):
        return np.sqrt(ss / n)
    return peak * np.sqrt(squared_norm(F / peak) / n)


#: The angle in degrees from a dot product and two norms, NaN if a norm is 0
#: or anything is not finite (`nengo_fa.builder.kernels.angle`, which the
#: compiled diagnostics use too).
angle = _kernels.angle
