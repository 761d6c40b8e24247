"""The engines that run a model's steps: the numpy reference and the compiled kernel, behind one
protocol (:class:`ecology.engine.base.Engine`). :data:`ENGINES` maps ``run.engine`` to its class."""

from __future__ import annotations

from ecology.engine.base import Engine
from ecology.engine.compiled import CompiledEngine
from ecology.engine.reference import ReferenceEngine

ENGINES: dict[str, type[Engine]] = {engine.name: engine for engine in (CompiledEngine, ReferenceEngine)}


def choose_engine(compiled, requested: str) -> tuple[type[Engine], str | None]:
    """The engine that runs ``compiled`` when ``requested`` is asked for and, on a fallback to the
    numpy reference, why."""
    engine = ENGINES[requested]
    reason = engine.unsupported(compiled)
    if reason:
        return ReferenceEngine, f"the {requested} engine cannot run this scenario ({reason}); running on numpy"
    return engine, None
