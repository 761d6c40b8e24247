"""Scenario files as TOML text: the toy (luigi and waluigi) with any of its names, tokens, priors
or sections replaced, an iid source over any tokens, a fair coin over two of many tokens.
"""

from __future__ import annotations

import json


def q(text: str) -> str:
    """A TOML basic string (JSON escapes are TOML escapes for the BMP)."""
    return json.dumps(text, ensure_ascii=False)


def toy_body(F="F", U="U", luigi="luigi", waluigi="waluigi", pl="luigi", pw="waluigi", crit="revealed",
             label=None, prior_l="0.9", prior_w="0.1", p="0.9") -> str:
    lab = f"population = {q(label)}\n" if label is not None else ""
    return f"""
[simulacra.{q(luigi)}]
start = "kind"
states.kind.emit = {{ {q(F)} = 1.0 }}

[simulacra.{q(waluigi)}]
start = "hiding"
states.hiding.emit = {{ {q(F)} = {p}, {q(U)} = {1 - float(p) if _isnum(p) else 0.1} }}
states.hiding.on = {{ {q(U)} = "revealed" }}
states.revealed.emit = {{ {q(U)} = 1.0 }}

[premises.{q(pl)}]
prior = {prior_l}
cast = [{q(luigi)}]
{lab}
[premises.{q(pw)}]
prior = {prior_w}
cast = [{q(waluigi)}]

[absorption.{q(crit)}]
window_only = [{q(U)}]
"""


def _isnum(x) -> bool:
    try:
        float(x)
        return True
    except (TypeError, ValueError):
        return False


def scn(name='"w"', top="", vocabulary='tokens = ["F", "U"]', context="length = 3", sampling="",
        run="steps = 20\nreplicates = 20\nseed = 1", body=None, extra="") -> str:
    return (f"name = {name}\n{top}\n[vocabulary]\n{vocabulary}\n\n[context]\n{context}\n\n[sampling]\n{sampling}\n\n"
            f"[run]\n{run}\n{toy_body() if body is None else body}\n{extra}\n")


TOY = scn()


def iid_scn(probs: dict, k=3, temperature=None, steps=10, replicates=20, crit=None, extra_ctx="", name="iid") -> str:
    tokens = list(probs)
    samp = "" if temperature is None else f"temperature = {temperature!r}"
    table = ", ".join(f"{q(t)} = {p!r}" for t, p in probs.items())
    crit = crit or tokens[0]
    return scn(name=q(name), vocabulary=f"tokens = [{', '.join(q(t) for t in tokens)}]",
               context=f"length = {k}\n{extra_ctx}", sampling=samp,
               run=f"steps = {steps}\nreplicates = {replicates}\nseed = 3",
               body=f"""
[simulacra.src]
kind = "iid"
probs = {{ {table} }}

[premises.src]
prior = 1.0
cast = ["src"]

[absorption.all]
window_only = [{q(crit)}]
""")


def coin_scn(heads: str, tails: str, tokens: list[str], k: int, steps=30, replicates=400) -> str:
    return scn(name='"coinv"', vocabulary=f"tokens = [{', '.join(q(t) for t in tokens)}]", context=f"length = {k}",
               run=f"steps = {steps}\nreplicates = {replicates}\nseed = 5",
               body=f"""
[simulacra.c]
kind = "coin"
heads = {q(heads)}
tails = {q(tails)}
p = 0.5

[premises.c]
prior = 1.0
cast = ["c"]

[absorption.tails]
window_only = [{q(tails)}]
""")
