"""``TaskService``: the hub's ``Tasks`` (``hub.tasks.base``), kept in the store.

A task waits in the run pool (``pool.RunPool``) at its priority, then runs the agent in its
own session with a ``TaskRunContext``: the checkpoint is saved at every step boundary, which is
also where a pause takes effect (the worker is released). Cancelling cancels the run's asyncio
task, which stops the model call in flight and kills a running tool's process group. Progress
(one message, edited as steps complete) and the result are posted in the origin conversation
through the outbox; the result commits with the task's end, so it is posted once.

After a restart, pending tasks run, running ones continue from their checkpoint, paused ones
wait. Tasks submitted or controlled beside the running hub (``open_tasks``) are written as
requests in the ``tasks`` table, which the hub takes every ``[tasks] poll_seconds``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from .._lifecycle import Lifecycle
from ..agent import Agent, HistoryItem, PauseRequested
from ..config import TasksSection
from ..messages import ConversationRef, Outbound, Sender, new_id, new_incident_id, utcnow
from ..store import StoreAPI
from ..store.tasks import TaskStore, open_task_store
from ._rules import ENDED, HUB_CONVERSATION, OPERATOR, SETTLED, check_command, check_move, may_see, new_task_id, visible
from .base import BACKGROUND, Task, TaskError, TaskEvent, Tasks, TaskState, WorkflowMode
from .context import Conversations, TaskRunContext
from .pool import RunPool

__all__ = ["TaskService"]

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Live:
    """A task this hub has admitted: waiting for a slot or running."""

    task: Task
    runner: asyncio.Task[None] | None = None
    pause: bool = False
    cancel_by: str | None = None
    admitted: bool = False
    """Holds a slot of the pool and runs (not only waiting for one)."""
    steps: int = 0


class TaskService:
    """``Tasks`` for one hub life (``hub.app.Hub.tasks``).

    Args:
        store: where runs' outbounds and the conversations' settings are.
        agent: runs each task.
        pool: the hub's run pool, shared with the session manager.
        conversations: sends and asks in a task's origin conversation.
        config: ``[tasks]``.
        tasks: where tasks are kept; by default the store's (``open_task_store``).
    """

    def __init__(
        self,
        store: StoreAPI,
        agent: Agent,
        pool: RunPool,
        conversations: Conversations,
        config: TasksSection | None = None,
        *,
        tasks: TaskStore | None = None,
    ) -> None:
        self._store = store
        self._agent = agent
        self._pool = pool
        self._conversations = conversations
        self._config = config or TasksSection()
        self._tasks = tasks or open_task_store(store)
        self._live: dict[str, _Live] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._subscribers: dict[str, list[asyncio.Queue[TaskEvent]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        self._life = Lifecycle("TaskService")

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Take up what a previous life left (running, then pending tasks), then watch for
        requests made beside the hub. Raises ``RuntimeError`` if started before."""
        with self._life.starting():
            unfinished = await self._tasks.unfinished()
            for task in unfinished:
                self._admit(task)
            if unfinished:
                log.info("taking up %d unfinished task(s)", len(unfinished))
            self._poller = asyncio.create_task(self._poll(), name="tasks-poll")

    async def stop(self) -> None:
        """Cancel runs in progress (their rows stay ``running``: continued after the next
        start from their checkpoint) and the ones waiting. Does nothing unless running."""
        if not self._life.stopping():
            return
        self._closed = True
        runners = [t for t in (self._poller, *(live.runner for live in self._live.values())) if t is not None]
        for t in runners:
            t.cancel()
        if runners:
            await asyncio.wait(runners)

    async def __aenter__(self) -> TaskService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- Tasks
    async def submit(
        self,
        text: str,
        *,
        conversation: ConversationRef | None = None,
        owner: Sender | None = None,
        mode: WorkflowMode = "auto",
        priority: int = BACKGROUND,
    ) -> Task:
        self._require_running()
        task = Task(
            id=new_task_id(),
            text=text,
            conversation=conversation or HUB_CONVERSATION,
            owner=owner or OPERATOR,
            mode=mode,
            priority=priority,
        )
        await self._tasks.insert(task)
        self._emit(task, "state")
        self._admit(task)
        return task

    async def get(self, task_id: str, *, by: Sender | None = None) -> Task:
        live = self._live.get(task_id)
        task = live.task if live is not None else await self._tasks.get(task_id)
        return visible(task, task_id, by)

    async def list(self, *, by: Sender | None = None, states: Sequence[TaskState] = ()) -> list[Task]:
        owner = None if by is None or by.is_admin else by.id
        found = await self._tasks.find(owner_id=owner, states=states)
        return [t for t in found if may_see(t, by)]  # an Asker: only its own channel's

    async def cancel(self, task_id: str, *, by: Sender | None = None) -> Task:
        task = await self.get(task_id, by=by)
        check_command(task, "cancel")
        live = self._live.get(task_id)
        who = by.name or by.id if by is not None else OPERATOR.name
        if task.state == "running" and live is not None and live.runner is not None and self._running(live):
            live.cancel_by = who
            live.runner.cancel()
            await asyncio.wait([live.runner])
            return await self.get(task_id)
        if live is not None and live.runner is not None:
            live.runner.cancel()  # waiting for a slot
            self._live.pop(task_id, None)
        return await self._end(task, "cancelled", error=f"cancelled by {who}")

    async def pause(self, task_id: str, *, by: Sender | None = None) -> Task:
        task = await self.get(task_id, by=by)
        check_command(task, "pause")
        live = self._live.get(task_id)
        if live is not None and self._running(live):
            live.pause = True  # taken at the next step boundary
            return task
        # Running by its row but not here (taken up after a restart, still waiting for a slot).
        if live is not None and live.runner is not None:
            live.runner.cancel()
            self._live.pop(task_id, None)
        return await self._save(task, "paused")

    async def resume(self, task_id: str, *, by: Sender | None = None) -> Task:
        task = await self.get(task_id, by=by)
        check_command(task, "resume")
        task = await self._save(task, "running")
        self._admit(task)
        return task

    async def retry(self, task_id: str, *, by: Sender | None = None, from_start: bool = False) -> Task:
        task = await self.get(task_id, by=by)
        check_command(task, "retry")
        task = replace(task, checkpoint=() if from_start else task.checkpoint, result=None, error=None)
        task = await self._save(task, "pending", detail="retried from the start" if from_start else "retried")
        self._admit(task)
        return task

    async def wait(self, task_id: str, *, timeout: float | None = None) -> Task:
        async with asyncio.timeout(timeout):
            while True:
                changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.setdefault(task_id, []).append(changed)
                task = await self.get(task_id)
                if task.state in SETTLED:
                    return task
                await changed

    async def execute(self, text: str, *, mode: WorkflowMode = "auto", timeout: float | None = None) -> Task:
        task = await self.submit(text, mode=mode)
        return await self.wait(task.id, timeout=timeout)

    def events(self, task_id: str) -> AsyncIterator[TaskEvent]:
        queue: asyncio.Queue[TaskEvent] = asyncio.Queue()
        self._subscribers.setdefault(task_id, []).append(queue)
        return self._stream(task_id, queue)

    async def _stream(self, task_id: str, queue: asyncio.Queue[TaskEvent]) -> AsyncIterator[TaskEvent]:
        try:
            while True:
                event = await queue.get()
                yield event
                if event.kind == "state" and event.state in ENDED:
                    return
        finally:
            queues = self._subscribers.get(task_id, [])
            if queue in queues:
                queues.remove(queue)
            if not queues:
                self._subscribers.pop(task_id, None)

    # ----------------------------------------------------------------- runs
    def _admit(self, task: Task) -> None:
        """Queue ``task`` in the run pool (one runner per task)."""
        if self._closed:
            return
        live = self._live.get(task.id)
        if live is not None and live.runner is not None and not live.runner.done():
            live.task = task
            return
        live = self._live[task.id] = _Live(task)
        live.runner = asyncio.create_task(self._run(live), name=f"task-{task.id}")

    def _running(self, live: _Live) -> bool:
        return live.admitted and live.runner is not None and not live.runner.done()

    async def _run(self, live: _Live) -> None:
        try:
            async with self._pool.slot(live.task.priority):
                task = await self._tasks.get(live.task.id) or live.task
                if task.state == "pending":
                    task = replace(task, attempts=task.attempts + 1)
                    task = await self._save(task, "running", post=self._first_progress(task))
                elif task.state != "running":
                    return
                live.task, live.admitted = task, True
                await self._drive(live)
        except Exception:  # a store failure: the row stays as it was, taken up after a restart
            log.exception("task %s: could not run", live.task.id)
        finally:
            if self._live.get(live.task.id) is live:
                del self._live[live.task.id]

    async def _drive(self, live: _Live) -> None:
        task = live.task
        snapshot = await self._store.load_session(task.conversation.key)
        ctx = TaskRunContext(
            task,
            settings=snapshot.settings,
            conversations=self._conversations,
            store=self._store,
            on_step=lambda items, label: self._step(live, items, label),
        )
        try:
            final = await self._iterate(ctx)
        except PauseRequested:
            post = self._progress(live.task, f"paused after {live.steps} step(s)")
            await self._save(live.task, "paused", detail="paused at a step boundary", post=post)
            return
        except asyncio.CancelledError:
            if live.cancel_by is None:
                raise  # the hub stops: the row stays running, continued after the next start
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            task = replace(live.task, checkpoint=_latest(ctx, live))
            await self._end(task, "cancelled", error=f"cancelled by {live.cancel_by}")
            return
        except Exception as exc:
            incident = new_incident_id()
            log.error("task %s: run failed (incident %s)", task.id, incident, exc_info=exc)
            task = replace(live.task, checkpoint=_latest(ctx, live))
            await self._end(task, "failed", error=f"{type(exc).__name__} (incident {incident})")
            return
        result = final.text if final is not None else ""
        task = replace(live.task, checkpoint=_latest(ctx, live), result=result)
        if ctx.model_error is not None:  # the reply explains it; retry goes on from the checkpoint
            await self._end(task, "failed", error=ctx.model_error)
            return
        await self._end(task, "completed")

    async def _iterate(self, ctx: TaskRunContext) -> Outbound | None:
        """Run the agent; its last final outbound is the result (partials stay in the task)."""
        final: Outbound | None = None
        try:
            async for out in self._agent.run(ctx):
                if out.final and not out.typing:
                    final = out
        finally:
            if ctx.usage:  # the origin conversation's totals (its id is 0: no inbound is marked)
                await asyncio.shield(self._store.finish_run(ctx.inbound, reply=None, usage=ctx.usage))
        return final

    async def _step(self, live: _Live, items: Sequence[HistoryItem], label: str) -> None:
        """A step boundary: save the checkpoint and the progress, then pause if asked."""
        live.steps += 1
        task = live.task = replace(live.task, checkpoint=tuple(items), updated_at=utcnow())
        progress = self._progress(task, f"{live.steps} step(s) done; last: {label}")
        await self._tasks.save(task, post=progress)
        await self._publish(progress)
        self._emit(task, "step", label)
        if live.pause:
            raise PauseRequested

    # ----------------------------------------------------------------- state and posts
    async def _save(self, task: Task, state: TaskState, *, detail: str = "", post: Sequence[Outbound] = ()) -> Task:
        """Move ``task`` to ``state`` (checked against ``MOVES``) and save it with ``post``."""
        check_move(task, state)
        task = replace(task, state=state, updated_at=utcnow())
        live = self._live.get(task.id)
        if live is not None:
            live.task = task
        await self._tasks.save(task, post=post)
        await self._publish(post)
        self._emit(task, "state", detail)
        return task

    async def _end(self, task: Task, state: TaskState, *, error: str | None = None) -> Task:
        """Completed, failed or cancelled: the row, the progress's last edit and what the origin
        conversation is told, in one transaction."""
        task = replace(task, error=error)
        if state == "completed":
            text = f"Task {task.id} is done:\n\n{task.result or '(no answer)'}"
        else:
            text = f"Task {task.id} {'was cancelled' if state == 'cancelled' else 'failed'}: {error}."
        progress = self._progress(task, state) if task.state != "pending" else []  # pending: none posted
        post = [*progress, *self._message(task, text)]
        return await self._save(task, state, detail=error or "", post=post)

    def _posts(self, task: Task) -> bool:
        return task.conversation != HUB_CONVERSATION

    def _message(
        self, task: Task, text: str, *, id: str | None = None, edit_of: str | None = None
    ) -> builtins.list[Outbound]:
        if not self._posts(task):
            return []
        return [Outbound(conversation=task.conversation, text=text, id=id or new_id(), edit_of=edit_of, format="plain")]

    def _progress(self, task: Task, status: str) -> builtins.list[Outbound]:
        """An edit of the attempt's progress message (its id: the task's and the attempt's)."""
        return self._message(task, f"Task {task.id}: {status}", edit_of=_progress_id(task))

    def _first_progress(self, task: Task) -> builtins.list[Outbound]:
        """The attempt's progress message, posted as it starts."""
        return self._message(task, f"Task {task.id}: started", id=_progress_id(task))

    async def _publish(self, outbounds: Sequence[Outbound]) -> None:
        for o in outbounds:
            await self._conversations.publish(o)

    def _emit(self, task: Task, kind: str, detail: str = "") -> None:
        event = TaskEvent(task_id=task.id, kind="step" if kind == "step" else "state", state=task.state, detail=detail)
        for queue in self._subscribers.get(task.id, ()):
            queue.put_nowait(event)
        if kind == "state":
            for f in self._waiters.pop(task.id, ()):
                if not f.done():
                    f.set_result(None)

    def _require_running(self) -> None:
        if not self._life.running:
            raise TaskError("the hub is not running; start it first")

    # ----------------------------------------------------------------- requests beside the hub
    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._config.poll_seconds)
            try:
                requests = await self._tasks.take_requests()
            except Exception:
                log.warning("could not read task requests", exc_info=True)
                continue
            for task_id, move in requests:
                with contextlib.suppress(TaskError):  # e.g. finished before the request was seen
                    await self._apply(task_id, move)

    async def _apply(self, task_id: str, move: str) -> None:
        if move == "submit":
            task = await self.get(task_id)
            if task.state == "pending":
                self._emit(task, "state")
                self._admit(task)
        elif move == "cancel":
            await self.cancel(task_id)
        elif move == "pause":
            await self.pause(task_id)
        elif move == "resume":
            await self.resume(task_id)
        elif move in ("retry", "retry-start"):
            await self.retry(task_id, from_start=move == "retry-start")
        else:
            log.warning("task %s: unknown request %r ignored", task_id, move)


def _latest(ctx: TaskRunContext, live: _Live) -> tuple[HistoryItem, ...]:
    """The run's history: what it remembered, or what its last step saved if that is more (an
    agent may step without remembering)."""
    remembered = ctx.checkpoint
    return remembered if len(remembered) >= len(live.task.checkpoint) else live.task.checkpoint


def _progress_id(task: Task) -> str:
    return f"task-{task.id}-{task.attempts}"


_: type[Tasks] = TaskService
"""Checked by mypy: ``TaskService`` keeps to ``Tasks``."""
