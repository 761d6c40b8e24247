"""Oracles: checks of a valid command's result (``None`` when right, else what is wrong).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from .case import Ctx


def strict_json(text: str):
    def bad(c):
        raise ValueError(f"non-finite constant {c} in JSON")
    return json.loads(text, parse_constant=bad)


def load_summary(ctx: Ctx, out="out") -> dict:
    return strict_json((ctx.work / out / "summary.json").read_text())


def run_ok(out="out", steps=None, replicates=None, extra: Callable[[dict], str | None] | None = None):
    """Oracle of a valid run: summary.json, finite, fractions in [0, 1], the curve of steps + 1 values."""
    def check(ctx, stdout, stderr):
        try:
            s = load_summary(ctx, out)
        except Exception as err:  # noqa: BLE001 - any failure to read is a wrong result
            return f"summary.json unreadable: {err}"
        for crit, a in s["criteria"].items():
            if not 0.0 <= a["reached"] <= 1.0:
                return f"absorbed fraction of {crit} = {a['reached']}"
            if steps is not None and len(a["reached_curve"]) != steps + 1:
                return f"curve of {crit} has {len(a['reached_curve'])} values for {steps} steps"
        if replicates is not None and s["replicates"] != replicates:
            return f"summary says {s['replicates']} replicates, asked {replicates}"
        for png in ("populations.png", "reaching.png", "raster.png"):
            if not (ctx.work / out / png).is_file():
                return f"{png} missing"
        return extra(s) if extra else None
    return check


def fraction_is(crit: str, value: float):
    return run_ok(extra=lambda s: None if abs(s["criteria"][crit]["reached"] - value) < 1e-12
                  else f"absorbed fraction of {crit} = {s['criteria'][crit]['reached']}, expected {value}")


def analyze_json(check: Callable[[dict], str | None]):
    def oracle(ctx, stdout, stderr):
        try:
            r = strict_json(stdout)
        except Exception as err:  # noqa: BLE001
            return f"report JSON unreadable: {err}"
        for c in r.get("closed_classes", []):
            if not (0.0 <= c["probability"] <= 1.0 + 1e-12):
                return f"probability of ending in a closed class = {c['probability']}"
        t = r.get("expected_absorption_time")
        if t is not None and not (t >= 0 and math.isfinite(t)):
            return f"expected absorption time = {t}"
        total = sum(c["probability"] for c in r.get("closed_classes", []))
        if r.get("closed_classes") and abs(total - 1) > 1e-6:
            return f"closed-class probabilities sum to {total}"
        return check(r)
    return oracle


def n_states_is(n: int, closed_sizes: list[int] | None = None):
    def check(r):
        if r["n_states"] != n:
            return f"{r['n_states']} page-states, the truth is {n}"
        if closed_sizes is not None:
            sizes = sorted(c["size"] for c in r["closed_classes"])
            if sizes != sorted(closed_sizes):
                return f"closed classes of sizes {sizes}, the truth is {sorted(closed_sizes)}"
        return None
    return analyze_json(check)


def text_no_nan(ctx, stdout, stderr):
    low = stdout.lower()
    for bad in ("nan", "inf", "-0.000"):
        for tok in low.replace(",", " ").split():
            if tok.strip("()'") in (bad, "-" + bad):
                return f"printed {tok!r}"
    return None
