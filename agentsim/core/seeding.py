"""Seeding: every random choice of a run derives from its seed, by name, so runs are reproducible.

Request seeds are derived by hashing (run seed, step, agent, attempt) rather than by drawing from a shared
stream, so they do not depend on the order in which a batch is built or on how agents are sharded.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 31-bit seed that depends only on `seed` and `keys` (stable across processes and platforms)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(struct.pack("<Q", seed % 2**64))
    for k in keys:
        h.update(b"\x00" + str(k).encode())
    return int.from_bytes(h.digest(), "little") & 0x7FFF_FFFF


def make_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A numpy Generator for one named purpose of a run (the world, an agent, a recommender ...)."""
    return np.random.default_rng(np.random.SeedSequence(derive_seed(seed, *keys)))


def rng_state(rng: np.random.Generator) -> dict:
    """The bit-generator state, for checkpoints (JSON-serialisable)."""
    return rng.bit_generator.state


def restore_rng(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state
