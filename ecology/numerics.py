"""Log-space numerics shared by every layer, each numpy reference with its compiled twin.

The numpy references (rows are windows, the reduced axes short):

    logsumexp(x) = m + log sum_i exp(x_i - m),  m = max_i x_i   (all -inf gives -inf, never NaN)
    log p_T = z - logsumexp(z),  z = (log mu - max log mu) / T  (greedy at T = 0, ties to the first token)
    entropy(log p) = -sum_t p_t log p_t  (0 log 0 = 0);  sample: t = #{u : c_u <= U c_{V-1}}

and the tie rules: an amplitude is *above* a threshold when it exceeds it by more than
``TIE_TOLERANCE``; the most responsible premise or population is the first within
``TIE_TOLERANCE`` of the largest. Below them, the compiled twins the kernel runs (numba, cached on
disk): the same formulas one row at a time (``logsumexp_jit``, ``tempered_jit``,
``most_responsible_jit``), ``np.quantile``'s "linear" quantiles by a multiple quickselect
(``quantiles_jit``), and branch-free ``exp`` and ``log`` (``exp_jit``, ``log_jit``). ``jit`` and
``inline`` are the decorators every compiled function of the package uses.

Numba invalidates a cached function only when its own file changes, while the kernel's loops
inline twins from several files; :func:`forget_stale_compilations` therefore drops every cached
compilation of the package when any file holding compiled code has changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

try:
    import numba
except ImportError:  # numba is a core dependency; without it every run falls back to numpy
    numba = None

GREEDY_TIE = 1e-12  # log-probabilities within this of the maximum count as ties at T = 0


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """``log sum exp x`` along ``axis``; all ``-inf`` gives ``-inf`` (no warning, no NaN).

    The reduced axes here are short (premises, tokens) and the others long (replicates), so the
    reduction runs as a loop of element-wise operations over the short axis.
    """
    slices = np.moveaxis(x, axis, 0)
    top = slices[0].copy()
    for part in slices[1:]:
        np.maximum(top, part, out=top)
    safe = np.where(np.isfinite(top), top, 0.0)
    total = np.zeros(top.shape)
    for part in slices:
        total += np.exp(part - safe)
    with np.errstate(divide="ignore"):
        return np.log(total) + safe


def tempered(log_mu: np.ndarray, temperature: float) -> np.ndarray:
    """Log of the sampling law ``p_T`` from ``log mu`` (rows are windows).

    Computed as ``z = (log mu - max log mu) / T``, ``log p_T = z - logsumexp(z)``: the largest
    entry of ``z`` is exactly 0, so no temperature down to the smallest positive float overflows
    to NaN; as ``T -> 0`` the law tends to the uniform law on the exact maximisers (greedy). At
    ``T = 0`` exactly it is greedy with ties to the first token (within ``GREEDY_TIE``).
    """
    if temperature == 1.0:
        return log_mu
    top = log_mu.max(axis=1, keepdims=True)
    if temperature == 0.0:
        best = np.argmax(log_mu >= top - GREEDY_TIE, axis=1)
        out = np.full_like(log_mu, -np.inf)
        out[np.arange(len(out)), best] = 0.0
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.where(log_mu == top, 0.0, (log_mu - np.where(np.isfinite(top), top, 0.0)) / temperature)
    return z - logsumexp(z, axis=1)[:, None]


def entropy(log_p: np.ndarray) -> np.ndarray:
    """``-sum_t p log p`` per row, in nats (``0 log 0 = 0``)."""
    p = np.exp(log_p)
    return -np.sum(p * np.where(p > 0, log_p, 0.0), axis=1)


def sample(log_p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of one token per row from ``exp(log_p)`` with uniforms ``u`` in [0, 1).

    A token of probability zero is never returned.
    """
    cum = np.cumsum(np.exp(log_p), axis=1)
    return np.sum(cum <= (u * cum[:, -1])[:, None], axis=1)


TIE_TOLERANCE = 1e-12  # amplitudes closer than this to a threshold are ties (not above it)


def above(amplitude: np.ndarray, threshold: float) -> np.ndarray:
    """The tie rule of every threshold: ``amplitude > threshold + TIE_TOLERANCE``."""
    return amplitude > threshold + TIE_TOLERANCE


def most_responsible(responsibility: np.ndarray) -> np.ndarray:
    """Per row, the first column within ``TIE_TOLERANCE`` of the row's largest value: exact ties
    (a population of two coins biased 0.7 and 0.3 and a fair coin are equally responsible for
    heads) go to the first, whatever the rounding of the sums that compare them."""
    return np.argmax(responsibility >= responsibility.max(axis=1, keepdims=True) - TIE_TOLERANCE, axis=1)


