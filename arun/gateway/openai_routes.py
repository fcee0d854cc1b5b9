"""The OpenAI-shaped routes.

================================  ==============================================================
route                             arun call
================================  ==============================================================
POST /v1/chat/completions         ``ModelInstance.invoke_llm`` (stream: incremental tool calls)
POST /v1/completions              ``invoke_llm`` with the prompt as one user message
POST /v1/embeddings               ``invoke_text_embedding`` (float or base64, ``dimensions``)
POST /v1/rerank                   ``invoke_rerank`` (Jina / Cohere shape)
POST /v1/audio/transcriptions     ``invoke_speech2text`` (multipart; json or text)
POST /v1/audio/speech             ``invoke_tts`` (audio streamed as it is produced)
POST /v1/moderations              ``invoke_moderation`` per input
GET  /v1/models, /v1/models/{id}  the key's models with what their schemas know
================================  ==============================================================
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web

from arun.entities.messages import UserPromptMessage
from arun.entities.model import ModelType
from arun.gateway import translate as T
from arun.gateway.app import CALL, GATEWAY, Call, Gateway
from arun.gateway.cache import CachedResponse, cache_key
from arun.gateway.errors import GatewayError, sse_error_event
from arun.gateway.streaming import serve_stream
from arun.policy.router import estimate_prompt_tokens, estimate_text_tokens

__all__ = ["register"]

_JSON = "application/json"


def _ctx(request: web.Request) -> tuple[Gateway, Call]:
    return request.app[GATEWAY], request[CALL]


def _max_tokens(params: dict[str, Any], info: Any) -> int:
    mt = params.get("max_tokens")
    return mt if isinstance(mt, int) and not isinstance(mt, bool) else info.default_max_tokens


def _cache_control(request: web.Request) -> tuple[bool, bool]:
    """(look up, store) as the request's Cache-Control allows."""
    cc = request.headers.get("Cache-Control", "").lower()
    return "no-cache" not in cc and "no-store" not in cc, "no-store" not in cc


async def _cached(gw: Gateway, request: web.Request, call: Call, route: str, req: Any) -> tuple[str | None, web.Response | None]:
    if gw.cache is None:
        return None, None
    assert call.key is not None
    key = cache_key(call.key.tenant_id, route, msgspec.structs.replace(req, user=None))
    lookup, _ = _cache_control(request)
    if lookup:
        hit = await gw.cache.get(key)
        if hit is not None:
            call.cache = "hit"
            call.prompt_tokens, call.completion_tokens = hit.prompt_tokens, hit.completion_tokens
            gw.m_cache.inc((route, "hit"))
            return key, web.Response(body=hit.body, content_type=_JSON, headers={"x-arun-cache": "hit", "x-request-id": call.rid})
    call.cache = "miss"
    gw.m_cache.inc((route, "miss"))
    return key, None


async def _answer(gw: Gateway, request: web.Request, call: Call, key: str | None, body: bytes) -> web.Response:
    """A cacheable route's answer: stored under ``key`` (None: no cache) unless too large or ``no-store``."""
    headers = {"x-request-id": call.rid}
    if key is not None:
        headers["x-arun-cache"] = "miss"
        if gw.cache is not None and len(body) <= gw.config.cache.max_entry_bytes and _cache_control(request)[1]:
            entry = CachedResponse(body, call.provider or "", call.model or "", call.prompt_tokens, call.completion_tokens)
            await gw.cache.set(key, entry)
    return web.Response(body=body, content_type=_JSON, headers=headers)


# -- chat ---------------------------------------------------------------------------------------------


async def chat(request: web.Request) -> web.StreamResponse:
    gw, call = _ctx(request)
    vk = await gw.authenticate(request, call)
    req: T.ChatRequest = T.decode(T.ChatRequest, await gw.json_body(request))
    inst, info = await gw.instance(call, vk, req.model, ModelType.LLM)
    messages = T.chat_messages(req.messages)
    tools = T.chat_tools(req.tools, req.tool_choice)
    params, extra = T.chat_parameters(req, info.rule_names, info.openai_family)
    stop = T.stop_words(req.stop)
    prompt = estimate_prompt_tokens(messages, tools)
    completion = _max_tokens(params, info)
    await gw.limit(call, vk, prompt + completion)
    key, hit = (None, None) if req.stream else await _cached(gw, request, call, "chat", req)
    if hit is not None:
        return hit
    await gw.reserve(call, vk, info.price_e7(prompt, completion))
    if req.stream:
        stream = await inst.invoke_llm(messages, params, tools, stop, stream=True, user=req.user, extra_body=extra,
                                       incremental_tool_calls=True)  # fmt: skip
        enc = T.ChunkEncoder(call.rid, req.model)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return await serve_stream(request, gw, call, stream, enc.chunk,
                                  lambda reason, usage: enc.finish(reason, usage, include_usage), sse_error_event)  # fmt: skip
    result = await inst.invoke_llm(messages, params, tools, stop, stream=False, user=req.user, extra_body=extra)
    call.use(result.usage)
    return await _answer(gw, request, call, key, T.chat_response(call.rid, req.model, result))


