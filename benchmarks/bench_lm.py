"""Model evaluations (windows read) per second for each kind of :mod:`ecology.lm`, and the time to
read every page-state of a 27-symbol, k = 4 chain.

Vocabulary: 27 symbols (``a`` .. ``z`` and ``_`` for whitespace), the pydoc_data text lowercased.
Models: ``ngram`` (order 5, Kneser-Ney, trained on that text), ``table`` (every context of at
most 4 tokens, filled with the n-gram's laws: 551,881 rows), ``transformer`` (2 layers, 2 heads,
d = 16, seeded random weights: speed does not depend on training; context = the window length),
``onnx`` (a one-node graph ``logits = E[ids]``: this measures onnxruntime's call and transfer
overhead, not a real network). Windows are drawn uniformly (full, no pads) with a fixed seed, so
at these sizes almost all rows are distinct and the de-duplication saves little; each figure is
the best of ``--repeat`` timings.

Then every page-state of the k = 4 chain (all canonical windows with 0 .. 4 tokens:
1 + 27 + 27^2 + 27^3 + 27^4 = 551,881) is read in batches of ``--chain-batch``, as the exact
analyser would; and (``--chain-build``) the exact chain of a scenario whose one premise is the
n-gram or the transformer is built end to end (``ecology.exact.build_chain``: enumeration, one
model read per page-state, the sparse matrix).

Usage: python benchmarks/bench_lm.py [--lengths 4 16 64] [--batches 1 256 16384] [--repeat 3]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import best_time

from ecology.lm import load_model
from ecology.lm.base import encode_contexts
from ecology.lm.ngram import NgramModel
from ecology.lm.table import TableModel
from ecology.lm.train import contexts_upto, initial_weights
from ecology.lm.transformer import TransformerConfig, TransformerModel

TOKENS = [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["_"]
V = len(TOKENS)


def ngram() -> NgramModel:
    spec = {"kind": "ngram", "text": "pydoc", "order": 5, "lowercase": True, "collapse": ["_"],
            "map": {"_": "<space>"} | {t: t for t in TOKENS[:-1]}}
    return load_model(spec, TOKENS)


def table(model: NgramModel) -> TableModel:
    windows = contexts_upto(V, 4)
    _, laws = model.read(windows)
    contexts = [[int(t) for t in w if t != V] for w in windows]
    return TableModel(TOKENS, "bench", laws, encode_contexts(contexts, V + 1), 4)


def transformer(n_ctx: int) -> TransformerModel:
    config = TransformerConfig(n_ctx=n_ctx, n_layer=2, n_head=2, d_model=16, d_mlp=64)
    return TransformerModel(TOKENS, "bench", config, initial_weights(config, V, 0))


def onnx_model(directory: Path):
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    embedding = np.random.default_rng(0).normal(size=(V + 1, V)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["E", "ids"], ["logits"], axis=0)], "bench",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "length", V])],
        initializer=[numpy_helper.from_array(embedding, "E")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), directory / "bench.onnx")
    return load_model({"kind": "onnx", "file": "bench.onnx", "bos": V}, TOKENS, directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256, 16384])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chain-batch", type=int, default=65536)
    parser.add_argument("--chain-build", action=argparse.BooleanOptionalAction, default=True,
                        help="also build the exact chain of a one-model scenario (n-gram, transformer)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    began = time.perf_counter()
    counted = ngram()
    print(f"trained the 27-symbol 5-gram in {time.perf_counter() - began:.2f} s")
    began = time.perf_counter()
    tabulated = table(counted)
    print(f"built the 551,881-row table in {time.perf_counter() - began:.2f} s")
    scratch = tempfile.TemporaryDirectory()
    exported = onnx_model(Path(scratch.name))
    rows = []
    for length in args.lengths:
        models = {"ngram": counted, "transformer": transformer(length)}
        if length <= tabulated.longest:
            models["table"] = tabulated
        if exported is not None:
            models["onnx"] = exported
        for batch in args.batches:
            windows = rng.integers(0, V, size=(batch, length))
            for kind, model in models.items():
                seconds = best_time(lambda: model.read(windows), args.repeat)
                rows.append({"kind": kind, "length": length, "batch": batch, "windows_per_s": batch / seconds})
                print(f"{kind:>12}  L = {length:>3}  batch = {batch:>6}: {batch / seconds:>12,.0f} windows/s")
    states = contexts_upto(V, 4)
    print(f"every page-state of the 27-symbol k = 4 chain: {len(states):,} windows, batches of {args.chain_batch:,}")
    chain = {"ngram": counted, "table": tabulated, "transformer": transformer(4)} | ({"onnx": exported} if exported else {})
    for kind, model in chain.items():
        def read_all():
            for lo in range(0, len(states), args.chain_batch):
                model.read(states[lo : lo + args.chain_batch])
        seconds = best_time(read_all, 1)
        rows.append({"kind": kind, "chain_states": len(states), "chain_s": seconds})
        print(f"{kind:>12}: {seconds:8.2f} s ({len(states) / seconds:>10,.0f} windows/s)")
    if args.chain_build:
        for kind, model in (("ngram", counted), ("transformer", transformer(4))):
            began = time.perf_counter()
            pc = build_model_chain(model, Path(scratch.name))
            seconds = time.perf_counter() - began
            rows.append({"kind": kind, "chain_build_states": pc.chain.n_states, "chain_build_transitions": int(pc.chain.P.nnz),
                         "chain_build_s": seconds})
            print(f"{kind:>12}: ecology's exact chain of a one-premise scenario, {pc.chain.n_states:,} page-states, "
                  f"{pc.chain.P.nnz:,} transitions, built in {seconds:.2f} s")
    print(json.dumps(rows))


def build_model_chain(model, directory: Path):
    """``build_chain`` of a scenario whose only premise is ``model`` (saved as ``.npz``), 27
    tokens, k = 4, empty prompt: every context of 0 .. 4 tokens is a page-state."""
    from ecology.core.compile import compile_scenario
    from ecology.exact.chain import build_chain
    from ecology.scenario import validate

    path = directory / f"{model.kind}.npz"
    model.save(path)
    scenario = validate({"name": "bench", "vocabulary": {"tokens": TOKENS, "pad": "<pad>"}, "context": {"length": 4},
                         "premises": {"model": {"prior": 1.0, "model": {"kind": model.kind, "file": str(path)}}}})
    return build_chain(compile_scenario(scenario))


if __name__ == "__main__":
    main()
