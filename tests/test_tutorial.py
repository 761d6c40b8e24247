"""docs/tutorial.md is a transcript: every ``$ ...`` line of its ``console`` blocks is run, in
order, in one scratch directory holding a copy of ``scenarios/``, and what it prints must match
the lines under it (doctest's rule: ``...`` stands for any text, runs of spaces are one space).
Each figure the tutorial shows names, in the comment above it, the file a command wrote; that file
must exist after the commands ran, and the picture shown must be in docs/img/tutorial/.

``python -m tests.test_tutorial --write`` runs the commands, writes what they printed under each
(durations masked as ``...``) and copies the figures into docs/img/tutorial/, so that the text and
the pictures of the tutorial are those of one run; read the diff before committing it."""

from __future__ import annotations

import doctest
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
IMAGES = ROOT / "docs" / "img" / "tutorial"
FIGURE = re.compile(r"<!-- figure: (\S+) -->\s*\n!\[.*?\]\((img/tutorial/[^)\s]+)\)")
CHECKER = doctest.OutputChecker()
MATCHING = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
TIMEOUT_S = 600


@dataclass(frozen=True)
class Step:
    """One ``$ command`` of the tutorial, the output printed under it, and the line it starts on."""

    command: str
    expected: str
    line: int

    @property
    def fails(self) -> bool:
        """A step whose shown output is an error is expected to exit with status 2."""
        return self.expected.lstrip().startswith("error:")


def steps(text: str) -> list[Step]:
    """The ``$`` commands of every ```` ```console ```` block, in order; a command may continue on
    the next line after a trailing backslash."""
    found: list[Step] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        i += 1
        command, start, output = None, 0, []
        while i < len(lines) and lines[i].strip() != "```":
            line = lines[i]
            if line.startswith("$ "):
                if command is not None:
                    found.append(Step(command, "\n".join(output), start))
                start, command, output = i + 1, line[2:], []
                while command.endswith("\\"):
                    i += 1
                    command = command[:-1] + lines[i].strip()
            elif command is not None:
                output.append(line)
            i += 1
        if command is not None:
            found.append(Step(command, "\n".join(output), start))
        i += 1
    return found


def figures(text: str) -> list[tuple[str, str]]:
    """(file a command wrote, picture under docs/) for every figure of the tutorial."""
    return FIGURE.findall(text)


def argv(command: str) -> list[str]:
    """The command's argument vector: ``ecology`` and ``python`` run with this interpreter."""
    words = shlex.split(command)
    if words[0] == "ecology":
        return [sys.executable, "-m", "ecology", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    raise ValueError(f"docs/tutorial.md: a command must start with 'ecology' or 'python', not {words[0]!r}")


def run_all(workdir: Path) -> list[subprocess.CompletedProcess]:
    """Run every step in ``workdir`` (a copy of scenarios/ inside it), stdout and stderr together
    and unbuffered, so that they interleave as on a terminal."""
    shutil.copytree(ROOT / "scenarios", workdir / "scenarios")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "200",
           "PYTHONPATH": str(ROOT)}
    done = []
    for step in STEPS:
        done.append(subprocess.run(argv(step.command), cwd=workdir, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S, check=False))
    return done


TEXT = TUTORIAL.read_text()
STEPS = steps(TEXT)


@pytest.fixture(scope="module")
def transcript(tmp_path_factory) -> tuple[Path, list[subprocess.CompletedProcess]]:
    workdir = tmp_path_factory.mktemp("tutorial")
    return workdir, run_all(workdir)


def test_the_tutorial_has_commands_and_figures():
    assert len(STEPS) >= 10
    assert figures(TEXT)


@pytest.mark.parametrize("index", range(len(STEPS)), ids=[f"line{s.line}" for s in STEPS])
def test_each_command_prints_what_the_tutorial_shows(transcript, index):
    step = STEPS[index]
    result = transcript[1][index]
    assert result.returncode == (2 if step.fails else 0), f"docs/tutorial.md:{step.line}: {step.command}\n{result.stdout}"
    assert CHECKER.check_output(step.expected + "\n", result.stdout, MATCHING), (
        f"docs/tutorial.md:{step.line}: {step.command}\n--- shown:\n{step.expected}\n--- printed:\n{result.stdout}")


