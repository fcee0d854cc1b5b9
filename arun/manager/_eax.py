"""AES-EAX on top of ``cryptography``'s AES-CTR and CMAC primitives.

Dify encrypts secrets with PyCryptodome's ``AES.MODE_EAX`` (16-byte nonce,
16-byte tag, no header).  ``cryptography`` has no EAX mode, so this module
builds it from its definition (Bellare, Rogaway, Wagner, 2004)::

    OMAC_t(X) = CMAC_K([t]_16 || X)          # [t]_16: 15 zero bytes, then byte t
    N' = OMAC_0(nonce);  H' = OMAC_1(header)
    C  = AES-CTR_K(initial counter block = N', 128-bit big-endian increment)(M)
    T  = N' xor H' xor OMAC_2(C)             # truncated to the tag length

It is used to READ Dify's ``HYBRID:`` blobs (and to build them in tests);
arun writes AES-GCM.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from arun.errors import ArunError

__all__ = ["EaxTagError", "eax_decrypt", "eax_encrypt"]

_BLOCK = 16


class EaxTagError(ArunError, ValueError):
    """The EAX tag did not verify: wrong key, or the data was altered."""


def _omac(key: bytes, t: int, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(bytes(_BLOCK - 1) + bytes([t]))
    mac.update(data)
    return mac.finalize()


def _ctr(key: bytes, counter: bytes, data: bytes) -> bytes:
    ctx = Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor()
    return ctx.update(data) + ctx.finalize()


def _tag(key: bytes, n: bytes, header: bytes, ciphertext: bytes) -> bytes:
    h = _omac(key, 1, header)
    c = _omac(key, 2, ciphertext)
    return bytes(a ^ b ^ d for a, b, d in zip(n, h, c))


def eax_encrypt(key: bytes, nonce: bytes, plaintext: bytes, header: bytes = b"", tag_len: int = 16) -> tuple[bytes, bytes]:
    """Return ``(ciphertext, tag)``."""
    n = _omac(key, 0, nonce)
    ciphertext = _ctr(key, n, plaintext)
    return ciphertext, _tag(key, n, header, ciphertext)[:tag_len]


def eax_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, header: bytes = b"") -> bytes:
    """Verify ``tag`` (2..16 bytes) and return the plaintext; :class:`EaxTagError` if it fails."""
    if not 2 <= len(tag) <= _BLOCK:
        raise EaxTagError("EAX tag has an invalid length")
    n = _omac(key, 0, nonce)
    expected = _tag(key, n, header, ciphertext)[: len(tag)]
    if not hmac.compare_digest(expected, tag):
        raise EaxTagError("EAX tag mismatch")
    return _ctr(key, n, ciphertext)
