"""The report of ``ecology decompose``: ``report.json`` (:func:`summary`), its text form
(:func:`report_text`), and the directory :func:`write_report` leaves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import tomli_w

from ecology import plots
from ecology.decompose.compare import amplitude_story
from ecology.decompose.tables import component_table
from ecology.io.safe import write_atomically


def summary(result: dict) -> dict:
    """The JSON report."""
    s = result["scenario"]
    fits = {}
    for K, fit in result["fits"].items():
        fits[str(K)] = {
            "log_likelihood": fit.log_likelihood, "iterations": fit.iterations, "converged": fit.converged,
            "best_restart": fit.restart, "restart_log_likelihoods": [json_number(x) for x in fit.restarts],
            "params": fit.n_params,
            "components": [{"family": c.family, "prior": float(p),
                            "simulacrum": component_table(c, list(s.vocabulary.tokens))}
                           for c, p in zip(fit.components, fit.prior)],
        }
    train, visits = result["train"], result["visits"]
    return {
        "scenario": s.name,
        "families": result["families"],
        "seed": result["seed"],
        "data": {"kind": "exact" if train.exact else "samples", "storylines": len(train.weight) if not train.exact else None,
                 "held_out": len(result["held"].weight) if not result["held"].exact else None,
                 "distinct": train.distinct(), "length": s.context.length + 1},
        "visits": {"kind": "exact" if visits.exact else "samples", "length": result["length"],
                   "windows": len(visits.weight), "count": visits.count},
        "trivial": result["trivial_note"] or "built",
        "fits": fits,
        "table": [{key: json_number(value) for key, value in row.items() if key != "n_for_bic"} for row in result["rows"]],
    }


def json_number(x):
    """Infinite floats as the strings "inf" / "-inf" (JSON has no infinity); anything else as is."""
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def fmt(x, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def text_table(report: dict) -> str:
    """The comparison as aligned text."""
    heads = ["decomposition", "premises", "E[KL]", "held-out loglik", "params", "BIC", "defect mean", "defect max",
             "amp. entropy"]
    lines = []
    for row in report["table"]:
        held = fmt(row["heldout_loglik"], 6)
        if row["heldout_se"]:
            held += f" ± {fmt(1.96 * row['heldout_se'], 2)}"
        lines.append([row["decomposition"], str(row["premises"]), fmt(row["kl_mean"], 3), held, str(row["params"]),
                      fmt(row["bic"], 6), fmt(row["defect_mean"], 3), fmt(row["defect_max"], 3),
                      fmt(row["amplitude_entropy"], 3)])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(heads)]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def component_text(simulacrum: dict) -> str:
    """A fitted simulacrum in one line: its parameters, or each state's law (4 digits)."""
    def laws(table: dict) -> str:
        return "{" + ", ".join(f"{t}: {p:.4g}" for t, p in table.items()) + "}"

    if "states" in simulacrum:
        return "; ".join(f"{name} {laws(state['emit'])}" for name, state in simulacrum["states"].items())
    if "probs" in simulacrum:
        return laws(simulacrum["probs"])
    return ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                     for k, v in simulacrum.items() if k != "kind")


def report_text(report: dict) -> str:
    """The text report: data, fits, table, and how to read it."""
    d, v = report["data"], report["visits"]
    data = (f"exact: all storylines of {d['length']} tokens weighted by their probability ({d['distinct']} with P > 0)"
            if d["kind"] == "exact" else
            f"{d['storylines']} sampled storylines of {d['length']} tokens ({d['distinct']} distinct), "
            f"{d['held_out']} held out")
    visits = (f"exact chain law averaged over steps 0..{v['length'] - 1} ({v['windows']} page-states)"
              if v["kind"] == "exact" else f"{v['count']} sampled storylines, steps 0..{v['length'] - 1}")
    lines = [f"ecology decompose {report['scenario']}: families {', '.join(report['families'])}, seed {report['seed']}",
             f"fitting data: {data}", f"visited windows: {visits}",
             f"trivial decompositions: {report['trivial']}", ""]
    for K, fit in report["fits"].items():
        state = "converged" if fit["converged"] else "NOT converged"
        lines.append(f"K = {K}: log-likelihood {fit['log_likelihood']:.8g} ({state} in {fit['iterations']} iterations, "
                     f"best of {len(fit['restart_log_likelihoods'])} restarts)")
        for c in fit["components"]:
            lines.append(f"  prior {c['prior']:.4f}  {c['family']}: {component_text(c['simulacrum'])}")
    lines += ["", text_table(report), "",
              "No column is the answer: E[KL] and held-out log-likelihood measure the token law (every exact "
              "decomposition ties), params and BIC the description length, the defect how far amplitudes are from "
              "martingales under fifo deletion (Remark 9), the entropy how concentrated the amplitude story is."]
    return "\n".join(lines)


def write_report(target: Path, result: dict, report: dict) -> None:
    """Scenario files, report.json, report.txt, table.csv and plots, written atomically."""
    def fill(d: Path) -> None:
        for item in result["decompositions"]:
            if item["kind"] == "fitted":
                (d / f"fitted_k{item['K']}.toml").write_text(tomli_w.dumps(item["table"]))
            elif item["kind"] in ("single", "storylines"):
                (d / f"{item['kind']}.toml").write_text(tomli_w.dumps(item["table"]))
        (d / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (d / "report.txt").write_text(report_text(report) + "\n")
        pd.DataFrame(report["table"]).to_csv(d / "table.csv", index=False)
        stories = [(item["name"], *amplitude_story(item["compiled"], result["story_windows"]))
                   for item in result["decompositions"]]
        plots.amplitude_stories(stories, report["scenario"], d / "stories.png")
        fitted = [row for row in report["table"] if row["decomposition"].startswith("fit K=")]
        reference = next((row for row in report["table"] if row["decomposition"] == "input"), None)
        plots.decomposition_comparison(fitted, report["scenario"], d / "comparison.png", reference)

    write_atomically(target, fill)
