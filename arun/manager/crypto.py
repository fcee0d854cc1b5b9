"""Per-tenant credential encryption, display obfuscation and the hidden placeholder.

Keys
----
Every tenant has an RSA-2048 key pair (as in Dify).  The public key is stored as
PEM (``tenants.encrypt_public_key``).  The private key is never written as
plaintext: it is serialised as PKCS#8 DER and sealed with AES-256-GCM under the
*master key*, with the tenant id bound as associated data::

    encrypted_private_key = "ARUNK1:" + base64( nonce(12) + AESGCM(master).encrypt(
                                nonce, pkcs8_der, b"arun-tenant-key:" + tenant_id) )

The master key is 32 random bytes from ``ARUN_MASTER_KEY`` (standard or
url-safe base64).  Without it, :func:`load_master_key` can generate one into a
0600 key file (the embedded SQLite default keeps it next to the database, and
logs a warning saying so) -- but only while no tenant is sealed under a key: with
sealed rows in the store a missing file is a :class:`MasterKeyError` naming it,
since a new key would make every existing tenant unreadable.

Secret blobs (each ``secret-input`` field; the stored JSON holds the base64 text)
-------------------------------------------------------------------------------
arun writes (``ARUN1``)::

    b"ARUN1:" + wrapped_key(256) + nonce(12) + ciphertext + tag(16)

    wrapped_key = RSA-OAEP(SHA-256, MGF1-SHA-256, empty label)(aes_key)   # aes_key: 32 random bytes
    ciphertext + tag = AES-256-GCM(aes_key).encrypt(nonce, utf8(secret), aad)
    aad = b"arun:v1:" + utf8(tenant_id)

so a blob moved to another tenant fails, even if that tenant held the same keys.

arun also reads Dify's two formats:

* ``HYBRID``: ``b"HYBRID:" + RSA-OAEP(SHA-1, MGF1-SHA-1)(aes128_key)(256) + nonce(16)
  + tag(16) + ciphertext`` with AES-EAX (see :mod:`arun.manager._eax`);
* legacy: the whole blob is ``RSA-OAEP(SHA-1, MGF1-SHA-1)(utf8(secret))``.

Any blob that does not decrypt raises :class:`CredentialDecryptError` (Dify
swallows the error and returns the raw ciphertext).  Decrypted values are
registered with :func:`arun.redact.register_secret`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from arun.errors import ArunError, CredentialsValidateFailedError
from arun.manager._eax import EaxTagError, eax_decrypt
from arun.redact import register_secret

__all__ = [
    "HIDDEN_VALUE",
    "MASTER_KEY_ENV",
    "CredentialDecryptError",
    "Credentials",
    "MasterKeyError",
    "TenantKey",
    "decrypt_credentials",
    "decrypt_token",
    "encrypt_credentials",
    "encrypt_token",
    "load_master_key",
    "merge_hidden",
    "obfuscate_credentials",
    "obfuscated_token",
]

log = logging.getLogger(__name__)

MASTER_KEY_ENV = "ARUN_MASTER_KEY"
HIDDEN_VALUE = "[__HIDDEN__]"

ARUN_PREFIX = b"ARUN1:"
HYBRID_PREFIX = b"HYBRID:"
_KEY_PREFIX = "ARUNK1:"
_RSA_BITS = 2048
_RSA_BYTES = _RSA_BITS // 8
_GCM_NONCE = 12
_EAX_NONCE = 16
_EAX_TAG = 16
_OAEP_SHA256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_OAEP_SHA1 = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # Dify's


class CredentialDecryptError(ArunError, ValueError):
    """A stored secret (or a tenant private key) could not be decrypted.

    The message names the tenant and field, never the blob or the secret.
    """


class MasterKeyError(ArunError, ValueError):
    """The master key is missing or malformed."""


# --------------------------------------------------------------------------- master key


def _decode_master(text: str) -> bytes:
    text = text.strip()
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decoder(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    raise MasterKeyError("master key must be 32 bytes, base64-encoded")


def load_master_key(key_file: str | os.PathLike[str] | None = None, *, generate: bool = True, sealed_tenants: int = 0) -> bytes:
    """The master key: ``$ARUN_MASTER_KEY``, else ``key_file``.

    A missing file is created (0600, random) when ``generate`` is true and ``sealed_tenants``
    (how many tenants the store holds sealed under *some* master key) is 0; with sealed
    tenants it is a :class:`MasterKeyError` that names the file.
    """
    env = os.environ.get(MASTER_KEY_ENV)
    if env:
        return _decode_master(env)
    if key_file is None:
        raise MasterKeyError(f"set {MASTER_KEY_ENV} (32 random bytes, base64)")
    path = Path(key_file)
    if path.exists():
        if path.stat().st_mode & 0o077:
            log.warning("master key file %s is readable by group/others; chmod 600 it", path)
        return _decode_master(path.read_text())
    if sealed_tenants:
        raise MasterKeyError(
            f"the master key file {path} is missing, but the store holds {sealed_tenants} "
            f"tenant{'s' if sealed_tenants != 1 else ''} whose private keys are sealed under a master key; "
            f"restore that file (or set {MASTER_KEY_ENV} to its contents). arun does not generate a new key "
            "here: it would make every existing tenant unreadable"
        )
    if not generate:
        raise MasterKeyError(f"no {MASTER_KEY_ENV} and no key file at {path}")
    return _create_key_file(path)


def _create_key_file(path: Path) -> bytes:
    raw = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(raw).decode() + "\n")
    log.warning(
        "generated a new arun master key at %s (mode 0600); back it up or set %s -- "
        "without it the stored credentials cannot be decrypted",
        path,
        MASTER_KEY_ENV,
    )
    return raw


# --------------------------------------------------------------------------- tenant keys


def _seal_private_key(tenant_id: str, key: rsa.RSAPrivateKey, master: bytes) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    nonce = os.urandom(_GCM_NONCE)
    sealed = AESGCM(master).encrypt(nonce, der, b"arun-tenant-key:" + tenant_id.encode())
    return _KEY_PREFIX + base64.b64encode(nonce + sealed).decode()


def _open_private_key(tenant_id: str, blob: str, master: bytes) -> rsa.RSAPrivateKey:
    try:
        if not blob.startswith(_KEY_PREFIX):
            raise ValueError("unknown private key format")
        raw = base64.b64decode(blob[len(_KEY_PREFIX) :], validate=True)
        der = AESGCM(master).decrypt(raw[:_GCM_NONCE], raw[_GCM_NONCE:], b"arun-tenant-key:" + tenant_id.encode())
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, InvalidTag, binascii.Error, TypeError):
        raise CredentialDecryptError(f"private key of tenant {tenant_id} does not decrypt (wrong master key?)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialDecryptError(f"private key of tenant {tenant_id} is not RSA")
    return key


class TenantKey:
    """One tenant's key pair; the private half is held decrypted in memory only."""

    __slots__ = ("tenant_id", "public_pem", "encrypted_private_key", "_public", "_private")

    def __init__(self, tenant_id: str, public_pem: str, encrypted_private_key: str | None, private: rsa.RSAPrivateKey | None = None) -> None:
        self.tenant_id = tenant_id
        self.public_pem = public_pem
        self.encrypted_private_key = encrypted_private_key
        try:
            key = serialization.load_pem_public_key(public_pem.encode())
        except (ValueError, TypeError, UnicodeEncodeError, AttributeError):
            raise CredentialDecryptError(f"public key of tenant {tenant_id} is corrupt (not a PEM public key)") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise CredentialDecryptError(f"public key of tenant {tenant_id} is not RSA")
        self._public = key
        self._private = private

    def __repr__(self) -> str:
        return f"TenantKey(tenant_id={self.tenant_id!r})"

    @classmethod
    def generate(cls, tenant_id: str, master: bytes) -> TenantKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
        return cls.from_private_key(tenant_id, private, master)

    @classmethod
    def from_private_key(cls, tenant_id: str, private: rsa.RSAPrivateKey, master: bytes) -> TenantKey:
        pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(tenant_id, pem.decode(), _seal_private_key(tenant_id, private, master), private)

    @classmethod
    def from_dify_pem(cls, tenant_id: str, private_pem: bytes, master: bytes) -> TenantKey:
        """Import Dify's ``privkeys/{tenant_id}/private.pem`` (sealed under ``master`` from then on)."""
        try:
            key = serialization.load_pem_private_key(private_pem, password=None)
        except (ValueError, TypeError):
            raise CredentialDecryptError(f"Dify private key of tenant {tenant_id} does not load (not an unencrypted PEM)") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CredentialDecryptError(f"Dify private key of tenant {tenant_id} is not RSA")
        return cls.from_private_key(tenant_id, key, master)

    @classmethod
    def load(cls, tenant_id: str, public_pem: str, encrypted_private_key: str, master: bytes) -> TenantKey:
        return cls(tenant_id, public_pem, encrypted_private_key, _open_private_key(tenant_id, encrypted_private_key, master))

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        if self._private is None:
            raise CredentialDecryptError(f"tenant {self.tenant_id}: private key not loaded")
        return self._private

    def _aad(self) -> bytes:
        return b"arun:v1:" + self.tenant_id.encode()

    def encrypt(self, plaintext: str) -> bytes:
        aes_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_GCM_NONCE)
        wrapped = self._public.encrypt(aes_key, _OAEP_SHA256)
        return ARUN_PREFIX + wrapped + nonce + AESGCM(aes_key).encrypt(nonce, plaintext.encode(), self._aad())

    def decrypt(self, blob: bytes) -> bytes:
        """Plaintext bytes of an ``ARUN1``, Dify ``HYBRID`` or legacy RSA blob; ValueError-family on failure."""
        priv = self.private_key
        if blob.startswith(ARUN_PREFIX):
            body = blob[len(ARUN_PREFIX) :]
            aes_key = priv.decrypt(body[:_RSA_BYTES], _OAEP_SHA256)
            rest = body[_RSA_BYTES:]
            return AESGCM(aes_key).decrypt(rest[:_GCM_NONCE], rest[_GCM_NONCE:], self._aad())
        if blob.startswith(HYBRID_PREFIX):
            body = blob[len(HYBRID_PREFIX) :]
            size = priv.key_size // 8
            aes_key = priv.decrypt(body[:size], _OAEP_SHA1)
            nonce, tag = body[size : size + _EAX_NONCE], body[size + _EAX_NONCE : size + _EAX_NONCE + _EAX_TAG]
            return eax_decrypt(aes_key, nonce, body[size + _EAX_NONCE + _EAX_TAG :], tag)
        return priv.decrypt(blob, _OAEP_SHA1)


