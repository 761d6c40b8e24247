"""The token ledger computed exactly on the page-state chain (docs/exact.md, docs/outputs.md).

A token printed at step ``u`` from window ``w`` carries the credit ``c_L(w, t) = sum_{s in L}
alpha_s(w) mu_s(t | w) / mu(t | w)`` (summing to 1 over labels). The credit *held* at step ``t``
is not a function of the page-state ``W_t``: each token's credit was fixed by the window it was
printed from, which has been partly deleted since. The chain that carries it is extended by the
**age** of each token: every rule deletes the oldest deletable tokens, so the printed tokens in a
window are its newest ``m`` real tokens, the one of recency rank ``a`` (0 the newest) printed
``a`` steps ago, and a token of age ``a`` in ``W_t`` is still in ``W_{t+1} = w'`` exactly when
``a + 1 < m(w') = real(w') - pinned`` (the real tokens of ``w'`` that are not pinned; prompt tokens
carry no credit, so counting them among the ranks changes nothing). The extended quantity is the
credit mass by page-state and age,

    ``H_t(w, a, L) = E[c_L(token printed at t - a) 1{still in the window} 1{W_t = w}]``,

an array of ``n x k x L`` numbers (``n`` page-states, window ``k``, ``L`` labels), propagated as

    ``H_{t+1}(w', 0) = sum_{(w, t) -> w'} P_t(w) p(t | w) c_L(w, t)``,
    ``H_{t+1}(w', a) = 1{a < m(w')} sum_{w -> w'} P(w, w') H_t(w, a - 1)``  (a >= 1),

with ``P_t`` the law of ``W_t``; what the mask drops is the credit retired at step ``t + 1``, of age
``a``. So, for ``t = 0 .. horizon`` (:func:`ledger_curves`):

- issued ``E[I_L(t)] = sum_{u < t} P_u . f_L`` with ``f_L(w) = sum_t p(t | w) c_L(w, t)`` (at
  ``T = 1``, ``f_L`` is the amplitude ``A_L(w)``);
- held ``E[H_L(t)] = sum_{w, a} H_t(w, a, L)``; retired ``E[R_L(t)]`` and credit times age at
  deletion ``E[G_L(t)]``, the sums of what the masks dropped (times ``a``);
- ``issued = retired + held`` holds term by term (mass is moved, never made or lost).

At stationarity (:func:`stationary_ledger`), with ``pi`` the long-run law from the initial window
(``sum_c P(end in class c) pi_c``, a stationary law), ``H(., 0) = sum pi p c`` and ``H(., a)``
follows from ``H(., a - 1)`` by one masked product, ``k`` products in all: the held credit, the
rate credit is issued (``pi . f_L``) and retired per step (equal, up to rounding: the residual is
reported), and the turnover time ``sum_a a r_a(L) / sum_a r_a(L)`` (the credit-weighted mean age
at deletion); by Little's law ``held = rate x turnover``.

Under ``none`` (nothing deleted) the chain is infinite, but at ``T = 1`` without a reset token
the amplitudes are martingales (Remark 9), so ``E[I_L(t)] = E[H_L(t)] = t A_L(W_0)`` exactly
(:func:`unbounded_ledger`); nothing is ever retired, so the turnover time is infinite.

Every computation is estimated first and refused with one line over the work budget
(``horizon x transitions x k x L`` multiply-adds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ecology.core.budget import DEFAULT_MAX_WORK
from ecology.core.compile import Compiled
from ecology.errors import ScenarioError, TooMuchWork, UserError
from ecology.exact.chain import CHUNK, PageChain, _keys

PER_PRODUCT = 10**4  # a sparse product's fixed cost, in multiply-adds (as exact.chain.PER_CALL)


@dataclass
class LedgerTransitions:
    """The chain's transitions with what the ledger needs: ``PT`` (n, n) the transposed transition
    matrix, ``issue`` (L sparse (n, n)) the transposed ``p(t | w) c_L(w, t)``, ``f`` (n, L) the
    credit each page-state issues per step, ``deletable`` (n,) ``m(w)``, the real tokens of ``w``
    that are not pinned, ``k`` the window, and ``keep`` (n, k - 1) 1.0 where a token of age
    ``a = 1 .. k - 1`` is still in ``w`` (``a < m(w)``), else 0.0."""

    PT: sp.csr_matrix
    issue: list[sp.csr_matrix]
    f: np.ndarray
    deletable: np.ndarray
    k: int

    @property
    def keep(self) -> np.ndarray:
        if "_keep" not in self.__dict__:
            self.__dict__["_keep"] = (np.arange(1, self.k)[None, :] < self.deletable[:, None]).astype(float)
        return self.__dict__["_keep"]


def ledger_transitions(compiled: Compiled, pc: PageChain) -> LedgerTransitions:
    """Every transition ``(w, t) -> w'`` of ``pc`` with its credit ``c_L(w, t)``: the windows are
    read again with the simulator's mixture (:meth:`ecology.core.mixture.Mixture.likelihoods`,
    :meth:`~ecology.core.mixture.Mixture.combine`) and their successors found by key, as the
    enumeration found them."""
    if pc.memory:
        raise ValueError("the ledger is computed on the page-state chain, not an extended one")
    mixture, rule, V = compiled.mixture, compiled.rule, compiled.n_tokens
    windows, n, L = pc.windows, pc.chain.n_states, len(mixture.labels)
    base = V + 2
    keys = _keys(windows, base)
    order = np.argsort(keys)
    src_all, dst_all, prob_all, credit_all = [], [], [], []
    f = np.zeros((n, L))
    for lo in range(0, n, CHUNK):
        rows = windows[lo : lo + CHUNK]
        laws, loglik = mixture.likelihoods(rows)
        step = mixture.combine(laws, loglik)
        p = np.exp(step.log_p)
        src, tok = np.nonzero(p > 0)
        log_resp = np.stack([step.log_amplitude[src, s] + laws[s][src, tok] for s in range(len(mixture.premises))],
                            axis=1) - step.log_mu[src, tok][:, None]
        credit = mixture.population_amplitudes(log_resp)  # (transitions, L), rows sum to 1
        succ = rule.successor(rows[src], tok)
        at = np.searchsorted(keys, _keys(succ, base), sorter=order)
        dst = order[np.minimum(at, n - 1)]
        if not np.array_equal(keys[dst], _keys(succ, base)):
            raise AssertionError("a successor page-state is not in the chain")
        np.add.at(f, lo + src, p[src, tok][:, None] * credit)
        src_all.append(lo + src)
        dst_all.append(dst)
        prob_all.append(p[src, tok])
        credit_all.append(credit)
    src, dst, prob, credit = (np.concatenate(a) for a in (src_all, dst_all, prob_all, credit_all))
    PT = sp.csr_matrix((prob, (dst, src)), shape=(n, n))
    issue = [sp.csr_matrix((prob * credit[:, j], (dst, src)), shape=(n, n)) for j in range(L)]
    real = np.count_nonzero(windows < V, axis=1)
    pinned = min(rule.pinned, int(np.count_nonzero(compiled.window < V)))
    return LedgerTransitions(PT, issue, f, real - pinned, windows.shape[1])


MAX_BYTES = 2**31  # the credit masses by page-state and age, and their temporaries (four arrays of n x k x L)


def _check_work(what: str, products: int, lt: LedgerTransitions, max_work: int, flag: str) -> None:
    L = len(lt.issue)
    n = lt.PT.shape[0]
    if 4 * 8 * n * lt.k * L > MAX_BYTES:
        raise TooMuchWork(
            f"{what} needs {4 * 8 * n * lt.k * L / 2**30:.3g} GiB for the credit of {n:,} page-states x {lt.k} ages x "
            f"{L} labels, over {MAX_BYTES / 2**30:.3g} GiB; shorten context.length"
        )
    work = products * max(lt.PT.nnz * (lt.k + 1) * L, PER_PRODUCT)
    if work > max_work:
        raise TooMuchWork(
            f"{what} needs {products:,} steps over {lt.PT.nnz:,} transitions x {lt.k} ages x {L} labels, about "
            f"{work:.3g} operations, over the budget of {max_work:.3g}; lower {flag}, shorten context.length or raise --max-work"
        )


def _advance(lt: LedgerTransitions, dist: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of the extended chain: (the next ``H``, credit retired (L,), credit times age retired
    (L,)). What the masks drop at age ``a`` is what moved to age ``a`` less what was kept there."""
    n, k, L = H.shape
    moved = (lt.PT @ H.reshape(n, k * L)).reshape(n, k, L)  # moved[:, a - 1]: the tokens now of age a
    nxt = np.empty_like(H)
    nxt[:, 1:] = moved[:, :-1]
    nxt[:, 1:] *= lt.keep[:, :, None]
    for j, issue in enumerate(lt.issue):
        nxt[:, 0, j] = issue @ dist
    moved_total, kept_total = moved.sum(axis=0), nxt.sum(axis=0)  # (k, L) by age
    dropped = moved_total.copy()
    dropped[:-1] -= kept_total[1:]
    return nxt, dropped.sum(axis=0), np.arange(1, k + 1) @ dropped


