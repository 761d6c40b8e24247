"""One case of the suite: the command it runs, what it expects and how its result is checked; the
list the case families add to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository root (tools/adversarial/ is two below)


@dataclass
class Ctx:
    root: Path
    work: Path
    fixtures: Path
    max_children: int = 0  # most processes seen in the case's session (when the case counts them)


@dataclass
class Case:
    category: str
    name: str
    argv: list[str]  # after "ecology"; {W} work dir, {R} root, {X} fixtures
    expect: str  # "error", "ok" or "either" (a clean refusal or a correct answer)
    files: dict = field(default_factory=dict)  # relative path -> str or bytes
    setup: Callable[[Ctx], None] | None = None
    oracle: Callable[[Ctx, str, str], str | None] | None = None
    err_contains: str | None = None  # a clean error must mention this
    concurrent: int = 1
    count_children: bool = False
    victims: tuple = ()  # paths (relative to work) that must be byte-identical afterwards


CASES: list[Case] = []


def add(category, name, argv, expect, **kw):
    CASES.append(Case(category, name, argv, expect, **kw))
