"""The compiled kernel's cost per token and per premise against an independent minimal reference.

The model timed is the toy step at its simplest: ``S`` premises, each one emission table over
``V`` tokens (a one-state automaton), uniform priors, a FIFO window of ``k`` tokens. Per
replicate and step the mixture's law is ``mu(t | w) = sum_s alpha_s e_s(t)`` with
``alpha_s = prior_s mu_s(w) / sum_u prior_u mu_u(w)`` (Bayes in log space); the token is one
cumulative draw, ``t = #{u : c_u <= U c_{V-1}}`` with ``c`` the cumulative sums of ``mu``; the
window drops its oldest token and ``log mu_s(w)`` gains ``log e_s(new) - log e_s(old)``.

:func:`reference_steps` is that step written straight, in numba, replicate by replicate (every
per-replicate array of length ``S`` or ``V``, so it stays in cache), with nothing of the project
imported. It comes in two variants: ``entropy=False``, the step and nothing else, and
``entropy=True``, which also sums the entropy ``-sum_t mu log mu`` of the law, the one
per-token figure the kernel must record besides the law (a column of steps.csv; ``np.log``,
numba's, one call per token). The kernel (``CompiledEngine.run`` of ecology/engine/compiled.py,
on a scenario of the same premises built by :func:`scenario`) does everything a run records:
the law and its logarithm for every token, the entropy, the credit, the ledger, the quantiles.

For V in --tokens at S = 2 and S in --premises at V = 2 (and the grid of both), with R
replicates and n steps, it prints ns per replicate-step of each, and the marginal costs from
least-squares slopes: ns per extra token (at each S) and per extra premise (at each V).
Figures are CPU seconds (``time.process_time``), best of --repeats, the implementations
interleaved; the load average is printed.

Usage: python benchmarks/bench_kernel.py [--replicates 4000] [--steps 150] [--tokens 2 32 128]
       [--premises 2 8 32] [--length 8] [--repeats 3]
"""

import argparse
import os
import time

import numba
import numpy as np

from ecology.model import EcologyModel
from ecology.scenario import validate


@numba.njit(cache=True)
def reference_steps(uniforms, log_prior, emit, log_emit, window, head, loglik, tokens, entropy):
    """``len(uniforms)`` steps of every replicate (module docstring). ``emit`` (S, V) the tables,
    ``log_emit`` (S, V + 1) their logarithms with a pad column of zeros (the pad ``V`` fills the
    window at first), ``window`` (R, k) rings whose oldest slot is ``head``, ``loglik`` (R, S);
    ``tokens`` (R,) receives the last step's tokens; returns the new head and the sum of the
    entropies over replicates and steps (0 unless ``entropy``)."""
    steps, rows = uniforms.shape
    n_premises, n_tokens = emit.shape
    length = window.shape[1]
    alpha = np.empty(n_premises)
    mu = np.empty(n_tokens)
    entropy_sum = 0.0
    for b in range(steps):
        for r in range(rows):
            top = -np.inf
            for s in range(n_premises):
                top = max(top, log_prior[s] + loglik[r, s])
            z = 0.0
            for s in range(n_premises):
                alpha[s] = np.exp(log_prior[s] + loglik[r, s] - top)
                z += alpha[s]
            for s in range(n_premises):
                alpha[s] /= z
            for t in range(n_tokens):
                mu[t] = 0.0
            for s in range(n_premises):
                for t in range(n_tokens):
                    mu[t] += alpha[s] * emit[s, t]
            total = 0.0
            for t in range(n_tokens):
                total += mu[t]
            if entropy:
                for t in range(n_tokens):
                    if mu[t] > 0.0:
                        entropy_sum -= mu[t] * np.log(mu[t])
            bound = uniforms[b, r] * total
            cumulative = 0.0
            token = 0
            for t in range(n_tokens - 1):
                cumulative += mu[t]
                if cumulative > bound:
                    break
                token += 1
            old = window[r, head]
            window[r, head] = token
            for s in range(n_premises):
                loglik[r, s] += log_emit[s, token] - log_emit[s, old]
            tokens[r] = token
        head = (head + 1) % length
    return head, entropy_sum


def tables(n_tokens: int, n_premises: int) -> np.ndarray:
    """(S, V) emission tables, every entry positive, rows summing to 1 (fixed seed)."""
    weights = np.random.default_rng(12345).uniform(0.2, 1.0, (n_premises, n_tokens))
    return weights / weights.sum(axis=1, keepdims=True)


