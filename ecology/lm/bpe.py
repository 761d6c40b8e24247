"""Byte-level BPE, as a GGUF file's ``tokenizer.ggml.*`` keys describe it (:class:`ByteLevelBPE`).

Text becomes tokens in three stages, as in llama.cpp and Hugging Face ``tokenizers`` (which runs
them here):

1. the control tokens of the vocabulary (``<|im_start|>`` ...) are split out where they occur
   in the text (llama.cpp's ``parse_special``);
2. the pre-tokeniser splits the rest into words: for ``tokenizer.ggml.pre = "smollm"`` each digit
   alone, then GPT-2's pattern (``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``);
   for ``"gpt2"`` and ``"default"`` GPT-2's pattern alone;
3. each word's UTF-8 bytes are written as GPT-2's printable characters (``Ġ`` for a space,
   ``Ċ`` for a newline) and merged pair by pair in the order of ``tokenizer.ggml.merges`` (rank
   0 first) into tokens of ``tokenizer.ggml.tokens``.

Decoding concatenates the tokens' strings and maps the characters back to bytes (UTF-8, invalid
sequences shown as U+FFFD); control tokens decode to their own text.
"""

from __future__ import annotations

from functools import lru_cache

PRE_TOKENISERS = ("smollm", "gpt2", "default")


@lru_cache(maxsize=1)
def byte_characters() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (printable Latin-1 bytes map to
    themselves, the others to ``chr(256 + i)`` in order)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


class ByteLevelBPE:
    """The tokenizer of the module docstring over ``tokens`` (id = index), ``merges`` ("a b"
    strings by rank), ``control`` (ids of control tokens) and the pre-tokeniser ``pre``."""

    def __init__(self, tokens: list[str], merges: list[str], control: list[int], pre: str):
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        if pre not in PRE_TOKENISERS:
            raise ValueError(f"pre-tokeniser {pre!r} is not supported; supported: {list(PRE_TOKENISERS)}")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}
        self.control = set(control)
        pairs = [tuple(m.split(" ", 1)) for m in merges]
        tokenizer = Tokenizer(models.BPE(vocab=self.index, merges=pairs, ignore_merges=False))
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        if pre == "smollm":
            tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        else:
            tokenizer.pre_tokenizer = byte_level
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in sorted(self.control)])
        self._tokenizer = tokenizer
        self._characters = {c: b for b, c in byte_characters().items()}

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text`` (control tokens in the text recognised)."""
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def token_bytes(self, token: int) -> bytes:
        """The bytes a token stands for (a control token: its own UTF-8 text)."""
        text = self.tokens[token]
        if token in self.control:
            return text.encode("utf-8")
        characters = self._characters
        return bytes(characters[c] if c in characters else ord("?") for c in text)

    def decode(self, ids) -> str:
        """The text of a sequence of token ids (invalid UTF-8 shown as U+FFFD)."""
        return b"".join(self.token_bytes(int(t)) for t in ids).decode("utf-8", errors="replace")
