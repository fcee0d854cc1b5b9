import pytest

from arun import errors
from arun.protocols import anthropic_messages, jina, openai_chat
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
    assert class_for_status(529) is errors.InvokeOverloadedError
    assert class_for_status(503) is errors.InvokeServerUnavailableError
    assert class_for_status(403) is errors.InvokePermissionDeniedError
    assert class_for_status(401) is errors.InvokeAuthorizationError
    assert refine(errors.InvokeBadRequestError, "context_length_exceeded") is errors.InvokeContextLengthExceededError
    assert refine(errors.InvokeRateLimitError, "insufficient_quota") is errors.InvokeQuotaExhaustedError
    assert refine(errors.InvokeBadRequestError, "content_filter") is errors.InvokeContentFilteredError


# ---------------------------------------------------------------- error detail an operator needs (403, 529, code)


def test_refinements_sit_under_the_existing_classes():
    assert issubclass(errors.InvokePermissionDeniedError, errors.InvokeAuthorizationError)
    assert issubclass(errors.InvokeOverloadedError, errors.InvokeServerUnavailableError)
    err = build_error(errors.InvokePermissionDeniedError, "openai", 403, "not allowed")
    assert "403: not allowed" in str(err) and err.status == 403


@pytest.mark.parametrize(
    "status,error_type,cls",
    [
        (403, "permission_error", errors.InvokePermissionDeniedError),
        (529, "overloaded_error", errors.InvokeOverloadedError),
        (None, "overloaded_error", errors.InvokeOverloadedError),  # an error event inside a stream
        (401, "authentication_error", errors.InvokeAuthorizationError),
        (500, "api_error", errors.InvokeServerUnavailableError),
    ],
)
def test_anthropic_permission_and_overloaded_keep_their_type_as_code(status, error_type, cls):
    body = b'{"type":"error","error":{"type":"%s","message":"m"}}' % error_type.encode()
    if status is None:
        exc = anthropic_messages._stream_error("anthropic", body, anthropic_messages._error_decoder.decode(body).error)
    else:
        exc = anthropic_messages.classify_error("anthropic", status, {}, body)
    assert type(exc) is cls
    assert exc.code == error_type


@pytest.mark.parametrize(
    "status,body,cls,code",
    [
        (401, b'{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}',
         errors.InvokeAuthorizationError, "invalid_api_key"),
        (403, b'{"error":{"message":"Project does not have access","type":"invalid_request_error","code":"model_not_allowed"}}',
         errors.InvokePermissionDeniedError, "model_not_allowed"),
        (400, b'{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}',
         errors.InvokeContextLengthExceededError, "context_length_exceeded"),
        (400, b'{"error":{"code":"1261","message":"Prompt exceeds max length"}}', errors.InvokeContextLengthExceededError, "1261"),
        (529, b'{"error":{"message":"Overloaded","type":"overloaded_error"}}', errors.InvokeOverloadedError, "overloaded_error"),
        (503, b'{"error":{"message":"The engine is currently overloaded","type":"server_error"}}',
         errors.InvokeServerUnavailableError, "server_error"),  # the code decides, not the prose
        (400, b'{"detail":"bad"}', errors.InvokeBadRequestError, None),
    ],
)  # fmt: skip
def test_openai_family_keeps_the_provider_code(status, body, cls, code):
    exc = openai_chat.classify_error("openai", status, {}, body)
    assert type(exc) is cls
    assert exc.code == code
    assert exc.context()["code"] == code


def test_openai_stream_error_overloaded():
    exc = openai_chat._error_from_object("openai", openai_chat._ErrorObject(message="busy", type="overloaded"), None, {}, None)
    assert type(exc) is errors.InvokeOverloadedError and exc.code == "overloaded"


@pytest.mark.parametrize(
    "body",
    [
        b'{"detail":"Input text exceeds the maximum of 8192 tokens"}',
        b'{"detail":"Input length exceeds the model\'s maximum context length (8192 tokens)"}',
        b'{"error":{"message":"Text exceeds the limit of 512 tokens"}}',
        b'{"error":"input is too long for this model"}',
    ],
)
@pytest.mark.parametrize("status", [400, 413, 422])
def test_jina_shaped_context_length_errors(status, body):
    exc = jina.classify_error("jina", status, {}, body)
    assert type(exc) is errors.InvokeContextLengthExceededError, str(exc)
    assert exc.status == status


@pytest.mark.parametrize(
    "message",
    ["Request exceeds the maximum allowed number of bytes.", "max_tokens is too large: 5000", "messages: Field required"],
)
def test_other_bad_requests_stay_bad_requests(message):
    assert refine(errors.InvokeBadRequestError, message) is errors.InvokeBadRequestError


def test_stream_failure_attribute_defaults():
    err = errors.InvokeStreamInterruptedError("cut")
    assert err.partial_usage is None and err.delivered_chunks == 0 and err.trace is None and err.after_commit is False
    assert err.code is None
