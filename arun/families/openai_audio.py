"""The OpenAI audio families: ``POST /audio/transcriptions`` (multipart) and ``POST /audio/speech``.

Speech to text sends ``file``, ``model``, ``response_format=json`` and, when the credentials
set them (the compatible form), ``language`` and ``prompt`` (``initial_prompt``).  Text to
speech streams the audio bytes back as they arrive; the format is the model's ``audio_type``
(mp3 by default); a customizable TTS model takes its voices from the ``voices`` credential
(comma-separated, the first is the default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.families.base import FamilyModel
from arun.families.helpers import cred_text, price_config, validate_by
from arun.model_types.call_options import current_extras
from arun.model_types.speech2text import Speech2TextModel
from arun.model_types.tts import TTSModel
from arun.protocols.openai_chat import classify_error
from arun.protocols.openai_misc import (
    build_speech_body,
    build_transcription_form,
    parse_transcription,
    silent_wav,
)
from arun.wire.client import StreamResponse

__all__ = ["OpenAITranscription", "OpenAISpeech", "read_audio"]

_EXTENSIONS = "flac,mp3,mp4,mpeg,mpga,m4a,ogg,wav,webm"
_LANGUAGES = ["en-US", "zh-Hans", "zh-Hant", "ja-JP", "ko-KR", "de-DE", "fr-FR", "es-ES", "it-IT", "pt-BR", "ru-RU"]


async def read_audio(resp: StreamResponse) -> AsyncIterator[bytes]:
    async with resp:
        while True:
            chunk = await resp.read_chunk()
            if not chunk:
                return
            yield chunk


class OpenAITranscription(FamilyModel, Speech2TextModel):
    family = "openai_transcription"

    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        base = self.base_model_schema(model, credentials)
        if base is not None or not self.builds_schemas:
            return base
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.SPEECH2TEXT,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={
                ModelPropertyKey.FILE_UPLOAD_LIMIT.value: 25,
                ModelPropertyKey.SUPPORTED_FILE_EXTENSIONS.value: _EXTENSIONS,
            },
            parameter_rules=[],
        )

    async def _invoke(
        self, model: str, credentials: Mapping[str, Any], audio: bytes, filename: str | None, user: str | None
    ) -> str:
        fields: dict[str, Any] = {}
        language = cred_text(credentials, "language")
        if language:
            fields["language"] = language
        prompt = cred_text(credentials, "initial_prompt")
        if prompt:
            fields["prompt"] = prompt
        endpoint = self.endpoint
        extras = current_extras()
        if extras is not None and extras.body:
            fields.update(extras.body)
        # aiohttp sets the multipart boundary
        url, headers, wire_model = endpoint.resolve(credentials, model, content_type=None, extra=extras.headers if extras else None)
        form = build_transcription_form(wire_model, audio, filename, response_format="json", fields=fields)
        resp = await self.http.request(
            "POST",
            url,
            headers=headers,
            data=form,
            error_mapper=self.error_mapper(classify_error),
        )
        return parse_transcription(self.provider_name, resp.body, resp.headers.get("Content-Type"))

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        async def call() -> None:
            await self.require_schema(model, credentials)
            await self._invoke(model, credentials, silent_wav(), "check.wav", None)

        await validate_by(call, credentials, self.context.secret_fields)


def voices_from(credentials: Mapping[str, Any]) -> list[str]:
    raw = credentials.get("voices")
    names = [v.strip() for v in raw.split(",")] if isinstance(raw, str) else []
    return list(dict.fromkeys(v for v in names if v)) or ["alloy"]


class OpenAISpeech(FamilyModel, TTSModel):
    family = "openai_speech"

    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        base = self.base_model_schema(model, credentials)
        if base is not None or not self.builds_schemas:
            return base
        voices = voices_from(credentials)
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.TTS,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={
                ModelPropertyKey.DEFAULT_VOICE.value: voices[0],
                ModelPropertyKey.VOICES.value: [{"mode": v, "name": v, "language": list(_LANGUAGES)} for v in voices],
                ModelPropertyKey.WORD_LIMIT.value: 3500,
                ModelPropertyKey.AUDIO_TYPE.value: "mp3",
                ModelPropertyKey.MAX_WORKERS.value: 5,
            },
            parameter_rules=[],
            pricing=price_config(credentials, output=False),
        )

    async def _invoke(
        self, model: str, credentials: Mapping[str, Any], content_text: str, voice: str, user: str | None
    ) -> AsyncIterator[bytes]:
        schema = await self.get_model_schema(model, credentials)
        audio_type = schema.property(ModelPropertyKey.AUDIO_TYPE, "mp3") if schema else "mp3"
        endpoint = self.endpoint
        extras = current_extras()
        url, headers, wire_model = endpoint.resolve(credentials, model, extra=extras.headers if extras else None)
        headers["Accept"] = "application/octet-stream"
        resp = await self.http.stream(
            "POST",
            url,
            headers=headers,
            data=build_speech_body(
                wire_model, content_text, voice, response_format=str(audio_type), extra=extras.body if extras else None
            ),
            error_mapper=self.error_mapper(classify_error),
        )
        return read_audio(resp)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        async def call() -> None:
            schema = await self.require_schema(model, credentials)
            audio = await self._invoke(model, credentials, "Hello.", self._resolve_voice(schema, None), None)
            async for _ in audio:
                pass

        await validate_by(call, credentials, self.context.secret_fields)