# ---------------------------------------------------------------------------------------------
# Compiled twins (numba), each beside or after its numpy reference

PACKAGE = Path(__file__).resolve().parent
# every module with compiled functions; the kernel's loops inline code from each of them
COMPILED_MODULES = ("numerics.py", "core/mixture.py", "core/readers.py", "kinds/criteria.py", "kinds/deletion.py",
                    "engine/compiled.py")
STAMP = "compiled-sources.sha256"  # in the package's __pycache__: the sources the cached compilations came from


def forget_stale_compilations(package: Path = PACKAGE) -> bool:
    """Remove numba's cached compilations (``*.nbi``, ``*.nbc`` in the package's ``__pycache__``
    folders) when the sources of :data:`COMPILED_MODULES` differ from those they were compiled
    from (their SHA-256, kept in ``__pycache__/compiled-sources.sha256``); True if it removed any.
    Numba then compiles again. A package that cannot be written keeps what it has (numba caches
    elsewhere then)."""
    digest = hashlib.sha256(b"".join((package / name).read_bytes() for name in COMPILED_MODULES)).hexdigest()
    stamp = package / "__pycache__" / STAMP
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return False
        stale = [path for pattern in ("*.nbi", "*.nbc") for path in package.rglob(f"__pycache__/{pattern}")]
        for path in stale:
            path.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest)
        return bool(stale)
    except OSError:
        return False


if numba is not None:
    forget_stale_compilations()
    from llvmlite import ir
    from numba.extending import intrinsic

    jit = numba.njit(cache=True, error_model="numpy", nogil=True)
    inline = numba.njit(cache=True, error_model="numpy", nogil=True, inline="always")

    @intrinsic
    def _as_float(typingctx, bits):
        """The float64 whose IEEE 754 bits are the int64 ``bits``."""
        return numba.types.float64(numba.types.int64), lambda ctx, builder, sig, args: builder.bitcast(
            args[0], ir.DoubleType())

    @intrinsic
    def _as_int(typingctx, x):
        """The IEEE 754 bits of the float64 ``x``, as an int64."""
        return numba.types.int64(numba.types.float64), lambda ctx, builder, sig, args: builder.bitcast(
            args[0], ir.IntType(64))
else:  # pragma: no cover - only without numba, where nothing below is called
    def jit(f):
        return f

    inline = jit
    _as_float = _as_int = None


# exp and log without a library call, so that a loop over replicates vectorises (numba's np.exp
# and np.log are scalar libm calls, ~5 ns each here; these take ~1 ns). They are fdlibm's
# algorithms (e_exp.c, e_log.c): within 1 ulp of the correctly rounded value, measured equal to
# libm's in about 90% of cases (tests/test_kernel.py checks 1 ulp and every special value).
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln 2 = LN2_HI + LN2_LO


INV_LN2 = 1.44269504088896338700e00
EXP_P = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
         -1.65339022054652515390e-06, 4.13813679705723846039e-08)
LOG_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01,
          1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01)
EXP_CLAMP = 1100.0  # |x| beyond which exp(x) is 0 or inf: reduced there, it under- or overflows as it should


TWO54 = 2.0**54
MIN_NORMAL = 2.2250738585072014e-308


