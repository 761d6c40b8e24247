"""Edge cases of the compiled kernel (ecology.engine.compiled) against the numpy engine: its branch-free
exp and log, replicate-inner stacks and print pass, multiple quickselect and failure checks.

What these add to tests/test_kernel.py and tests/test_kernel_adversarial.py:

- the NaN failure path ((2, r): ``NotANumber``), which no other test reaches: a NaN put into one
  state's law after validation, so the same first replicate (past the raster rows, mixed in
  linear space) and the same message under both engines, in steps and in blocks; and an
  impossible window and a NaN in the same step, the NaN in a lower replicate: both engines report
  the impossible window (failure 1 before failure 2);
- tokens drawn whose ``mu(t | w)`` underflows to 0 (log mu below -745) in replicates past the
  raster rows, in the same steps as ordinary draws (the print pass credits those rows in log space
  and the rest in linear space with scale 0 for the former);
- premises of 1 and of 22 states side by side (the ``Qmax`` padding of the front and back
  stacks) under fifo, none and a reset token, with rebuilds of the front stacks;
- the multiple quickselect on 1-12 values with up to 20 probabilities (duplicates, 0, 1);
- ``numerics.exp_jit`` and ``numerics.log_jit`` on every float within a few thousand ulps of the ends of
  their ranges (exp's underflow to 0 and to subnormals, its overflow; log's subnormals and the
  sqrt(2) split): equal to the correctly rounded value at the under- and overflow thresholds and
  within 1 ulp elsewhere.
"""

import copy

import numpy as np
import pytest

import ecology.model as model_module
from ecology import numerics
from ecology.engine import base as engine_base
from ecology.errors import ScenarioError

from .engines import assert_engines_agree, build, drive

# --- failures: NaN, and NaN with an impossible window in the same step ------------------------


def poison_first_premise(monkeypatch) -> None:
    """After validation, the law of premise 0 in the state it reaches by reading 'b' from its
    start gives token 'a' a NaN log-probability (both engines read the same Automaton arrays)."""
    real = model_module.compile_scenario

    def poisoned(scenario):
        compiled = real(scenario)
        automaton = compiled.premises[0].automaton
        automaton.step_logp[automaton.step_state[automaton.start, 1], 0] = np.nan
        return compiled

    monkeypatch.setattr(model_module, "compile_scenario", poisoned)


def nan_scenario(seed: int, temperature: float, impossible: bool) -> dict:
    """Window of one token after the prompt 'a'. P prints 'b' rarely; after 'b' its law is
    poisoned (NaN). With ``impossible``, Q (after 'a') prints 'c' rarely, and no premise can read
    the window 'c' from its start: that replicate's window is impossible."""
    data = {
        "name": "nan", "vocabulary": {"tokens": ["a", "b", "c"]}, "context": {"length": 1, "prompt": ["a"]},
        "run": {"steps": 5, "replicates": 300, "seed": seed}, "sampling": {"temperature": temperature},
        "simulacra": {"p": {"start": "x", "states": {"x": {"emit": {"a": 0.99, "b": 0.01}, "on": {"b": "y"}},
                                                    "y": {"emit": {"a": 0.5, "b": 0.5}, "on": {"a": "x"}}}}},
        "premises": {"P": {"prior": 1.0, "cast": ["p"]}},
    }
    if impossible:
        data["simulacra"]["q"] = {"start": "u", "states": {"u": {"emit": {"a": 0.5, "b": 0.5}, "on": {"a": "v"}},
                                                           "v": {"emit": {"a": 0.98, "c": 0.02}}}}
        data["premises"]["Q"] = {"prior": 1.0, "cast": ["q"]}
    return data


def outcome(data: dict, engine: str, schedule) -> tuple:
    """The error's class and message, the step reached, the rows recorded, the tokens of the
    failing step."""
    model = build(data, engine)
    with pytest.raises(ScenarioError) as raised:
        drive(model, schedule)
    return type(raised.value).__name__, str(raised.value), model.generated, \
        len(model.datacollector.get_model_vars_dataframe()), np.asarray(model.token)


