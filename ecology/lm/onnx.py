"""The ``onnx`` kind: any causal language model exported to ONNX, run with onnxruntime
(:class:`OnnxModel`; the optional extra ``[onnx]``, imported only when such a model is built)."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from ecology.errors import ScenarioError
from ecology.fields import Strict
from ecology.lm.base import SequenceModel, log_softmax, resolve
from ecology.lm.registry import register

MAX_ID = 2**31 - 1  # token ids are int32 or int64 inputs
QUIET = 4  # onnxruntime's log severity "fatal": nothing of its own reaches stderr


def onnxruntime_run_options():
    """Options of ``InferenceSession.run`` that keep onnxruntime's run-time errors off stderr (they raise)."""
    import onnxruntime

    options = onnxruntime.RunOptions()
    options.log_severity_level = QUIET
    return options


class OnnxSpec(Strict):
    """An ONNX premise's keys."""

    kind: Literal["onnx"] = Field(description="the kind")
    file: Annotated[str, Field(min_length=1)] = Field(description="the exported model (.onnx), relative to the scenario")
    bos: int = Field(ge=0, le=MAX_ID, description="the model's start-of-text token id (the law of the empty window "
                     "is the law after it)")
    token_ids: list[Annotated[int, Field(ge=0, le=MAX_ID)]] | None = Field(
        None, description="the model's id of each vocabulary token, in order; default 0 .. V-1")
    max_length: int | None = Field(None, ge=1, le=MAX_ID, description="the longest window the model reads; "
                                   "default no limit")


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
    spec_model = OnnxSpec
    docs_row = '`{kind = "onnx", file = "m.onnx", bos = ID, token_ids = [...], max_length = N}` | extra `[onnx]` (onnxruntime)'

    @classmethod
    def from_spec(cls, spec, tokens, base, field):
        path = resolve(spec.file, "file", base, field)
        try:
            import onnxruntime
        except ImportError:
            raise ScenarioError(f"{field}.kind", "onnx models need onnxruntime: pip install 'simulacra-ecology[onnx]'") from None
        token_ids = spec.token_ids if spec.token_ids is not None else list(range(len(tokens)))
        if len(token_ids) != len(tokens):
            raise ScenarioError(f"{field}.token_ids", f"{len(token_ids)} ids for {len(tokens)} vocabulary tokens; "
                                "give one model token id per vocabulary token")
        # fatal only: onnxruntime logs its errors too (a coloured line before ours); each one also raises, and
        # that exception becomes our one line
        onnxruntime.set_default_logger_severity(QUIET)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = QUIET
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            reason = " ".join(str(err).split())[:200]
            raise ScenarioError(f"{field}.file", f"{spec.file}: not a loadable ONNX model: {reason}") from None
        return cls(tokens, spec.file, session, spec.bos, token_ids, spec.max_length, field)

    def __init__(self, tokens, source, session, bos: int, token_ids: list[int], max_length: int | None, field="model"):
        super().__init__(tokens, source, field)
        self.session = session
        self.input = session.get_inputs()[0]
        self.output = session.get_outputs()[0].name
        self.dtype = np.int32 if "int32" in self.input.type else np.int64
        self.bos = bos
        self.token_ids = np.asarray(token_ids)
        self.limit = max_length
        self.run_options = onnxruntime_run_options()

    def max_length(self):
        return self.limit

    def run(self, ids: np.ndarray) -> np.ndarray:
        try:
            out = self.session.run([self.output], {self.input.name: ids.astype(self.dtype)}, self.run_options)[0]
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise self.error(f"onnxruntime failed on input of shape {ids.shape}: {str(err).splitlines()[0][:200]}") from None
        if out.dtype.kind not in "fiu":
            raise self.error(f"the model's output has dtype {out.dtype}; expected real logits")
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
        logits = logits[..., self.token_ids]
        self.check_logits(logits, ids)
        return log_softmax(logits)

    def check_logits(self, logits: np.ndarray, ids: np.ndarray) -> None:
        """Refuse logits that are no law: NaN or ``+inf`` anywhere, or a prefix after which every
        token's logit is ``-inf``; the error names the first such context (vocabulary tokens)."""
        bad = np.isnan(logits) | (logits == np.inf)
        bad = bad.any(axis=-1) | ~np.isfinite(logits).any(axis=-1)  # (B, m + 1): the law after each prefix
        if bad.any():
            row, prefix = np.argwhere(bad)[0]
            context = " ".join(self.tokens[t] for t in ids[row, :prefix])
            law = logits[row, prefix]
            what = "NaN" if np.isnan(law).any() else "+inf" if (law == np.inf).any() else "-inf for every token"
            shown = f"'{context}'" if context else "'' (the empty window)"
            raise self.error(f"the model's logits after context {shown} are {what}: no law; check the exported model")
