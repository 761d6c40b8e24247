"""The docs' tables of registered kinds name exactly what is registered: a new deletion rule,
criterion form or simulacrum kind fails here until its row is written (the language-model kinds'
table is generated and checked in tests/test_lm.py)."""

import re
from pathlib import Path

from ecology.kinds.criteria import FORMS, SET_FORMS
from ecology.kinds.deletion import RULES
from ecology.kinds.simulacra import KINDS

SCENARIOS_MD = (Path(__file__).resolve().parent.parent / "docs" / "scenarios.md").read_text()


def first_cells(header: str) -> list[str]:
    """The name in the first cell of each row of the table whose header row is ``header``
    (`` `name` ``, `` `name = ...` `` or `` `name = "..."`, `` all give ``name``)."""
    lines = SCENARIOS_MD.splitlines()
    start = lines.index(header)
    names = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        names.append(re.match(r"^\| `([A-Za-z_]+)", line).group(1))
    return names


def test_every_deletion_rule_is_in_the_context_table():
    row = next(line for line in SCENARIOS_MD.splitlines() if line.startswith("| `deletion` |"))
    assert re.findall(r'`"([^"]+)"`', row.split("|")[2]) == list(RULES)


def test_every_parameterised_simulacrum_kind_has_a_row():
    assert first_cells("| kind | keys | law |") == [name for name in KINDS if name != "automaton"]


def test_every_criterion_form_has_a_row():
    assert first_cells("| form | meaning |") == list(FORMS)


def test_every_set_form_has_a_row():
    assert first_cells("| set form | meaning |") == ["criterion", "any_of", "not", *SET_FORMS]
