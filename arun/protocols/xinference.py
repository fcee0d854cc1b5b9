"""Xinference's model description, ``GET {server}/v1/models/{model_uid}``, as pure functions.

A running model's description says what it can do; the customizable schemas of the
``xinference`` provider are read from it (``providers/xinference``).  Fields
(``xorbitsai/inference``: ``xinference/model/llm/llm_family.py`` ``to_description``,
``model/embedding/core.py``, ``model/rerank/core.py``, ``model/audio/core.py``; the supervisor
adds ``replica``):

* every type: ``model_type`` (``LLM`` | ``embedding`` | ``rerank`` | ``audio`` | ``image`` ...),
  ``model_name``, ``address``, ``accelerators``;
* LLM: ``model_ability`` (``generate``, ``chat``, ``tools``, ``vision``, ``reasoning``,
  ``hybrid``, ``audio``, ``omni``), ``context_length``, ``model_family``, ``model_format``,
  ``model_size_in_billions``, ``quantization``;
* embedding: ``max_tokens`` (the longest input), ``dimensions``;
* audio: ``model_ability`` (``audio2text`` | ``text2audio`` ...), ``model_family``.

An unknown uid is a 400 ``{"detail": "Model not found in the model list, uid: ..."}``; a model
still launching is a 503 with ``Retry-After: 30`` (``xinference/api/restful_api.py``
``describe_model``); both arrive through the error mapper like any other status.
"""

from __future__ import annotations

from urllib.parse import quote

import msgspec

from arun.errors import CredentialsValidateFailedError, InvokeServerUnavailableError

__all__ = ["ModelDescription", "model_path", "parse_model_description", "check_model_uid"]

_FORBIDDEN = ("/", "?", "#")


class ModelDescription(msgspec.Struct, frozen=True):
    model_type: str | None = None
    model_name: str | None = None
    model_ability: list[str] | None = None
    model_family: str | None = None
    context_length: int | None = None
    max_tokens: int | None = None

    @property
    def abilities(self) -> frozenset[str]:
        return frozenset(self.model_ability or ())


_decoder = msgspec.json.Decoder(ModelDescription)


def check_model_uid(uid: object) -> str:
    """A model uid goes into the URL path: it must be a non-empty string without ``/ ? #``
    (the rule Dify's Xinference provider applies when credentials are saved)."""
    if not isinstance(uid, str) or not uid.strip():
        raise CredentialsValidateFailedError("Variable model_uid is required")
    uid = uid.strip()
    if any(c in uid for c in _FORBIDDEN):
        raise CredentialsValidateFailedError("Variable model_uid should not contain /, ? or #")
    return uid


def model_path(uid: str) -> str:
    """The description's path under the ``/v1`` base."""
    return "/models/" + quote(uid, safe="")


def parse_model_description(provider: str, body: bytes) -> ModelDescription:
    try:
        return _decoder.decode(body.strip())
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(
            f"[{provider}] Server Unavailable Error, malformed model description: {exc}"
        ) from None