@pytest.mark.parametrize("seed, temperature, impossible, expected", [
    (32, 1.0, False, ("NotANumber", "step 1, replicate 51:")),  # past the raster rows, linear mixture
    (25, 0.5, False, ("NotANumber", "step 4, replicate 251:")),  # tempered, a later step
    (16, 1.0, True, ("ImpossibleWindow", "step 1, replicate 134:")),  # NaN in replicates 49, 84, 96 first
    (8, 1.0, True, ("ImpossibleWindow", "step 1, replicate 156:")),  # NaN in replicates 1, 42, 107 first
])
def test_nan_and_impossible_windows_reported_like_numpy(monkeypatch, seed, temperature, impossible, expected):
    poison_first_premise(monkeypatch)
    data = nan_scenario(seed, temperature, impossible)
    name, message, step, rows, tokens = outcome(data, "numpy", None)
    assert (name, message[: len(expected[1])]) == expected, message
    replicate = int(message.split("replicate ")[1].split(":")[0])
    if impossible:  # a NaN replicate (it printed 'b') comes before the impossible one ('c')
        assert (tokens == 2)[replicate] and np.flatnonzero(tokens == 1)[0] < replicate
    for schedule in (None, "blocks", [2, "s", 100]):
        got = outcome(data, "compiled", schedule)
        assert got[:4] == (name, message, step, rows)
        assert np.array_equal(got[4], tokens)
    monkeypatch.setattr(engine_base, "BLOCK_BYTES", 1)  # blocks of one step
    assert outcome(data, "compiled", "blocks")[:4] == (name, message, step, rows)


# --- print pass: drawn tokens of mu = 0 next to ordinary ones ---------------------------------

def underflowing_tokens(temperature: float, replicates: int, rule: dict, shared: bool) -> dict:
    """'b' has probability below 1e-300 under every premise with amplitude and their priors are
    1e-300 and 1e-280: mu(b | w) underflows to 0 in linear space (log mu about -1300); at
    T = 300 it is still drawn now and then."""
    tokens = ["a", "b", "c"]
    data = {
        "name": "underflow", "vocabulary": {"tokens": tokens},
        "context": {"length": rule.pop("length", 1), "prompt": ["a"], **rule},
        "run": {"steps": 30, "replicates": replicates, "seed": 7}, "sampling": {"temperature": temperature},
        "simulacra": {
            "big": {"start": "x", "states": {"x": {"emit": {"a": 0.6, "c": 0.4}, "on": {"c": "y"}},
                                             "y": {"emit": {"a": 0.5, "b": 1e-305, "c": 0.5}, "on": {"a": "x"}}}},
            "small": {"start": "u", "states": {"u": {"emit": {"a": 0.3, "b": 1e-300, "c": 0.7}}}},
            "flat": {"start": "f", "states": {"f": {"emit": {"a": 0.5, "b": 1e-300, "c": 0.5}}}},
        },
        "premises": {"P": {"prior": 1.0, "cast": ["big"]}, "Q": {"prior": 1e-300, "cast": ["small"]},
                     "F": {"prior": 1e-280, "cast": ["flat"]}},
        "absorption": {"pop": {"population": "P", "above": 0.5}},
    }
    if shared:
        data["premises"]["P"]["population"] = data["premises"]["Q"]["population"] = "PQ"
        data["absorption"]["pop"]["population"] = "PQ"
    return data


def test_tokens_of_probability_zero_drawn_past_the_raster_rows():
    """Replicates past the raster rows draw 'b' with mu(b | w) = 0 in the same steps as others
    draw ordinary tokens: surprisal, credit and everything else as numpy's."""
    data = underflowing_tokens(300.0, 300, {}, False)
    assert_engines_agree(data, ("blocks", [1, 3, "s", 2, "s", 5]))
    model, zero, mixed = build(data, "compiled"), 0, 0
    while model.running:
        model.step()
        past = model.surprisal[32:]
        zero += int((past > 745).sum())
        mixed += bool((past > 745).any() and (past < 460).any())
    assert zero >= 5 and mixed >= 5, (zero, mixed)


@pytest.mark.parametrize("rule", [{}, {"length": 4}, {"length": 3, "deletion": "none"},
                                  {"length": 3, "reset": "c"}, {"length": 3, "deletion": "block", "block": 2}])
