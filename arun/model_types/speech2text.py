"""``Speech2TextModel``: audio in, transcript out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any, ClassVar

from arun.entities.model import ModelType
from arun.errors import ParameterValidationError
from arun.model_types.ai_model import AIModel
from arun.model_types.call_options import check_extras, use_extras

__all__ = ["Speech2TextModel"]


class Speech2TextModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.SPEECH2TEXT

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        file: IO[bytes] | bytes,
        user: str | None = None,
        *,
        filename: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> str:
        """Transcribe ``file`` (a binary file object or bytes; ``filename`` names bytes' format)."""
        extras = check_extras(extra_headers, extra_body)
        audio = self.read_audio(file)
        await self.require_schema(model, credentials)
        try:
            with use_extras(extras):
                return await self._invoke(model, credentials, audio, getattr(file, "name", None) or filename, user)
        except Exception as exc:
            error = self._transform_invoke_error(exc, model, credentials)
            if error is exc:
                raise
            raise error from exc

    @staticmethod
    def read_audio(file: Any) -> bytes:
        """The audio of ``file`` (bytes or a binary file object), or the typed error."""
        if isinstance(file, (bytes, bytearray, memoryview)):
            audio = bytes(file)
        elif hasattr(file, "read"):
            audio = file.read()
            if not isinstance(audio, bytes):
                raise ParameterValidationError("file should be opened in binary mode", parameter="file")
        else:
            raise ParameterValidationError("file should be bytes or a binary file object", parameter="file")
        if not audio:
            raise ParameterValidationError("file is empty", parameter="file")
        return audio

    async def _invoke(
        self, model: str, credentials: Mapping[str, Any], audio: bytes, filename: str | None, user: str | None
    ) -> str:
        raise NotImplementedError
