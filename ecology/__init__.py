"""simulacra-ecology: premises and simulacra competing for amplitude on a finite context window.

The entry point for notebooks is :func:`run`::

    import ecology
    r = ecology.run("scenarios/waluigi.toml", context__length=16, replicates=2000, exact=True)
    r.criteria      # per criterion: reached (KM, censored, restricted mean, median), holding, exact
    r.steps         # one row per step;  r.replicates: one row per replicate;  r.premises: per premise
    r.summary       # the dict of summary.json;  r.save("runs/k16") writes a run directory

Imports stay light: the simulator is loaded when :func:`run` is first called.
"""

from __future__ import annotations


def run(scenario, exact: bool = False, max_states: int | None = None, workers: int | None = None,
        scheduler: str | None = None, **overrides):
    """Simulate ``scenario`` (a TOML path or a :class:`ecology.scenario.Scenario`) and return an
    :class:`ecology.api.RunOutcome` (summary and pandas DataFrames).

    ``overrides`` are dotted scenario paths written with ``__`` for the dots
    (``context__length=16``, ``premises__luigi__prior=0.99``); ``steps``, ``replicates`` and
    ``seed`` are short for ``run__steps`` etc. ``exact=True`` adds the exact chain's figures per
    criterion (expected hitting time, P(reached by N), restricted mean, closed) within
    ``max_states`` page-states (default: the one state budget of every exact computation,
    :data:`ecology.core.budget.DEFAULT_MAX_STATES`). An argument of the wrong type is a
    ``TypeError`` naming it (``ecology.run: scenario must be a path ... got int``), a bad value a
    one-line :class:`ecology.errors.ScenarioError`. A run of more than 10,000 replicates is split into
    replicate shards that run on ``workers`` processes (default: all cores for a large run) or on a Dask
    ``scheduler`` (``"tcp://HOST:PORT"``, or ``"local"`` to start one); the numbers do not depend on either.
    """
    from ecology.api import run as _run

    budget = {} if max_states is None else {"max_states": max_states}
    return _run(scenario, exact=exact, **budget, workers=workers, scheduler=scheduler, **overrides)
