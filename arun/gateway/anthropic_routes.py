"""``POST /v1/messages``: Anthropic's Messages API on any backend (what coding agents speak).

The request becomes arun messages (system, text and image blocks, ``tool_use`` /
``tool_result`` turns), the answer Anthropic's message or its named stream events
(``message_start``, text and ``tool_use`` content blocks with ``input_json_delta`` by index,
``message_delta`` with the stop reason and usage, ``message_stop``); errors are Anthropic's
error bodies (``{"type": "error", "error": {...}}``) and, mid-stream, an ``event: error``.
"""

from __future__ import annotations

from aiohttp import web

from arun.entities.model import ModelType
from arun.gateway import translate as T
from arun.gateway.app import CALL, GATEWAY
from arun.gateway.errors import GatewayError, anthropic_error_event
from arun.gateway.streaming import serve_stream
from arun.policy.router import estimate_prompt_tokens

__all__ = ["register"]


async def messages(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    call = request[CALL]
    vk = await gw.authenticate(request, call)
    req: T.MessagesRequest = T.decode(T.MessagesRequest, await gw.json_body(request))
    if req.max_tokens < 1:
        raise GatewayError(400, "max_tokens: must be at least 1", param="max_tokens")
    inst, info = await gw.instance(call, vk, req.model, ModelType.LLM)
    msgs = T.anthropic_messages(req)
    if not msgs:
        raise GatewayError(400, "messages: at least one message is required", param="messages")
    tools = T.anthropic_tools(req)
    params, extra = T.split_parameters(req, ("temperature", "top_p", "top_k", "max_tokens"), info.rule_names, info.openai_family)
    extra.pop("top_k", None)  # not an OpenAI field: only a model with a top_k rule gets it
    prompt = estimate_prompt_tokens(msgs, tools)
    await gw.admit(call, vk, prompt + req.max_tokens, info.price_e7(prompt, req.max_tokens))
    user = (req.metadata or {}).get("user_id")
    if req.stream:
        stream = await inst.invoke_llm(msgs, params, tools, req.stop_sequences, stream=True, user=user,
                                       extra_body=extra or None, incremental_tool_calls=True)  # fmt: skip
        enc = T.AnthropicEventEncoder(call.rid, req.model)
        return await serve_stream(request, gw, call, stream, enc.chunk, enc.finish, anthropic_error_event, start=enc.start())
    result = await inst.invoke_llm(msgs, params, tools, req.stop_sequences, stream=False, user=user, extra_body=extra or None)
    call.use(result.usage)
    return web.Response(body=T.anthropic_response(call.rid, req.model, result), content_type="application/json",
                        headers={"x-request-id": call.rid})  # fmt: skip


def register(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
