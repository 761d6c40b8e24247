"""The up-front budget of ``ecology decompose``: its memory and its work, from the request
(components, restarts, storylines, length) and the scenario's sizes, refused before any
storyline is drawn, with the flag to change.

Sizes: ``V`` tokens, window ``k``, ``N`` training storylines of ``k + 1`` tokens (``V^(k+1)``
rows for exact data, else ``--storylines`` sampled plus ``N/4`` held out), ``C`` candidate
structures of the chosen families with ``E`` emission cells in all (a cell is a (state, token)
pair; :meth:`ecology.decompose.families.Family.size`), ``G`` families, ``K`` over the
``--components`` range, ``restarts`` EM runs of at most ``MAX_ITERATIONS`` iterations each,
``L = --length`` steps along ``R = min(--storylines, 500)`` storylines of windows ``w`` wide
(``k``, or ``k + L`` when nothing is deleted), and ``S_d`` premises in decomposition ``d`` (the
fits, the input, the two trivial ones, each ``--compare``).

Work (elementary operations, against ``--max-work``; one numpy call counts :data:`PER_CALL`
operations, as in :mod:`ecology.core.budget`):

    EM        restarts x MAX_ITERATIONS x sum_K K (G EM_CALLS PER_CALL + C N (k + 1) + ROW_COST N + E)
    columns   READ_COST sum_d S_d (w + V) (L R + n_visits (V + 1))    (reads; drift re-reads V times)

The EM bound is a worst case: a restart stops when it converges, which fits of a few premises do
in tens to hundreds of iterations, but fits of more premises than the data need commonly use all
``MAX_ITERATIONS``. The constants are measured on one core (an operation is then about 1/3e8 s):
an EM iteration of one premise costs about 7.5e4 operations on 128 exact storylines of one family
(``alice_coins``, ``iid``; 2.1e5 with two families), 2.3e6 on 50,000 sampled ones (about 45 per
storyline beyond the ``N (k + 1)`` counts), 2.6e6 over 71 ``cycle`` candidates on 5,000 (0.8 per
count); reading ``n`` windows with ``S`` premises costs 14-20 operations per ``S n (w + V)``
(``waluigi_soft``'s 32 to 512 storyline premises on 16,000-40,000 windows), and drift ``V`` times
that.

Memory (bytes, against ``--max-memory``):

    data      N (k + 1) 8 (C + 1) 6 + 8 E 4             (storylines; sparse counts and their transposes)
    EM        8 N K_max 6                              (responsibilities, joint and its normaliser)
    windows   8 L R w 4                                (the story windows and their copies)
    reads     24 S_max (L R + n_visits) (V + 1)          (the largest decomposition's laws on them,
                                                        measured 21 bytes per S n (V + 1))

(``n_visits`` bounds the windows the columns are computed on: the exact chain's page-states,
``min(--max-states, sum_{j <= k} (V + 1)^j)``, when the visits are exact, else the ``L R`` story
windows.) The memory includes the factor :data:`ecology.core.budget.SAFETY`; the work is a bound
already.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecology.core.budget import GIB, PER_CALL, SAFETY, window_count
from ecology.decompose.families import family
from ecology.decompose.fit import MAX_ITERATIONS
from ecology.decompose.tables import TRIVIAL_SEQUENCES
from ecology.errors import TooMuchWork
from ecology.kinds.deletion import RULES
from ecology.scenario import Scenario

EXACT_SEQUENCES = 1 << 16  # exact fitting data when V^(k+1) is at most this


STORY_STORYLINES = 500  # storylines along which the amplitude stories (and sampled visits) are taken


EM_CALLS = 10  # numpy calls per family in one premise's EM iteration (measured, module docstring)


ROW_COST = 50  # operations per storyline in one premise's EM iteration, beyond its counts (measured)


READ_COST = 20  # operations per premise, window and position of a read (measured)


DEFAULT_MAX_WORK = 10**11  # about five minutes of the worst case: every restart running all MAX_ITERATIONS


@dataclass
class Cost:
    """The estimates, with the part that drives each."""

    work: float
    work_driver: str
    memory: float
    memory_driver: str


def sequence_count(V: int, width: int, cap: int) -> int:
    """``min(V^width, cap + 1)``, without the huge power a long window would make."""
    count = 1
    for _ in range(width):
        count *= V
        if count > cap:
            return cap + 1
    return count


def premise_count(scenario: Scenario) -> int:
    """Premises after populations are expanded."""
    return len(scenario.premises) + sum(p.count for p in scenario.populations.values())


def cost(scenario: Scenario, families: list[str], components: list[int] | range, restarts: int, storylines: int,
         length: int, exact_data: bool, exact_visits: bool, max_states: int, compare: list[Scenario]) -> Cost:
    """The work and memory of a request (module docstring)."""
    V, k = len(scenario.vocabulary.tokens), scenario.context.length
    sequences = sequence_count(V, k + 1, EXACT_SEQUENCES)
    N = sequences if exact_data else storylines + max(storylines // 4, 2)
    sizes = [family(name).size(V, k) for name in families]
    C, E, G = sum(c for c, _ in sizes), sum(e for _, e in sizes), len(families)
    R = min(storylines, STORY_STORYLINES)
    w = k if RULES[scenario.context.deletion].deletes_oldest else k + length
    visits = window_count(V + 1, k, max_states) if exact_visits else length * R
    K_sum = (components[0] + components[-1]) * len(components) / 2 if isinstance(components, range) else sum(components)
    others = [premise_count(scenario), *(premise_count(c) for c in compare)]
    if sequences <= TRIVIAL_SEQUENCES:
        others += [1, sequences]
    rows = length * R + visits
    work = {
        "--components x --restarts (EM)":
            restarts * MAX_ITERATIONS * K_sum * (G * EM_CALLS * PER_CALL + C * N * (k + 1) + ROW_COST * N + E),
        "--length (reading the visited windows)":
            READ_COST * (K_sum + sum(others)) * (w + V) * (length * R + visits * (V + 1)),
    }
    memory = {
        "the storylines and their emission counts": N * (k + 1) * 8 * (C + 1) * 6 + 8 * E * 4,
        "--components (EM responsibilities)": 8 * N * components[-1] * 6,
        "--length (the windows along the storylines)": 8 * length * R * w * 4,
        "the largest decomposition's premises (K up to --components, or the input's) x --length windows read":
            24 * max(components[-1], *others) * rows * (V + 1),
    }
    return Cost(sum(work.values()), max(work, key=work.get),
                SAFETY * sum(memory.values()), max(memory, key=memory.get))


def check(estimate: Cost, max_work: int, max_memory_gib: float) -> None:
    """Refuse a request over the work or memory budget, in one line naming the flags."""
    if estimate.memory > max_memory_gib * GIB:
        raise TooMuchWork(
            f"decompose: this request needs about {estimate.memory / GIB:,.3g} GiB (mostly {estimate.memory_driver}), "
            f"more than the memory budget of {max_memory_gib:g} GiB; lower --components, --restarts, --storylines "
            "or --length, or raise --max-memory GIB if the machine has the memory")
    if estimate.work > max_work:
        raise TooMuchWork(
            f"decompose: this request may cost up to {estimate.work:.3g} operations (mostly {estimate.work_driver}), "
            f"over the work budget of {max_work:.3g}; lower --components, --restarts, --storylines or --length, "
            "or raise --max-work")
