from arun import errors
from arun.protocols.errors import build_error, class_for_status, parse_retry_after, refine
from arun.redact import redact, register_secret


def test_dify_descriptions_and_str():
    assert str(errors.InvokeRateLimitError()) == "Rate Limit Error"
    assert str(errors.InvokeAuthorizationError()).startswith("Incorrect model credentials provided")
    assert issubclass(errors.InvokeError, ValueError)
    assert issubclass(errors.InvokeTimeoutError, TimeoutError)
    assert issubclass(errors.InvokeContextLengthExceededError, errors.InvokeBadRequestError)
    assert issubclass(errors.InvokeQuotaExhaustedError, errors.InvokeRateLimitError)


def test_key_shapes_and_registered_secrets_are_masked():
    register_secret("custom-secret-value-42")
    text = redact("Incorrect API key provided: sk-proj-abcdef123456. also custom-secret-value-42 and Bearer abc.def.ghi123")
    assert "abcdef123456" not in text and "custom-secret-value-42" not in text and "abc.def.ghi123" not in text
    assert "invalid_api_key" in redact("code invalid_api_key")  # error codes are not secrets


def test_error_repr_and_str_hide_secrets():
    register_secret("tenant-key-9876543")
    err = build_error(errors.InvokeAuthorizationError, "openai", 401, "bad key tenant-key-9876543", {"x-request-id": "req_1"}, b"tenant-key-9876543")
    for text in (str(err), repr(err), err.body or ""):
        assert "tenant-key-9876543" not in text
    assert err.request_id == "req_1" and err.status == 401
    assert "(401: bad key" in str(err)  # the cause is kept


def test_retry_after_forms():
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None


def test_status_classes_and_refinement():
    assert class_for_status(529) is errors.InvokeServerUnavailableError
    assert class_for_status(403) is errors.InvokeAuthorizationError
    assert refine(errors.InvokeBadRequestError, "context_length_exceeded") is errors.InvokeContextLengthExceededError
    assert refine(errors.InvokeRateLimitError, "insufficient_quota") is errors.InvokeQuotaExhaustedError
    assert refine(errors.InvokeBadRequestError, "content_filter") is errors.InvokeContentFilteredError
