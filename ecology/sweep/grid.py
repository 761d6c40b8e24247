"""Sweep grids and the plan: parsing ``--grid`` values and ``[sweep]`` tables, the seed of each
point, and the :class:`Plan` that a sweep directory keeps as ``sweep.json``.

A sweep is the Cartesian product of one or more grids ``path = values`` over the dotted paths of
a scenario. Each grid point is a full run (all replicates) and yields one row of the results
table. Values are written as

- ``v1,v2,...``: a list (each value read as TOML: ``8``, ``0.5``, ``"fifo"``, bare words as
  strings);
- ``START:STOP:STEP``: an arithmetic range, STOP included when reached (``0.1:0.9:0.2``);
- ``START:STOP:*FACTOR``: a geometric range (``2:64:*2`` gives 2, 4, 8, 16, 32, 64).

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

from ecology.core.budget import check_run
from ecology.errors import ScenarioError, UserError
from ecology.plots import grid_kind
from ecology.scenario import SweepSpec, apply_overrides, parse_value, to_table, validate, validate_sweep

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

    def __post_init__(self):
        if self.kinds is None:
            self.kinds = {path: grid_kind(values) for path, values in self.grid.items()}

    def to_json(self) -> dict:
        return {"name": self.name, "base": self.base, "grid": self.grid, "kinds": self.kinds, "points": self.points,
                "exact": self.exact, "max_states": self.max_states}

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
        return cls(data["name"], data["base"], data["grid"], data["points"], data["exact"], data["max_states"],
                   data.get("kinds"))


def make_plan(table: dict, grids: dict[str, list], overrides: dict, exact: bool, max_states: int) -> Plan:
    """Validate the base scenario and every grid point before anything runs."""
    sweep_spec = validate_sweep(table.get("sweep"))
    table = {key: value for key, value in table.items() if key != "sweep"}
    grid = grid_from_table(sweep_spec)
    grid.update(grids)
    if not grid:
        raise UserError("no grid: give --grid path=values or a [sweep] table with grid = {...}")
    size = math.prod(len(values) for values in grid.values())
    if size > MAX_POINTS:
        raise UserError(f"the grid has {size:,} points, more than {MAX_POINTS:,}; sweep fewer values")
    fixed = {f"run.{k}": getattr(sweep_spec, k) for k in ("replicates", "steps")
             if sweep_spec and getattr(sweep_spec, k) is not None}
    fixed.update(overrides)
    base = to_table(validate(apply_overrides(table, fixed)))
    seed = base["run"]["seed"]
    points = []
    for index, combo in enumerate(itertools.product(*grid.values())):
        params = dict(zip(grid, combo))
        try:
            check_run(validate(apply_overrides(base, params)))
        except ScenarioError as err:
            raise ScenarioError(err.path, f"{err.message} (grid point {params})") from None
        points.append({"index": index, "params": params, "seed": point_seed(seed, params)})
    return Plan(base["name"], base, grid, points, exact, max_states)
