"""OpenAI text to speech: one ``/audio/speech`` request per piece, audio bytes streamed as they arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from arun.entities.model import ModelPropertyKey
from arun.errors import CredentialsValidateFailedError
from arun.model_types.tts import TTSModel
from arun.protocols.openai_chat import classify_error
from arun.protocols.openai_misc import build_speech_body
from arun.providers.openai._common import auth_headers, base_url
from arun.wire.client import StreamResponse


async def _read_audio(resp: StreamResponse) -> AsyncIterator[bytes]:
    async with resp:
        while True:
            chunk = await resp.read_chunk()
            if not chunk:
                return
            yield chunk


class OpenAIText2SpeechModel(TTSModel):
    async def _invoke(
        self, model: str, credentials: Mapping[str, Any], content_text: str, voice: str, user: str | None
    ) -> AsyncIterator[bytes]:
        schema = await self.get_model_schema(model, credentials)
        audio_type = schema.property(ModelPropertyKey.AUDIO_TYPE, "mp3") if schema else "mp3"
        headers = auth_headers(credentials)
        headers["Accept"] = "application/octet-stream"
        resp = await self.http.stream(
            "POST",
            base_url(credentials) + "/audio/speech",
            headers=headers,
            data=build_speech_body(model, content_text, voice, response_format=str(audio_type)),
            error_mapper=self.error_mapper(classify_error),
        )
        return _read_audio(resp)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        try:
            schema = await self.require_schema(model, credentials)
            audio = await self._invoke(model, credentials, "Hello.", self._resolve_voice(schema, None), None)
            async for _ in audio:
                pass
        except Exception as exc:
            raise CredentialsValidateFailedError(str(exc) or type(exc).__name__) from exc