_COMPLETION_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "max_tokens")


async def completions(request: web.Request) -> web.StreamResponse:
    gw, call = _ctx(request)
    vk = await gw.authenticate(request, call)
    req: T.CompletionRequest = T.decode(T.CompletionRequest, await gw.json_body(request))
    if req.echo:
        raise GatewayError(400, "echo is not supported", param="echo", code="unsupported_value")
    if req.n is not None and req.n != 1:
        raise GatewayError(400, "only n=1 is supported", param="n", code="unsupported_value")
    prompt = req.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise GatewayError(400, "prompt must be one string", param="prompt", code="unsupported_value")
        prompt = prompt[0]
    inst, info = await gw.instance(call, vk, req.model, ModelType.LLM)
    messages = [UserPromptMessage(content=prompt)]
    params, extra = T.split_parameters(req, _COMPLETION_PARAMS, info.rule_names, info.openai_family)
    stop = T.stop_words(req.stop)
    est = estimate_prompt_tokens(messages, None)
    completion = _max_tokens(params, info)
    await gw.admit(call, vk, est + completion, info.price_e7(est, completion))
    if req.stream:
        stream = await inst.invoke_llm(messages, params, None, stop, stream=True, user=req.user, extra_body=extra or None)
        enc = T.ChunkEncoder(call.rid, req.model, completion=True)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return await serve_stream(request, gw, call, stream, enc.chunk,
                                  lambda reason, usage: enc.finish(reason, usage, include_usage), sse_error_event)  # fmt: skip
    result = await inst.invoke_llm(messages, params, None, stop, stream=False, user=req.user, extra_body=extra or None)
    call.use(result.usage)
    return web.Response(body=T.completion_response(call.rid, req.model, result), content_type=_JSON,
                        headers={"x-request-id": call.rid})  # fmt: skip


# -- embeddings, rerank ------------------------------------------------------------------------------


async def embeddings(request: web.Request) -> web.StreamResponse:
    gw, call = _ctx(request)
    vk = await gw.authenticate(request, call)
    req: T.EmbeddingRequest = T.decode(T.EmbeddingRequest, await gw.json_body(request))
    texts: list[Any] = [req.input] if isinstance(req.input, str) else list(req.input)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise GatewayError(400, "input must be a string or a non-empty list of strings (token arrays are not supported)",
                           param="input", code="invalid_value")  # fmt: skip
    if req.encoding_format not in (None, "float", "base64"):
        raise GatewayError(400, "encoding_format must be float or base64", param="encoding_format", code="invalid_value")
    if req.dimensions is not None and req.dimensions <= 0:
        raise GatewayError(400, "dimensions must be a positive integer", param="dimensions", code="invalid_value")
    inst, info = await gw.instance(call, vk, req.model, ModelType.TEXT_EMBEDDING)
    tokens = estimate_text_tokens(texts)
    await gw.limit(call, vk, tokens)
    key, hit = await _cached(gw, request, call, "embeddings", req)
    if hit is not None:
        return hit
    await gw.reserve(call, vk, info.price_e7(tokens, 0))
    extra = {"dimensions": req.dimensions} if req.dimensions is not None else None
    result = await inst.invoke_text_embedding(texts, user=req.user, extra_body=extra)
    u = result.usage
    call.prompt_tokens, call.price, call.currency = u.tokens, u.total_price, u.currency
    return await _answer(gw, request, call, key, T.embeddings_response(req.model, result.embeddings, u.tokens, req.encoding_format == "base64"))