@inline
def exp_jit(x):
    """``exp x`` (NaN, +-inf and subnormal results included), branch-free: ``x = k ln 2 + r`` with
    ``|r| <= ln 2 / 2`` (``ln 2`` split in two so ``k ln 2`` is exact), ``exp r = 1 + r + r c / (2 - c)``
    with ``c = r - r^2 P(r^2)`` (fdlibm's rational approximation), times ``2^k`` built from its
    bits in two halves (so ``2^k`` below the normal range still rounds once, at the product)."""
    v = min(max(x, -EXP_CLAMP), EXP_CLAMP)
    k = np.floor(v * INV_LN2 + 0.5)
    k = k if k == k else 0.0  # NaN: any k; the result is x below
    hi = v - k * LN2_HI
    lo = k * LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (EXP_P[0] + t * (EXP_P[1] + t * (EXP_P[2] + t * (EXP_P[3] + t * EXP_P[4]))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    n = np.int64(k)
    half = n >> 1
    y = y * _as_float((half + 1023) << 52) * _as_float((n - half + 1023) << 52)
    return y if x == x else x


@inline
def log_jit(x):
    """``log x`` for every float64 (0 gives -inf, a negative number NaN, subnormals scaled by
    ``2^54`` first), branch-free: ``x = 2^k (1 + f)`` with ``sqrt(2)/2 <= 1 + f < sqrt(2)``, then
    ``log(1 + f) = f - (f^2 / 2 - s (f^2 / 2 + R(s^2)))`` with ``s = f / (2 + f)`` (fdlibm's
    polynomial ``R``), plus ``k ln 2`` in two parts."""
    tiny = x < MIN_NORMAL
    v = x * TWO54 if tiny else x
    bits = _as_int(v)
    high = bits >> 32
    k = (high >> 20) - (1023 + 54 if tiny else 1023)
    high &= 0x000FFFFF
    i = (high + 0x95F64) & 0x100000  # the mantissa above sqrt(2): halve it
    m = _as_float(((high | (i ^ 0x3FF00000)) << 32) | (bits & 0xFFFFFFFF))
    k += i >> 20
    f = m - 1.0
    s = f / (2.0 + f)
    dk = np.float64(k)
    z = s * s
    w = z * z
    big = w * (LOG_LG[1] + w * (LOG_LG[3] + w * LOG_LG[5])) + z * (
        LOG_LG[0] + w * (LOG_LG[2] + w * (LOG_LG[4] + w * LOG_LG[6])))
    half_f2 = 0.5 * f * f
    y = dk * LN2_HI - ((half_f2 - (s * (half_f2 + big) + dk * LN2_LO)) - f)
    if x > 0.0 and x < np.inf:
        return y
    return -np.inf if x == 0.0 else (x if x > 0.0 else np.nan)


@inline
def logsumexp_jit(x):
    """``log sum exp x`` as :func:`ecology.numerics.logsumexp` (max, shift, sum in order)."""
    top = x[0]
    for i in range(1, len(x)):
        if x[i] > top or np.isnan(x[i]):
            top = x[i]
    safe = top if np.isfinite(top) else 0.0
    total = 0.0
    for i in range(len(x)):
        total += np.exp(x[i] - safe)
    return np.log(total) + safe


@inline
def tempered_jit(r, temperature, greedy_tie, log_mu, log_p, z):
    """``log p_T`` of row ``r`` from ``log mu``, as :func:`ecology.numerics.tempered`: shift by the
    maximum, divide by ``T``, normalise (greedy, ties to the first token within ``greedy_tie``,
    at ``T = 0``)."""
    n_tokens = log_mu.shape[1]
    top = log_mu[r, 0]
    for t in range(1, n_tokens):
        if log_mu[r, t] > top or np.isnan(log_mu[r, t]):
            top = log_mu[r, t]
    if temperature == 0.0:
        best = 0
        for t in range(n_tokens):
            if log_mu[r, t] >= top - greedy_tie:
                best = t
                break
        for t in range(n_tokens):
            log_p[r, t] = 0.0 if t == best else -np.inf
        return
    shift = top if np.isfinite(top) else 0.0
    for t in range(n_tokens):
        z[t] = 0.0 if log_mu[r, t] == top else (log_mu[r, t] - shift) / temperature
    norm = logsumexp_jit(z)
    for t in range(n_tokens):
        log_p[r, t] = z[t] - norm


@inline
def most_responsible_jit(values):
    """The first index within ``TIE_TOLERANCE`` of the largest value (as
    :func:`ecology.model.most_responsible`)."""
    top = values[0]
    for i in range(1, len(values)):
        if values[i] > top:
            top = values[i]
    for i in range(len(values)):
        if values[i] >= top - TIE_TOLERANCE:
            return i
    return 0


@jit
def select_jit(a, lo, hi, k):
    """The ``k``-th smallest of ``a[lo:hi]`` moved to ``a[k]``, smaller ones before it and larger
    ones after (``lo <= k < hi``). Quickselect with a median-of-three pivot and a three-way
    partition in two branch-free Lomuto passes (values below the pivot, then values equal to it:
    ties, frequent among amplitudes, end a round at once); a sort if it ever stalls."""
    rounds = 0
    while hi - lo > 1:
        rounds += 1
        if rounds > 64:
            a[lo:hi] = np.sort(a[lo:hi])
            return
        mid = (lo + hi - 1) >> 1
        x, y, z = a[lo], a[mid], a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))  # the median of the three
        below = lo
        for i in range(lo, hi):  # swap always, advance when smaller
            v = a[i]
            a[i] = a[below]
            a[below] = v
            below += v < pivot
        equal = below
        for i in range(below, hi):
            v = a[i]
            a[i] = a[equal]
            a[equal] = v
            equal += v == pivot
        if k < below:
            hi = below
        elif k >= equal:
            lo = equal
        else:
            return


