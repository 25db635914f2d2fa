from __future__ import annotations

import asyncio

from hub.bus import Bus


async def test_every_subscriber_gets_every_item_and_filters_apply() -> None:
    bus = Bus()
    a = bus.subscribe("inbound")
    b = bus.subscribe("inbound", filter=lambda x: x % 2 == 0)
    for i in range(4):
        await bus.publish("inbound", i)
    assert [a.get_nowait() for _ in range(4)] == [0, 1, 2, 3]
    assert [b.get_nowait() for _ in range(2)] == [0, 2]


async def test_work_topics_apply_back_pressure_and_never_drop() -> None:
    bus = Bus()
    sub = bus.subscribe("outbound", maxsize=2)
    await bus.publish("outbound", 1)
    await bus.publish("outbound", 2)
    blocked = asyncio.create_task(bus.publish("outbound", 3))
    await asyncio.sleep(0)
    assert not blocked.done()
    assert await anext(sub) == 1
    await asyncio.wait_for(blocked, 1)
    assert [await anext(sub), await anext(sub)] == [2, 3]
    assert sub.dropped == 0


async def test_observer_topics_drop_and_count() -> None:
    bus = Bus()
    sub = bus.subscribe("events", maxsize=1)
    for i in range(5):
        await bus.publish("events", i)
    assert sub.dropped == 4
    assert sub.get_nowait() == 0


async def test_cancelled_subscriber_unsubscribes() -> None:
    bus = Bus()
    sub = bus.subscribe("inbound")

    async def consume() -> None:
        async for _ in sub:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert bus.subscribers("inbound") == 0
    await bus.publish("inbound", 1)  # nobody left to block on
