"""``ModerationModel``: True when the text is flagged; long texts are checked in slices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from arun.entities.model import ModelPropertyKey, ModelType
from arun.errors import ParameterValidationError
from arun.model_types._batching import batched
from arun.model_types.ai_model import AIModel
from arun.model_types.call_options import check_extras, use_extras

__all__ = ["ModerationModel"]


class ModerationModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.MODERATION

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        text: str,
        user: str | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> bool:
        """Slice ``text`` into ``max_characters_per_chunk`` pieces, send ``max_chunks`` per request."""
        extras = check_extras(extra_headers, extra_body)
        if not isinstance(text, str):
            raise ParameterValidationError("text should be a string", parameter="text")
        schema = await self.require_schema(model, credentials)
        if not text:
            return False
        size = int(schema.property(ModelPropertyKey.MAX_CHARACTERS_PER_CHUNK, 2000))
        per_request = int(schema.property(ModelPropertyKey.MAX_CHUNKS, 32))
        slices = [text[i : i + size] for i in range(0, len(text), size)]
        try:
            with use_extras(extras):
                for batch in batched(slices, per_request):
                    if await self._invoke(model, credentials, list(batch), user):
                        return True
        except Exception as exc:
            error = self._transform_invoke_error(exc, model, credentials)
            if error is exc:
                raise
            raise error from exc
        return False

    async def _invoke(self, model: str, credentials: Mapping[str, Any], texts: list[str], user: str | None) -> bool:
        """True when any of ``texts`` is flagged."""
        raise NotImplementedError