@jit
def quantiles_jit(b, cols, offset, probabilities, scratch, quantiles):
    """``np.quantile(cols[c], probabilities)`` of each row of ``cols`` (method "linear", increasing
    probabilities) into row ``b``, columns from ``offset``: with ``v = (n - 1) q``, ``i = floor(v)`` and
    ``g = v - i``, the value ``x_(i) + (x_(i+1) - x_(i)) g`` (``x_(i+1) - (x_(i+1) - x_(i)) (1 - g)``
    for ``g >= 1/2``, as numpy's ``_lerp``). The order statistics ``x_(i)`` are placed on a copy
    by a multiple quickselect (the middle rank first, then each side's ranks within that side:
    about ``2 n`` comparisons plus ``n`` per halving, against ``2 n`` per quantile one after the
    other); ``x_(i+1)`` is then the smallest value between rank ``i`` and the next placed rank."""
    n = cols.shape[1]
    n_ranks = len(probabilities)
    ranks = np.empty(n_ranks, dtype=np.int64)
    stack = np.empty((n_ranks + 2, 4), dtype=np.int64)  # depth-first: never more than n_ranks + 1 pending
    for j in range(n_ranks):
        virtual = (n - 1) * probabilities[j]
        ranks[j] = n - 1 if virtual >= n - 1 else (0 if virtual < 0 else int(np.floor(virtual)))
    for c in range(cols.shape[0]):
        for i in range(n):
            scratch[i] = cols[c, i]
        stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = 0, n, 0, n_ranks  # a[lo:hi], ranks[first:last]
        depth = 1
        while depth:
            depth -= 1
            lo, hi, first, last = stack[depth, 0], stack[depth, 1], stack[depth, 2], stack[depth, 3]
            if first >= last:
                continue
            middle = (first + last) >> 1
            k = ranks[middle]
            if lo <= k < hi:  # else a duplicate of a rank already placed
                select_jit(scratch, lo, hi, k)
            stack[depth, 1], stack[depth, 3] = k, middle  # left: a[lo:k], ranks[first:middle]
            stack[depth + 1, 0], stack[depth + 1, 1] = k + 1, hi  # right: a[k + 1:hi], ranks[middle + 1:last]
            stack[depth + 1, 2], stack[depth + 1, 3] = middle + 1, last
            depth += 2
        for j in range(n_ranks):
            virtual = (n - 1) * probabilities[j]
            i = ranks[j]
            below = scratch[i]
            if virtual >= n - 1 or virtual < 0:
                quantiles[b, j, offset + c] = below
                continue
            bound = n - 1  # x_(i+1): the smallest of scratch[i+1 : next placed rank + 1]
            for m in range(j + 1, n_ranks):
                if ranks[m] > i:
                    bound = ranks[m]
                    break
            above = scratch[i + 1]
            for m in range(i + 2, bound + 1):
                if scratch[m] < above:
                    above = scratch[m]
            gamma = virtual - i
            diff = above - below
            quantiles[b, j, offset + c] = above - diff * (1.0 - gamma) if gamma >= 0.5 else below + diff * gamma


# The amplitude sketch: a mergeable summary of R amplitudes a in [0, 1] for quantiles over replicates split into
# shards (ecology.results). Bins are on x = min(a, 1 - a), each octave [2^e, 2^(e+1)) of x from 2^-64 to 1/2 cut into
# 2^b bins of equal width by the top b bits of x's mantissa; one bin holds x < 2^-64 (and a = 1 + rounding), one
# x = 1/2 exactly; the side a > 1/2 mirrors the side a <= 1/2, so bin indices increase with a. Counts add exactly,
# so merged quantiles do not depend on how the replicates were split or in which order the shards came back.
SKETCH_LOWEST = 64  # x < 2^-SKETCH_LOWEST is one bin, represented by x = 0 (a = 0 or 1)
SKETCH_OCTAVES = SKETCH_LOWEST - 1  # octaves of x resolved: [2^-64, 2^-1)
SKETCH_BIAS = 1023 - SKETCH_LOWEST  # the biased IEEE 754 exponent of 2^-64


def sketch_size(bits: int) -> int:
    """Bins of the sketch with ``2^bits`` bins per octave: per side, the bin below 2^-64, the octaves, x = 1/2."""
    return 2 * (SKETCH_OCTAVES * (1 << bits) + 2)


