"""Conversation → session; one run at a time per session, in order.

The manager consumes ``inbound`` from the bus. Ordinary messages queue per session and run
one after another; control inputs (``/stop``, ``/status``, button taps, a yes/no answer to a
pending question) are handled at once, because the run they address is what blocks the
queue. A global semaphore caps concurrent agent runs. Idle sessions leave memory and come
back from the store (history, settings) when their conversation speaks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .agent import Agent, HistoryItem, Usage
from .bus import Bus, Subscription
from .commands import Command, CommandCall, CommandRegistry
from .messages import ConversationRef, Inbound, Outbound, Sender
from .store import Store

log = logging.getLogger(__name__)

YES_WORDS = frozenset({"yes", "y", "approve", "approved", "ok", "okay", "allow", "sure"})
NO_WORDS = frozenset({"no", "n", "deny", "denied", "reject", "cancel", "stop"})
TYPING_RENEW_SECONDS = 4.0
MAX_ATTEMPTS = 3
"""A message whose run started this many times without finishing is quarantined, so a hub
that crashes on one message does not crash-loop on it after every restart."""


@dataclass(slots=True)
class _Question:
    button_ids: frozenset[str]
    user_id: str
    future: asyncio.Future[Inbound]


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
    question: _Question | None = None
    last_active: float = 0.0
    runs: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.queue) or self.worker is not None or self.question is not None


@dataclass(slots=True, kw_only=True)
class _RunWatch:
    started: float
    typed: float
    inbound_id: int
    marked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionLimits:
    max_concurrent_runs: int = 100
    idle_seconds: float = 600.0
    max_sessions_in_memory: int = 10_000
    stop_grace_seconds: float = 10.0


class SessionManager:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        agent: Agent,
        commands: CommandRegistry,
        limits: SessionLimits = SessionLimits(),
    ) -> None:
        self.store = store
        self.bus = bus
        self.agent = agent
        self.commands = commands
        self.limits = limits
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self._slots = asyncio.Semaphore(limits.max_concurrent_runs)
        self._sub: Subscription[Inbound] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._runs: dict[Session, _RunWatch] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._prior_attempts: dict[int, int] = {}
        self.active_runs = 0
        register_session_commands(commands)

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self._consumer is not None:
            raise RuntimeError("SessionManager already started")
        self._sub = self.bus.subscribe("inbound")
        self._consumer = asyncio.create_task(self._consume(), name="sessions-consume")
        self._sweeper = asyncio.create_task(self._sweep(), name="sessions-sweep")
        self._watcher = asyncio.create_task(self._watch_runs(), name="sessions-watch")

    async def resume(self) -> int:
        """Re-dispatch inbounds that were received but never answered (after a crash)."""
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

        A cancelled run leaves its inbound ``processing``; it is resumed on the next start."""
        if self._consumer is None:
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
                # inbound stays unanswered and the question is asked again after the restart.
                s.worker.cancel()
        workers = [s.worker for s in self.sessions.values() if s.worker] + list(self._side_tasks)
        if workers:
            _done, pending = await asyncio.wait(workers, timeout=self.limits.stop_grace_seconds)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
        self._consumer = None

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
    def session_for(self, conv: ConversationRef) -> Session:
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
        s = self.session_for(inbound.conversation)
        if self._is_control(s, inbound):
            self._spawn(self._handle_control(s, inbound), f"control-{inbound.id}")
            return
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
            word = inbound.text.strip().lower().rstrip(".!")
            return inbound.sender.id == s.question.user_id and (word in YES_WORDS or word in NO_WORDS)
        return False

    def _spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
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
        if inbound.id:
            attempts = self._prior_attempts.pop(inbound.id, 0)
            if attempts >= MAX_ATTEMPTS:
                await self._reply(s, inbound, "Sorry — I could not process this message (it failed "
                                  f"{attempts} times). It has been set aside.", status="failed")
                return
        await self._ensure_loaded(s)
        if inbound.kind == "command" and inbound.command:
            await self._run_command(s, inbound)
        elif inbound.kind == "job" and inbound.job is not None and inbound.job.action == "send":
            await self._reply(s, inbound, inbound.text)
        else:
            await self._run_agent(s, inbound)


    # ----------------------------------------------------------------- replies
    def _outbound(self, s: Session, inbound: Inbound | None, text: str, **kw: object) -> Outbound:
        return Outbound(
            conversation=s.conversation,
            text=text,
            reply_to=inbound.reply_to if inbound else None,
            in_reply_to=inbound.id if inbound else 0,
            **kw,  # type: ignore[arg-type]
        )

    async def _reply(self, s: Session, inbound: Inbound, text: str, *, status: str = "answered",
                     **kw: object) -> None:
        out = self._outbound(s, inbound, text, **kw)
        await self.store.finish_run(inbound, reply=out, status=status)
        await self.bus.publish("outbound", out)

    async def send_now(self, outbound: Outbound) -> None:
        if outbound.final and not outbound.typing:
            await self.store.record_outbound(outbound)
        await self.bus.publish("outbound", outbound)

    # ----------------------------------------------------------------- agent runs
    async def _run_agent(self, s: Session, inbound: Inbound) -> None:
        ctx = _RunContext(self, s, inbound)
        final: Outbound | None = None
        async with self._slots:
            self.active_runs += 1
            s.runs += 1
            # The run happens in the session's worker task; `/stop` cancels that task while
            # `s.running` (see _Control.stop_run), and the cancellation is taken back here.
            s.running = True
            now = time.monotonic()
            self._runs[s] = _RunWatch(started=now, typed=now, inbound_id=inbound.id)
            try:
                final = await self._drive(ctx)
            except asyncio.CancelledError:
                if not s.stop_requested or self._stopping:
                    raise  # shutdown: the inbound stays unanswered and is resumed on the next start
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                final = self._outbound(s, inbound, "Stopped.")
            except Exception as exc:
                incident = uuid.uuid4().hex[:8]
                log.error("session %s: agent run failed (incident %s)", s.key, incident, exc_info=exc)
                final = self._outbound(s, inbound, f"Sorry — something went wrong on my side (incident {incident}).")
            finally:
                s.running = False
                s.stop_requested = False
                self.active_runs -= 1
                self._runs.pop(s, None)
        await self._finish(s, ctx, final=final)

    async def _watch_runs(self) -> None:
        """One watcher for every run in progress (rather than timers per run, which cost the hot
        path): a run over a second old is marked ``processing`` so operators can see it (quick
        runs go received → answered in one commit), and "typing…" is renewed, since platforms
        show it for a few seconds only (Telegram: 5 s)."""
        while True:
            await asyncio.sleep(min(0.25, TYPING_RENEW_SECONDS / 2))
            now = time.monotonic()
            for s, w in list(self._runs.items()):
                if not w.marked and w.inbound_id and now - w.started >= 1.0:
                    w.marked = True
                    self.store.mark_processing(w.inbound_id)
                if now - w.typed >= TYPING_RENEW_SECONDS and s.question is None:
                    w.typed = now
                    await self.bus.publish("outbound", Outbound(conversation=s.conversation, text="",
                                                                typing=True, final=False))

    async def _drive(self, ctx: _RunContext) -> Outbound | None:
        """Iterate the agent: progress goes out at once, every final but the last is sent as it
        comes, and the last is returned to be committed with the run's end."""
        held: Outbound | None = None
        async for out in self.agent.run(ctx):
            if not out.final or out.typing:
                await self.bus.publish("outbound", out)
                continue
            if held is not None:
                await self.send_now(held)
            held = out
        return held

    async def _finish(self, s: Session, ctx: _RunContext, *, final: Outbound | None,
                      status: str = "answered") -> None:
        await self.store.finish_run(
            ctx.inbound, reply=final, remember=ctx.new_items, replace_history=ctx.replaced,
            usage=ctx.usage, status=status)
        if s.history is not None:
            if ctx.replaced is not None:
                s.history = list(ctx.replaced)
            s.history.extend(ctx.new_items)
        ctx.new_items = []
        ctx.replaced = None
        if final is not None:
            await self.bus.publish("outbound", final)

    # ----------------------------------------------------------------- control
    async def _handle_control(self, s: Session, inbound: Inbound) -> None:
        q = s.question
        if inbound.kind == "button":
            if q is None or inbound.button not in q.button_ids:
                await self._reply(s, inbound, "That request is no longer waiting for an answer.")
                return
            if inbound.sender.id != q.user_id:
                await self._reply(s, inbound, "Only the person who started this request can answer it.")
                return
            if not q.future.done():
                q.future.set_result(inbound)
            await self.store.finish_run(inbound, reply=None)
            return
        if inbound.kind == "message" and q is not None:
            if not q.future.done():
                q.future.set_result(inbound)
            await self.store.finish_run(inbound, reply=None)
            return
        await self._run_command(s, inbound)

    async def _run_command(self, s: Session, inbound: Inbound) -> None:
        assert inbound.command is not None
        cmd = self.commands.get(inbound.command)
        if cmd is None:
            text = f"Unknown command /{inbound.command}. Send /help for the list."
        else:
            await self._ensure_loaded(s)
            call = CommandCall(inbound=inbound, args=inbound.text, session=_Control(self, s),
                               is_admin=inbound.sender.is_admin)
            try:
                text = await cmd.handler(call) or ""
            except Exception:
                incident = uuid.uuid4().hex[:8]
                log.exception("command /%s failed (incident %s)", cmd.name, incident)
                text = f"Sorry — /{cmd.name} failed (incident {incident})."
        if text:
            await self._reply(s, inbound, text, format="plain")
        else:
            await self.store.finish_run(inbound, reply=None)