def scenario(n_tokens: int, n_premises: int, length: int, replicates: int, steps: int):
    """The same premises as a scenario the kernel runs (one-state simulacra, one premise each)."""
    emit = tables(n_tokens, n_premises)
    names = [f"t{i}" for i in range(n_tokens)]
    return validate({
        "name": "bench-kernel", "vocabulary": {"tokens": names}, "context": {"length": length},
        "run": {"steps": steps, "replicates": replicates, "seed": 1},
        "simulacra": {f"s{i}": {"start": "q", "states": {"q": {"emit": dict(zip(names, map(float, emit[i])))}}}
                      for i in range(n_premises)},
        "premises": {f"p{i}": {"prior": 1.0 / n_premises, "cast": [f"s{i}"]} for i in range(n_premises)},
    })


def kernel_ns(n_tokens, n_premises, length, replicates, steps) -> float:
    """CPU ns per replicate-step of the compiled engine's ``engine.run`` (uniforms drawn first)."""
    model = EcologyModel(scenario(n_tokens, n_premises, length, replicates, steps), engine="compiled")
    assert model.engine.name == "compiled", model.engine_note
    uniforms = model.rng.random((steps, replicates))
    began = time.process_time()
    assert model.engine.run(uniforms, 0).done == steps
    return 1e9 * (time.process_time() - began) / (replicates * steps)


def reference_ns(n_tokens, n_premises, length, replicates, steps, entropy) -> float:
    """CPU ns per replicate-step of :func:`reference_steps`."""
    emit = tables(n_tokens, n_premises)
    log_emit = np.zeros((n_premises, n_tokens + 1))
    log_emit[:, :n_tokens] = np.log(emit)
    uniforms = np.random.default_rng(1).random((steps, replicates))
    window = np.full((replicates, length), n_tokens, dtype=np.int64)
    loglik = np.zeros((replicates, n_premises))
    log_prior = np.full(n_premises, -np.log(n_premises))
    tokens = np.zeros(replicates, dtype=np.int64)
    began = time.process_time()
    reference_steps(uniforms, log_prior, emit, log_emit, window, 0, loglik, tokens, entropy)
    return 1e9 * (time.process_time() - began) / (replicates * steps)


def slope(xs, ys) -> float:
    """Least-squares slope of ``ys`` against ``xs``."""
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--tokens", type=int, nargs="+", default=[2, 32, 128])
    parser.add_argument("--premises", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--length", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    R, n, k = args.replicates, args.steps, args.length
    kernel_ns(2, 2, k, 16, 2)  # compile (or load) both before timing
    reference_ns(2, 2, k, 16, 2, True)
    reference_ns(2, 2, k, 16, 2, False)
    print(f"{R} replicates x {n} steps, k = {k}, CPU ns per replicate-step, best of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'V':>5} {'S':>4} {'kernel':>10} {'ref+entropy':>12} {'ref':>10} {'kernel/ref+H':>13} {'kernel/ref':>11}")
    figures = {}
    for V in args.tokens:
        for S in args.premises:
            best = [np.inf, np.inf, np.inf]
            for _ in range(args.repeats):
                best[0] = min(best[0], kernel_ns(V, S, k, R, n))
                best[1] = min(best[1], reference_ns(V, S, k, R, n, True))
                best[2] = min(best[2], reference_ns(V, S, k, R, n, False))
            figures[V, S] = best
            print(f"{V:>5} {S:>4} {best[0]:>10.1f} {best[1]:>12.1f} {best[2]:>10.1f} {best[0] / best[1]:>13.2f} "
                  f"{best[0] / best[2]:>11.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    names = ("kernel", "ref+entropy", "ref")
    if len(args.tokens) > 1:
        for S in args.premises:
            slopes = [slope(args.tokens, [figures[V, S][i] for V in args.tokens]) for i in range(3)]
            print(f"per extra token at S = {S:>2}: " + ", ".join(f"{a} {b:.2f} ns" for a, b in zip(names, slopes))
                  + f"; kernel/ref+entropy {slopes[0] / slopes[1]:.2f}, kernel/ref {slopes[0] / slopes[2]:.2f}")
    if len(args.premises) > 1:
        for V in args.tokens:
            slopes = [slope(args.premises, [figures[V, S][i] for S in args.premises]) for i in range(3)]
            print(f"per extra premise at V = {V:>3}: " + ", ".join(f"{a} {b:.2f} ns" for a, b in zip(names, slopes))
                  + f"; kernel/ref+entropy {slopes[0] / slopes[1]:.2f}, kernel/ref {slopes[0] / slopes[2]:.2f}")


if __name__ == "__main__":
    main()
