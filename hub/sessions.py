"""Conversation → session; one run at a time per session, in order.

The manager consumes ``inbound`` from the bus. Ordinary messages queue per session and run
one after another; control inputs (``/stop``, ``/status``, button taps, a yes/no answer to a
pending question) are handled at once, because the run they address is what blocks the
queue. Every agent run is admitted through the hub's run pool (``hub.tasks.pool``): chat
turns and API requests first, scheduled jobs' runs after them, background tasks last. Idle
sessions leave memory and come back from the store (history, settings) when their conversation
speaks again.

Every run starts by committing one attempt (``StoreAPI.mark_processing``), so after a crash the
store knows which messages were being worked on and how often; a message whose runs keep
dying is set aside after ``MAX_ATTEMPTS`` with one reply saying so, and its queue goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._lifecycle import Lifecycle
from ._session_context import Question, SessionControl, SessionRunContext
from .agent import Agent, HistoryItem, Usage
from .answers import read_answer
from .bus import Bus, Subscription
from .commands import Command, CommandCall, CommandRegistry
from .config import SessionsSection
from .messages import ConversationRef, Inbound, Outbound, TextFormat, new_incident_id, utcnow
from .questions import PendingQuestion, is_operator, operator_answer, pending_questions
from .store import StoreAPI
from .tasks.base import INTERACTIVE, JOB
from .tasks.pool import RunPool

log = logging.getLogger(__name__)

TYPING_RENEW_SECONDS = 4.0
MAX_ATTEMPTS = 3
"""Runs a message may start without one finishing (the hub died, or was stopped, under each)
before it is set aside, so a hub that crashes on one message does not crash-loop on it after
every restart. An attempt is counted as a run (or a queued command's handler) starts, in the
write that marks the message ``processing``; never at start-up, so a message that only waited
in its queue through restarts has used none. A ``send`` job needs none: its reply and its
answered mark are one commit."""
SET_ASIDE_TEXT = (
    "Sorry — I could not answer this message: {attempts} tries were cut short before they "
    "finished, so I have set it aside (incident {incident}). Your other messages are "
    "answered as usual."
)
WAITING_FOR_YOU_TEXT = (
    "I'm waiting for your yes or no to the question above. I'll answer this message once that is settled."
)
WAITING_FOR_OTHER_TEXT = "I'm waiting for an answer to the question above. I'll answer this message after that."


class RunObserver(Protocol):
    """Told how each agent run went (``hub.metrics``): one call per run, off the message path."""

    def run_finished(
        self, channel: str, seconds: float, first_output: float | None, usage: Sequence[tuple[str, str, Usage]]
    ) -> None:
        """``seconds`` from the run's start to its end; ``first_output`` to the first text or
        tool line it showed (None if it showed nothing before its final reply)."""

    def model_error(self, provider: str, error: str) -> None:
        """A run's model provider failed it (``error``: the kind, an exception class name)."""


@dataclass(slots=True, eq=False)
class Session:
    key: str
    conversation: ConversationRef
    queue: deque[Inbound] = field(default_factory=deque)
    history: list[HistoryItem] | None = None
    settings: dict[str, str] = field(default_factory=dict)
    worker: asyncio.Task[None] | None = None
    running: bool = False
    stop_requested: bool = False
    question: Question | None = None
    last_active: float = 0.0
    runs: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.queue) or self.worker is not None or self.question is not None


@dataclass(slots=True, kw_only=True)
class _RunWatch:
    typed: float
    started: float
    first_output: float | None = None


