"""Per-tenant credential encryption: round trip, isolation, Dify formats, obfuscation, hidden merge."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from arun.errors import CredentialsValidateFailedError
from arun.manager._eax import EaxTagError, eax_decrypt, eax_encrypt
from arun.manager.crypto import (
    HIDDEN_VALUE,
    MASTER_KEY_ENV,
    CredentialDecryptError,
    MasterKeyError,
    TenantKey,
    decrypt_credentials,
    decrypt_token,
    encrypt_credentials,
    encrypt_token,
    load_master_key,
    merge_hidden,
    obfuscate_credentials,
    obfuscated_token,
)
from arun.redact import redact

MASTER = os.urandom(32)
SECRET = "sk-test-THE-real-secret-0123456789"
SHA1_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


@pytest.fixture(scope="module")
def key_a() -> TenantKey:
    return TenantKey.generate("tenant-a", MASTER)


@pytest.fixture(scope="module")
def key_b() -> TenantKey:
    return TenantKey.generate("tenant-b", MASTER)


# ------------------------------------------------------------------ EAX


# Test vectors from Bellare, Rogaway, Wagner, "The EAX Mode of Operation" (2004), appendix.
EAX_VECTORS = [
    ("", "233952DEE4D5ED5F9B9C6D6FF80FF478", "62EC67F9C3A4A407FCB2A8C49031A8B3", "6BFB914FD07EAE6B",
     "E037830E8389F27B025A2D6527E79D01"),
    ("F7FB", "91945D3F4DCBEE0BF45EF52255F095A4", "BECAF043B0A23D843194BA972C66DEBD", "FA3BFD4806EB53FA",
     "19DD5C4C9331049D0BDAB0277408F67967E5"),
]  # fmt: skip


@pytest.mark.parametrize(("msg", "key", "nonce", "header", "expected"), EAX_VECTORS)
def test_eax_published_vectors(msg, key, nonce, header, expected):
    k, n, h, m = (bytes.fromhex(x) for x in (key, nonce, header, msg))
    ct, tag = eax_encrypt(k, n, m, h)
    assert (ct + tag).hex().upper() == expected
    assert eax_decrypt(k, n, ct, tag, h) == m
    with pytest.raises(EaxTagError):
        eax_decrypt(k, n, ct, bytes([tag[0] ^ 1]) + tag[1:], h)


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 64, 1000])
def test_eax_matches_pycryptodome(length):
    aes = pytest.importorskip("Crypto.Cipher.AES")  # test-time oracle only
    key, nonce, msg = os.urandom(16), os.urandom(16), os.urandom(length)
    ct, tag = aes.new(key, aes.MODE_EAX, nonce=nonce).encrypt_and_digest(msg)
    assert eax_encrypt(key, nonce, msg) == (ct, tag)
    assert eax_decrypt(key, nonce, ct, tag) == msg


# ------------------------------------------------------------------ ARUN1 round trip and isolation


def test_round_trip_and_format(key_a):
    token = encrypt_token(key_a, SECRET)
    blob = base64.b64decode(token)
    assert blob.startswith(b"ARUN1:") and len(blob) == 6 + 256 + 12 + len(SECRET.encode()) + 16
    assert SECRET not in token
    assert decrypt_token(key_a, token) == SECRET
    assert encrypt_token(key_a, SECRET) != token  # fresh key and nonce per blob


def test_round_trip_after_reload_from_stored_columns(key_a):
    token = encrypt_token(key_a, SECRET)
    loaded = TenantKey.load("tenant-a", key_a.public_pem, key_a.encrypted_private_key, MASTER)
    assert decrypt_token(loaded, token) == SECRET


def test_other_tenant_key_cannot_decrypt(key_a, key_b):
    token = encrypt_token(key_a, SECRET)
    with pytest.raises(CredentialDecryptError):
        decrypt_token(key_b, token)


def test_tenant_binding_even_with_leaked_keys(key_a):
    token = encrypt_token(key_a, SECRET)
    impostor = TenantKey("tenant-b", key_a.public_pem, None, key_a.private_key)  # same keys, other tenant
    with pytest.raises(CredentialDecryptError):
        decrypt_token(impostor, token)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # tag
        lambda b: b[:300] + bytes([b[300] ^ 1]) + b[301:],  # nonce / ciphertext
        lambda b: b[:20],  # truncated
        lambda b: b"ARUN1:" + os.urandom(40),
        lambda b: os.urandom(256),  # not a legacy blob either
        lambda b: b"HYBRID:" + b[6:],  # wrong format tag
    ],
)
def test_corrupt_blob_raises_typed_error(key_a, mutate):
    blob = base64.b64decode(encrypt_token(key_a, SECRET))
    with pytest.raises(CredentialDecryptError):
        decrypt_token(key_a, base64.b64encode(mutate(blob)).decode())


def test_not_base64_raises_typed_error(key_a):
    with pytest.raises(CredentialDecryptError):
        decrypt_token(key_a, "not base64 !!!")


def test_error_messages_never_hold_the_secret_or_blob(key_a, key_b):
    token = encrypt_token(key_a, SECRET)
    with pytest.raises(CredentialDecryptError) as info:
        decrypt_credentials(key_b, {"api_key": token}, {"api_key"})
    text = str(info.value) + repr(info.value)
    assert token not in text and token[:40] not in text and SECRET not in text and "api_key" in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


# ------------------------------------------------------------------ Dify formats


def _dify_hybrid(key: TenantKey, text: str) -> str:
    aes = pytest.importorskip("Crypto.Cipher.AES")  # the oracle builds the blob exactly as Dify does
    aes_key = os.urandom(16)
    cipher = aes.new(aes_key, aes.MODE_EAX)
    ct, tag = cipher.encrypt_and_digest(text.encode())
    enc_key = key.private_key.public_key().encrypt(aes_key, SHA1_OAEP)
    return base64.b64encode(b"HYBRID:" + enc_key + cipher.nonce + tag + ct).decode()


def test_reads_dify_hybrid_blob(key_a):
    assert decrypt_token(key_a, _dify_hybrid(key_a, SECRET)) == SECRET


def test_reads_dify_hybrid_blob_built_without_oracle(key_a):
    aes_key, nonce = os.urandom(16), os.urandom(16)
    ct, tag = eax_encrypt(aes_key, nonce, SECRET.encode())
    enc_key = key_a.private_key.public_key().encrypt(aes_key, SHA1_OAEP)
    token = base64.b64encode(b"HYBRID:" + enc_key + nonce + tag + ct).decode()
    assert decrypt_token(key_a, token) == SECRET


def test_tampered_dify_hybrid_blob_raises(key_a):
    blob = bytearray(base64.b64decode(_dify_hybrid(key_a, SECRET)))
    blob[-1] ^= 1
    with pytest.raises(CredentialDecryptError):
        decrypt_token(key_a, base64.b64encode(bytes(blob)).decode())


def test_reads_dify_legacy_rsa_blob(key_a):
    blob = key_a.private_key.public_key().encrypt(SECRET.encode(), SHA1_OAEP)
    assert decrypt_token(key_a, base64.b64encode(blob).decode()) == SECRET


def test_imports_dify_private_pem(key_a):
    pem = key_a.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    imported = TenantKey.from_dify_pem("tenant-a", pem, MASTER)
    assert decrypt_token(imported, _dify_hybrid(key_a, SECRET)) == SECRET


# ------------------------------------------------------------------ keys at rest


def test_private_key_is_not_plaintext_at_rest(key_a):
    stored = key_a.encrypted_private_key
    assert stored.startswith("ARUNK1:") and "PRIVATE KEY" not in stored
    raw = base64.b64decode(stored[len("ARUNK1:") :])
    with pytest.raises(ValueError):
        serialization.load_der_private_key(raw, password=None)
    assert "PUBLIC KEY" in key_a.public_pem and "tenant-a" in repr(key_a) and "ARUNK1" not in repr(key_a)


def test_private_key_needs_right_master_and_tenant(key_a):
    with pytest.raises(CredentialDecryptError):
        TenantKey.load("tenant-a", key_a.public_pem, key_a.encrypted_private_key, os.urandom(32))
    with pytest.raises(CredentialDecryptError):
        TenantKey.load("tenant-b", key_a.public_pem, key_a.encrypted_private_key, MASTER)


def test_master_key_from_env(monkeypatch, tmp_path):
    raw = os.urandom(32)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(raw).decode())
    assert load_master_key(tmp_path / "unused.key") == raw
    assert not (tmp_path / "unused.key").exists()
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(b"short").decode())
    with pytest.raises(MasterKeyError):
        load_master_key()


def test_master_key_file_generated_0600(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    path = tmp_path / "arun.db.key"
    with pytest.raises(MasterKeyError):
        load_master_key(path, generate=False)
    with pytest.raises(MasterKeyError):
        load_master_key()
    first = load_master_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 32
    assert "generated a new arun master key" in caplog.text
    assert load_master_key(path) == first


# ------------------------------------------------------------------ credential dicts


def test_encrypt_decrypt_credentials_only_secret_fields(key_a):
    creds = {"api_key": SECRET, "endpoint_url": "https://x", "org": "", "missing_secret": None}
    enc = encrypt_credentials(key_a, creds, {"api_key", "org", "missing_secret", "absent"})
    assert enc["endpoint_url"] == "https://x" and enc["org"] == "" and enc["missing_secret"] is None
    assert enc["api_key"] != SECRET and "absent" not in enc
    assert creds["api_key"] == SECRET  # caller's dict untouched
    dec = decrypt_credentials(key_a, enc, {"api_key", "org", "missing_secret", "absent"})
    assert dec == creds


def test_decrypted_secrets_are_registered_for_redaction(key_a):
    secret = "zz-unshaped-secret-" + os.urandom(6).hex()
    token = encrypt_token(key_a, secret)
    decrypt_token(key_a, token)
    assert secret not in redact(f"upstream said: bad key {secret}")


@pytest.mark.parametrize(
    ("value", "shown"),
    [("", ""), ("a", "*" * 20), ("12345678", "*" * 20), ("123456789", "123456" + "*" * 12 + "89"),
     ("sk-abcdefghijklmnop", "sk-abc" + "*" * 12 + "op")],
)  # fmt: skip
def test_obfuscation_rules(value, shown):
    assert obfuscated_token(value) == shown


def test_obfuscate_credentials():
    out = obfuscate_credentials({"api_key": SECRET, "url": "https://x", "empty": ""}, {"api_key", "empty"})
    assert out == {"api_key": SECRET[:6] + "*" * 12 + SECRET[-2:], "url": "https://x", "empty": ""}


def test_merge_hidden_keeps_stored_secret():
    stored = {"api_key": SECRET, "url": "https://old"}
    new = {"api_key": HIDDEN_VALUE, "url": "https://new"}
    assert merge_hidden(new, stored, {"api_key"}) == {"api_key": SECRET, "url": "https://new"}
    assert merge_hidden({"api_key": "sk-new"}, stored, {"api_key"}) == {"api_key": "sk-new"}
    assert new["api_key"] == HIDDEN_VALUE


def test_merge_hidden_without_stored_value_raises():
    with pytest.raises(CredentialsValidateFailedError):
        merge_hidden({"api_key": HIDDEN_VALUE}, {}, {"api_key"})
    with pytest.raises(CredentialsValidateFailedError):
        merge_hidden({"api_key": HIDDEN_VALUE}, None, {"api_key"})


# ------------------------------------------------------------------ typed errors on bad key material and bad input


def _ec_public_pem() -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.parametrize(
    "public_pem",
    [
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",  # valid base64, not a key
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        "P",
        "",
    ],
)
def test_corrupt_stored_public_key_raises_typed_error(key_a, public_pem):
    with pytest.raises(CredentialDecryptError) as info:
        TenantKey.load("tenant-a", public_pem, key_a.encrypted_private_key, MASTER)
    assert "tenant-a" in str(info.value) and "public key" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no raw library error attached


def test_non_rsa_public_key_raises_typed_error():
    with pytest.raises(CredentialDecryptError, match="tenant-x"):
        TenantKey("tenant-x", _ec_public_pem(), None)


def test_corrupt_dify_pem_raises_typed_error():
    with pytest.raises(CredentialDecryptError, match="tenant-a"):
        TenantKey.from_dify_pem("tenant-a", b"-----BEGIN RSA PRIVATE KEY-----\nxx\n-----END RSA PRIVATE KEY-----\n", MASTER)


@pytest.mark.parametrize("value", [["sk-a", "sk-b"], {"k": "v"}, 12345, b"sk-bytes"])
def test_non_text_secret_raises_validate_error_naming_the_field(key_a, value):
    with pytest.raises(CredentialsValidateFailedError) as info:
        encrypt_credentials(key_a, {"api_key": value, "endpoint_url": "https://x"}, {"api_key"})
    assert "api_key" in str(info.value) and type(value).__name__ in str(info.value)
    with pytest.raises(CredentialsValidateFailedError):
        encrypt_token(key_a, value)
