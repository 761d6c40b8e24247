"""Sweep grids and the plan: parsing ``--grid`` values and ``[sweep]`` tables, the seed of each
point, and the :class:`Plan` that a sweep directory keeps as ``sweep.json``.

A sweep is the Cartesian product of one or more grids ``path = values`` over the dotted paths of
a scenario. Each grid point is a full run (all replicates) and yields one row of the results
table. Values are written as

- ``v1,v2,...``: a list (each value read as TOML: ``8``, ``0.5``, ``"fifo"``, bare words as
  strings);
- ``START:STOP:STEP``: an arithmetic range, STOP included when reached (``0.1:0.9:0.2``);
- ``START:STOP:*FACTOR``: a geometric range (``2:64:*2`` gives 2, 4, 8, 16, 32, 64).

Linked grids (``--zip a,b``, or ``zip = [["a", "b"]]`` in ``[sweep]``) move together: grids of
equal length whose ``i``-th values make one point, so ``--grid a=1,2,3 --grid b=4,5,6 --zip a,b``
is 3 points, not 9. The points are the Cartesian product over the groups (a zipped group, or a
lone grid), in the order of each group's first path in the grid.

A prior can be swept as it acts: ``premises.NAME.weight`` (the normalised prior) or
``premises.NAME.odds`` (see :func:`ecology.scenario.set_acting_priors`); the plots' axes name the
acting prior of a swept written prior (:func:`plot_axes`).

Reproducibility: a point's seed is derived from the scenario's ``run.seed`` and the point's
parameters alone (SHA-256 of both), never from the order of the points or the worker, so
a sweep gives identical rows with any number of workers and on Dask.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecology.core.budget import check_run
from ecology.core.mixture import normalised_log_prior
from ecology.errors import ScenarioError, UserError
from ecology.plots import grid_kind
from ecology.scenario import (
    PRIOR_TABLES,
    SweepSpec,
    acting_key,
    apply_overrides,
    parse_value,
    to_table,
    validate,
    validate_sweep,
    written_priors,
)

MAX_GRID_VALUES = 10_000  # values in one grid


MAX_POINTS = 100_000  # points in a sweep (the product of its grids)


def _range_count(text: str, count: float) -> int:
    if not count <= MAX_GRID_VALUES:
        raise UserError(f"range {text!r} has {count:,.0f} values, more than {MAX_GRID_VALUES:,}; use a coarser STEP or FACTOR")
    return int(count)


def parse_values(text: str) -> list:
    """Values of one grid (module docstring for the syntax). A list is read as the items of a
    TOML array (so list values work: ``["F"],["U","F"]``), else split at commas with bare words
    kept as strings; a range is checked for finite bounds and at most ``MAX_GRID_VALUES`` values
    before any is generated."""
    text = text.strip()
    parts = text.split(":")
    if len(parts) == 3 and all(p.strip() for p in parts):
        start, stop = parse_value(parts[0]), parse_value(parts[1])
        step_text = parts[2].strip()
        geometric = step_text.startswith("*")
        step = parse_value(step_text[1:] if geometric else step_text)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (start, stop, step)):
            raise UserError(f"range {text!r}: START, STOP and STEP must be numbers")
        if not all(math.isfinite(x) for x in (start, stop, step)):
            raise UserError(f"range {text!r}: START, STOP and STEP must be finite numbers")
        integral = all(isinstance(x, int) for x in (start, stop, step))
        if geometric:
            if not (start > 0 and step > 1 and stop >= start):
                raise UserError(f"geometric range {text!r}: needs 0 < START <= STOP and FACTOR > 1")
            count = _range_count(text, math.floor((math.log(stop) - math.log(start)) / math.log(step) + 1e-9) + 1)
            values = [start * step**i for i in range(count)]
        else:
            if step == 0 or (stop - start) / step < 0:
                raise UserError(f"range {text!r}: STEP must be non-zero and point from START to STOP")
            count = _range_count(text, math.floor((stop - start) / step + 1e-9) + 1)
            values = [start + i * step for i in range(count)]
        return [int(v) if integral else round(float(v), 12) for v in values]
    try:
        values = tomllib.loads(f"v = [{text}]")["v"]
    except tomllib.TOMLDecodeError:
        values = [parse_value(v) for v in text.split(",")]
    if any(isinstance(v, str) and not v.strip() for v in values) or not values:
        raise UserError(f"grid {text!r}: empty value")
    if len(values) > MAX_GRID_VALUES:
        raise UserError(f"grid {text!r} has {len(values):,} values, more than {MAX_GRID_VALUES:,}")
    return values


def parse_grid(spec: str) -> tuple[str, list]:
    """``path=values`` from ``--grid``."""
    path, sep, values = spec.partition("=")
    if not sep or not path.strip() or not values.strip():
        raise UserError(f"--grid {spec!r}: expected dotted.path=values, e.g. --grid context.length=2:64:*2")
    return path.strip(), parse_values(values)


def parse_zip(spec: str) -> list[str]:
    """``a,b[,c...]`` from ``--zip``: the paths of grids that move together."""
    paths = [path.strip() for path in spec.split(",")]
    if len(paths) < 2 or not all(paths):
        raise UserError(f"--zip {spec!r}: expected two or more grid paths joined by commas, e.g. "
                        "--zip context.length,premises.luigi.prior")
    return paths


def linked_groups(grid: dict[str, list], zips: list[list[str]], where: list[str] | None = None) -> list[list[str]]:
    """The grid's paths in groups that move together: each zipped group (checked: paths of the
    grid, none in two groups, equal numbers of values) and every other path alone, ordered by
    each group's first path in the grid. ``where[i]`` names group ``i`` in errors (``--zip a,b``,
    ``sweep.zip[0]``); a group from the file raises :class:`ScenarioError`, one from the command line
    :class:`UserError`."""
    where = where or [f"--zip {','.join(group)}" for group in zips]
    owner: dict[str, int] = {}
    for i, group in enumerate(zips):
        problem = None
        if len(group) < 2:
            problem = "a zipped group links two or more grid paths"
        for path in group:
            if problem is None and path not in grid:
                problem = f"{path!r} is not a grid path; give it a --grid (grids are {list(grid)})"
            elif problem is None and path in owner:
                problem = (f"{path!r} is named twice in the zipped groups; name each path once (the paths that move "
                           "together in one group)")
            owner.setdefault(path, i)
        lengths = {path: len(grid[path]) for path in group if path in grid}
        if problem is None and len(set(lengths.values())) > 1:
            problem = ("zipped grids move together, so they need the same number of values; they have "
                       + ", ".join(f"{path} {n}" for path, n in lengths.items()))
        if problem is not None:
            if where[i].startswith("sweep."):
                raise ScenarioError(where[i], problem)
            raise UserError(f"{where[i]}: {problem}")
    groups: list[list[str]] = []
    emitted: set[int] = set()
    for path in grid:
        if path not in owner:
            groups.append([path])
        elif owner[path] not in emitted:
            emitted.add(owner[path])
            groups.append([p for p in grid if owner.get(p) == owner[path]])
    return groups


def grid_from_table(sweep: SweepSpec | None) -> dict[str, list]:
    """The ``[sweep]`` table of a scenario file: ``grid = { "path" = [values] or "range" }``."""
    grid = {}
    for path, values in (sweep.grid if sweep else {}).items():
        try:
            grid[path] = list(values) if isinstance(values, list) else parse_values(values)
        except UserError as err:
            raise ScenarioError(f"sweep.grid.{path}", str(err)) from None
        if not grid[path]:
            raise ScenarioError(f"sweep.grid.{path}", "no values")
        if len(grid[path]) > MAX_GRID_VALUES:
            raise ScenarioError(f"sweep.grid.{path}", f"{len(grid[path]):,} values, more than {MAX_GRID_VALUES:,}")
    return grid


def labels_of(table: dict) -> list[str]:
    """Population labels of a scenario table, in the order the mixture uses."""
    labels = [spec.get("population") or name for name, spec in table.get("premises", {}).items()]
    return list(dict.fromkeys(labels + list(table.get("populations", {}))))


def point_seed(seed: int, params: dict[str, Any]) -> int:
    """A 63-bit seed from the scenario seed and the point's parameters only."""
    text = json.dumps([seed, sorted(params.items())], sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


@dataclass
class Plan:
    """Everything needed to run (or resume) a sweep."""

    name: str
    base: dict  # the scenario table with fixed overrides applied (no [sweep] table)
    grid: dict[str, list]
    points: list[dict]  # {"index", "params", "seed"}
    exact: bool
    max_states: int
    kinds: dict[str, str] | None = None  # path -> grid_kind (decides the plots' axis scales)
    zip: list[list[str]] | None = None  # groups of grid paths that move together (none: a product of every grid)

    def __post_init__(self):
        if self.kinds is None:
            self.kinds = {path: grid_kind(values) for path, values in self.grid.items()}
        if self.zip is None:
            self.zip = []

    @property
    def groups(self) -> list[list[str]]:
        """The grid's paths grouped as they move (:func:`linked_groups`)."""
        return linked_groups(self.grid, self.zip, [f"zip[{i}]" for i in range(len(self.zip))])

    def to_json(self) -> dict:
        return {"name": self.name, "base": self.base, "grid": self.grid, "kinds": self.kinds, "zip": self.zip,
                "points": self.points, "exact": self.exact, "max_states": self.max_states}

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        """The plan of ``sweep.json``; raises ``ValueError`` naming what is malformed."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in ("name", "base", "grid", "points", "exact", "max_states") if k not in data]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        shapes = {"name": str, "base": dict, "grid": dict, "points": list, "exact": bool, "max_states": int}
        for key, kind in shapes.items():
            if not isinstance(data[key], kind):
                raise ValueError(f"'{key}' must be {kind.__name__}")
        for i, point in enumerate(data["points"]):
            if not (isinstance(point, dict) and point.get("index") == i and isinstance(point.get("params"), dict)
                    and isinstance(point.get("seed"), int)):
                raise ValueError(f"points[{i}] must be {{index: {i}, params: {{...}}, seed: int}}")
        zips = data.get("zip", [])  # absent from a plan written before --zip: a product of every grid
        if not (isinstance(zips, list) and all(isinstance(g, list) and all(isinstance(p, str) for p in g) for g in zips)):
            raise ValueError("'zip' must be a list of lists of grid paths")
        plan = cls(data["name"], data["base"], data["grid"], data["points"], data["exact"], data["max_states"],
                   data.get("kinds"), zips)
        try:
            linked_groups(plan.grid, plan.zip, [f"zip[{i}]" for i in range(len(zips))])
        except UserError as err:
            raise ValueError(str(err)) from None
        return plan


def make_plan(table: dict, grids: dict[str, list], overrides: dict, exact: bool, max_states: int,
              zips: list[list[str]] | None = None) -> Plan:
    """Validate the base scenario and every grid point before anything runs.

    ``zips`` (from ``--zip``) add to the ``[sweep]`` table's ``zip`` groups. A fixed acting prior
    (``--set premises.NAME.weight=W``, ``.odds``) is kept with every point (its ``acting``) and
    applied after the point's parameters, so it still holds where the grid moves other priors."""
    sweep_spec = validate_sweep(table.get("sweep"))
    table = {key: value for key, value in table.items() if key != "sweep"}
    grid = grid_from_table(sweep_spec)
    grid.update(grids)
    if not grid:
        raise UserError("no grid: give --grid path=values or a [sweep] table with grid = {...}")
    table_zips = [list(group) for group in (sweep_spec.zip if sweep_spec else [])]
    linked = table_zips + list(zips or [])
    groups = linked_groups(grid, linked, [f"sweep.zip[{i}]" for i in range(len(table_zips))]
                           + [f"--zip {','.join(group)}" for group in zips or []])
    size = math.prod(len(grid[group[0]]) for group in groups)
    if size > MAX_POINTS:
        raise UserError(f"the grid has {size:,} points, more than {MAX_POINTS:,}; sweep fewer values")
    fixed = {f"run.{k}": getattr(sweep_spec, k) for k in ("replicates", "steps")
             if sweep_spec and getattr(sweep_spec, k) is not None}
    fixed.update(overrides)
    base = to_table(validate(apply_overrides(table, fixed)))
    acting = {path: value for path, value in fixed.items() if acting_key(path) and path not in grid}
    seed = base["run"]["seed"]
    points = []
    for index, combo in enumerate(itertools.product(*(range(len(grid[group[0]])) for group in groups))):
        chosen = {path: grid[path][i] for group, i in zip(groups, combo) for path in group}
        params = {path: chosen[path] for path in grid}
        try:
            check_run(validate(apply_overrides(base, {**params, **acting})))
        except ScenarioError as err:
            raise ScenarioError(err.path, f"{err.message} (grid point {params})") from None
        point = {"index": index, "params": params, "seed": point_seed(seed, params)}
        points.append({**point, "acting": acting} if acting else point)
    return Plan(base["name"], base, grid, points, exact, max_states, zip=linked)


def _tick(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def plot_axes(plan: Plan) -> tuple[dict[str, list], dict[str, str], dict[str, list[str]]]:
    """What the sweep plots draw along: the grid with each zipped group reduced to its first path
    (the group's points lie along it), the axis title of each path and one tick label per value.

    A swept written prior ``premises.NAME.prior`` (or ``populations.NAME.prior``) is titled
    "acting prior of NAME", then "(raw PATH)" on a second line, with ticks ``raw→acting``, the acting prior
    ``raw / sum_r raw_r`` at the plan's base with that value (and its group's values) set, where no
    other group moves a prior (then the acting prior is not a function of this axis and the
    title says so); ``.weight`` is the acting prior itself; ``.odds`` ``O`` gets ticks
    ``O→O/(1+O)``. A zipped group is titled by its paths joined with " & ", each tick naming every
    path's value. Paths that are neither keep their name and plain ticks."""
    grid, titles, ticks = {}, {}, {}
    groups = plan.groups
    prior_groups = [i for i, group in enumerate(groups)
                    if any(p.split(".")[0] in PRIOR_TABLES and (acting_key(p) or p.endswith(".prior")) for p in group)]
    acting = next((point.get("acting", {}) for point in plan.points), {})
    for g, group in enumerate(groups):
        first = group[0]
        grid[first] = plan.grid[first]
        alone = prior_groups == [g]
        parts, labels = [], [[] for _ in plan.grid[first]]
        for path in group:
            keys = path.split(".")
            is_prior = keys[0] in PRIOR_TABLES and len(keys) == 3 and (acting_key(path) or keys[2] == "prior")
            entry = ".".join(keys[:2])
            if is_prior and keys[2] == "weight":
                parts.append(f"acting prior of {keys[1]}\n({path})")
            elif is_prior and keys[2] == "odds":
                parts.append(f"prior odds of {keys[1]}\n({path}; acting prior O/(1+O))")
            elif is_prior and alone:
                parts.append(f"acting prior of {keys[1]}\n(raw {path})")
            elif is_prior:
                parts.append(f"raw {path}\n(its acting prior moves with the other prior grids)")
            else:
                parts.append(path)
            for i, value in enumerate(plan.grid[path]):
                text = _tick(value)
                if is_prior and (keys[2] == "odds" or (keys[2] == "prior" and alone)):
                    table = apply_overrides(plan.base, {**{p: plan.grid[p][i] for p in group}, **acting})
                    raw = written_priors(table)
                    share = dict(zip(raw, np.exp(normalised_log_prior(list(raw.values())))))[entry]
                    text += f"→{share:.3g}"
                labels[i].append(text)
        titles[first] = " & ".join(parts)
        ticks[first] = [", ".join(label) for label in labels]
    return grid, titles, ticks