@dataclass
class LedgerCurves:
    """Exact expectations for t = 0 .. horizon, each (horizon + 1, L): credit issued, retired, held,
    and credit times age at deletion (:func:`ledger_curves`)."""

    issued: np.ndarray
    retired: np.ndarray
    held: np.ndarray
    age: np.ndarray


def ledger_curves(compiled: Compiled, pc: PageChain, horizon: int, max_work: int = DEFAULT_MAX_WORK,
                  lt: LedgerTransitions | None = None) -> LedgerCurves:
    """The exact ledger from the initial window for t = 0 .. ``horizon`` (module docstring),
    refused over ``max_work``."""
    lt = ledger_transitions(compiled, pc) if lt is None else lt
    _check_work("the exact ledger", horizon, lt, max_work, "--horizon (or run.steps)")
    n, L = pc.chain.n_states, len(lt.issue)
    dist = np.zeros(n)
    dist[pc.initial] = 1.0
    H = np.zeros((n, lt.k, L))
    out = LedgerCurves(*(np.zeros((horizon + 1, L)) for _ in range(4)))
    for t in range(horizon):
        H, retired, age = _advance(lt, dist, H)
        out.issued[t + 1] = out.issued[t] + dist @ lt.f
        out.retired[t + 1] = out.retired[t] + retired
        out.age[t + 1] = out.age[t] + age
        out.held[t + 1] = H.sum(axis=(0, 1))
        dist = lt.PT @ dist
    return out