def register_session_commands(commands: CommandRegistry) -> None:
    """``/new``, ``/stop``, ``/status``, ``/help`` (idempotent: the hub registers them before
    channels are built, so every channel learns the whole command list)."""

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
        if c.name not in commands:
            commands.add(c)


class _Control:
    """``SessionControl`` for command handlers."""

    def __init__(self, manager: SessionManager, session: Session) -> None:
        self._m = manager
        self._s = session

    @property
    def settings(self) -> dict[str, str]:
        return dict(self._s.settings)

    async def set_setting(self, key: str, value: str | None) -> None:
        self._s.settings = await self._m.store.set_setting(self._s.key, key, value)

    async def reset(self) -> None:
        await self._m.store.clear_history(self._s.key)
        self._s.history = []

    def stop_run(self) -> bool:
        s = self._s
        if not s.running or s.worker is None or s.stop_requested:
            return False
        s.stop_requested = True
        s.worker.cancel()
        return True

    def status(self) -> str:
        s = self._s
        state = "answering" if s.running else "idle"
        if s.question is not None:
            state = "waiting for your answer"
        return (f"Status: {state}; {len(s.queue)} message(s) queued; {len(s.history or ())} history "
                f"item(s); hub: {self._m.active_runs} run(s) in progress.")


class _RunContext:
    """``hub.agent.RunContext`` for one run."""

    def __init__(self, manager: SessionManager, session: Session, inbound: Inbound) -> None:
        self._m = manager
        self.session = session
        self._inbound = inbound
        self.new_items: list[HistoryItem] = []
        self.replaced: list[HistoryItem] | None = None
        self.usage: list[tuple[str, str, Usage]] = []

    @property
    def inbound(self) -> Inbound:
        return self._inbound

    @property
    def conversation(self) -> ConversationRef:
        return self.session.conversation

    @property
    def sender(self) -> Sender:
        return self._inbound.sender

    @property
    def history(self) -> Sequence[HistoryItem]:
        base = self.replaced if self.replaced is not None else (self.session.history or [])
        return tuple(base)

    @property
    def settings(self) -> dict[str, str]:
        return dict(self.session.settings)

    def remember(self, *items: HistoryItem) -> None:
        self.new_items.extend(items)

    def replace_history(self, items: Sequence[HistoryItem]) -> None:
        self.replaced = list(items)
        self.new_items = []

    def record_usage(self, provider: str, model: str, usage: Usage) -> None:
        self.usage.append((provider, model, usage))

    async def send(self, outbound: Outbound) -> None:
        await self._m.send_now(outbound)

    async def set_setting(self, name: str, value: str | None) -> None:
        s = self.session
        s.settings = await self._m.store.set_setting(s.key, name, value)

    async def ask(self, outbound: Outbound, *, user_id: str, timeout: float) -> Inbound | None:
        s = self.session
        future: asyncio.Future[Inbound] = asyncio.get_running_loop().create_future()
        s.question = _Question(frozenset(b.id for b in outbound.buttons), user_id, future)
        try:
            await self._m.send_now(outbound)
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                return None
        finally:
            s.question = None
