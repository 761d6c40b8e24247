"""Language models as premises: ``mu(t | w)`` computed by a trained model from the whole window.

The reading protocol and conventions are :mod:`ecology.lm.base`'s; each kind of model is one
module that registers its class (:mod:`ecology.lm.registry`):

- ``table``: a CSV of conditionals, one row per context (:mod:`ecology.lm.table`);
- ``ngram``: an order-``n`` model over characters or words with interpolated Kneser-Ney or
  add-k smoothing, trained from a text (:mod:`ecology.lm.ngram`);
- ``transformer``: a small decoder-only transformer whose numpy forward pass gives every prefix
  conditional at once (:mod:`ecology.lm.transformer`);
- ``onnx``: any causal LM exported to ONNX, run with onnxruntime (:mod:`ecology.lm.onnx`).

:func:`load_model` builds one from a scenario's ``model = {kind = ..., ...}`` table
(:mod:`ecology.lm.files`); :mod:`ecology.lm.train` trains transformers and n-grams
(``ecology train``) and is not imported here. Importing the package registers every kind and
loads nothing beyond numpy and pydantic (onnxruntime is imported when an ONNX model is built).
"""

# importing a kind registers it; this order is the registry's (error messages, the docs' table of kinds)
from ecology.lm import table, ngram, transformer, onnx, pretrained  # noqa: F401, I001
from ecology.lm.base import LanguageModel
from ecology.lm.files import load_model
from ecology.lm.ngram import SHIPPED_TEXTS
from ecology.lm.registry import KINDS, kinds_table, model_file_keys, names_file

__all__ = ["KINDS", "SHIPPED_TEXTS", "LanguageModel", "kinds_table", "load_model", "model_file_keys", "names_file"]
