"""``react``: think → act → observe. The model decides after every step what to do next,
until it answers without tool calls or the run's ``max_turns`` is spent.

The other modes end here too: once their plan has run, the same loop lets the model write the
answer (and, should it still need a tool, go on step by step).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from hub.agent import Checkpointing
from hub.messages import Outbound

from .. import history
from ..providers.base import AssistantMessage, ModelResponse
from ._base import Run

NOTHING_TO_ADD = "(I have nothing to add.)"


async def react(run: Run, *, typing_first: bool = False) -> AsyncIterator[Outbound]:
    """Run the loop over ``run.messages``; yields partials and one final outbound."""
    config = run.config
    last = run.messages[-1] if run.messages else None
    if isinstance(run.ctx, Checkpointing) and run.ctx.resuming and isinstance(last, AssistantMessage):
        # The checkpoint ends at a model call: its answer, or its tool calls (cut short), come first.
        if not last.tool_calls:
            yield await run.answer(last.text.strip() or NOTHING_TO_ADD)
            return
        results = await run.run_tools(last.tool_calls)
        await run.add(results, label=f"tool {', '.join(r.name for r in results.results)}")
    for turn in range(config.max_turns):
        if turn or typing_first:
            yield run.typing()
        response: ModelResponse | None = None
        async for item in run.call_model():
            if isinstance(item, Outbound):
                yield item
            else:
                response = item
        assert response is not None
        await run.add(AssistantMessage(text=response.text, tool_calls=response.tool_calls), label="model")
        if not response.tool_calls:
            yield await run.answer(response.text.strip() or NOTHING_TO_ADD)
            return
        if response.text.strip():
            yield run.out(response.text, stream=run.stream_id)  # finishes this turn's message
        run.text_shown()
        results = await run.run_tools(response.tool_calls)
        names = ", ".join(r.name for r in results.results)
        await run.add(results, label=f"tool {names}")
    notice = (
        f"I stopped after {config.max_turns} steps, the limit for one request, before finishing. "
        "Ask me to continue if you want me to go on."
    )
    run.ctx.remember(history.encode(AssistantMessage(text=notice)))
    yield run.out(notice)
