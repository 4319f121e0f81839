"""Byte and character encodings shared by the text tasks (Text: IMDB, Retrieval: AAN).

Two conventions (experiments/published/lra_data.md, "Two preprocessing conventions"):
- "bytes" (LRA): the UTF-8 bytes of the text are the tokens. Token id = byte value, so ids fit uint8; id 0 is
  <pad>, which a text never contains (a NUL byte in a text is an error). vocab_size 256, or 257 with <eos>.
- "chars" (S4/S5): Unicode characters, with a vocabulary built from the TRAINING texts (after truncation) keeping
  the characters seen at least min_freq times (S4/S5 use 15 for IMDB): <pad>=0, <unk>=1, <eos>=2, then the kept
  characters in code-point order, so ids never depend on set or dict iteration order.
An <eos>, when asked for, ends every sequence; truncation keeps max_len tokens in all, <eos> included.
"""

from __future__ import annotations

import collections
from typing import Iterable

import numpy as np

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
ENCODINGS = ("bytes", "chars")


def byte_vocabulary(append_eos: bool) -> list[str]:
    """<pad> (id 0), then byte b as '<0xBB>' at id b for b = 1..255, then <eos> (id 256) if asked."""
    return [PAD] + [f"<0x{b:02X}>" for b in range(1, 256)] + ([EOS] if append_eos else [])


def encode_bytes(raw: bytes, max_len: int, append_eos: bool) -> np.ndarray:
    """Token ids (int32) of a byte string: its first max_len bytes (max_len - 1 and <eos> with append_eos).

    Raises ValueError if the kept bytes contain a NUL (id 0 is padding).
    """
    keep = raw[: max_len - int(append_eos)]
    ids = np.frombuffer(keep, np.uint8).astype(np.int32)
    nul = keep.find(b"\0")
    if nul >= 0:
        raise ValueError(f"a NUL byte at byte {nul} (id 0 is padding)")
    return np.append(ids, 256) if append_eos else ids


def truncate_chars(text: str, max_len: int, append_eos: bool) -> str:
    """The part of a text that the "chars" encoding keeps."""
    return text[: max_len - int(append_eos)]


def count_chars(texts: Iterable[str]) -> collections.Counter:
    """Character counts over texts (already truncated with truncate_chars)."""
    counts: collections.Counter = collections.Counter()
    for text in texts:
        counts.update(text)
    return counts


class CharVocabulary:
    """<pad>, <unk>, <eos>, then every character with count >= min_freq in code-point order.

    encode(text) -> int32 ids; characters outside the vocabulary become <unk>.
    """

    def __init__(self, counts: collections.Counter, min_freq: int):
        self.min_freq = min_freq
        self.chars = sorted(c for c, n in counts.items() if n >= min_freq)
        self.tokens = [PAD, UNK, EOS] + self.chars
        self.pad_id, self.unk_id, self.eos_id = 0, 1, 2
        self._codes = np.array([ord(c) for c in self.chars], np.uint32)  # sorted, since chars are

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, max_len: int, append_eos: bool) -> np.ndarray:
        """Token ids of truncate_chars(text, ...) (+ <eos>), int32."""
        codes = np.frombuffer(truncate_chars(text, max_len, append_eos).encode("utf-32-le"), np.uint32)
        where = np.searchsorted(self._codes, codes)
        where = np.minimum(where, max(len(self._codes) - 1, 0))
        known = (self._codes[where] == codes) if len(self._codes) else np.zeros(len(codes), bool)
        ids = np.where(known, where + 3, self.unk_id).astype(np.int32)
        return np.append(ids, np.int32(self.eos_id)) if append_eos else ids

    def info(self) -> dict:
        """What the manifest records about the vocabulary."""
        return {"min_freq": self.min_freq, "n_chars": len(self.chars), "specials": [PAD, UNK, EOS],
                "order": "specials, then characters by code point"}