def sketch_index(a: np.ndarray, bits: int) -> np.ndarray:
    """The sketch bin of each amplitude (the numpy reference of :func:`sketch_jit`): ``1 + (E - 959) 2^b + f``
    for ``x >= 2^-64`` (``E`` the biased exponent of ``x``, ``f`` its mantissa's top ``b`` bits), else 0; mirrored
    (``size - 1 - j``) for ``a > 1/2``."""
    lower = a <= 0.5
    x = np.where(lower, a, 1.0 - a)
    j = np.where(x < 2.0**-SKETCH_LOWEST, 0, 1 + (x.view(np.int64) >> (52 - bits)) - (SKETCH_BIAS << bits))
    return np.where(lower, j, sketch_size(bits) - 1 - j)


def sketch_values(bits: int) -> np.ndarray:
    """The value each bin stands for: ``a`` (or ``1 - a``) at the geometric middle ``sqrt(lo hi)`` of the bin's
    ``x`` range, 0 (or 1) for the bin below 2^-64, 1/2 for ``x = 1/2``. Every ``x`` of a bin is within a factor
    ``sqrt(1 + 2^-b)`` of its value (:func:`sketch_error`)."""
    per = 1 << bits
    j = np.arange(SKETCH_OCTAVES * per)
    octave, fraction = j // per, j % per
    lo = np.ldexp(0.5 + fraction / (2 * per), octave - SKETCH_OCTAVES)
    hi = np.ldexp(0.5 + (fraction + 1) / (2 * per), octave - SKETCH_OCTAVES)
    x = np.concatenate([[0.0], np.sqrt(lo * hi), [0.5]])
    return np.concatenate([x, 1.0 - x[::-1]])


def sketch_error(bits: int) -> float:
    """The largest relative error in ``min(a, 1 - a)`` of a bin's value: ``sqrt(1 + 2^-b) - 1``."""
    return float(np.sqrt(1.0 + 2.0**-bits) - 1.0)


def sketch_quantiles(counts: np.ndarray, probabilities, bits: int, lowest: np.ndarray, highest: np.ndarray) -> np.ndarray:
    """``np.quantile``'s "linear" quantiles from sketch counts (..., size): with ``n`` values, ``v = (n - 1) q``,
    ``i = floor(v)``, ``g = v - i``, the value of the bin of order statistic ``i`` interpolated towards that of
    ``i + 1`` by ``g`` (as numpy's ``_lerp``); shape (..., len(probabilities)). Each order statistic is replaced
    by its bin's value clipped to the values' range ``[lowest, highest]`` (..., the exact extremes, which merge
    exactly too: equal values give their value exactly), so each is within :func:`sketch_error` of the true one
    in ``min(a, 1 - a)``, or is within ``2^-64`` of 0 or 1."""
    values = sketch_values(bits)
    cumulative = np.cumsum(counts, axis=-1)
    n = cumulative[..., -1:]
    out = []
    for q in probabilities:
        virtual = (n - 1) * q
        i = np.floor(virtual).astype(np.int64)
        g = virtual - i
        below = np.clip(values[np.sum(cumulative <= i, axis=-1, keepdims=True)], lowest[..., None], highest[..., None])
        above = np.clip(values[np.sum(cumulative <= np.minimum(i + 1, n - 1), axis=-1, keepdims=True)],
                        lowest[..., None], highest[..., None])
        diff = above - below
        out.append(np.where(g >= 0.5, above - diff * (1.0 - g), below + diff * g)[..., 0])
    return np.stack(out, axis=-1)


@jit
def sketch_jit(b, cols, offset, counts, extremes):
    """Row ``b`` of the sketch counts (:func:`sketch_index`) of each row of ``cols``, into columns from ``offset``,
    and each row's smallest and largest value into ``extremes[b, offset + c]``
    (the bins per octave, ``2^bits``, read from the size of ``counts``' last axis, :func:`sketch_size`)."""
    size = counts.shape[2]
    per, bits = (size // 2 - 2) // SKETCH_OCTAVES, 0
    while (1 << bits) < per:
        bits += 1
    for c in range(cols.shape[0]):
        lowest, highest = np.inf, -np.inf
        for r in range(cols.shape[1]):
            a = cols[c, r]
            lowest, highest = min(lowest, a), max(highest, a)
            x = a if a <= 0.5 else 1.0 - a
            j = 0 if x < 2.0**-SKETCH_LOWEST else 1 + (_as_int(x) >> (52 - bits)) - (SKETCH_BIAS << bits)
            counts[b, offset + c, j if a <= 0.5 else size - 1 - j] += 1
        extremes[b, offset + c, 0], extremes[b, offset + c, 1] = lowest, highest
