"""Tokens per second of the ``gguf`` kind's llama forward pass (:mod:`ecology.lm.llama`) on
SmolLM2-135M, beside llama.cpp on the same file, tokens and threads.

Model: ``load_gguf("smollm2", ...)`` (SmolLM2-135M-Instruct, Q4_1, dequantised to float32, 513 MB),
after a fixed cached prefix (BOS + "Numbers:"). Tokens are drawn uniformly from the 49,152-token
vocabulary with a fixed seed. Each figure is the best of ``--repeat`` timings (one timing when a
case reads 4,096 tokens or more), so the figure least disturbed by other work on the machine; the
load average is printed beside each row, and ours and llama.cpp's rows of one case run in the same
invocation, so their ratio is within one run.

- reads (ours): ``Llama.extend`` on (B, k) fresh sequences after the cached prefix (the prefix's
  cache gathered into B rows, not timed), then the output layer: ``GgufModel.laws`` (logits,
  float64 log-softmax) at every position, over the full 49,152-token vocabulary and over the 10
  restricted digit tokens "0" .. "9", in chunks of 1,024 rows. Cases whose key/value cache exceeds
  ``--cache-gib`` are skipped (and listed).
- steps (ours): one token appended to each of B rows whose cache holds prefix + k positions (the
  rows are copies of one real read), then the law of each row: what ``GgufModel.read`` does per step
  under deletion "none".
- llama.cpp (llama-cpp-python run by ``--llama-python`` in a subprocess; skipped with a message when
  it is missing): the same B sequences in ``llama_decode`` calls of at most n_batch = 512 tokens,
  one sequence id per row (llama_batch with seq_ids, n_seq_max = B, kv_unified = false, keys and
  values float16 as llama.cpp's default), logits requested at every position (reads) or for every
  row (steps); the prefix is read once into sequence 0 and copied to the others
  (``llama_memory_seq_cp``), not timed. At B = 1 the reads are llama.cpp's prompt processing of k
  tokens and the steps its decoding of one token.

The ratio column is ours (full vocabulary) / llama.cpp tokens per second.

Usage: python benchmarks/bench_gguf.py [--batches 1 8 32 128 256] [--lengths 16 64 256]
       [--step-batches 1 8 32 128] [--threads 2] [--repeat 3] [--llama-python PATH]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

THREADS = argparse.ArgumentParser(add_help=False)
THREADS.add_argument("--threads", type=int, default=2)
# BLAS threads are fixed before numpy loads OpenBLAS
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(THREADS.parse_known_args()[0].threads)

import numpy as np  # noqa: E402
from timing import best_time  # noqa: E402

from ecology.lm.pretrained import GgufModel, gguf_path, load_gguf  # noqa: E402

PREFIX = "Numbers:"
DIGITS = [str(i) for i in range(10)]
CHUNK = 1024  # rows of the output layer at a time

WORKER = r'''
import json, sys, time
import llama_cpp as L

job = json.loads(sys.stdin.read())
L.llama_backend_init()
mp = L.llama_model_default_params()
mp.n_gpu_layers = 0
model = L.llama_model_load_from_file(job["path"].encode(), mp)
prefix, out = job["prefix"], []


def decode(ctx, batch, items, logits):
    for lo in range(0, len(items), 512):  # n_batch tokens per llama_decode
        part = items[lo:lo + 512]
        for i, (t, p, s) in enumerate(part):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, p, 1
            batch.seq_id[i][0] = s
            batch.logits[i] = logits
        batch.n_tokens = len(part)
        if L.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")
    L.llama_synchronize(ctx)


for case in job["cases"]:
    B, k, mode, tokens = case["B"], case["k"], case["mode"], case["tokens"]
    cp = L.llama_context_default_params()
    cp.n_ctx = B * (len(prefix) + k + 1) + 16
    cp.n_batch, cp.n_ubatch, cp.n_seq_max, cp.kv_unified = 512, 512, B, False
    cp.n_threads = cp.n_threads_batch = job["threads"]
    ctx = L.llama_init_from_model(model, cp)
    mem = L.llama_get_memory(ctx)
    batch = L.llama_batch_init(512, 0, 1)
    p = len(prefix)
    cached = prefix + (case["cached"] if mode == "step" else [])
    decode(ctx, batch, [(t, j, 0) for j, t in enumerate(cached)], False)
    for s in range(1, B):
        L.llama_memory_seq_cp(mem, 0, s, -1, -1)
    best = float("inf")
    for _ in range(case["repeat"]):
        if mode == "read":
            for s in range(B):
                L.llama_memory_seq_rm(mem, s, p, -1)
            items = [(tokens[s][j], p + j, s) for j in range(k) for s in range(B)]
        else:
            for s in range(B):
                L.llama_memory_seq_rm(mem, s, p + k, -1)
            items = [(tokens[s][0], p + k, s) for s in range(B)]
        began = time.perf_counter()
        decode(ctx, batch, items, True)
        best = min(best, time.perf_counter() - began)
    out.append({"B": B, "k": k, "mode": mode, "seconds": best})
    L.llama_batch_free(batch)
    L.llama_free(ctx)
print(json.dumps({"version": L.__version__, "results": out}))
'''


def output_time(model: GgufModel, hidden: np.ndarray, repeat: int) -> float:
    flat = hidden.reshape(-1, hidden.shape[-1])
    return best_time(lambda: [model.laws(flat[lo : lo + CHUNK]) for lo in range(0, len(flat), CHUNK)], repeat)


def llama_cpp(python: str, path: Path, prefix: list[int], cases: list[dict], threads: int) -> dict | None:
    if not Path(python).is_file():
        print(f"llama.cpp: {python} is missing; skipped (give --llama-python PATH)")
        return None
    job = {"path": str(path), "prefix": prefix, "threads": threads, "cases": cases}
    done = subprocess.run([python, "-c", WORKER], input=json.dumps(job), capture_output=True, text=True)
    if done.returncode != 0:
        print(f"llama.cpp: the worker failed ({done.returncode}): {done.stderr[-2000:]}")
        return None
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return {(r["mode"], r["B"], r["k"]): r["seconds"] for r in answer["results"]} | {"version": answer["version"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[THREADS])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128, 256])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--step-batches", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache-gib", type=float, default=2.0, help="skip reads whose key/value cache exceeds this")
    parser.add_argument("--llama-python", default="/work/llamacpp/venv/bin/python",
                        help="a Python with llama-cpp-python (a separate environment; not a dependency)")
    args = parser.parse_args()
    began = time.perf_counter()
    loaded = load_gguf("smollm2", Path("."), "model")
    net, c = loaded.network, loaded.network.config
    full = GgufModel.build({"kind": "gguf", "file": "smollm2", "prefix": PREFIX}, list(loaded.tokens), ".", "model")
    digits = GgufModel.build({"kind": "gguf", "file": "smollm2", "prefix": PREFIX}, DIGITS, ".", "model")
    prefix = [int(t) for t in full.start]
    p = len(prefix)
    print(f"SmolLM2-135M ({loaded.header['tensor_types']}) read and dequantised in {time.perf_counter() - began:.1f} s: "
          f"{net.nbytes / 1e6:.0f} MB float32; prefix {p} tokens; BLAS threads {args.threads}; "
          f"load {os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(0)
    start = net.new_cache(1, p)
    net.extend(np.array([prefix]), start)
    limit = args.cache_gib * 2**30
    reads = [(B, k) for k in args.lengths for B in args.batches if B * (p + k) * c.cache_bytes_per_token <= limit]
    skipped = [(B, k) for k in args.lengths for B in args.batches if (B, k) not in reads]
    if skipped:
        print(f"skipped (cache over {args.cache_gib:.1f} GiB): "
              + ", ".join(f"B = {B} k = {k} ({B * (p + k) * c.cache_bytes_per_token / 2**30:.1f} GiB)" for B, k in skipped))
    tokens = {case: rng.integers(0, c.n_vocab, size=(case[0], case[1])) for case in reads}
    steps = [(B, k) for k in args.lengths for B in args.step_batches if B * (p + k + 1) * c.cache_bytes_per_token <= limit]
    cached = {k: rng.integers(0, c.n_vocab, size=k) for k in args.lengths}
    new = {case: rng.integers(0, c.n_vocab, size=(case[0], 1)) for case in steps}

    def repeats(n):
        return 1 if n >= 4096 else args.repeat

    cases = [{"mode": "read", "B": B, "k": k, "repeat": repeats(B * k), "tokens": tokens[B, k].tolist()} for B, k in reads]
    cases += [{"mode": "step", "B": B, "k": k, "repeat": args.repeat, "cached": cached[k].tolist(),
               "tokens": new[B, k].tolist()} for B, k in steps]
    ours = {}
    for B, k in reads:
        def read():
            cache = start.gather(np.zeros(B, dtype=np.intp), p, p + k)
            t0 = time.perf_counter()
            hidden = net.extend(tokens[B, k], cache)
            return time.perf_counter() - t0, hidden
        seconds = []
        for _ in range(repeats(B * k)):
            t, hidden = read()
            seconds.append(t)
        ours["read", B, k] = (min(seconds), output_time(full, hidden, repeats(B * k)),
                              output_time(digits, hidden, repeats(B * k)), os.getloadavg()[0])
        print(f"  ours read B = {B:>3} k = {k:>3}: {B * k / ours['read', B, k][0]:8.0f} tokens/s (network only)", flush=True)
    for B, k in steps:
        one = start.gather(np.zeros(1, dtype=np.intp), p, p + k)
        net.extend(cached[k][None, :], one)
        cache = one.gather(np.zeros(B, dtype=np.intp), p + k, p + k + 1)

        def step():
            cache.length = p + k
            return net.extend(new[B, k], cache)
        hidden = step()
        ours["step", B, k] = (best_time(step, args.repeat), output_time(full, hidden, args.repeat),
                              output_time(digits, hidden, args.repeat), os.getloadavg()[0])
        print(f"  ours step B = {B:>3} k = {k:>3}: {B / ours['step', B, k][0]:8.0f} tokens/s (network only)", flush=True)
    load_before = os.getloadavg()[0]
    theirs = llama_cpp(args.llama_python, gguf_path("smollm2", Path("."), "model"), prefix, cases, args.threads) or {}
    version = theirs.pop("version", None)
    print(f"\nllama.cpp: {'llama-cpp-python ' + version if version else 'not run'} (load {load_before:.1f} before it, "
          f"{os.getloadavg()[0]:.1f} after)")
    print("tokens/s; ours: network, network + full-vocabulary law, network + 10-token law; load: at our row")
    print(f"{'':5} {'B':>4} {'k':>4} {'load':>5} {'ours':>8} {'+full':>8} {'+10':>8} {'llama.cpp':>10} {'ratio':>6}")
    rows = []
    for (mode, B, k), (network, law_full, law_digits, load) in ours.items():
        n = B * k if mode == "read" else B
        lc = n / theirs[mode, B, k] if (mode, B, k) in theirs else None
        with_full = n / (network + law_full)
        ratio = f"{with_full / lc:6.2f}" if lc else f"{'-':>6}"
        print(f"{mode:5} {B:>4} {k:>4} {load:>5.1f} {n / network:>8.0f} {with_full:>8.0f} "
              f"{n / (network + law_digits):>8.0f} {lc or float('nan'):>10.0f} {ratio}")
        rows.append({"mode": mode, "B": B, "k": k, "load": load, "ours": n / network, "ours_full": with_full,
                     "ours_10": n / (network + law_digits), "llama_cpp": lc})
    for mode in ("read", "step"):
        for label, keep in (("B >= 32", lambda B: B >= 32), ("B = 1", lambda B: B == 1)):
            pairs = [(r["ours_full"], r["llama_cpp"]) for r in rows if r["mode"] == mode and keep(r["B"]) and r["llama_cpp"]]
            if pairs:
                ratios = [a / b for a, b in pairs]
                print(f"ours (full law) / llama.cpp, {mode}s, {label}: geometric mean "
                      f"{np.exp(np.mean(np.log(ratios))):.2f} over {len(ratios)} cases (range {min(ratios):.2f} .. "
                      f"{max(ratios):.2f})")
    print(json.dumps(rows))


if __name__ == "__main__":
    sys.exit(main())