class SessionManager:
    """Routes inbounds to sessions and runs them (see the module docstring).

    Args:
        store: where runs begin and end.
        bus: ``inbound`` is consumed, replies go to ``outbound``.
        agent: runs each ordinary message.
        commands: the slash commands it dispatches; the hub has added the session's own
            (``register_session_commands``) before channels learn the list.
        limits: the ``[sessions]`` section (concurrency, idle eviction, stop grace); its
            defaults if ``None``.
        observer: told how long each agent run took (``hub.metrics``).
        pool: the hub's run pool, shared with its tasks; one of ``limits.max_concurrent_runs``
            workers if ``None``.
    """

    def __init__(
        self,
        store: StoreAPI,
        bus: Bus,
        agent: Agent,
        commands: CommandRegistry,
        limits: SessionsSection | None = None,
        *,
        observer: RunObserver | None = None,
        pool: RunPool | None = None,
    ) -> None:
        self.store = store
        self.observer = observer
        self.bus = bus
        self.agent = agent
        self.commands = commands
        self.limits = limits = limits or SessionsSection()
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.pool = pool or RunPool(limits.max_concurrent_runs)
        self._sub: Subscription[Inbound] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._runs: dict[Session, _RunWatch] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._prior_attempts: dict[int, int] = {}
        self.active_runs = 0
        self.run_ended: Callable[[Inbound, Sequence[tuple[str, str, Usage]]], None] | None = None
        """Told, synchronously, that an inbound's run (or command) has ended and its last reply
        is on the bus, with the run's token usage (``hub.api_runs``: the HTTP API answers then)."""
        self._life = Lifecycle("SessionManager")

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Take inbounds from the bus. Raises ``RuntimeError`` if started before (one life)."""
        with self._life.starting():
            self._sub = self.bus.subscribe("inbound")
            self._consumer = asyncio.create_task(self._consume(), name="sessions-consume")
            self._sweeper = asyncio.create_task(self._sweep(), name="sessions-sweep")
            self._watcher = asyncio.create_task(self._watch_runs(), name="sessions-watch")

    async def __aenter__(self) -> SessionManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def resume(self) -> int:
        """Re-dispatch inbounds that were received but never answered (after a crash or a
        stop), each with the runs it has already started (see ``MAX_ATTEMPTS``)."""
        pending = await self.store.pending_inbound()
        for inbound, attempts in pending:
            if attempts:
                self._prior_attempts[inbound.id] = attempts
            self.dispatch(inbound)
        if pending:
            log.info("resuming %d unanswered inbound message(s)", len(pending))
        return len(pending)

    async def stop(self) -> None:
        """Stop taking work, let runs in progress finish (bounded), then cancel the rest.

        A cancelled run leaves its inbound ``processing`` (one attempt used); it is resumed on
        the next start. Does nothing unless running."""
        if not self._life.stopping():
            return
        self._stopping = True
        if self._sub:
            self._sub.close()
        for task in (self._consumer, self._sweeper, self._watcher):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for s in self.sessions.values():
            s.queue.clear()  # still `received` in the store: resumed on the next start
            if s.question is not None and s.worker is not None:
                # Waiting for a person (an approval): the grace cannot finish it. Cancelled, the
                # inbound stays unanswered and the question is asked again after the restart;
                # a run that waits for a person is not one killing the hub, so its try is taken
                # back (else restarts alone would set it aside, see MAX_ATTEMPTS).
                if s.question.inbound_id:
                    self.store.give_back_attempt(s.question.inbound_id)
                s.worker.cancel()
        workers = [s.worker for s in self.sessions.values() if s.worker] + list(self._side_tasks)
        if workers:
            _done, pending = await asyncio.wait(workers, timeout=self.limits.stop_grace_seconds)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _consume(self) -> None:
        assert self._sub is not None
        async for inbound in self._sub:
            self.dispatch(inbound)

    async def _sweep(self) -> None:
        interval = max(1.0, min(60.0, self.limits.idle_seconds / 2))
        while True:
            await asyncio.sleep(interval)
            self.evict_idle()

    def evict_idle(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        cutoff = now - self.limits.idle_seconds
        evicted = 0
        for key in list(self.sessions):
            s = self.sessions[key]
            if not s.busy and s.last_active < cutoff:
                del self.sessions[key]
                evicted += 1
            elif s.last_active >= cutoff:
                break  # ordered by activity: the rest are newer
        return evicted

    # ----------------------------------------------------------------- dispatch
    def _session_for(self, conv: ConversationRef) -> Session:
        key = conv.key
        s = self.sessions.get(key)
        if s is None:
            s = Session(key=key, conversation=conv)
            self.sessions[key] = s
            if len(self.sessions) > self.limits.max_sessions_in_memory:
                self._evict_lru()
        else:
            self.sessions.move_to_end(key)
        s.last_active = time.monotonic()
        return s

    def _evict_lru(self) -> None:
        # Least recently active first; only a few are looked at (busy ones are skipped).
        excess = len(self.sessions) - self.limits.max_sessions_in_memory
        victims: list[str] = []
        for key, s in self.sessions.items():
            if len(victims) >= excess:
                break
            if not s.busy:
                victims.append(key)
        for key in victims:
            del self.sessions[key]

    def dispatch(self, inbound: Inbound) -> None:
        """Route one inbound: control inputs now, the rest into its session's queue."""
        if self._stopping:
            return
        s = self._session_for(inbound.conversation)
        if self._is_control(s, inbound):
            self._spawn(self._handle_control(s, inbound), f"control-{inbound.id}")
            return
        if s.question is not None and inbound.kind == "message" and s.worker is not None:
            # (A task's question leaves the session idle: its messages run as usual.)
            mine = inbound.sender.id == s.question.user_id
            self._spawn(self._note_waiting(s, inbound, mine=mine), f"note-{inbound.id}")
        s.queue.append(inbound)
        if s.worker is None:
            s.worker = asyncio.create_task(self._work(s), name=f"session-{s.key}")

    def _is_control(self, s: Session, inbound: Inbound) -> bool:
        if inbound.kind == "button":
            return True
        if inbound.kind == "command" and inbound.command:
            cmd = self.commands.get(inbound.command)
            return cmd is not None and cmd.control
        if s.question is not None and inbound.kind == "message":
            return inbound.sender.id == s.question.user_id and read_answer(inbound.text) is not None
        return False

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _work(self, s: Session) -> None:
        try:
            while s.queue and not self._stopping:
                inbound = s.queue.popleft()
                try:
                    await self._process(s, inbound)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("session %s: processing inbound %s failed", s.key, inbound.id)
        finally:
            s.worker = None
            s.last_active = time.monotonic()

    async def _ensure_loaded(self, s: Session) -> None:
        if s.history is None:
            snap = await self.store.load_session(s.key)
            if s.history is None:
                s.history = list(snap.history)
                s.settings = dict(snap.settings)

    async def _process(self, s: Session, inbound: Inbound) -> None:
        attempts = self._prior_attempts.pop(inbound.id, 0)
        if attempts >= MAX_ATTEMPTS:
            await self._set_aside(s, inbound, attempts)
            return
        await self._ensure_loaded(s)
        if inbound.kind == "command" and inbound.command:
            if inbound.command in self.commands:
                await self._begin(inbound)
            await self._run_command(s, inbound)
        elif inbound.kind == "job" and inbound.job is not None and inbound.job.action == "send":
            await self._end_run(inbound, self._reply(s, inbound, inbound.text))
        else:
            await self._run_agent(s, inbound)

    async def _begin(self, inbound: Inbound) -> None:
        """Count this attempt (see ``MAX_ATTEMPTS``) before the work can do anything that might
        kill the hub. One small write, group-committed with the other sessions' writes."""
        if inbound.id:
            await self.store.mark_processing(inbound.id)

    async def _set_aside(self, s: Session, inbound: Inbound, attempts: int) -> None:
        """Answer a message whose runs keep dying, once, and mark it ``failed``."""
        incident = new_incident_id()
        log.error(
            "session %s: inbound %s set aside after %d unfinished attempts (incident %s)",
            s.key,
            inbound.id,
            attempts,
            incident,
        )
        text = SET_ASIDE_TEXT.format(attempts=attempts, incident=incident)
        await self._end_run(inbound, self._reply(s, inbound, text, format="plain"), status="failed")

    async def _note_waiting(self, s: Session, inbound: Inbound, *, mine: bool) -> None:
        """Say at once why a message that is no answer waits while a question is pending.

        The message stays queued and gets its own run once the question is settled (answered
        or timed out). It is not taken as "no": "what would that delete?" is no refusal, and
        denying on it would refuse a call the person may want. Without this note it would wait
        in silence for up to the whole approval timeout. ``mine``: its sender is the one asked."""
        text = WAITING_FOR_YOU_TEXT if mine else WAITING_FOR_OTHER_TEXT
        try:
            await self.send_during_run(self._reply(s, inbound, text, format="plain"))
        except Exception:  # a courtesy: the message itself is queued either way
            log.warning("session %s: could not send the waiting note for inbound %s", s.key, inbound.id, exc_info=True)

    # ----------------------------------------------------------------- replies
    # Every outbound is recorded (finals only) and then published; what differs is whether a run
    # ends with it: ``send_during_run`` ends none, ``_end_run`` ends one that keeps no history
    # (a command, a button, a ``send`` job, a set-aside message), ``_end_agent_run`` ends an
    # agent run together with the history and usage it produced.
    def _reply(self, s: Session, inbound: Inbound, text: str, *, format: TextFormat = "markdown") -> Outbound:
        """A final outbound answering ``inbound`` (threaded under the user's message)."""
        return Outbound(
            conversation=s.conversation,
            text=text,
            reply_to_platform_id=inbound.reply_to_platform_id,
            inbound_id=inbound.id,
            format=format,
        )

    async def send_during_run(self, outbound: Outbound) -> None:
        """Send without ending any run: a final goes into the outbox first (durable), a partial
        or a typing indicator straight to the bus. ``RunContext.send`` and ``ask`` use it."""
        if outbound.final and not outbound.typing:
            await self.store.record_outbound(outbound)
        await self.bus.publish("outbound", outbound)

    async def publish(self, outbound: Outbound) -> None:
        """Put an outbound on the bus whose final is in the outbox already (a task's posts,
        committed with the task's state)."""
        await self.bus.publish("outbound", outbound)

    async def ask_in(
        self, conversation: ConversationRef, outbound: Outbound, *, user_id: str, timeout: float
    ) -> Inbound | None:
        """Ask in ``conversation`` for a run outside it (a task's approval) and wait for
        ``user_id``'s answer, which reaches the question as any answer does (buttons, yes/no).
        One question per conversation: while another is pending, this one waits its turn
        (within ``timeout``). Returns None on timeout."""
        s = self._session_for(conversation)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while s.question is not None:
            if loop.time() >= deadline:
                return None
            # Its answer, or a look again each second (an unanswered question ends unresolved).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(s.question.future), min(1.0, deadline - loop.time()))
            await asyncio.sleep(0)  # the asking run clears its question after the answer
        future: asyncio.Future[Inbound] = loop.create_future()
        buttons = frozenset(b.id for b in outbound.buttons)
        s.question = Question(buttons, user_id, future, 0, outbound, utcnow(), timeout)
        try:
            await self.send_during_run(outbound)
            try:
                return await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
            except TimeoutError:
                return None
        finally:
            s.question = None

    async def _end_run(self, inbound: Inbound, reply: Outbound | None, *, status: str = "answered") -> None:
        """End a run that keeps no history: ``reply`` (if any) and the inbound's ``status`` in
        one commit, then ``reply`` on the bus."""
        await self.store.finish_run(inbound, reply=reply, status=status)
        if reply is not None:
            await self.bus.publish("outbound", reply)
        if self.run_ended is not None:
            self.run_ended(inbound, ())

    # ----------------------------------------------------------------- agent runs
    async def _run_agent(self, s: Session, inbound: Inbound) -> None:
        ctx = SessionRunContext(self, s, inbound)
        final: Outbound | None = None
        async with self.pool.slot(JOB if inbound.kind == "job" else INTERACTIVE):
            self.active_runs += 1
            s.runs += 1
            # The run happens in the session's worker task; `/stop` cancels that task while
            # `s.running` (see SessionControl.stop_run), and the cancellation is taken back here.
            s.running = True
            now = time.monotonic()
            watch = self._runs[s] = _RunWatch(typed=now, started=now)
            try:
                await self._begin(inbound)
                final = await self._drive(ctx)
            except asyncio.CancelledError:
                if not s.stop_requested or self._stopping:
                    raise  # shutdown: the inbound stays unanswered and is resumed on the next start
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                final = self._reply(s, inbound, "Stopped.")
            except Exception as exc:
                incident = new_incident_id()
                log.error("session %s: agent run failed (incident %s)", s.key, incident, exc_info=exc)
                final = self._reply(s, inbound, f"Sorry — something went wrong on my side (incident {incident}).")
            finally:
                s.running = False
                s.stop_requested = False
                self.active_runs -= 1
                self._runs.pop(s, None)
        await self._end_agent_run(s, ctx, final=final)
        if self.observer is not None:
            first = None if watch.first_output is None else watch.first_output - watch.started
            self.observer.run_finished(s.conversation.channel, time.monotonic() - watch.started, first, ctx.usage)

    async def _watch_runs(self) -> None:
        """One watcher renews "typing…" for every run in progress (rather than timers per run,
        which cost the hot path), since platforms show it for a few seconds only (Telegram: 5 s)."""
        while True:
            await asyncio.sleep(min(0.25, TYPING_RENEW_SECONDS / 2))
            now = time.monotonic()
            for s, w in list(self._runs.items()):
                if now - w.typed >= TYPING_RENEW_SECONDS and s.question is None:
                    w.typed = now
                    await self.bus.publish(
                        "outbound", Outbound(conversation=s.conversation, text="", typing=True, final=False)
                    )

    async def _drive(self, ctx: SessionRunContext) -> Outbound | None:
        """Iterate the agent: progress goes out at once, every final but the last is sent as it
        comes, and the last is returned to be committed with the run's end."""
        held: Outbound | None = None
        watch = self._runs.get(ctx.session)
        async for out in self.agent.run(ctx):
            if watch is not None and watch.first_output is None and not out.typing:
                watch.first_output = time.monotonic()
            if not out.final or out.typing:
                await self.bus.publish("outbound", out)
                continue
            if held is not None:
                await self.send_during_run(held)
            held = out
        return held

    async def _end_agent_run(self, s: Session, ctx: SessionRunContext, *, final: Outbound | None) -> None:
        """End an agent run: its last final outbound, the history and usage it produced and the
        inbound ``answered`` in one commit; then the session's cached history follows, and
        ``final`` goes on the bus."""
        await self.store.finish_run(
            ctx.inbound,
            reply=final,
            remember=ctx.new_items,
            replace_history=ctx.replaced,
            usage=ctx.usage,
        )
        if s.history is not None:
            if ctx.replaced is not None:
                s.history = list(ctx.replaced)
            s.history.extend(ctx.new_items)
        ctx.new_items = []
        ctx.replaced = None
        if final is not None:
            await self.bus.publish("outbound", final)
        if self.run_ended is not None:
            self.run_ended(ctx.inbound, ctx.usage)

    # ----------------------------------------------------------------- control
    async def _handle_control(self, s: Session, inbound: Inbound) -> None:
        q = s.question
        if inbound.kind == "button":
            if q is None or inbound.button not in q.button_ids:
                await self._end_run(
                    inbound, self._reply(s, inbound, "That request is no longer waiting for an answer.")
                )
                return
            if inbound.sender.id != q.user_id and not is_operator(inbound.sender):
                await self._end_run(
                    inbound, self._reply(s, inbound, "Only the person who started this request can answer it.")
                )
                return
            if not q.future.done():
                q.future.set_result(inbound)
            await self._end_run(inbound, None)
            return
        if inbound.kind == "message" and q is not None:
            if not q.future.done():
                q.future.set_result(inbound)
            await self._end_run(inbound, None)
            return
        await self._run_command(s, inbound)

    # ----------------------------------------------------------------- the dashboard
    def pending_questions(self) -> list[PendingQuestion]:
        """Every question a run waits on now, of every channel, oldest first."""
        return pending_questions(self.sessions.values())

    def operator_answer(self, question_id: str, button: str, principal_id: str) -> Inbound | None:
        """See ``hub.questions.operator_answer``."""
        return operator_answer(self.sessions.values(), question_id, button, principal_id)

    async def _run_command(self, s: Session, inbound: Inbound) -> None:
        assert inbound.command is not None
        cmd = self.commands.get(inbound.command)
        if cmd is None:
            text = f"Unknown command /{inbound.command}. Send /help for the list."
        else:
            await self._ensure_loaded(s)
            call = CommandCall(
                inbound=inbound, args=inbound.text, session=SessionControl(self, s), is_admin=inbound.sender.is_admin
            )
            try:
                text = await cmd.handler(call) or ""
            except Exception:
                incident = new_incident_id()
                log.exception("command /%s failed (incident %s)", cmd.name, incident)
                text = f"Sorry — /{cmd.name} failed (incident {incident})."
        await self._end_run(inbound, self._reply(s, inbound, text, format="plain") if text else None)


def register_session_commands(commands: CommandRegistry) -> None:
    """Add ``/new``, ``/stop``, ``/status``, ``/help``, which ``SessionManager`` dispatches. The
    hub calls it once, before channels are built, so every channel learns the whole list."""

    async def new(call: CommandCall) -> str:
        await call.session.reset()
        return "Started a fresh conversation."

    async def stop(call: CommandCall) -> str:
        return "Stopping." if call.session.stop_run() else "Nothing is running."

    async def status(call: CommandCall) -> str:
        return call.session.status()

    async def help_(call: CommandCall) -> str:
        return commands.help_text()

    for c in (
        Command(name="new", description="start a fresh conversation", handler=new),
        Command(name="stop", description="stop the answer in progress", handler=stop, control=True),
        Command(name="status", description="what the bot is doing", handler=status, control=True),
        Command(name="help", description="list commands", handler=help_, control=True),
    ):
        commands.add(c)
