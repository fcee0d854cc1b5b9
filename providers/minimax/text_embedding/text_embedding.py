"""MiniMax embeddings: not OpenAI-shaped.

``POST {host}/v1/embeddings?GroupId=<group>`` with ``{"model", "texts", "type": "db" | "query"}``
answers ``{"vectors": [[...]], "total_tokens": n, "base_resp": {"status_code", "status_msg"}}``;
a nonzero ``status_code`` is an error even in a 200 answer (platform.minimax.io embeddings API
and error codes; the minimax Dify plugin sends the same request).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from arun.entities.embedding import EmbeddingInputType, TextEmbeddingResult
from arun.errors import InvokeServerUnavailableError
from arun.families.helpers import cred_text
from arun.families.openai_embedding import OpenAIEmbedding
from arun.model_types.call_options import current_extras
from arun.protocols.openai_chat import base_resp_error, classify_error


class _BaseResp(msgspec.Struct):
    status_code: int = 0
    status_msg: str | None = None


class _Answer(msgspec.Struct):
    vectors: list[list[float]] | None = None
    total_tokens: int | None = None
    base_resp: _BaseResp | None = None


def build_body(model: str, texts: list[str], input_type: EmbeddingInputType, extra: Mapping[str, Any] | None) -> bytes:
    body: dict[str, Any] = {"model": model, "texts": texts, "type": "query" if input_type is EmbeddingInputType.QUERY else "db"}
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


def parse_answer(provider: str, raw: bytes, expected: int) -> tuple[list[list[float]], int | None]:
    try:
        answer = msgspec.json.decode(raw.strip(), type=_Answer)
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None
    if answer.base_resp is not None and answer.base_resp.status_code != 0:
        raise base_resp_error(provider, answer.base_resp.status_code, answer.base_resp.status_msg, raw)
    if answer.vectors is None or len(answer.vectors) != expected:
        got = "no vectors" if answer.vectors is None else f"{len(answer.vectors)} vectors"
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, {got} for {expected} texts")
    return answer.vectors, answer.total_tokens


class MiniMaxTextEmbedding(OpenAIEmbedding):
    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        texts: list[str],
        user: str | None,
        input_type: EmbeddingInputType,
    ) -> TextEmbeddingResult:
        schema = await self.get_model_schema(model, credentials)
        inputs = await self._truncate(schema, texts)
        endpoint = self.endpoint
        extras = current_extras()
        group = cred_text(credentials, "minimax_group_id")
        path = "/embeddings" + (f"?{urlencode({'GroupId': group})}" if group else "")
        url, headers, wire_model = endpoint.resolve(credentials, model, path, extra=extras.headers if extras else None)
        resp = await self.http.request(
            "POST",
            url,
            headers=headers,
            data=build_body(wire_model, inputs, input_type, extras.body if extras else None),
            error_mapper=self.error_mapper(classify_error),
        )
        vectors, tokens = parse_answer(self.provider_name, resp.body, len(inputs))
        if tokens is None:
            tokens = sum(await self.get_num_tokens(model, credentials, inputs))
        return TextEmbeddingResult(model=model, embeddings=vectors, usage=self._calc_response_usage(schema, tokens))
