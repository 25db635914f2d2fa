"""A local OpenAI-compatible server: Chat Completions (SSE streaming and plain), /v1/models and
/v1/embeddings (deterministic vectors: ``tests/fakes/embeddings.py``).

Driven by an ``LLMScript``::

    async with FakeOpenAI(LLMScript()) as fake:
        fake.script.reply("Hello", chunks=2)
        client = AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)

Run ``python -m tests.fakes.openai_server --port 8999 [--tool NAME --tool-args JSON]`` for a
manual demo: it echoes the last user message (after calling the tool, if one is given).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import struct
import time
import uuid
from typing import Any

import orjson
from aiohttp import web

from .embeddings import DIMENSIONS, fake_embedding
from .llm_script import (
    DropStep,
    ErrorStep,
    FakeLLMServer,
    LLMScript,
    ReplyStep,
    ScriptedCall,
    drop_connection,
    estimate_tokens,
    split_text,
)

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-****. You can find your "
        "API key at https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}


_TOO_LONG = (
    "This model's maximum context length is 8192 tokens, however you requested 9000 tokens "
    "(9000 in your prompt; 0 for the completion). Please reduce your prompt; or completion length."
)


def error_response(step: ErrorStep) -> web.Response:
    etype, code, message = _ERRORS.get(
        step.status, ("server_error" if step.status >= 500 else "invalid_request_error", None, "Error.")
    )
    headers = {"x-request-id": f"req_{uuid.uuid4().hex[:16]}"}
    if step.retry_after is not None:
        headers["retry-after"] = str(step.retry_after)
    body = {"error": {"message": step.message or message, "type": etype, "param": None, "code": code}}
    return web.json_response(body, status=step.status, headers=headers)


def _last_user_text(body: dict[str, Any]) -> tuple[str, bool]:
    messages = body.get("messages") or []
    if not messages:
        return "", False
    last = messages[-1]
    content = last.get("content")
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or ""), last.get("role") == "tool"


class FakeOpenAI(FakeLLMServer):
    """``base_url`` ends in ``/v1``, as ``AsyncOpenAI(base_url=…)`` expects."""

    base_path = "/v1"

    def __init__(self, script: LLMScript | None = None, *, port: int = 0, host: str = "127.0.0.1"):
        super().__init__(script, port=port, host=host)
        self.embeddings_down = False
        """While true, ``/v1/embeddings`` answers 503 (the endpoint is down)."""
        self.embedding_requests = 0
        """How many ``/v1/embeddings`` requests arrived (refused ones too)."""
        self.embeddings_refuse: str | None = None
        """While set, ``/v1/embeddings`` answers 400 to a request with an input holding this
        string, as OpenAI does to a text too long for the model (the rest of the batch too)."""

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self._chat),
            web.get("/v1/models", self._models),
            web.post("/v1/embeddings", self._embeddings),
        ]

    def _authorised(self, request: web.Request) -> bool:
        return self.script.api_key is None or request.headers.get("Authorization") == f"Bearer {self.script.api_key}"

    async def _models(self, request: web.Request) -> web.Response:
        await self._log(request)
        if not self._authorised(request):
            return error_response(ErrorStep(status=401))
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "autohands-fake"}],
            }
        )

    async def _embeddings(self, request: web.Request) -> web.Response:
        """As OpenAI answers: floats, or little-endian float32 in base64 when ``encoding_format``
        asks (the openai SDK asks for base64 unless told otherwise)."""
        _, body = await self._log(request)
        self.embedding_requests += 1
        if not self._authorised(request):
            return error_response(ErrorStep(status=401))
        if self.embeddings_down:
            return error_response(ErrorStep(status=503))
        texts = _embedding_inputs(body)
        if texts is None or not isinstance(body.get("model"), str):
            return error_response(
                ErrorStep(status=400, message="'input' (non-empty strings) and 'model' are required.")
            )
        if self.embeddings_refuse is not None and any(self.embeddings_refuse in text for text in texts):
            return error_response(ErrorStep(status=400, message=_TOO_LONG))
        dimensions = body.get("dimensions") or DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text, dimensions)
            encoded: object = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(estimate_tokens(text) for text in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        logged, body = await self._log(request)
        if not self._authorised(request):
            return error_response(ErrorStep(status=401))
        if not isinstance(body, dict) or not body.get("messages") or not body.get("model"):
            return error_response(ErrorStep(status=400, message="'messages' and 'model' are required."))
        step = self.script.next_step(logged, *_last_user_text(body))
        if isinstance(step, ErrorStep):
            if step.mid_stream and body.get("stream"):
                return await _stream_error(request, step)
            return error_response(step)
        usage = _usage(logged.raw_size, step)
        if not body.get("stream"):
            return web.json_response(_completion(body["model"], step, usage))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._stream(request, body["model"], step, usage if include_usage else None)

    async def _stream(
        self, request: web.Request, model: str, step: ReplyStep | DropStep, usage: dict[str, Any] | None
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        chunk_id, created = f"chatcmpl-{uuid.uuid4().hex[:20]}", int(time.time())
        # A whole reply goes out in one write (the client still parses separate SSE events):
        # a write per chunk made the fake the bottleneck of the 1,000-conversation benchmark.
        # A drop writes chunk by chunk, so what precedes the cut has surely left.
        pending: list[bytes] = []
        per_chunk = isinstance(step, DropStep)

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if usage is not None:
                chunk["usage"] = None
            pending.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if per_chunk:
                await resp.write(b"".join(pending))
                pending.clear()

        if isinstance(step, ReplyStep) and step.first_token_delay:
            await asyncio.sleep(step.first_token_delay)
        await send({"role": "assistant", "content": "", "refusal": None})
        if isinstance(step, DropStep):
            for piece in split_text(step.text, step.chunks)[: step.after_chunks]:
                await send({"content": piece})
            await drop_connection(request, resp, step)
            return resp
        for piece in split_text(step.text, step.chunks):
            await send({"content": piece})
        for index, call in enumerate(step.calls):
            await send(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": _call_id(call, index),
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for piece in split_text(call.arguments_json, step.chunks):
                await send({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        await send({}, _finish_reason(step))
        if usage is not None:
            final = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [],
                "usage": usage,
            }
            pending.append(b"data: " + orjson.dumps(final) + b"\n\n")
        pending.append(b"data: [DONE]\n\n")
        await resp.write_eof(b"".join(pending))
        return resp


async def _stream_error(request: web.Request, step: ErrorStep) -> web.StreamResponse:
    """A 200 stream that opens (with ``step.partial`` as text chunks, each written on its own),
    then reports the failure in a chunk of its own, typed by ``step.status``."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await resp.prepare(request)
    for piece in split_text(step.partial, 2):
        chunk = {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}],
        }
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
    etype, code, _ = _ERRORS.get(step.status, ("server_error", None, ""))
    error = {
        "error": {
            "message": step.message or "The server had an error while processing your request.",
            "type": etype,
            "param": None,
            "code": code,
        }
    }
    await resp.write(f"data: {json.dumps(error)}\n\n".encode())
    await resp.write_eof()
    return resp


