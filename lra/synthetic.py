"""Synthetic diagnostic tasks (not part of LRA), NumPy only.

memory_task: the long-gap memory test of issue 6. The label is the first token; at least 500 noise tokens follow
(for length >= 501), so a model that reads its prediction at the last position must carry the first token across
the whole gap. Noise tokens never coincide with label tokens, so nothing after position 0 says anything about the
label.
"""
import numpy as np


def memory_task(n, length, n_classes, seed, *, n_noise_tokens=None):
    """n sequences of `length` tokens: [label token, noise, noise, ...] and the label.

    Token ids: 0 is padding (never used here: every sequence has the full length), 1..n_classes encode the label
    (token = label + 1), n_classes + 1 .. n_classes + n_noise_tokens are noise, drawn uniformly.
    n_noise_tokens: default n_classes. vocab_size = 1 + n_classes + n_noise_tokens.
    Returns {"inputs": int32 (n, length), "lengths": int32 (n,) all == length, "labels": int32 (n,)} with labels
    uniform over range(n_classes); a pure function of the arguments (numpy default_rng(seed)).
    Raises ValueError for n < 1, length < 2, n_classes < 2 or n_noise_tokens < 1.
    """
    n_noise_tokens = n_classes if n_noise_tokens is None else n_noise_tokens
    for name, value, low in (("n", n, 1), ("length", length, 2), ("n_classes", n_classes, 2),
                             ("n_noise_tokens", n_noise_tokens, 1)):
        if int(value) != value or value < low:
            raise ValueError(f"memory_task: {name} must be an int >= {low}; got {value!r}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    inputs = rng.integers(n_classes + 1, n_classes + 1 + n_noise_tokens, (n, length))
    inputs[:, 0] = labels + 1
    return {"inputs": inputs.astype(np.int32), "lengths": np.full(n, length, np.int32),
            "labels": labels.astype(np.int32)}


def memory_vocab_size(n_classes, n_noise_tokens=None):
    """The vocabulary size of memory_task's tokens (padding, label tokens, noise tokens)."""
    return 1 + n_classes + (n_classes if n_noise_tokens is None else n_noise_tokens)
