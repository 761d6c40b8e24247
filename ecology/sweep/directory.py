"""A sweep directory: its plan (``sweep.json``, ``scenario.toml``), one file per finished point
(``points/INDEX.json``) or failed point (``failed/INDEX.json``), and ``results.csv``.

Durability: the plan is written first, and each finished point at once (written to a temporary
name, then renamed); an interrupted sweep keeps every finished point, and ``--resume DIR`` runs
only the points that have no row yet. The directory is locked (``.lock``) while points run, so
two ``--resume``s of one directory cannot both run (:mod:`ecology.io.safe`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from ecology.errors import OutputError, UserError
from ecology.io.safe import (
    Claim,
    describe_os_error,
    lock_sweep,
    naming,
    new_directory,
    newest_file,
    remove_leftovers,
    write_file_atomically,
)
from ecology.sweep.grid import Plan


def write_json_atomically(path: Path, data: dict) -> None:
    write_file_atomically(path, json.dumps(data, indent=1, default=_jsonable) + "\n")


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def start_directory(target: Path, plan: Plan) -> Claim:
    """Create a sweep directory with its plan (the directory must not exist), whole or not at
    all; returns the directory's lock, held."""
    tmp = target.parent / f".{target.name}.partial-{os.getpid()}"
    lock = None
    try:
        new_directory(tmp)
        new_directory(tmp / "points")
        new_directory(tmp / "failed")
        lock = lock_sweep(tmp)
        write_json_atomically(tmp / "sweep.json", plan.to_json())
        write_file_atomically(tmp / "scenario.toml", tomli_w.dumps(plan.base))
        os.rename(tmp, target)
    except BaseException as err:
        named = naming(err, newest_file(tmp) or target, tmp, target) if isinstance(err, OSError) else None
        if lock:
            lock.release()
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OutputError):  # the lock file could not be written
            raise OutputError(f"cannot create the sweep directory {target}: {str(err).replace(str(tmp), str(target))}") \
                from None
        if named is not None:
            where = named.strerror if named.filename == str(target) else describe_os_error(named)
            raise OutputError(f"cannot create the sweep directory {target}, nothing was written: {where}") from None
        raise
    return lock


def open_directory(directory: Path) -> Claim:
    """Lock an existing sweep directory for ``--resume`` and remove the leftovers of dead processes."""
    lock = lock_sweep(directory)
    for where in (directory, directory / "points", directory / "failed"):
        remove_leftovers(where)
    return lock


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as err:  # ValueError: bad JSON or bad UTF-8
        why = describe_os_error(err) if isinstance(err, OSError) else f"not valid JSON ({err})"
        raise UserError(f"{path}: {why}") from None


def load_plan(directory: Path) -> Plan:
    path = Path(directory) / "sweep.json"
    if not path.is_file():
        raise UserError(f"{directory}: not a sweep directory (no sweep.json)")
    try:
        return Plan.from_json(_read_json(path))
    except ValueError as err:
        raise UserError(f"{path}: not a sweep plan: {err}") from None


def _records(directory: Path, key: str, plan: Plan | None) -> list[dict]:
    """The JSON files of ``directory`` (``points/`` or ``failed/``), checked, ordered by ``key``."""
    records = []
    for path in sorted(directory.glob("*.json")):
        record = _read_json(path)
        index = record.get(key) if isinstance(record, dict) else None
        if not isinstance(index, int) or path.stem != str(index) or (plan and not 0 <= index < len(plan.points)):
            raise UserError(f"{path}: not a point of this sweep (expected '{key}' = {path.stem}); "
                            "delete the file to run that point again")
        records.append(record)
    return sorted(records, key=lambda r: r[key])


def finished_rows(directory: Path, plan: Plan | None = None) -> list[dict]:
    return _records(Path(directory) / "points", "point", plan)


def failures(directory: Path, plan: Plan | None = None) -> list[dict]:
    return _records(Path(directory) / "failed", "index", plan)


def write_table(directory: Path, plan: Plan | None = None) -> Path:
    """Assemble ``results.csv`` (one row per finished point, in grid order) atomically."""
    path = Path(directory) / "results.csv"
    write_file_atomically(path, pd.DataFrame(finished_rows(directory, plan)).to_csv(index=False))
    return path
