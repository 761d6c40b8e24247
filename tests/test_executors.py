"""The executors' protocol (ecology.sweep.executors): submit/map with results in order, failures
as exceptions, a dying worker replaced; the same rows from every executor."""

import os
import signal

import pytest

from ecology.sweep.executors import ProcessPool, RemoteError, Serial, WorkerDied, failure_text


def square(x: int) -> int:
    return x * x


def fail(x: int) -> int:
    raise ValueError(f"bad {x}")


def die(x: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return x


@pytest.mark.parametrize("make", [Serial, lambda: ProcessPool(2)], ids=["serial", "processes"])
def test_map_gives_results_in_order_and_failures_as_exceptions(make):
    with make() as executor:
        assert list(executor.map(square, range(7))) == [x * x for x in range(7)]
        future = executor.submit(fail, 3)
        while not executor.wait([future], 0.1):
            pass
        with pytest.raises(Exception) as caught:
            future.result()
        assert failure_text(caught.value) == "ValueError: bad 3"


def test_a_dying_worker_fails_its_call_and_is_replaced():
    with ProcessPool(1) as pool:
        future = pool.submit(die, 1)
        while not pool.wait([future], 0.1):
            pass
        with pytest.raises(WorkerDied) as died:
            future.result()
        assert died.value.exitcode == -signal.SIGKILL
        assert list(pool.map(square, [2, 3])) == [4, 9]  # a fresh worker took its place


def test_remote_errors_keep_their_text():
    assert failure_text(RemoteError("KeyError: 'x'")) == "KeyError: 'x'"
    assert failure_text(KeyError("x")) == "KeyError: 'x'"


def pid_of(x: int) -> tuple[int, int]:
    return x, os.getpid()


def test_workers_run_call_after_call_with_one_waiting_each():
    with ProcessPool(2) as pool:
        assert pool.capacity == 4
        futures = [pool.submit(pid_of, x) for x in range(4)]  # two run, two wait in the pool
        assert len(pool.queue) == 2 and len(pool.busy) == 2
        while not all(f.done() for f in futures):
            pool.wait(futures, 0.1)
        workers = {process.pid for process, _ in pool.idle}
        rows = [f.result() for f in futures] + list(pool.map(pid_of, range(4, 10)))
    assert [x for x, _ in rows] == list(range(10))
    assert {pid for _, pid in rows} == workers and len(workers) == 2 and os.getpid() not in workers
