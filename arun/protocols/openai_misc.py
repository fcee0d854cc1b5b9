"""OpenAI wire formats besides chat: embeddings, audio (transcriptions, speech), moderations.

Pure functions (request bodies out, decoded results in), shared by every provider that
speaks these OpenAI endpoints (``openai``, ``openai_api_compatible``, ...).  Error
statuses are classified by :func:`arun.protocols.openai_chat.classify_error`.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import struct
import sys
from array import array
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from arun.errors import InvokeServerUnavailableError
from arun.protocols.openai_chat import _error_from_object, _ErrorObject

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "build_embedding_body",
    "parse_embedding_response",
    "decode_embedding",
    "EmbeddingResponse",
    "build_transcription_form",
    "parse_transcription",
    "audio_content_type",
    "build_speech_body",
    "build_moderation_body",
    "parse_moderation_response",
    "silent_wav",
]

# -- embeddings ---------------------------------------------------------------------------


def build_embedding_body(
    model: str,
    texts: list[str],
    *,
    encoding_format: str | None = "base64",
    dimensions: int | None = None,
    user: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """``POST /embeddings`` body; ``encoding_format=None`` leaves the field out (server default: float)."""
    body: dict[str, Any] = {"model": model, "input": texts}
    if encoding_format:
        body["encoding_format"] = encoding_format
    if dimensions:
        body["dimensions"] = dimensions
    if user:
        body["user"] = user
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


class _EmbeddingItem(msgspec.Struct):
    embedding: list[float] | str
    index: int | None = None


class _EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    total_tokens: int | None = None


class _EmbeddingResponse(msgspec.Struct):
    data: list[_EmbeddingItem] | None = None
    model: str | None = None
    usage: _EmbeddingUsage | None = None
    error: _ErrorObject | None = None


_embedding_decoder = msgspec.json.Decoder(_EmbeddingResponse)


class EmbeddingResponse(msgspec.Struct):
    """Decoded ``/embeddings`` response: vectors in input order, tokens when the server reported them."""

    embeddings: list[list[float]]
    model: str | None
    tokens: int | None


def decode_embedding(value: list[float] | str) -> list[float]:
    """A float list as is, or a base64 string of packed little-endian float32 values."""
    if isinstance(value, list):
        return value
    try:
        raw = base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InvokeServerUnavailableError(f"Server Unavailable Error, bad base64 embedding: {exc}") from None
    if len(raw) % 4:
        raise InvokeServerUnavailableError(
            f"Server Unavailable Error, base64 embedding of {len(raw)} bytes is not float32-aligned"
        )
    values = array("f")
    if values.itemsize == 4:
        values.frombytes(raw)
        if sys.byteorder != "little":
            values.byteswap()
        return values.tolist()
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))  # pragma: no cover - exotic platforms


def parse_embedding_response(provider: str, body: bytes, expected: int | None = None) -> EmbeddingResponse:
    """Vectors sorted by ``index``; raises a typed error for malformed bodies or a count mismatch."""
    try:
        response = _embedding_decoder.decode(body.strip())
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None
    if response.error is not None:
        raise _error_from_object(provider, response.error, None, {}, body)
    items = response.data or []
    if any(item.index is not None for item in items):
        items = sorted(items, key=lambda item: item.index if item.index is not None else 0)
    vectors = [decode_embedding(item.embedding) for item in items]
    if expected is not None and len(vectors) != expected:
        raise InvokeServerUnavailableError(
            f"[{provider}] Server Unavailable Error, {len(vectors)} embeddings returned for {expected} inputs"
        )
    usage = response.usage
    tokens = None
    if usage is not None:
        tokens = usage.total_tokens if usage.total_tokens is not None else usage.prompt_tokens
    return EmbeddingResponse(embeddings=vectors, model=response.model, tokens=tokens)


# -- audio: transcriptions -------------------------------------------------------------------

_AUDIO_TYPES = {
    ".mp3": "audio/mpeg",
    ".mpga": "audio/mpeg",
    ".mpeg": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".wav": "audio/wav",
    ".webm": "audio/webm",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".flac": "audio/flac",
}


def _sniff_extension(audio: bytes) -> str:
    if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE":
        return ".wav"
    if audio[:4] == b"fLaC":
        return ".flac"
    if audio[:4] == b"OggS":
        return ".ogg"
    if audio[:4] == b"\x1a\x45\xdf\xa3":
        return ".webm"
    if audio[4:8] == b"ftyp":
        return ".m4a"
    return ".mp3"


def audio_content_type(filename: str | None, audio: bytes = b"") -> tuple[str, str]:
    """``(filename, content type)`` for an upload: the caller's name, or one guessed from the bytes."""
    if not isinstance(filename, str):  # e.g. the int ``name`` of a file opened from a descriptor
        filename = None
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not name or "." not in name:
        name = (name or "audio") + _sniff_extension(audio)
    ext = "." + name.rsplit(".", 1)[-1].lower()
    ctype = _AUDIO_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return name, ctype


