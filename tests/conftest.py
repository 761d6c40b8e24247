import copy
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
