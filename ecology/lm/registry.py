"""The registered kinds of language model, by name: what ``model = {kind = ..., ...}`` may say.

A kind is a :class:`~ecology.lm.base.LanguageModel` subclass registered with :func:`register`
(:mod:`ecology.lm` imports every kind module, so the registry is full once the package is
imported). Everything that depends on the set of kinds reads it from :data:`KINDS`: the check of
a model table's keys (:func:`kind_of`), the keys that name files (:func:`model_file_keys`,
:func:`names_file`), :func:`ecology.lm.files.load_model`, the saved ``.npz`` files (their
``kind`` picks the class that reads them) and the table of kinds in docs/models.md
(:func:`kinds_table`). Adding a kind is one module that defines its class and registers it, and
its import in ``ecology/lm/__init__.py``.
"""

from __future__ import annotations

from ecology.errors import ScenarioError
from ecology.lm.base import LanguageModel

KINDS: dict[str, type[LanguageModel]] = {}  # in registration order (the order of error messages and docs)


def register(cls: type[LanguageModel]) -> type[LanguageModel]:
    """Register the kind ``cls.kind`` (a class decorator); a name is registered once."""
    if not cls.kind or cls.kind in KINDS:
        raise ValueError(f"model kind {cls.kind!r} is empty or already registered")
    if "kind" not in cls.keys or not set(cls.file_keys) <= cls.keys or not cls.docs_row:
        raise ValueError(f"model kind {cls.kind!r}: keys must include 'kind' and its file keys; give a docs row")
    KINDS[cls.kind] = cls
    return cls


def kind_of(spec: dict, field: str) -> type[LanguageModel]:
    """The registered kind of the model table ``spec``, whose keys must all be the kind's."""
    if not isinstance(spec, dict):
        raise ScenarioError(field, "expected a table such as { kind = \"table\", file = \"model.csv\", values = \"logits\" }")
    name = spec.get("kind")
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ScenarioError(f"{field}.kind", f"{name!r} is not a model kind; expected one of {list(KINDS)}")
    extra = sorted(set(spec) - kind.keys)
    if extra:
        raise ScenarioError(f"{field}.{extra[0]}", f"unknown key for kind '{name}'; allowed: {sorted(kind.keys)}")
    return kind


def model_file_keys() -> tuple[str, ...]:
    """Every key that names a file in some kind's table, in registration order."""
    return tuple(dict.fromkeys(key for kind in KINDS.values() for key in kind.file_keys))


def names_file(key: str, value: str) -> bool:
    """Whether ``value`` under ``key`` names a file for some kind (``text = "pydoc"`` does not)."""
    return any(kind.names_file(key, value) for kind in KINDS.values())


def kinds_table() -> str:
    """The markdown table of the registered kinds (docs/models.md, section "Kinds")."""
    rows = ["| kind | dict | notes |", "|---|---|---|"]
    rows += [f"| `{name}` | {kind.docs_row} |" for name, kind in KINDS.items()]
    return "\n".join(rows) + "\n"
