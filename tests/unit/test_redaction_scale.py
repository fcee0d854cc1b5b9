"""Redaction at scale: registration is O(1) and compiles nothing, the registry is bounded, the
matcher's work does not grow with the number of secrets, and the call's own short keys are masked."""

from __future__ import annotations

import re
import traceback
import uuid

import pytest

from arun import redact as redact_mod
from arun.errors import InvokeAuthorizationError, InvokeError
from arun.protocols import openai_chat
from arun.redact import MASK, redact, register_secret, registered_count, secret_values, set_capacity


@pytest.fixture
def small_registry():
    """A registry of 1,000 values for the test, restored (and emptied of the test's values) afterwards."""
    saved = (redact_mod.capacity(), redact_mod._registry.copy(), dict(redact_mod._index))
    set_capacity(1000)
    try:
        yield
    finally:
        redact_mod._registry.clear()
        redact_mod._registry.update(saved[1])
        redact_mod._index.clear()
        redact_mod._index.update(saved[2])
        set_capacity(saved[0])


def _secrets(n: int) -> list[str]:
    return [f"tk-{uuid.uuid4().hex}" for _ in range(n)]


class _CountingIndex(dict):
    probes = 0

    def get(self, key, default=None):  # type: ignore[override]
        type(self).probes += 1
        return super().get(key, default)


@pytest.mark.parametrize("n", [1000, 5000])
def test_registration_compiles_no_regex(monkeypatch, small_registry, n):
    compiled = []
    real_compile, real_internal = re.compile, re._compile  # type: ignore[attr-defined]
    monkeypatch.setattr(re, "compile", lambda *a, **k: compiled.append(a) or real_compile(*a, **k))
    monkeypatch.setattr(re, "_compile", lambda *a, **k: compiled.append(a) or real_internal(*a, **k))
    values = _secrets(n)
    for value in values:
        register_secret(value)
        register_secret(value)  # the per-request path: already known
    assert compiled == []
    assert registered_count() == min(n, 1000)


def test_registry_never_exceeds_its_cap_and_forgets_the_oldest(small_registry):
    values = _secrets(5000)
    peak = 0
    for value in values:
        register_secret(value)
        peak = max(peak, registered_count())
    assert peak == 1000
    assert sum(len(bucket) for bucket in redact_mod._index.values()) == 1000  # the index is bounded too
    assert values[-1] not in redact(f"key {values[-1]} echoed")
    assert values[0] in redact(f"key {values[0]} echoed")  # forgotten: the LRU let it go


def test_a_value_in_use_survives_eviction(small_registry):
    set_capacity(3)
    a, b, c, d = _secrets(4)
    for value in (a, b, c, a, d):  # a is registered again by its next call
        register_secret(value)
    text = redact(f"{a} {b} {c} {d}")
    assert a not in text and c not in text and d not in text
    assert b in text


def test_known_value_registration_touches_no_index(small_registry):
    value = _secrets(1)[0]
    register_secret(value)
    index_before = dict(redact_mod._index)
    buckets_before = {k: id(v) for k, v in redact_mod._index.items()}
    register_secret(value)
    assert redact_mod._index == index_before
    assert {k: id(v) for k, v in redact_mod._index.items()} == buckets_before
    assert next(reversed(redact_mod._registry)) == value


def test_matcher_work_does_not_grow_with_the_number_of_secrets(monkeypatch, small_registry):
    set_capacity(10_000)
    text = (
        '{"error":{"message":"Incorrect API key provided: tk-notregistered0000000000000. You can find your API key at '
        'https://platform.example.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}'
    )
    probes = []
    for n in (10, 1000, 5000):
        for value in _secrets(n - registered_count()):
            register_secret(value)
        counting = _CountingIndex(redact_mod._index)
        monkeypatch.setattr(redact_mod, "_index", counting)
        _CountingIndex.probes = 0
        assert redact(text) == redact(text)
        probes.append(_CountingIndex.probes // 2)
        monkeypatch.setattr(redact_mod, "_index", dict(counting))
    assert probes[0] == probes[1] == probes[2]
    assert 0 < probes[0] < len(text)  # ordinary words (< 8 chars) are never probed


def test_registered_secret_found_wherever_it_is_a_token(small_registry):
    value = "Zq8/secret+value=42"  # delimiters inside the value do not hide it
    register_secret(value)
    texts = (f"key={value}", f'{{"k":"{value}"}}', f"Bearer {value}", f"https://h/v1/{value}/x", f"{value},{value}",
             f"(key: {value})", f"{value}-suffix", value)  # fmt: skip
    for text in texts:
        out = redact(text)
        assert value not in out and MASK in out, out


def test_values_shorter_than_8_are_not_registered(small_registry):
    register_secret("abc123")
    assert "abc123" in redact("the code abc123 is not a secret here")


def test_extra_values_of_any_length_are_masked():
    assert redact("key abc123 was rejected; abc123!", extra=("abc123",)) == f"key {MASK} was rejected; {MASK}!"
    assert redact("unchanged", extra=("",)) == "unchanged"  # an empty value masks nothing
    assert redact("ab12345678 ab12", extra=("ab12", "ab12345678")) == f"{MASK} {MASK}"  # longest first


def test_secret_values_takes_the_schema_secret_fields_only():
    creds = {"api_key": "abc123", "endpoint_url": "https://x", "org": "", "token": ["not", "text"], "other": "k"}
    assert secret_values(creds, ["api_key", "org", "token", "missing"]) == ("abc123",)
    assert secret_values(None, ["api_key"]) == ()


def test_short_key_echoed_in_a_401_body_is_masked_everywhere():
    key = "abc123"  # 6 characters: never in the registry
    body = b'{"error":{"message":"Incorrect API key provided: abc123.","type":"invalid_request_error","code":"invalid_api_key"}}'
    err = openai_chat.classify_error("openai", 401, {"x-request-id": "r1"}, body)
    assert isinstance(err, InvokeAuthorizationError)
    assert key in str(err) and key in (err.body or "")  # what the fault was
    err.redact_with(secret_values({"api_key": key, "endpoint_url": "https://api.example.com"}, ["api_key"]))
    try:
        raise err
    except InvokeError as caught:
        shown = [str(caught), caught.body or "", repr(caught), "".join(traceback.format_exception(caught)), str(caught.args)]
    for text in shown:
        assert key not in text, text
    assert MASK in str(err) and "invalid_api_key" in str(err.body)
    assert err.code == "invalid_api_key" and err.status == 401 and err.request_id == "r1"


def test_redact_with_scrubs_the_chained_cause():
    key = "k9x7pq"
    try:
        try:
            raise OSError(f"proxy said: bad key {key}")
        except OSError as low:
            raise InvokeError(f"[p] Error: {key}") from low
    except InvokeError as err:
        err.redact_with([key])
        text = "".join(traceback.format_exception(err))
    assert key not in text and "proxy said: bad key" in text
