"""``ecology decompose``: fit mixtures of premises to a static model ``mu`` and compare
decompositions side by side (Remarks 9 and 10; the mathematics is in ``docs/decompose.md``).

**What is fitted.** A premise reads a window from its first non-pad token as if the storyline
began there, so ``mu`` on *every* window ``w`` (full or not, before or after deletion) is a ratio
of the mixture's law of sequences read from the start:

    mu(t | w) = P(w t) / P(w),   P(y) = sum_s prior_s mu_s(y).

Windows hold at most ``k`` tokens, so the law ``P`` of sequences of length ``k + 1`` determines
``mu`` everywhere. Those are exactly the first ``k + 1`` tokens of the dynamic model started from
the empty window at temperature 1 (no deletion has acted yet). The data are therefore
*storylines* ``y_n`` of ``k + 1`` tokens: ``N`` sampled from the dynamic model, or, when
``V^(k+1)`` is small enough, all sequences weighted by their exact probability ``P(y)``.

**The likelihood.** A decomposition into ``K`` premises with priors ``pi_j`` and sequence laws
``q_j`` has ``log L = sum_n omega_n log sum_j pi_j q_j(y_n)`` (``omega_n`` = 1 per sample, or
``P(y_n)`` for exact data: then ``log L`` is the expected log-likelihood per storyline). EM
maximises it from several seeded random starts (responsibilities drawn from a flat Dirichlet):

- E-step: ``r_nj = pi_j q_j(y_n) / sum_i pi_i q_i(y_n)``;
- M-step: ``pi_j = sum_n omega_n r_nj / sum_n omega_n``, and each premise maximises its expected
  complete-data log-likelihood ``sum_n omega_n r_nj log q_j(y_n)``. Every family here is an
  automaton whose state path on a sequence does not depend on its continuous parameters, so
  ``log q_j(y) = sum_{q,t} C_y[q, t] log E_j[q, t]`` with ``C_y[q, t]`` the number of times the
  automaton is in state ``q`` when ``t`` is printed; the statistics are ``S[q, t] = sum_n omega_n
  r_nj C_{y_n}[q, t]`` and the M-step maximises ``sum S log E``:

  * free tables (``iid``, ``markov1``, ``markov2``): ``E[q, t] = S[q, t] / sum_u S[q, u]``;
  * one parameter ``x`` entering each emission linearly, ``E(x) = E(0) + x (E(1) - E(0))``
    (``constant``'s floor ``eps``, ``cycle``'s ``slip``, ``waluigi``'s ``p`` and ``eps``, which
    act on disjoint states): every cell it moves is proportional to ``1 - x`` or to ``x``, so
    ``x = B / (A + B)`` with ``A``, ``B`` the statistics on the ``1 - x`` and ``x`` cells
    (closed form);
  * discrete structure (``constant``'s token, ``cycle``'s sequence, ``waluigi``'s mask and
    reveal tokens, and the family itself when several are allowed): the candidate with the
    largest ``sum S log E``; candidates within a relative ``TIE = 1e-9`` of it tie, and the one
    with fewer free parameters (then the family listed first) is kept.

The columns of the comparison (``compare``) are computed for any decomposition through its
compiled scenario, i.e. through :meth:`ecology.core.mixture.Mixture.read`; see ``docs/decompose.md``.

**Modules.** :mod:`~ecology.decompose.families` (the registered families: candidate structures
and closed-form M-steps), :mod:`~ecology.decompose.data` (storylines and visited windows),
:mod:`~ecology.decompose.fit` (EM), :mod:`~ecology.decompose.tables` (decompositions as
scenario tables, free parameters), :mod:`~ecology.decompose.compare` (the driver
:func:`decompose` and the comparison columns), :mod:`~ecology.decompose.report` (JSON, text,
the output directory). The names below are the package's entry points.
"""

from ecology.decompose.compare import Request, check_request, decompose, parse_components, parse_families
from ecology.decompose.report import report_text, summary, write_report

__all__ = ["Request", "check_request", "decompose", "parse_components", "parse_families", "report_text", "summary",
           "write_report"]