def _embedding_inputs(body: Any) -> list[str] | None:
    """``input`` as a list of texts, or None unless it is a non-empty string or a non-empty list
    of them (OpenAI refuses empty strings too)."""
    texts = body.get("input") if isinstance(body, dict) else None
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        return None
    return texts


def _call_id(call: ScriptedCall, index: int) -> str:
    return call.id or f"call_{index}_{uuid.uuid4().hex[:12]}"


def _finish_reason(step: ReplyStep) -> str:
    if step.stop == "max_tokens":
        return "length"
    return "tool_calls" if step.calls else "stop"


def _usage(request_size: int, step: ReplyStep | DropStep) -> dict[str, Any]:
    out = step.text + ("".join(c.arguments_json for c in step.calls) if isinstance(step, ReplyStep) else "")
    prompt, completion = estimate_tokens(request_size), estimate_tokens(out)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _completion(model: str, step: ReplyStep | DropStep, usage: dict[str, Any]) -> dict[str, Any]:
    if isinstance(step, DropStep):  # a non-streamed drop is just a broken reply; send the text
        step = ReplyStep(text=step.text)
    message: dict[str, Any] = {"role": "assistant", "content": step.text or None, "refusal": None}
    if step.calls:
        message["tool_calls"] = [
            {
                "id": _call_id(c, i),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json},
            }
            for i, c in enumerate(step.calls)
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:20]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(step)}],
        "usage": usage,
    }


async def _serve(args: argparse.Namespace) -> None:
    script = LLMScript("echo", latency=args.latency)
    if args.tool:
        script.echo_tool = ScriptedCall(args.tool, args.tool_args)
        script.echo_tool_when = args.tool_when
    async with FakeOpenAI(script, port=args.port, host=args.host) as fake:
        print(f"fake OpenAI server on {fake.base_url} (echo mode; Ctrl-C stops)", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible fake (echo mode).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each response")
    parser.add_argument("--tool", help="call this tool on every user message, then echo its result")
    parser.add_argument("--tool-args", default="{}", help="JSON arguments of --tool")
    parser.add_argument("--tool-when", help="call --tool only when the user message contains this text")
    try:
        asyncio.run(_serve(parser.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