async def rerank(request: web.Request) -> web.StreamResponse:
    gw, call = _ctx(request)
    vk = await gw.authenticate(request, call)
    req: T.RerankRequest = T.decode(T.RerankRequest, await gw.json_body(request))
    docs: list[str] = []
    for i, d in enumerate(req.documents):
        if isinstance(d, str):
            docs.append(d)
        elif isinstance(d, dict) and isinstance(d.get("text"), str):
            docs.append(d["text"])
        else:
            raise GatewayError(400, "documents are strings or {text} objects", param=f"documents.{i}", code="invalid_value")
    inst, _info = await gw.instance(call, vk, req.model, ModelType.RERANK)
    await gw.admit(call, vk, (len(req.query) + sum(len(d) for d in docs)) // 4 + 1, 0)
    result = await inst.invoke_rerank(req.query, docs, score_threshold=req.score_threshold, top_n=req.top_n, user=req.user)
    with_docs = req.return_documents is not False
    results = []
    for d in result.docs:
        item: dict[str, Any] = {"index": d.index, "relevance_score": d.score}
        if with_docs:
            item["document"] = {"text": d.text}
        results.append(item)
    body = msgspec.json.encode({"id": call.rid, "model": req.model, "results": results, "usage": {"total_tokens": 0}})
    return web.Response(body=body, content_type=_JSON, headers={"x-request-id": call.rid})


# -- audio, moderation ------------------------------------------------------------------------------


async def transcriptions(request: web.Request) -> web.StreamResponse:
    gw, call = _ctx(request)
    vk = await gw.authenticate(request, call)
    if request.content_type != "multipart/form-data":
        raise GatewayError(415, "Send multipart/form-data with a file and a model.", code="unsupported_media_type")
    fields: dict[str, Any] = {}
    audio: bytes | None = None
    filename: str | None = None
    reader = await request.multipart()
    size = 0
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        if part.filename is not None and part.name == "file":
            chunks = []
            while True:
                piece = await part.read_chunk(1 << 16)
                if not piece:
                    break
                size += len(piece)
                if size > gw.config.max_upload_bytes:
                    raise GatewayError(413, f"File too large (at most {gw.config.max_upload_bytes} bytes).", code="request_too_large")
                chunks.append(piece)
            audio, filename = b"".join(chunks), part.filename
        else:
            fields[part.name or ""] = await part.text()
    if audio is None:
        raise GatewayError(400, "You must provide a file.", param="file", code="missing_file")
    fmt = fields.get("response_format") or "json"
    if fmt not in ("json", "text"):
        raise GatewayError(400, "response_format must be json or text", param="response_format", code="unsupported_value")
    inst, _info = await gw.instance(call, vk, fields.get("model"), ModelType.SPEECH2TEXT)
    await gw.admit(call, vk, 0, 0)
    f = io.BytesIO(audio)
    f.name = filename or "audio"
    text = await inst.invoke_speech2text(f, user=fields.get("user"))
    if fmt == "text":
        return web.Response(text=text, content_type="text/plain", headers={"x-request-id": call.rid})
    return web.Response(body=msgspec.json.encode({"text": text}), content_type=_JSON, headers={"x-request-id": call.rid})


_AUDIO_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac", "wav": "audio/wav",
                "pcm": "audio/pcm"}  # fmt: skip


