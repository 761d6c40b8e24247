"""The ``onnx`` kind: any causal language model exported to ONNX, run with onnxruntime
(:class:`OnnxModel`; the optional extra ``[onnx]``, imported only when such a model is built)."""

from __future__ import annotations

import numpy as np

from ecology.errors import ScenarioError
from ecology.lm.base import SequenceModel, log_softmax, number, resolve
from ecology.lm.registry import register


@register
class OnnxModel(SequenceModel):
    """A causal LM exported to ONNX, run with onnxruntime (optional extra ``[onnx]``).

    The graph's first input takes token ids (batch, length) (int64 or int32); its first output
    gives logits (batch, length, V_model) (the law after every prefix) or (batch, V_model) (the
    law after the whole input only, then the model is run once per prefix length). Sequences are
    ``[bos] + ids``; ``token_ids`` maps the vocabulary to the model's ids (default ``0 .. V-1``),
    and the law is the model's restricted to those ids and renormalised:
    ``mu(t | h) = softmax(logits[token_ids])[t]``.
    """

    kind = "onnx"
    keys = frozenset({"kind", "file", "bos", "token_ids", "max_length"})
    docs_row = '`{kind = "onnx", file = "m.onnx", bos = ID, token_ids = [...], max_length = N}` | extra `[onnx]` (onnxruntime)'

    @classmethod
    def build(cls, spec, tokens, base, field):
        path = resolve(spec, "file", base, field)
        try:
            import onnxruntime
        except ImportError:
            raise ScenarioError(f"{field}.kind", "onnx models need onnxruntime: pip install 'simulacra-ecology[onnx]'") from None
        bos = number(spec, "bos", None, field, 0, 2**31 - 1, integer=True) if "bos" in spec else None
        if bos is None:
            raise ScenarioError(f"{field}.bos", "give the model's start-of-text token id "
                                "(the law of the empty window is the law after it)")
        token_ids = spec.get("token_ids", list(range(len(tokens))))
        if (not isinstance(token_ids, list) or len(token_ids) != len(tokens)
                or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in token_ids)):
            raise ScenarioError(f"{field}.token_ids",
                                f"expected {len(tokens)} non-negative model token ids, one per vocabulary token")
        max_length = number(spec, "max_length", None, field, 1, 2**31 - 1, integer=True) if "max_length" in spec else None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            reason = str(err).splitlines()[0][:200]
            raise ScenarioError(f"{field}.file", f"{spec['file']}: not a loadable ONNX model: {reason}") from None
        return cls(tokens, spec["file"], session, bos, token_ids, max_length, field)

    def __init__(self, tokens, source, session, bos: int, token_ids: list[int], max_length: int | None, field="model"):
        super().__init__(tokens, source, field)
        self.session = session
        self.input = session.get_inputs()[0]
        self.output = session.get_outputs()[0].name
        self.dtype = np.int32 if "int32" in self.input.type else np.int64
        self.bos = bos
        self.token_ids = np.asarray(token_ids)
        self.limit = max_length

    def max_length(self):
        return self.limit

    def run(self, ids: np.ndarray) -> np.ndarray:
        try:
            out = self.session.run([self.output], {self.input.name: ids.astype(self.dtype)})[0]
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise self.error(f"onnxruntime failed on input of shape {ids.shape}: {str(err).splitlines()[0][:200]}") from None
        if out.ndim not in (2, 3) or out.shape[0] != len(ids) or (out.ndim == 3 and out.shape[1] != ids.shape[1]):
            raise self.error(f"output shape {out.shape} for input {ids.shape}; expected (batch, length, V) or (batch, V)")
        if out.shape[-1] <= self.token_ids.max():
            raise self.error(f"the model has {out.shape[-1]} outputs but token_ids go up to {self.token_ids.max()}")
        return out.astype(np.float64)

    def forward(self, ids):
        start = np.full((len(ids), 1), self.bos, dtype=np.int64)
        model_ids = np.concatenate([start, self.token_ids[ids]], axis=1) if ids.shape[1] else start
        out = self.run(model_ids)
        if out.ndim == 3:
            logits = out
        else:  # last-position output only: one run per prefix
            logits = np.stack([out if j == ids.shape[1] else self.run(model_ids[:, : j + 1])
                               for j in range(ids.shape[1] + 1)], axis=1)
        return log_softmax(logits[..., self.token_ids])