# --------------------------------------------------------------------------- tokens and credentials


def encrypt_token(tenant: TenantKey, token: str, *, field: str | None = None) -> str:
    """One secret → base64 text of an ``ARUN1`` blob; :class:`CredentialsValidateFailedError` unless it is text."""
    if not isinstance(token, str):
        name = f"{field!r}" if field else "a secret credential"
        raise CredentialsValidateFailedError(f"{name} must be a string, not {type(token).__name__}")
    return base64.b64encode(tenant.encrypt(token)).decode()


def decrypt_token(tenant: TenantKey, token: str, *, field: str | None = None) -> str:
    """base64 blob → secret (registered for redaction); :class:`CredentialDecryptError` on failure."""
    where = f"tenant {tenant.tenant_id}" + (f", field {field!r}" if field else "")
    try:
        blob = base64.b64decode(token, validate=True)
        value = tenant.decrypt(blob).decode()
    except CredentialDecryptError:
        raise
    except (ValueError, TypeError, InvalidTag, EaxTagError, binascii.Error, UnicodeDecodeError):
        raise CredentialDecryptError(f"stored secret does not decrypt ({where})") from None
    register_secret(value)
    return value


def encrypt_credentials(tenant: TenantKey, credentials: Mapping[str, Any], secret_fields: Iterable[str]) -> dict[str, Any]:
    """A copy with every non-empty secret field encrypted; other fields stay clear."""
    out = dict(credentials)
    for name in set(secret_fields):
        value = out.get(name)
        if value is not None and value != "":
            out[name] = encrypt_token(tenant, value, field=name)
    return out


