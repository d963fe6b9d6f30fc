"""Seed 001: read a padded word character by character, regress its word vector (MSE).

Words are random letter strings (3 to 10 letters, letters drawn with a skewed frequency as
in real text), padded with `$` to `seq_len`: `football$$$$`. A word's target vector is the
normalised sum of fixed random embeddings of its character bigrams (with `^`/`$` word
boundaries), so it is a deterministic, learnable function of the characters, as word2vec
vectors of related spellings partly are. Input: one-hot characters, a channel for each letter
and one for the `$` pad (rnnsweep.jobs.shapes.WORD_CHARACTERS); `^` marks the word start in
bigrams only.
"""

from __future__ import annotations

import itertools

import numpy as np

from rnnsweep.jobs.config import DataConfig
from rnnsweep.jobs.shapes import KIND, WORD_CHARACTERS, output_size
from rnnsweep.jobs.tasks import TaskData, split_rngs

LETTERS, PAD = WORD_CHARACTERS[:-1], WORD_CHARACTERS[-1]  # a to z, and `$`
ALPHABET = WORD_CHARACTERS + "^"  # bigram characters: the input channels, then the word-start mark
WORD_LENGTH = (3, 10)
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def _letter_weights() -> np.ndarray:
    weights = 1.0 / np.arange(1, len(LETTERS) + 1) ** 0.8  # Zipf-like letter frequencies
    return weights / weights.sum()


def random_words(n: int, max_len: int, rng: np.random.Generator) -> list[str]:
    longest = max(WORD_LENGTH[0], min(WORD_LENGTH[1], max_len))
    lengths = rng.integers(WORD_LENGTH[0], longest + 1, size=n)
    letters = np.array(list(LETTERS))
    return ["".join(rng.choice(letters, size=k, p=_letter_weights())) for k in lengths]


def bigram_table(config: DataConfig) -> np.ndarray:
    """One random vector per character bigram, fixed by the data seed."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))
    return rng.normal(size=(len(ALPHABET), len(ALPHABET), config.target_dim))


def target_vector(word: str, table: np.ndarray) -> np.ndarray:
    chars = f"^{word}$"
    vec = sum(table[_INDEX[a], _INDEX[b]] for a, b in itertools.pairwise(chars))
    return vec / np.linalg.norm(vec)


def encode(words: list[str], seq_len: int) -> np.ndarray:
    x = np.zeros((len(words), seq_len, len(WORD_CHARACTERS)), dtype=np.float32)
    for row, word in enumerate(words):
        padded = word[:seq_len].ljust(seq_len, PAD)
        x[row, np.arange(seq_len), [_INDEX[c] for c in padded]] = 1.0
    return x


def generate(n: int, config: DataConfig, table: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    words = random_words(n, config.seq_len, rng)
    y = np.stack([target_vector(w, table) for w in words]).astype(np.float32)
    return encode(words, config.seq_len), y


def make(config: DataConfig) -> TaskData:
    train_rng, val_rng = split_rngs(config.seed)
    table = bigram_table(config)
    x_train, y_train = generate(config.n_train, config, table, train_rng)
    x_val, y_val = generate(config.n_val, config, table, val_rng)
    return TaskData(x_train, y_train, x_val, y_val, KIND["word_vectors"], output_size("word_vectors", config))
