"""A Merkle tree hash over a stream of leaves, as Certificate Transparency defines it.

RFC 6962, section 2.1: the hash of an empty tree is SHA-256 of nothing; a leaf
hashes as ``SHA-256(0x00 || data)``, an inner node as ``SHA-256(0x01 || left ||
right)``, and a tree of ``n`` leaves splits after the largest power of two below
``n``. :class:`MerkleTree` adds leaves one at a time and keeps only one hash per
level (a compact range), so a million leaves need a few kilobytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleTree:
    """The RFC 6962 tree hash of the leaves added so far, in constant memory per level."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (height, hash): a perfect subtree each
        self.size = 0

    def add(self, data: bytes) -> None:
        """Append a leaf."""
        height, digest = 0, leaf_hash(data)
        stack = self._stack
        while stack and stack[-1][0] == height:
            digest = node_hash(stack.pop()[1], digest)
            height += 1
        stack.append((height, digest))
        self.size += 1

    def root(self) -> bytes:
        """The tree hash of every leaf added."""
        if not self._stack:
            return hashlib.sha256(b"").digest()
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962's recursive definition, for checking :class:`MerkleTree`."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(reference_root(leaves[:split]), reference_root(leaves[split:]))
