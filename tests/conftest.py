import copy
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def table(name: str) -> dict:
    """The raw table of a shipped scenario (tests modify copies of it)."""
    with (SCENARIOS / f"{name}.toml").open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture
def toy() -> dict:
    return copy.deepcopy(table("waluigi"))


def misread() -> dict:
    """An alternator ("a b a b ...") read from scratch after fifo deletion: at step 4 the window
    'b a b' starts with b, which the alternator's start state never prints."""
    return {
        "name": "misread", "vocabulary": {"tokens": ["a", "b"]}, "context": {"length": 3},
        "run": {"steps": 10, "replicates": 4},
        "simulacra": {"alt": {"start": "x", "states": {"x": {"emit": {"a": 1.0}, "on": {"a": "y"}},
                                                          "y": {"emit": {"b": 1.0}, "on": {"b": "x"}}}}},
        "premises": {"alt": {"prior": 1.0, "cast": ["alt"]}},
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def dask_cluster():
    """A real Dask scheduler and two single-threaded workers, separate processes on loopback (shared by the
    tests of sweeps and of sharded runs)."""
    pytest.importorskip("distributed")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    # `python -m` from the checkout's root, so that the workers import this checkout's ecology (as `dask worker` does
    # from an installed one)
    root = Path(__file__).resolve().parent.parent
    python = [sys.executable, "-m"]
    procs = [subprocess.Popen([*python, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    time.sleep(1.0)
    procs.append(subprocess.Popen([*python, "distributed.cli.dask_worker", address, "--nworkers", "2", "--nthreads",
                                   "1", "--no-dashboard"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from dask.distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for p in procs[::-1]:
        p.terminate()
        p.wait(timeout=30)