def long_run_law(pc: PageChain) -> np.ndarray:
    """``sum_c P_x(end in closed class c) pi_c`` from the initial window ``x``: the Cesàro limit of
    the law of ``W_t``, a stationary law."""
    mc = pc.chain
    weights = mc.absorption_probabilities(pc.initial)
    return sum(w * pi for w, pi in zip(weights, mc.stationary_distributions))


def stationary_ledger(compiled: Compiled, pc: PageChain, max_work: int = DEFAULT_MAX_WORK,
                      lt: LedgerTransitions | None = None) -> dict:
    """The ledger at stationarity (module docstring), per label: ``held``, ``issued_per_step``,
    ``retired_per_step``, ``turnover`` (credit-weighted mean age at deletion; None when no credit
    is retired), ``little`` (``held / issued_per_step``, Little's law's turnover), and the largest
    ``|issued - retired|`` per step over labels (``balance_residual``)."""
    lt = ledger_transitions(compiled, pc) if lt is None else lt
    _check_work("the stationary ledger", lt.k, lt, max_work, "context.length")
    pi = long_run_law(pc)
    n, L = pc.chain.n_states, len(lt.issue)
    H = np.zeros((n, lt.k, L))
    retired, age = np.zeros(L), np.zeros(L)
    for _ in range(lt.k + 1):  # after k + 1 steps from H = 0 every age is filled and stationary
        H, retired, age = _advance(lt, pi, H)
    rate = pi @ lt.f
    held = H.sum(axis=(0, 1))
    labels = compiled.mixture.labels
    out = {label: {"held": float(held[j]), "issued_per_step": float(rate[j]), "retired_per_step": float(retired[j]),
                   "turnover": float(age[j] / retired[j]) if retired[j] > 0 else None,
                   "little": float(held[j] / rate[j]) if rate[j] > 0 else None}
           for j, label in enumerate(labels)}
    out["balance_residual"] = float(np.max(np.abs(rate - retired)))
    return out