class Credentials(dict):  # type: ignore[type-arg,unused-ignore]
    """Decrypted credentials: a plain dict for the model code, with a repr that hides the values."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<Credentials fields={sorted(self)!r}>"

    __str__ = __repr__


def decrypt_credentials(tenant: TenantKey, credentials: Mapping[str, Any], secret_fields: Iterable[str]) -> dict[str, Any]:
    """A copy with every non-empty secret field decrypted (and registered for redaction)."""
    out = dict(credentials)
    for name in set(secret_fields):
        value = out.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise CredentialDecryptError(f"stored secret is not text (tenant {tenant.tenant_id}, field {name!r})")
        out[name] = decrypt_token(tenant, value, field=name)
    return out


def obfuscated_token(token: str) -> str:
    """Dify's display form: empty stays empty; ≤ 8 chars → 20 ``*``; else first 6 + 12 ``*`` + last 2."""
    if not token:
        return token
    if len(token) <= 8:
        return "*" * 20
    return token[:6] + "*" * 12 + token[-2:]


def obfuscate_credentials(credentials: Mapping[str, Any], secret_fields: Iterable[str]) -> dict[str, Any]:
    """A copy of decrypted credentials with each secret field in display form."""
    out = dict(credentials)
    for name in set(secret_fields):
        value = out.get(name)
        if isinstance(value, str):
            out[name] = obfuscated_token(value)
    return out


def merge_hidden(new: Mapping[str, Any], stored: Mapping[str, Any] | None, secret_fields: Iterable[str]) -> dict[str, Any]:
    """Replace ``"[__HIDDEN__]"`` secrets in ``new`` by the *decrypted* ``stored`` values.

    A hidden field without a stored value raises :class:`CredentialsValidateFailedError`
    (Dify silently keeps the placeholder as the secret).
    """
    out = dict(new)
    stored = stored or {}
    for name in set(secret_fields):
        if out.get(name) != HIDDEN_VALUE:
            continue
        if stored.get(name) in (None, "", HIDDEN_VALUE):
            raise CredentialsValidateFailedError(f"{name} was sent as {HIDDEN_VALUE} but no value is stored")
        out[name] = stored[name]
    return out
