"""The registered kinds of language model, by name: what ``model = {kind = ..., ...}`` may say.

A kind is a :class:`~ecology.lm.base.LanguageModel` subclass registered with :func:`register`
(:mod:`ecology.lm` imports every kind module, so the registry is full once the package is
imported). Everything that depends on the set of kinds reads it from :data:`KINDS`: the check of
a model table's kind (:func:`kind_of`; each kind's pydantic ``spec_model`` validates the rest),
the keys that name files (:func:`model_file_keys`, :func:`names_file`),
:func:`ecology.lm.files.load_model`, the saved ``.npz`` files (their ``kind`` picks the class that
reads them), the table of kinds in docs/models.md (:func:`kinds_table`) and the key table of each
kind (:func:`keys_table`). Adding a kind is one module that defines its class and registers it,
and its import in ``ecology/lm/__init__.py``.
"""

from __future__ import annotations

import json

from ecology.errors import ScenarioError
from ecology.lm.base import LanguageModel

KINDS: dict[str, type[LanguageModel]] = {}  # in registration order (the order of error messages and docs)


def register(cls: type[LanguageModel]) -> type[LanguageModel]:
    """Register the kind ``cls.kind`` (a class decorator); a name is registered once."""
    if not cls.kind or cls.kind in KINDS:
        raise ValueError(f"model kind {cls.kind!r} is empty or already registered")
    cls.keys = frozenset(cls.spec_model.model_fields)
    if "kind" not in cls.keys or not set(cls.file_keys) <= cls.keys or not cls.docs_row:
        raise ValueError(f"model kind {cls.kind!r}: its spec_model must have 'kind' and its file keys; give a docs row")
    KINDS[cls.kind] = cls
    return cls


def kind_of(spec: dict, field: str) -> type[LanguageModel]:
    """The registered kind of the model table ``spec`` (the kind's :meth:`~LanguageModel.build`
    validates its keys and values)."""
    if not isinstance(spec, dict):
        raise ScenarioError(field, "expected a table such as { kind = \"table\", file = \"model.csv\", values = \"logits\" }")
    name = spec.get("kind")
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ScenarioError(f"{field}.kind", f"{name!r} is not a model kind; expected one of {list(KINDS)}")
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


def _bound(value: float) -> str:
    """A range's bound as written in the key tables: integers whole, floats shortest (``1e12``)."""
    return str(value) if isinstance(value, int) else f"{value:g}".replace("e+", "e")


def _schema_type(prop: dict) -> str:
    """A JSON-schema property as the key tables write its type and range."""
    if "anyOf" in prop:
        return " or ".join(_schema_type(p) for p in prop["anyOf"] if p.get("type") != "null")
    if "const" in prop:
        return f'`"{prop["const"]}"`'
    if "enum" in prop:
        return " or ".join(f'`"{v}"`' for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_schema_type(prop.get('items', {}))}"
    if kind == "object":
        return f"table of {_schema_type(prop.get('additionalProperties', {}))}"
    words = {"integer": "integer", "number": "number", "string": "string", "boolean": "true or false"}
    text = words.get(kind, kind)
    bounds = [f">= {_bound(prop['minimum'])}" if "minimum" in prop else "",
              f"> {_bound(prop['exclusiveMinimum'])}" if "exclusiveMinimum" in prop else "",
              f"<= {_bound(prop['maximum'])}" if "maximum" in prop else "",
              f"at least {prop['minLength']} character{'s' if prop['minLength'] > 1 else ''}" if "minLength" in prop else ""]
    bounds = [b for b in bounds if b]
    return f"{text} ({', '.join(bounds)})" if bounds else text


def keys_table(name: str) -> str:
    """The markdown table of kind ``name``'s keys (docs/models.md, section "Keys of each kind"),
    generated from its ``spec_model``: each key, its type and range, its default and meaning."""
    schema = KINDS[name].spec_model.model_json_schema()
    required = set(schema.get("required", ()))
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    first = [key for key in ("kind", "file") if key in schema["properties"]]
    for key in first + [key for key in schema["properties"] if key not in first]:
        prop = schema["properties"][key]
        default = "required" if key in required else ("none" if prop.get("default") is None
                                                      else f"`{json.dumps(prop['default'])}`")
        meaning = prop.get("description", "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_schema_type(prop)} | {default} | {meaning} |")
    return "\n".join(rows) + "\n"