def build_transcription_form(
    model: str,
    audio: bytes,
    filename: str | None = None,
    *,
    response_format: str = "json",
    fields: Mapping[str, Any] | None = None,
) -> aiohttp.FormData:
    """``POST /audio/transcriptions`` multipart body: ``file`` (with name and type), ``model``, ``response_format``."""
    import aiohttp

    name, ctype = audio_content_type(filename, audio)
    form = aiohttp.FormData()
    form.add_field("file", audio, filename=name, content_type=ctype)
    form.add_field("model", model)
    form.add_field("response_format", response_format)
    for key, value in (fields or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            for item in value:
                form.add_field(f"{key}[]", str(item))
        else:
            form.add_field(key, str(value) if not isinstance(value, bool) else ("true" if value else "false"))
    return form


class _Transcription(msgspec.Struct):
    text: str | None = None
    error: _ErrorObject | None = None


_transcription_decoder = msgspec.json.Decoder(_Transcription)


def parse_transcription(provider: str, body: bytes, content_type: str | None = None) -> str:
    """The transcript from a ``json``/``verbose_json`` body, or a plain-text body as is."""
    stripped = body.strip()
    is_json = (content_type or "").startswith("application/json") or stripped[:1] == b"{"
    if is_json:
        try:
            response = _transcription_decoder.decode(stripped)
        except msgspec.DecodeError as exc:
            if (content_type or "").startswith("application/json"):
                raise InvokeServerUnavailableError(
                    f"[{provider}] Server Unavailable Error, malformed response: {exc}"
                ) from None
        else:
            if response.error is not None:
                raise _error_from_object(provider, response.error, None, {}, body)
            if response.text is None:
                raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, the response has no text")
            return response.text
    return body.decode("utf-8", "replace").strip()


def silent_wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    """A short, valid 16-bit mono PCM WAV of silence (for cheap credential checks)."""
    frames = max(1, int(seconds * rate))
    data = b"\x00\x00" * frames
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data),
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(data),
    )
    return header + data


# -- audio: speech ----------------------------------------------------------------------------


def build_speech_body(
    model: str,
    text: str,
    voice: str,
    *,
    response_format: str | None = "mp3",
    speed: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """``POST /audio/speech`` body (the response is raw audio bytes)."""
    body: dict[str, Any] = {"model": model, "input": text, "voice": voice}
    if response_format:
        body["response_format"] = response_format
    if speed is not None:
        body["speed"] = speed
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


# -- moderations ------------------------------------------------------------------------------


def build_moderation_body(model: str, texts: list[str]) -> bytes:
    """``POST /moderations`` body with ``input`` as a list of strings."""
    return msgspec.json.encode({"model": model, "input": list(texts)})


class _ModerationResult(msgspec.Struct):
    flagged: bool = False


class _ModerationResponse(msgspec.Struct):
    results: list[_ModerationResult] | None = None
    error: _ErrorObject | None = None


_moderation_decoder = msgspec.json.Decoder(_ModerationResponse)


def parse_moderation_response(provider: str, body: bytes) -> bool:
    """True when any result is flagged."""
    try:
        response = _moderation_decoder.decode(body.strip())
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None
    if response.error is not None:
        raise _error_from_object(provider, response.error, None, {}, body)
    if response.results is None:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, the response has no results")
    return any(result.flagged for result in response.results)
