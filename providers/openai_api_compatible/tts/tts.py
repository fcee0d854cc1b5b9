"""Text to speech through an OpenAI-compatible ``POST {endpoint_url}/audio/speech``; audio bytes streamed.

Voices come from the ``voices`` credential (comma-separated, the first one is the
default, ``alloy`` when unset). Output is mp3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.model_types.tts import TTSModel
from arun.protocols.openai_misc import build_speech_body
from arun.protocols.openai_chat import classify_error
from arun.providers.openai_api_compatible._common import (
    auth_headers,
    price_config,
    require_endpoint,
    url_for,
    wire_model,
    wrap_validation,
)
from arun.wire.client import StreamResponse

_LANGUAGES = ["en-US", "zh-Hans", "zh-Hant", "ja-JP", "ko-KR", "de-DE", "fr-FR", "es-ES", "it-IT", "pt-BR", "ru-RU"]


def voices_from(credentials: Mapping[str, Any]) -> list[str]:
    raw = credentials.get("voices")
    names = [v.strip() for v in raw.split(",")] if isinstance(raw, str) else []
    names = [v for v in names if v]
    return list(dict.fromkeys(names)) or ["alloy"]


def build_tts_schema(model: str, credentials: Mapping[str, Any]) -> AIModelEntity:
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


async def _audio(resp: StreamResponse) -> AsyncIterator[bytes]:
    async with resp:
        while True:
            data = await resp.read_chunk()
            if not data:
                break
            yield data


class OAICompatText2SpeechModel(TTSModel):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return build_tts_schema(model, credentials)

    async def _invoke(
        self, model: str, credentials: Mapping[str, Any], content_text: str, voice: str, user: str | None
    ) -> AsyncIterator[bytes]:
        body = build_speech_body(wire_model(model, credentials), content_text, voice, response_format="mp3")
        headers = auth_headers(credentials)
        headers["Accept"] = "application/octet-stream"
        resp = await self.http.stream(
            "POST",
            url_for(credentials, "/audio/speech"),
            headers=headers,
            data=body,
            error_mapper=self.error_mapper(classify_error),
        )
        return _audio(resp)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        require_endpoint(credentials)
        try:
            schema = build_tts_schema(model, credentials)
            stream = await self._invoke(model, credentials, "Hello", str(schema.property(ModelPropertyKey.DEFAULT_VOICE)), None)
            async for _ in stream:
                pass
        except Exception as exc:
            raise wrap_validation(exc) from exc
