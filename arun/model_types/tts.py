"""``TTSModel``: text in, an async stream of audio bytes out.

Long texts are split into sentences packed up to the model's ``word_limit``;
pieces are synthesised with at most ``max_workers`` requests in flight and
streamed back in order.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from arun.entities.model import AIModelEntity, ModelPropertyKey, ModelType
from arun.errors import ParameterValidationError
from arun.model_types.ai_model import AIModel
from arun.model_types.call_options import CallExtras, check_extras, use_extras

__all__ = ["TTSModel", "split_text_into_sentences"]

_SENTENCE_END = re.compile(r"(?<=[。.!?！？])")


def split_text_into_sentences(text: str, max_length: int = 2000) -> list[str]:
    """Pack sentences into pieces of at most ``max_length`` characters (a longer sentence is cut)."""
    pieces: list[str] = []
    current = ""
    for sentence in filter(None, _SENTENCE_END.split(text)):
        while len(sentence) > max_length:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:max_length])
            sentence = sentence[max_length:]
        if len(current) + len(sentence) > max_length:
            pieces.append(current)
            current = sentence
        else:
            current += sentence
    if current.strip():
        pieces.append(current)
    return [p for p in pieces if p.strip()]


class TTSModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.TTS

    async def invoke(
        self,
        model: str,
        tenant_id: str | None,
        credentials: Mapping[str, Any],
        content_text: str,
        voice: str | None,
        user: str | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[bytes]:
        """Synthesise ``content_text``; the first request is made before this returns (errors surface here)."""
        extras = check_extras(extra_headers, extra_body)
        if not isinstance(content_text, str) or not content_text.strip():
            raise ParameterValidationError("content_text should be a non-empty string", parameter="content_text")
        schema = await self.require_schema(model, credentials)
        voice = self._resolve_voice(schema, voice)
        limit = int(schema.property(ModelPropertyKey.WORD_LIMIT, 3500))
        workers = max(1, int(schema.property(ModelPropertyKey.MAX_WORKERS, 3)))
        pieces = split_text_into_sentences(content_text, limit)
        try:
            with use_extras(extras):
                first = await self._invoke(model, credentials, pieces[0], voice, user)
        except Exception as exc:
            error = self._transform_invoke_error(exc, model, credentials)
            if error is exc:
                raise
            raise error from exc
        return self._stream(model, credentials, pieces, voice, user, first, workers, extras)

    async def _stream(
        self,
        model: str,
        credentials: Mapping[str, Any],
        pieces: list[str],
        voice: str,
        user: str | None,
        first: AsyncIterator[bytes],
        workers: int,
        extras: CallExtras | None = None,
    ) -> AsyncIterator[bytes]:
        gate = asyncio.Semaphore(workers)

        async def fetch(piece: str) -> bytes:
            async with gate:
                return b"".join([chunk async for chunk in await self._invoke(model, credentials, piece, voice, user)])

        with use_extras(extras):  # the tasks copy the context: the later pieces carry the extras too
            later = [asyncio.ensure_future(fetch(p)) for p in pieces[1:]]
        try:
            async for chunk in first:
                yield chunk
            for task in later:
                audio = await task
                for i in range(0, len(audio), 4096):
                    yield audio[i : i + 4096]
        except Exception as exc:
            error = self._transform_invoke_error(exc, model, credentials)
            if error is exc:
                raise
            raise error from exc
        finally:
            for task in later:
                task.cancel()
            closer = getattr(first, "aclose", None)
            if closer is not None:
                await closer()

    async def _invoke(
        self, model: str, credentials: Mapping[str, Any], content_text: str, voice: str, user: str | None
    ) -> AsyncIterator[bytes]:
        """Open one synthesis request and return its audio byte stream (status already checked)."""
        raise NotImplementedError

    async def get_tts_model_voices(
        self, model: str, credentials: Mapping[str, Any], language: str | None = None
    ) -> list[dict[str, str]]:
        schema = await self.require_schema(model, credentials)
        voices = schema.property(ModelPropertyKey.VOICES, []) or []
        out = [
            {"name": v["name"], "value": v["mode"]}
            for v in voices
            if isinstance(v, dict) and (not language or language in (v.get("language") or []))
        ]
        if not out:
            raise ParameterValidationError("this model does not support voice", parameter="voice")
        return out

    def _resolve_voice(self, schema: AIModelEntity, voice: str | None) -> str:
        """An unknown or missing voice becomes the model's default voice (Dify's behaviour)."""
        voices = schema.property(ModelPropertyKey.VOICES, []) or []
        modes = {v.get("mode") for v in voices if isinstance(v, dict)}
        if voice and (voice in modes or not modes):
            return voice
        default = schema.property(ModelPropertyKey.DEFAULT_VOICE)
        if not default:
            raise ParameterValidationError(f"voice {voice!r} is not supported by {schema.model}", parameter="voice")
        return str(default)