async def speech(request: web.Request) -> web.StreamResponse:
    gw, call = _ctx(request)
    vk = await gw.authenticate(request, call)
    req: T.SpeechRequest = T.decode(T.SpeechRequest, await gw.json_body(request))
    if not req.input.strip():
        raise GatewayError(400, "input must not be empty", param="input", code="invalid_value")
    fmt = req.response_format or "mp3"
    if fmt not in _AUDIO_TYPES:
        raise GatewayError(400, f"response_format must be one of {', '.join(_AUDIO_TYPES)}", param="response_format",
                           code="invalid_value")  # fmt: skip
    inst, _info = await gw.instance(call, vk, req.model, ModelType.TTS)
    await gw.admit(call, vk, len(req.input) // 4 + 1, 0)
    extra = {"response_format": fmt} if req.response_format else None
    audio = await inst.invoke_tts(req.input, voice=req.voice, extra_body=extra)
    resp = web.StreamResponse(status=200, headers={"Content-Type": _AUDIO_TYPES[fmt], "x-request-id": call.rid})
    call.stream = True
    first = True
    try:
        async for piece in audio:
            if first:
                call.ttft = time.perf_counter() - call.started
                await resp.prepare(request)
                first = False
            await resp.write(piece)
    except asyncio.CancelledError:
        call.outcome, call.error, call.status = "cancelled", "ClientDisconnected", 499
        raise
    finally:
        aclose = getattr(audio, "aclose", None)
        if aclose is not None:
            await aclose()
    if first:
        await resp.prepare(request)
    await resp.write_eof()
    return resp


async def moderations(request: web.Request) -> web.StreamResponse:
    gw, call = _ctx(request)
    vk = await gw.authenticate(request, call)
    req: T.ModerationRequest = T.decode(T.ModerationRequest, await gw.json_body(request))
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    if not texts:
        raise GatewayError(400, "input must not be empty", param="input", code="invalid_value")
    name = req.model or "openai/omni-moderation-latest"
    inst, _info = await gw.instance(call, vk, name, ModelType.MODERATION)
    await gw.admit(call, vk, sum(len(t) for t in texts) // 4 + 1, 0)
    flags = await asyncio.gather(*(inst.invoke_moderation(t) for t in texts))
    return web.Response(body=T.moderation_response(call.rid, name, [bool(f) for f in flags]), content_type=_JSON,
                        headers={"x-request-id": call.rid})  # fmt: skip


# -- models ---------------------------------------------------------------------------------------------


async def _listing(gw: Gateway, tenant_id: str) -> list[dict[str, Any]]:
    now = time.monotonic()
    got = gw._listing.get(tenant_id)
    if got is not None and got[0] > now:
        return got[1]
    out: list[dict[str, Any]] = []
    rt = gw.manager.runtime
    by_name: dict[str, dict[str, Any]] = {}
    for st in await gw.manager.list_models(tenant_id):
        if st.status != "active":
            continue
        entry: dict[str, Any] = {"id": f"{st.provider}/{st.model}", "object": "model", "created": 0, "owned_by": st.provider}
        meta: dict[str, Any] = {"provider": st.provider, "model": st.model, "model_type": st.model_type}
        try:
            schema = await rt.get_model_instance(st.provider, st.model_type).get_model_schema(st.model, None)
        except Exception:  # noqa: BLE001 - a customizable model needs its credentials for a schema
            schema = None
        if schema is not None:
            props = dict(schema.model_properties or {})
            meta.update(
                mode=props.get("mode"), context_size=props.get("context_size"),
                features=[getattr(f, "value", f) for f in schema.features or []],
                properties={k: v for k, v in props.items() if isinstance(v, (int, float, str, bool))},
                parameter_rules=[
                    {"name": r.name, "type": getattr(r.type, "value", r.type), "required": r.required, "default": r.default,
                     "min": r.min, "max": r.max, "options": list(r.options) or None}
                    for r in schema.parameter_rules
                ],
                pricing=({"input": str(schema.pricing.input), "output": str(schema.pricing.output) if schema.pricing.output is not None else None,
                          "unit": str(schema.pricing.unit), "currency": schema.pricing.currency} if schema.pricing else None),
                deprecated=schema.deprecated,
            )  # fmt: skip
        entry["arun"] = meta
        out.append(entry)
        by_name[entry["id"]] = entry
    for alias, a in gw.aliases.items():
        target = by_name.get(a.target)
        if target is not None:
            out.append({**target, "id": alias, "arun": {**target["arun"], "alias_of": a.target, "fallbacks": list(a.fallbacks)}})
    gw._listing[tenant_id] = (now + 30.0, out)
    return out


async def models(request: web.Request) -> web.StreamResponse:
    gw, call = _ctx(request)
    vk = await gw.authenticate(request, call)
    data = [e for e in await _listing(gw, vk.tenant_id) if gw.allows(vk, e["id"], e["arun"].get("alias_of", e["id"]))]
    return web.Response(body=msgspec.json.encode({"object": "list", "data": data}), content_type=_JSON)


async def model(request: web.Request) -> web.StreamResponse:
    gw, call = _ctx(request)
    vk = await gw.authenticate(request, call)
    name = request.match_info["model"]
    for e in await _listing(gw, vk.tenant_id):
        if e["id"] == name and gw.allows(vk, e["id"], e["arun"].get("alias_of", e["id"])):
            return web.Response(body=msgspec.json.encode(e), content_type=_JSON)
    raise GatewayError(404, f"The model `{name}` does not exist or you do not have access to it.", code="model_not_found",
                       param="model")  # fmt: skip


def register(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/chat/completions", chat)
    r.add_post("/v1/completions", completions)
    r.add_post("/v1/embeddings", embeddings)
    r.add_post("/v1/rerank", rerank)
    r.add_post("/v1/audio/transcriptions", transcriptions)
    r.add_post("/v1/audio/speech", speech)
    r.add_post("/v1/moderations", moderations)
    r.add_get("/v1/models", models)
    r.add_get("/v1/models/{model:.+}", model)
