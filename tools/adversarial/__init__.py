"""Adversarial suite for the ``ecology`` command line (standalone, run from the repository root; see README.md).

    .venv/bin/python -m tools.adversarial [--only SUBSTRING] [--jobs N] [--timeout S] [--json FILE] [--list]

Each case runs the installed CLI in a subprocess, in a fresh temporary directory
(``ROOT/a/b/work`` is the working directory, so that a write that escapes it through ``..`` or an
absolute path lands in ``ROOT`` and is seen), under an address-space limit (RLIMIT_AS, 3 GiB) and a
wall-clock timeout, and is classified as

- ``clean``: bad input gives exit 2, exactly one stderr line starting ``error: ``, no traceback and
  nothing written; valid input gives exit 0 and passes the case's oracle;
- ``wrong``: exit 0 on bad input, an oracle that fails (a value contradicting a closed form or the
  exact chain, a file written outside the working directory, a symlink target overwritten, a typo
  or flag silently ignored), valid input refused, or files left behind by a refused input;
- ``traceback``: a Python traceback, an exit status other than 0/2/130, or more than one stderr line;
- ``oom``: MemoryError (caught or not) or killed by the memory limit;
- ``hang``: the timeout fired.

Modules: :mod:`.texts` (scenario text), :mod:`.case` (a case and the list of cases),
:mod:`.oracles` (checks of a valid result), the case families :mod:`.inputs`, :mod:`.outputs`
and :mod:`.answers`, :mod:`.harness` (running and classifying one case), ``__main__`` (the
command line and the report).
"""
