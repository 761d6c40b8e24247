"""TODO docstring (absorption, dynamics)."""

from __future__ import annotations

import numpy as np

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
