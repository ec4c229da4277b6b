"""Dynamic batching of concurrent requests to one model: requests that arrive together share one
batch, which is safe because every narvox model gives an item the same output whatever its
batch-mates.

A `Batcher` owns a bounded queue. `submit(item)` waits for the item's result; the batcher's task
takes the first waiting item, every other one already waiting, then whatever else arrives within
`max_wait` seconds (up to `max_batch` items), and runs `run(items) -> results` on the server's
worker thread, so model calls never overlap on the CPU and the event loop stays free for I/O.
With `max_wait` 0 (the server's default) a request never waits for company: the requests that
arrive while a batch runs make up the next one, so batches grow with the load by themselves
(waiting 20 ms cut one client's throughput from 70 to 28 transcriptions per second,
bench/results/serve.md).
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any, Callable


class QueueFull(Exception):
    """The queue holds `max_queue` requests already: the server is overloaded."""


class Batcher:
    def __init__(self, run: Callable[[list], list], executor: Executor, max_batch: int = 16,
                 max_wait: float = 0.0, max_queue: int = 64):
        if max_batch < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError("max_batch and max_queue must be >= 1, max_wait >= 0")
        self.run, self.executor = run, executor
        self.max_batch, self.max_wait = max_batch, max_wait
        self.queue: asyncio.Queue = asyncio.Queue(max_queue)
        self.batch_sizes: list[int] = []  # of every batch run, for tests and the load benchmark
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        """Finishes every queued request, then stops."""
        await self.queue.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((item, future))
        except asyncio.QueueFull:
            raise QueueFull(f"{self.queue.maxsize} requests are waiting already") from None
        return await future

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                if deadline <= loop.time():
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), deadline - loop.time()))
                except asyncio.TimeoutError:
                    break
            live = [(item, f) for item, f in batch if not f.cancelled()]  # a client that gave up
            try:
                if live:
                    self.batch_sizes.append(len(live))
                    results = await loop.run_in_executor(self.executor, self.run, [item for item, _ in live])
                    for (_, future), result in zip(live, results):
                        if not future.cancelled():
                            future.set_result(result)
            except Exception as e:  # the batch failed as a whole: every request in it hears why
                for _, future in live:
                    if not future.done():
                        future.set_exception(e)
            finally:
                for _ in batch:
                    self.queue.task_done()
