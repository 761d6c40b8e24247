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