@pytest.mark.parametrize(("written", "shown"), figures(TEXT))
def test_each_figure_is_drawn_by_a_command_and_shipped(transcript, written, shown):
    assert (transcript[0] / written).is_file(), f"no command of the tutorial wrote {written}"
    assert (ROOT / "docs" / shown).is_file(), f"docs/{shown} is missing: run python -m tests.test_tutorial --figures"


def test_matching_rule():
    """The checker is strict where it should be: a changed digit fails, ``...`` and spacing do not."""
    assert CHECKER.check_output("E[T] = 221.368 ...\n", "E[T] = 221.368 in 1.2 s\n", MATCHING)
    assert not CHECKER.check_output("E[T] = 221.368\n", "E[T] = 221.369\n", MATCHING)
    assert CHECKER.check_output("a  b\n", "a b\n", MATCHING)
    assert steps("```console\n$ ecology a \\\n  --b\nout\n$ ecology c\n```\n") == [
        Step("ecology a --b", "out", 2), Step("ecology c", "", 5)]
    assert figures("<!-- figure: by-k/sweep.png -->\n![E[T] against k](img/tutorial/by-k.png)\n") == [
        ("by-k/sweep.png", "img/tutorial/by-k.png")]



def test_rewriting_replaces_outputs_and_keeps_commands():
    text = "prose\n```console\n$ ecology a \\\n  --b\nold\n$ ecology c\n```\nmore prose\n"
    new = rewritten(text, ["new 1", "x"])
    assert steps(new) == [Step("ecology a --b", "new 1", 3), Step("ecology c", "x", 6)]
    assert new.startswith("prose\n") and new.endswith("```\nmore prose\n")
    assert masked("waluigi: 10 replicates x 5 steps in 1.25 s -> r\n") == "waluigi: 10 replicates x 5 steps in ... s -> r"


DURATION = re.compile(r"\b(in|took|after) \d+(\.\d+)? (s|seconds|ms)\b")


def masked(output: str) -> str:
    """What a run printed, its durations replaced by ``...`` (they change from run to run)."""
    return DURATION.sub(lambda m: f"{m.group(1)} ... {m.group(3)}", output.rstrip("\n"))


def rewritten(text: str, outputs: list[str]) -> str:
    """``text`` with the output under each ``$`` command replaced by ``outputs`` (in order)."""
    lines, out, at = text.splitlines(), [], 0
    inside = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "```console":
            inside = True
        elif inside and line.strip() == "```":
            inside = False
        elif inside and line.startswith("$ "):
            out.append(line)
            while lines[i].endswith("\\"):
                i += 1
                out.append(lines[i])
            out.extend(o for o in outputs[at].splitlines())
            at += 1
            i += 1
            while i < len(lines) and not lines[i].startswith("$ ") and lines[i].strip() != "```":
                i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out) + "\n"


def main() -> None:
    """``--write``: run the tutorial's commands in a scratch directory, write their outputs into
    docs/tutorial.md and copy its figures into docs/img/tutorial/."""
    import tempfile

    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.test_tutorial --write")
    with tempfile.TemporaryDirectory() as scratch:
        done = run_all(Path(scratch))
        for step, result in zip(STEPS, done, strict=True):
            print(f"$ {step.command}  [exit {result.returncode}]")
        TUTORIAL.write_text(rewritten(TEXT, [masked(r.stdout) for r in done]))
        IMAGES.mkdir(parents=True, exist_ok=True)
        for written, shown in figures(TEXT):
            shutil.copyfile(Path(scratch) / written, ROOT / "docs" / shown)
            print(f"copied {written} -> docs/{shown}")


if __name__ == "__main__":
    main()
