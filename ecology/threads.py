"""How many threads BLAS may use while the exact analyser runs: one by default.

The exact analyser's dense work (GTH eliminations, dense spectra, ARPACK's small dense products)
runs through OpenBLAS, numpy's and scipy's copies both. By default OpenBLAS starts one thread per
core and keeps them spinning between calls; on a machine whose cores other processes also want,
the spinning threads and the other processes take the cores from each other: ``ecology
analyze`` of ``waluigi_soft`` at k = 14 took 44 s with two threads against 6.5 s with one, two
cores under load (docs/exact.md, "Threads", ``benchmarks/bench_load.py``). The chains' solves are
mostly sparse and sequential, so a second thread has little to win even on a quiet machine.

The rule, :func:`blas_thread_count`:

- ``ECOLOGY_BLAS_THREADS=N`` (a positive integer) gives BLAS ``N`` threads;
- otherwise, when the user has set ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS`` or ``BLIS_NUM_THREADS``, BLAS is left as they set it;
- otherwise one thread.

:func:`blas_threads` applies it, through threadpoolctl, for the length of a ``with`` block; the
limits in force before it are restored after, so a library caller's session keeps its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from ecology.errors import UserError

BLAS_THREADS_VARIABLE = "ECOLOGY_BLAS_THREADS"


USER_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


DEFAULT_BLAS_THREADS = 1  # chosen by measurement: docs/exact.md, "Threads"


def blas_thread_count(environ: Mapping[str, str] | None = None) -> int | None:
    """The number of BLAS threads the rule of the module docstring gives, or None to leave BLAS
    as the user's own variables set it. A malformed ``ECOLOGY_BLAS_THREADS`` is a UserError."""
    environ = os.environ if environ is None else environ
    given = environ.get(BLAS_THREADS_VARIABLE)
    if given is not None and given.strip():
        text = given.strip()
        if not text.isdigit() or int(text) < 1:
            raise UserError(f"{BLAS_THREADS_VARIABLE}={given!r}: give a positive whole number of BLAS threads "
                            f"(e.g. {BLAS_THREADS_VARIABLE}=1), or unset it for the default of {DEFAULT_BLAS_THREADS}")
        return int(text)
    if any((environ.get(name) or "").strip() for name in USER_VARIABLES):
        return None
    return DEFAULT_BLAS_THREADS


@contextlib.contextmanager
def blas_threads(environ: Mapping[str, str] | None = None) -> Iterator[int | None]:
    """Limit every loaded BLAS (numpy's and scipy's OpenBLAS: both are loaded first, since
    threadpoolctl reaches only loaded libraries) to :func:`blas_thread_count` threads inside the
    block, yielding that count (None: left as the user's variables set it)."""
    count = blas_thread_count(environ)
    if count is None:
        yield None
        return
    import numpy  # noqa: F401  (loads numpy's BLAS)
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS, which ARPACK and LAPACK calls use)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=count, user_api="blas"):
        yield count
