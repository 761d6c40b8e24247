"""Timing shared by the benchmarks (imported as ``from timing import best_time``: each benchmark
is run as a script, so this folder is on its path)."""

import time


def best_time(function, repeat: int) -> float:
    """The shortest of ``repeat`` wall-clock timings of ``function()``: the run least disturbed
    by other work on the machine."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return min(times)
