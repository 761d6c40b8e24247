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
    timeout: float | None = None  # this case's wall-clock limit (seconds), instead of --timeout
    teardown: Callable[[Ctx], None] | None = None  # after the command, before the tree is removed (unmount)
    needs_root: bool = False  # skipped, with a note, when the suite does not run as root (mounts a tmpfs)
    program: list[str] | None = None  # run this instead of the ecology command (argv appended)
    forbid_output: str | None = None  # must appear on neither stdout nor stderr ("serving" before a refusal)
    hang_ok: Callable[[Ctx, str, str], str | None] | None = None  # judges a case still running at its timeout
    expect_rc: int | None = None  # a documented exit status other than 0 and 2 (a sweep on a full disk: 1)
    stderr_lines: int = 1  # how many stderr lines the expect_rc answer may have (the path, the resume command)
    stderr_ignore: str | None = None  # a regex of legitimate stderr lines (training progress), dropped before judging
    may_leave: tuple = ()  # paths (relative to work) a refusal may leave (a finished model beside a failed table)
    refuse_within: float | None = None  # a refusal slower than this (seconds) came after the computation: wrong


CASES: list[Case] = []


def add(category, name, argv, expect, **kw):
    CASES.append(Case(category, name, argv, expect, **kw))
