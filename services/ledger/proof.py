"""Offline verification of the ledger's tamper evidence: hash-chain links and Merkle inclusion proofs.

No I/O and nothing but ``hashlib``, so the operator CLI (and any auditor) can import it without the service.

Definitions (see README.md, "Tamper evidence"):
- ``entry_hash = SHA-256(previous_hash || canonical_entry)``; the first entry of a tenant links to 32 zero bytes.
- Blocks are Merkle trees over their entries' ``entry_hash`` values in sequence order, RFC 6962 / RFC 9162 style:
  ``leaf = SHA-256(0x00 || entry_hash)``, ``node = SHA-256(0x01 || left || right)``, and a tree of n > 1 leaves
  splits at the largest power of two below n.
- An audit path lists sibling hashes from the leaf up; :func:`verify_inclusion` is RFC 9162 §2.1.3.2.
"""

from __future__ import annotations

import hashlib

GENESIS_HASH = bytes(32)
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def entry_hash(previous_hash: bytes, canonical_entry: bytes) -> bytes:
    return hashlib.sha256(previous_hash + canonical_entry).digest()


def leaf_hash(entry_hash_value: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + entry_hash_value).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def verify_inclusion(
    entry_hash_value: bytes, leaf_index: int, leaf_count: int, audit_path: list[bytes], merkle_root: bytes
) -> bool:
    """True when ``entry_hash_value`` is leaf ``leaf_index`` of the ``leaf_count``-leaf tree with ``merkle_root``."""
    if leaf_index < 0 or leaf_index >= leaf_count:
        return False
    fn, sn = leaf_index, leaf_count - 1
    result = leaf_hash(entry_hash_value)
    for sibling in audit_path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == merkle_root


def verify_proof(
    canonical_entry: bytes,
    previous_hash: bytes,
    entry_hash_value: bytes,
    leaf_index: int,
    leaf_count: int,
    audit_path: list[bytes],
    merkle_root: bytes,
) -> bool:
    """Checks a whole InclusionProof: the entry's hash matches its canonical bytes and links to the previous hash,
    and the entry is in the sealed block's Merkle root."""
    if entry_hash(previous_hash, canonical_entry) != entry_hash_value:
        return False
    return verify_inclusion(entry_hash_value, leaf_index, leaf_count, audit_path, merkle_root)