@pytest.mark.parametrize("replicates, shared", [(1, True), (3, False), (33, True), (100, False)])
def test_tiny_laws_under_every_rule_and_replicate_count(rule, replicates, shared):
    for temperature in (300.0, 1.0, 0.002):
        assert_engines_agree(underflowing_tokens(temperature, replicates, copy.deepcopy(rule), shared),
                             ("blocks", [1, "s", 3]))


# --- Qmax padding: a one-state premise beside one of twenty-odd states ---------------

def uneven_premises(rule: dict, seed: int) -> dict:
    """A one-state coin, a 2-state alternator and a duet of two 11-state counters taking turns
    (a product automaton of 22 states): the stacks' state axis is padded to the
    largest; windows of 3 tokens, so the front stacks are rebuilt every 3 steps under fifo."""
    tokens = ["a", "b", "c"]
    rng = np.random.default_rng(seed)

    def counter(n):
        return {"start": "s0", "states": {f"s{i}": {"emit": dict(zip(tokens, (lambda w: (w / w.sum()).tolist())(
            rng.random(3) + 0.05))), "on": {"a": f"s{(i + 1) % n}", "b": f"s{(i + 3) % n}"}} for i in range(n)}}

    return {
        "name": "uneven", "vocabulary": {"tokens": tokens}, "context": {"length": 3, "prompt": ["b"], **rule},
        "run": {"steps": 40, "replicates": 70, "seed": seed},
        "simulacra": {"coin": {"start": "q", "states": {"q": {"emit": {"a": 0.4, "b": 0.3, "c": 0.3}}}},
                      "alt": {"start": "x", "states": {
                          "x": {"emit": {"a": 0.7, "b": 0.2, "c": 0.1}, "on": {"a": "y"}},
                          "y": {"emit": {"a": 0.1, "b": 0.6, "c": 0.3}, "on": {"b": "x"}}}},
                      "m": counter(11), "n": counter(11)},
        "premises": {"coin": {"prior": 1.0, "cast": ["coin"]}, "alt": {"prior": 1.0, "cast": ["alt"]},
                     "duet": {"prior": 1.0, "cast": ["m", "n"], "turns": {"every": 1}, "population": "D"},
                     "solo": {"prior": 0.5, "cast": ["n"], "population": "D"}},
        "absorption": {"loop": {"periodic": 2}, "d": {"population": "D", "above": 0.5}},
    }


@pytest.mark.parametrize("rule", [{}, {"deletion": "none"}, {"reset": "c"}, {"deletion": "none", "reset": "c"}])
def test_premises_of_one_and_of_twenty_odd_states(rule):
    data = uneven_premises(rule, 4)
    model = assert_engines_agree(data, ("blocks", [2, "s", 5, 1]))
    assert model.engine.laws.step_state.shape[1] >= 20 and min(model.engine.laws.n_states) == 1


# --- quantiles on a few values and many probabilities -----------------------------------------

def test_quantiles_of_one_to_twelve_values_and_many_probabilities():
    """The multiple quickselect (its stack of ranks, duplicate ranks skipped, x_(i+1) scanned up to
    the next placed rank) against np.quantile, bit for bit, on 1-12 values (ties, 0, subnormals,
    1e-300) with 1-20 sorted probabilities (duplicates, 0, 1, values whose (n - 1) q is an
    integer)."""
    rng = np.random.default_rng(19)
    pool = np.array([0.0, 5e-324, 1e-300, 2.2250738585072014e-308, 0.25, 0.5, 1.0])
    grid = np.array([0.0, 1.0, 0.1, 0.5, 0.9, 1 / 3, 2 / 3, 0.25, 0.75, 1e-17, 1 - 1e-16])
    for _ in range(3000):
        n = int(rng.integers(1, 13))
        values = rng.choice(pool, n) if rng.random() < 0.5 else rng.random(n)
        m = int(rng.integers(1, 21))
        probabilities = np.sort(np.where(rng.random(m) < 0.5, rng.choice(grid, m), rng.random(m)))
        got = np.empty((1, m, 1))
        numerics.quantiles_jit(0, values[None, :].copy(), 0, probabilities, np.empty(n), got)
        assert np.array_equal(got[0, :, 0], np.quantile(values, probabilities)), (values, probabilities)


# --- exp and log at the ends of their ranges --------------------------------------------------

