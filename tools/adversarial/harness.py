"""Running and classifying one case: a fresh directory tree, a subprocess of the CLI under an
address-space limit and a timeout, and the outcome (clean, wrong, traceback, oom, hang) from its
exit status, stderr, the files it left and the case's oracle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .case import REPO, Case, Ctx
from .texts import TOY

ADDRESS_SPACE = 3 * 1024**3
OUTCOMES = ("clean", "wrong", "traceback", "oom", "hang")


def ecology_command() -> list[str]:
    binary = REPO / ".venv" / "bin" / "ecology"
    if binary.exists():
        return [str(binary)]
    return [sys.executable, "-m", "ecology"]


def limits():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    os.setsid()


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def children_of(pid: int) -> int:
    """Descendants of ``pid`` (one level of /proc scan, by session: everything in its session)."""
    n = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == pid and int(entry) != pid:  # field 6 (session id) after the name
                n += 1
        except (OSError, IndexError, ValueError):
            continue
    return n


def launch(argv, cwd, env, timeout, count_children=False):
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, preexec_fn=limits)
    result = {"max_children": 0}

    def watch():
        while proc.poll() is None:
            result["max_children"] = max(result["max_children"], children_of(proc.pid))
            time.sleep(0.2)
    watcher = threading.Thread(target=watch, daemon=True) if count_children else None
    if watcher:
        watcher.start()
    start = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    result.update(rc=proc.returncode, stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
                  timed_out=timed_out, seconds=time.monotonic() - start)
    return result


OOM_MARKS = ("MemoryError", "out of memory", "Cannot allocate memory", "std::bad_alloc", "_ArrayMemoryError",
             "Unable to allocate")


def classify_process(r: dict) -> tuple[str, str] | None:
    """hang / oom / traceback from the raw process outcome, or None when it ended in a regular way."""
    if r["timed_out"]:
        return "hang", f"no answer after {r['seconds']:.0f} s"
    err = r["stderr"]
    lines = [x for x in err.splitlines() if x.strip()]
    if r["rc"] in (-9, 137) or any(m in err for m in OOM_MARKS):
        return "oom", (lines[-1] if lines else f"killed (exit {r['rc']})")[:160]
    if "Traceback (most recent call last)" in err:
        return "traceback", (lines[-1] if lines else "traceback")[:160]
    if r["rc"] not in (0, 2, 130):
        return "traceback", f"exit {r['rc']}: {(lines[-1] if lines else '')[:140]}"
    if len(lines) > 1:
        return "traceback", f"{len(lines)} stderr lines: {lines[0][:80]} | {lines[-1][:60]}"
    if r["rc"] == 130:
        return "traceback", "exit 130 without an interrupt"
    return None


def run_case(case: Case, fixtures: Path, timeout: float, env: dict) -> dict:
    root = Path(tempfile.mkdtemp(prefix="eco-adv-"))
    work = root / "a" / "b" / "work"
    work.mkdir(parents=True)
    ctx = Ctx(root, work, fixtures)
    argv_shown = " ".join(case.argv)
    try:
        for rel, content in case.files.items():
            p = work / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content, encoding="utf-8")
        if case.setup:
            case.setup(ctx)
        before = snapshot(root)
        victims = {v: digest(work / v) for v in case.victims}
        program = case.program or ecology_command()
        argv = program + [a.replace("{R}", str(root)).replace("{W}", str(work)) for a in case.argv]
        timeout = case.timeout or timeout
        if case.concurrent > 1:
            outcome, reason = run_concurrent(case, ctx, argv, env, timeout, before)
        else:
            r = launch(argv, work, env, timeout, case.count_children)
            if case.stderr_ignore:
                r["stderr"] = "".join(x for x in r["stderr"].splitlines(keepends=True)
                                      if not re.match(case.stderr_ignore, x))
            ctx.max_children = r["max_children"]
            outcome, reason = judge(case, ctx, r, before)
        for v, d in victims.items():
            if digest(work / v) != d and outcome != "hang":
                outcome, reason = "wrong", f"{v} was modified through the output path"
        return {"category": case.category, "name": case.name, "command": shown(case, argv_shown),
                "outcome": outcome, "detail": reason}
    except Exception as err:  # noqa: BLE001 - a broken case must not stop the suite
        return {"category": case.category, "name": case.name, "command": shown(case, argv_shown),
                "outcome": "traceback", "detail": f"harness: {type(err).__name__}: {err}"[:200]}
    finally:
        if case.teardown:
            with contextlib.suppress(Exception):
                case.teardown(ctx)
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(dirpath, d), 0o755)
        shutil.rmtree(root, ignore_errors=True)


def shown(case: Case, argv_shown: str) -> str:
    """The command as the report prints it (a Python snippet on one line)."""
    if case.program:
        return "python -c " + short(argv_shown.strip().replace("\n", "; "), 300)
    return "ecology " + short(argv_shown)


def short(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 20] + f"...({len(text)} chars)"


def leftovers(ctx: Ctx, before: dict) -> tuple[list[str], list[str], list[str]]:
    """(new paths outside work, new paths inside work, hidden partial/temporary files anywhere)."""
    after = snapshot(ctx.root)
    new = [p for p in after if p not in before]
    work_rel = os.path.relpath(ctx.work, ctx.root)
    outside = [p for p in new if not (p == work_rel or p.startswith(work_rel + os.sep))]
    inside = [p for p in new if p not in outside]
    partial = [p for p in after if ".partial-" in os.path.basename(p) or ".tmp-" in os.path.basename(p)
               or os.path.basename(p).endswith(".tmp")]
    return outside, inside, partial


def judge(case: Case, ctx: Ctx, r: dict, before: dict) -> tuple[str, str]:
    outside, inside, partial = leftovers(ctx, before)
    work_rel = os.path.relpath(ctx.work, ctx.root)
    inside = [p for p in inside if os.path.relpath(p, work_rel) not in case.may_leave]
    if outside and not r["timed_out"]:
        return "wrong", f"wrote outside the working directory: {outside[0]}"
    if case.forbid_output and case.forbid_output in r["stdout"] + r["stderr"]:
        ending = "still running at the timeout" if r["timed_out"] else f"exit {r['rc']}"
        last = ([x for x in r["stderr"].splitlines() if x.strip()] or [""])[-1]
        return "wrong", f"printed {case.forbid_output!r} first ({ending}) {last[:100]}"
    if r["timed_out"] and case.hang_ok:
        problem = run_oracle(dataclasses.replace(case, oracle=case.hang_ok), ctx, r)
        return ("wrong", problem[:200]) if problem else ("clean", "still serving at the timeout, as it should")
    if case.expect_rc is not None:
        documented = judge_status(case, ctx, r)
        if documented:
            return documented
    bad = classify_process(r)
    if bad and bad[0] == "traceback" and "stderr lines" in bad[1] and r["rc"] == 0 and case.expect != "error":
        problem = run_oracle(case, ctx, r)  # extra stderr noise must not hide a wrong value
        if problem:
            return "wrong", f"{problem[:150]} (and {bad[1][:60]})"
    if bad:
        return bad
    lines = [x for x in r["stderr"].splitlines() if x.strip()]
    if r["rc"] == 2:
        line = lines[0] if lines else ""
        if not line.startswith("error: "):
            return "traceback", f"exit 2 with stderr {line[:120]!r}"
        if case.expect == "ok":
            return "wrong", f"valid input refused: {line[:160]}"
        if inside or partial:
            return "wrong", f"refused ({line[:80]}) but left {(inside + partial)[0]}"
        if case.err_contains and case.err_contains not in line:
            return "wrong", f"error does not mention {case.err_contains!r}: {line[:140]}"
        if case.refuse_within and r["seconds"] > case.refuse_within:
            return "wrong", f"refused only after {r['seconds']:.0f} s (after the work): {line[:120]}"
        return "clean", line[:160]
    # exit 0
    if case.expect == "error":
        return "wrong", f"bad input accepted (exit 0): {(r['stdout'].strip().splitlines() or [''])[0][:120]}"
    if partial:
        return "wrong", f"left a temporary file {partial[0]}"
    problem = run_oracle(case, ctx, r)
    if problem:
        return "wrong", problem[:200]
    return "clean", "ok"


def judge_status(case: Case, ctx: Ctx, r: dict) -> tuple[str, str] | None:
    """A case whose documented exit status is ``case.expect_rc`` (neither 0 nor 2): that status with at
    most ``case.stderr_lines`` lines, the first starting ``error: ``, no traceback, and the oracle
    passed, is clean; exit 0 or 2 instead is wrong; anything else is left to :func:`classify_process`."""
    if r["timed_out"] or "Traceback (most recent call last)" in r["stderr"]:
        return None
    lines = [x for x in r["stderr"].splitlines() if x.strip()]
    if r["rc"] == case.expect_rc:
        if not lines or not lines[0].startswith("error: ") or len(lines) > case.stderr_lines:
            return "wrong", f"exit {r['rc']} but stderr is {len(lines)} lines: {(lines or [''])[0][:120]!r}"
        problem = run_oracle(case, ctx, r)
        return ("wrong", f"{problem[:150]} ({lines[0][:60]})") if problem else ("clean", lines[0][:160])
    if r["rc"] in (0, 2):
        return "wrong", f"exit {r['rc']}, documented {case.expect_rc}: {(lines or [''])[0][:140]}"
    return None


def run_oracle(case: Case, ctx: Ctx, r: dict) -> str | None:
    if not case.oracle:
        return None
    try:
        return case.oracle(ctx, r["stdout"], r["stderr"])
    except Exception as err:  # noqa: BLE001
        return f"oracle could not read the result: {type(err).__name__}: {err}"


def run_concurrent(case, ctx, argv, env, timeout, before):
    results = [None] * case.concurrent

    def go(i):
        results[i] = launch(argv, ctx.work, env, timeout)
    threads = [threading.Thread(target=go, args=(i,)) for i in range(case.concurrent)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        bad = classify_process(r)
        if bad:
            return bad
    codes = sorted(r["rc"] for r in results)
    outside, _, partial = leftovers(ctx, before)
    if outside:
        return "wrong", f"wrote outside: {outside[0]}"
    if codes.count(0) != 1:
        why = "both claimed the same --out" if codes.count(0) > 1 else "none succeeded"
        return "wrong", f"exit statuses {codes}: {why}"
    loser = next(r for r in results if r["rc"] != 0)
    if not loser["stderr"].startswith("error: "):
        return "traceback", f"refusal not one clean line: {loser['stderr'][:100]!r}"
    if partial:
        return "wrong", f"left a temporary file {partial[0]}"
    out = ctx.work / "out"
    if not ((out / "summary.json").is_file() or (out / "results.csv").is_file()):
        return "wrong", "the winner's output is incomplete"
    return "clean", f"one ran, the other: {loser['stderr'].strip()[:100]}"


def make_fixtures(fixtures: Path, env: dict, timeout: float) -> None:
    scenario = fixtures / "toy.toml"
    scenario.write_text(TOY)
    eco = ecology_command()
    jobs = [
        eco + ["run", str(scenario), "--replicates", "10", "--steps", "10", "--out", str(fixtures / "run")],
        eco + ["sweep", str(scenario), "--grid", "context.length=2,3", "--replicates", "10", "--steps", "10",
               "--workers", "1", "--out", str(fixtures / "sweep")],
    ]
    procs = [subprocess.Popen(j, cwd=fixtures, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for j in jobs]
    for j, p in zip(jobs, procs, strict=True):
        _, err = p.communicate(timeout=timeout * 3)
        if p.returncode != 0:
            print(f"fixture failed: {' '.join(j)}: {err.decode()[-300:]}", file=sys.stderr)
