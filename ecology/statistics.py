"""Statistics of replicate outcomes that cannot mislead: proportions and times to an event.

One module serves run summaries, sweep rows and the studies, so that a figure means the same
thing wherever it is printed. Notation: ``n`` replicates, each observed for ``N`` steps (the
horizon); ``T`` is the first step at which a criterion holds (*reached*), observed when
``T <= N`` and right-censored at ``N`` otherwise.

- :func:`wilson`: the 95% Wilson score interval of a binomial proportion ``x / n``,
  ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``; it stays inside [0, 1] and is
  not degenerate at ``p = 0`` or ``1``.
- :func:`kaplan_meier`: the Kaplan–Meier estimate of the survival function
  ``S(t) = P(T > t) = P(not yet reached by step t)``,
  ``S(t) = prod_{s <= t} (1 - d_s / r_s)`` (``d_s`` replicates reach at ``s``, ``r_s`` are still
  at risk), with Greenwood's variance ``Var S(t) = S(t)^2 sum_{s <= t} d_s / (r_s (r_s - d_s))``.
  Its 95% interval is the Wilson interval at the *effective sample size*
  ``n_eff = S (1 - S) / Var S(t)`` (Dorey and Korn 1987; ``n_eff = r`` of the last event when
  ``S`` is 0 or 1). When no replicate is censored before ``t`` (the case of a run: every
  replicate is followed to the same horizon) ``n_eff = n`` and this is exactly the Wilson
  interval of the binomial fraction not yet reached.
- :func:`median_time`: the first ``t`` with ``S(t) <= 1/2``, reported only when the curve
  crosses 1/2 within the horizon, with the Brookmeyer–Crowley interval: the steps at which the
  95% band of ``S`` contains 1/2 (lower end: first ``t`` with the band's lower edge ``<= 1/2``;
  upper end: first ``t`` with its upper edge ``<= 1/2``, None when that is beyond the horizon).
- :func:`restricted_mean`: the restricted mean time ``E[min(T, N)] = sum_{t=0}^{N-1} S(t)``
  (the area under the KM curve up to the horizon) with its standard error
  ``sum_j A_j^2 d_j / (r_j (r_j - d_j))``, ``A_j`` the area under ``S`` from event step ``j`` to
  ``N``; its 95% interval is ``mean -+ 1.96 se`` clipped to ``[0, N]``. It is a lower bound of ``E[T]`` and equals it
  when ``S(N) = 0``; it is *not* the mean
  over the replicates that happened to reach the event (that mean, conditional on ``T <= N``, is
  reported only as ``time_mean_given_reached``).
- :func:`mean_interval`: the mean of per-replicate values ``y_i`` with the 95% normal interval
  ``mean -+ 1.96 s / sqrt(n)`` (``s`` the sample standard deviation; replicates are independent),
  clipped to the range the quantity cannot leave (``[0, 1]`` for a fraction, ``>= 0`` for a count).
- :func:`ratio_of_sums`: the ratio estimator ``rho = sum_i y_i / sum_i x_i`` of ``E[y] / E[x]``
  (pooled over replicates: each replicate is one cluster of events) with the delta-method
  (linearisation) standard error ``se = sqrt(sum_i (y_i - rho x_i)^2 / (n (n - 1))) / mean(x)``
  and the interval ``rho -+ 1.96 se``, clipped likewise (a stay per visit is at least 1 step);
  None when ``sum x = 0``.

Every function is vectorised over replicates (numpy), never a Python loop over them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson(successes, n, z: float = Z95):
    """95% Wilson score interval ``(lo, hi)`` of ``successes / n`` (arrays broadcast; n = 0 gives NaN)."""
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(np.clip(p * (1 - p) / n + z**2 / (4 * n * n), 0.0, None)) / (1 + z**2 / n)
    # at 0 or n successes the interval ends exactly at 0 or 1 (not a rounding error away)
    lo = np.where(successes <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    hi = np.where(successes >= n, 1.0, np.clip(centre + half, 0.0, 1.0))
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


@dataclass
class Survival:
    """Kaplan–Meier curve on steps ``0 .. horizon`` (module docstring)."""

    survival: np.ndarray  # S(t) = P(not yet reached by step t)
    lower: np.ndarray  # 95% interval of S(t)
    upper: np.ndarray
    variance: np.ndarray  # Greenwood
    at_risk: np.ndarray  # r_t
    events: np.ndarray  # d_t
    n: int
    censored: int  # replicates not reached by their last observed step

    @property
    def reached(self) -> np.ndarray:
        """``1 - S(t)``: P(reached by step t)."""
        return 1.0 - self.survival


def kaplan_meier(times: np.ndarray, horizon: int, observed: np.ndarray | None = None) -> Survival:
    """KM estimate from first-hitting steps ``times`` (``-1`` = not reached within ``horizon``).

    ``observed`` (bool) marks events; by default ``times >= 0``. Unobserved replicates are
    censored at their ``times`` if given there, else at the horizon.
    """
    times = np.asarray(times)
    observed = times >= 0 if observed is None else np.asarray(observed, dtype=bool)
    last = np.where(observed, times, np.where(times >= 0, times, horizon)).astype(np.int64)
    n = len(times)
    steps = horizon + 1
    events = np.bincount(last[observed], minlength=steps)[:steps]
    leaving = np.bincount(last, minlength=steps)[:steps]  # events and censorings at each step
    at_risk = n - np.concatenate([[0], np.cumsum(leaving)[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(at_risk > 0, 1.0 - events / np.maximum(at_risk, 1), 1.0)
        survival = np.cumprod(factor)
        terms = np.where((at_risk > events) & (events > 0), events / (at_risk * (at_risk - events)), 0.0)
        variance = survival**2 * np.cumsum(terms)
    # effective sample size for the Wilson interval; at S = 0 or 1 use the number at risk
    last_risk = np.maximum.accumulate(np.where(events > 0, at_risk, 0))
    last_risk = np.where(last_risk > 0, last_risk, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = np.where((variance > 0), survival * (1 - survival) / variance, last_risk)
    lo, hi = wilson(survival * n_eff, n_eff)
    censored = int(np.sum(~observed))
    return Survival(survival, np.atleast_1d(lo), np.atleast_1d(hi), variance, at_risk, events, n, censored)


def median_time(km: Survival) -> dict:
    """Median first-hitting step with its 95% interval, or Nones when ``S`` stays above 1/2."""
    crossed = np.flatnonzero(km.survival <= 0.5)
    if not len(crossed):
        return {"time_median": None, "time_median_lo": None, "time_median_hi": None}
    lo = np.flatnonzero(km.lower <= 0.5)
    hi = np.flatnonzero(km.upper <= 0.5)
    return {"time_median": int(crossed[0]), "time_median_lo": int(lo[0]),
            "time_median_hi": int(hi[0]) if len(hi) else None}


def restricted_mean(km: Survival) -> tuple[float, float]:
    """``(E[min(T, N)], standard error)`` from the KM curve (module docstring)."""
    horizon = len(km.survival) - 1
    s = km.survival[:horizon]
    mean = float(s.sum())
    # area under S from step j to N: sum_{t=j}^{N-1} S(t)
    area = np.concatenate([np.cumsum(s[::-1])[::-1], [0.0]])
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where((km.at_risk > km.events) & (km.events > 0),
                         km.events / (km.at_risk * (km.at_risk - km.events)), 0.0)
    # an event at step j changes S from step j on; its area is the area from j to N
    se = float(math.sqrt(np.sum(area**2 * terms)))
    return mean, se


def time_to_event(times: np.ndarray, horizon: int) -> dict:
    """Every figure a summary or a sweep row gives for one criterion's first-hitting steps.

    Keys: ``n``, ``reached`` (fraction reached by the horizon) with its Wilson interval,
    ``censored`` (replicates not reached by the horizon), ``restricted_mean`` (``E[min(T, N)]``)
    with its standard error and 95% interval, the median with its interval (Nones unless the KM
    curve crosses 1/2), and ``time_mean_given_reached`` (the mean over replicates that reached it:
    conditional on ``T <= N``, never an estimate of ``E[T]``).
    """
    times = np.asarray(times)
    n = len(times)
    hit = times[times >= 0]
    km = kaplan_meier(times, horizon)
    lo, hi = wilson(len(hit), n)
    rmst, se = restricted_mean(km) if n else (math.nan, math.nan)
    out = {
        "n": n,
        "horizon": horizon,
        "reached": len(hit) / n if n else math.nan,
        "reached_lo": lo,
        "reached_hi": hi,
        "censored": km.censored,
        "restricted_mean": rmst,
        "restricted_mean_se": se,
        "restricted_mean_lo": max(rmst - Z95 * se, 0.0),  # E[min(T, N)] lies in [0, N]
        "restricted_mean_hi": min(rmst + Z95 * se, float(horizon)),
        "time_mean_given_reached": float(hit.mean()) if len(hit) else None,
    }
    out.update(median_time(km))
    return out


def mean_interval(values: np.ndarray, z: float = Z95, bounds: tuple[float, float] = (-math.inf, math.inf)
                  ) -> tuple[float, float, float]:
    """``(mean, lo, hi)`` of per-replicate ``values``: the 95% normal interval ``mean -+ z s / sqrt(n)``
    clipped to ``bounds``, the range the quantity cannot leave (a fraction's ``[0, 1]``; a normal
    interval near a bound would cross it), a single replicate, or values all equal, give
    ``lo = hi = mean``."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = z * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, max(mean - half, bounds[0]), min(mean + half, bounds[1])


def ratio_of_sums(y: np.ndarray, x: np.ndarray, z: float = Z95, bounds: tuple[float, float] = (-math.inf, math.inf)
                  ) -> tuple[float, float, float] | None:
    """``(rho, lo, hi)``: ``rho = sum y / sum x`` with the delta-method 95% interval (module
    docstring) clipped to ``bounds`` (as in :func:`mean_interval`); None when ``sum x = 0`` (no
    event to divide by)."""
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    total = float(x.sum())
    if total == 0:
        return None
    rho = float(y.sum()) / total
    n = len(x)
    half = z * math.sqrt(float(np.sum((y - rho * x) ** 2)) / (n * (n - 1))) / (total / n) if n > 1 else 0.0
    return rho, max(rho - half, bounds[0]), min(rho + half, bounds[1])