def neighbours(centre: float, count: int) -> np.ndarray:
    """``centre`` and the ``count`` floats of the same sign on each side of it (fewer towards 0)."""
    magnitude = np.array([abs(centre)]).view(np.int64)[0] + np.arange(-count, count + 1, dtype=np.int64)
    return np.copysign(magnitude[magnitude >= 0].view(float), centre)


def apply(name: str, x: np.ndarray) -> np.ndarray:
    import numba

    function = getattr(numerics, f"{name}_jit")

    @numba.njit
    def run(x, out):
        for i in range(len(x)):
            out[i] = function(x[i])

    out = np.empty_like(x)
    run(x, out)
    return out


def reference(name: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return getattr(np, name)(x.astype(np.longdouble)).astype(float)


def test_exp_at_its_thresholds():
    """Exactly the correctly rounded value around exp's thresholds: last subnormal (2^-1074 and
    its half, where the result turns 0), smallest normal, overflow; at most 1 ulp around every
    reduction boundary (k + 1/2) ln 2 from -1075 to 1023 and at |x| near 2^-54 and 2^-1074;
    -0.0, infinities, NaN and +-1e300 exactly."""
    exact = np.concatenate([neighbours(c, 20000) for c in
                            (-745.1332191019412, -744.4400719213812, -708.3964185322641, 709.782712893384)])
    assert np.array_equal(apply("exp", exact), reference("exp", exact))
    near = np.concatenate([neighbours(c, 50) for c in [*((np.arange(-1075, 1024) + 0.5) * np.log(2.0)),
                                                       2.0**-54, -(2.0**-54), 2.0**-1074, -(2.0**-1074)]])
    got, want = apply("exp", near), reference("exp", near)
    assert np.all(np.abs(got - want) <= np.spacing(np.abs(want))), near[np.argmax(np.abs(got - want))]
    special = apply("exp", np.array([-0.0, -np.inf, np.inf, np.nan, -1e300, 1e300]))
    assert np.array_equal(special, [1.0, 0.0, np.inf, np.nan, 0.0, np.inf], equal_nan=True)


def test_log_at_the_ends_of_its_range():
    """At most 1 ulp on every power of two (subnormal ones included), around the smallest normal,
    the largest float, 1, and the mantissa sqrt(2) where the reduction halves it; -0.0 gives
    -inf, a negative subnormal NaN."""
    split = np.array([0x3FF6A09C << 32], dtype=np.int64).view(float)[0]  # high word where i flips
    x = np.concatenate([2.0 ** np.arange(-1074, 1024.0), np.arange(1, 4000) * 5e-324,
                        *[neighbours(c, 4000) for c in (2.2250738585072014e-308, 1.7976931348623157e308, 1.0,
                                                        split, np.sqrt(2.0) / 2)]])
    x = x[np.isfinite(x) & (x > 0)]
    got, want = apply("log", x), reference("log", x)
    assert np.all(np.abs(got - want) <= np.spacing(np.abs(want))), x[np.argmax(np.abs(got - want))]
    special = apply("log", np.array([-0.0, -5e-324, np.inf, np.nan]))
    assert special[0] == -np.inf and np.isnan(special[1]) and special[2] == np.inf and np.isnan(special[3])


def test_cached_compilations_are_dropped_when_a_compiled_source_changes(tmp_path):
    """Numba invalidates a cached function only when its own file changes; the kernel inlines twins
    from several files, so any change to one of them drops every cached compilation of the package."""
    for name in numerics.COMPILED_MODULES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n")
    cache = tmp_path / "kinds" / "__pycache__"
    cache.mkdir()
    cached = [cache / "deletion.delete_canonical_jit-1.py312.nbi", cache / "deletion.delete_canonical_jit-1.py312.1.nbc"]
    for path in cached:
        path.write_bytes(b"old")
    assert numerics.forget_stale_compilations(tmp_path)  # no stamp yet: the cache's sources are unknown
    assert not any(path.exists() for path in cached)
    cached[0].write_bytes(b"new")
    assert not numerics.forget_stale_compilations(tmp_path) and cached[0].exists()  # same sources: kept
    (tmp_path / "kinds" / "deletion.py").write_text("# edited\n")
    assert numerics.forget_stale_compilations(tmp_path) and not cached[0].exists()