def unbounded_ledger(compiled: Compiled, horizon: int) -> np.ndarray:
    """(horizon + 1, L) exact expected credit issued (= held: nothing is deleted) under ``none``:
    ``t A_L(W_0)``, the amplitudes being martingales of the growing window (Remark 9); needs
    ``T = 1``, automaton premises and no reset token (else refused with one line)."""
    mixture = compiled.mixture
    if compiled.rule.deletes_oldest:
        raise ScenarioError("context.deletion", "the closed form of the ledger is for deletion = \"none\" only")
    if mixture.temperature != 1.0 or mixture.reset is not None or any(p.automaton is None for p in mixture.premises):
        raise ScenarioError("context.deletion", "under \"none\" the ledger is exact only at temperature 1 with "
                            "automaton premises and no reset token (the amplitudes are then martingales); "
                            "simulate it instead")
    amplitude = mixture.population_amplitudes(mixture.read(compiled.window[None]).log_amplitude)[0]
    return np.arange(horizon + 1)[:, None] * amplitude[None, :]


def exact_ledger_figures(compiled: Compiled, max_states: int, horizon: int | None = None,
                         max_work: int = DEFAULT_MAX_WORK) -> dict:
    """Per population label, the exact ledger beside a simulation (``run --exact``, :func:`ecology.run`):
    ``issued``, ``retired``, ``held`` and ``age`` (credit times age at deletion) expected at the
    horizon ``N`` (default ``run.steps``), ``turnover`` (``age / retired`` at ``N``: the mean age at
    deletion of the tokens deleted by ``N``, as the simulation reports it; None when nothing is
    retired) and ``stationary`` (:func:`stationary_ledger`'s figures; None under ``none``, whose
    window grows for ever). Under ``none`` the closed form :func:`unbounded_ledger`; raises
    :class:`ecology.errors.UserError` (one line) when neither is within reach."""
    from ecology.exact.chain import build_chain

    horizon = compiled.scenario.run.steps if horizon is None else horizon
    labels = compiled.mixture.labels
    if not compiled.rule.deletes_oldest:
        issued = unbounded_ledger(compiled, horizon)[-1]
        zero = np.zeros(len(labels))
        curves_at, stationary = (issued, zero, issued, zero), None
    else:
        pc = build_chain(compiled, max_states)
        lt = ledger_transitions(compiled, pc)
        curves = ledger_curves(compiled, pc, horizon, max_work, lt)
        curves_at = (curves.issued[-1], curves.retired[-1], curves.held[-1], curves.age[-1])
        stationary = stationary_ledger(compiled, pc, max_work, lt)
    out = {}
    for j, label in enumerate(labels):
        issued, retired, held, age = (float(a[j]) for a in curves_at)
        out[label] = {"issued": issued, "retired": retired, "held": held, "age": age,
                      "turnover": age / retired if retired > 0 else None,
                      "stationary": None if stationary is None else stationary[label]}
    return out


def attach_exact_ledger(ledger: dict, compiled: Compiled, max_states: int) -> str | None:
    """Put :func:`exact_ledger_figures` in a summary's ``ledger`` section (``ledger[label]["exact"]``);
    when they are out of reach, None there and ``ledger[label]["exact_note"]`` says why (returned too)."""
    try:
        exact = exact_ledger_figures(compiled, max_states)
    except UserError as err:
        for row in ledger.values():
            row["exact"], row["exact_note"] = None, str(err)
        return str(err)
    for label, figures in exact.items():
        ledger[label]["exact"] = figures
    return None
