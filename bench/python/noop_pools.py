#!/usr/bin/env python3
"""No-op jobs through Python's standard pools, for bench/run to compare with concur.

    noop_pools.py KIND JOBS [WORKERS]     prints one JSON object: wall and CPU seconds, jobs/s

KIND: process-1 (ProcessPoolExecutor, chunksize 1), process-1000 (chunksize 1000),
thread (ThreadPoolExecutor), taskgroup (an asyncio TaskGroup, one task per job),
asyncio-queue (an asyncio.Queue drained by WORKERS worker coroutines).
"""
import asyncio
import concurrent.futures
import json
import resource
import sys
import time


def noop(value):
    return value


def run_pool(executor_class, jobs, workers, chunksize):
    with executor_class(max_workers=workers) as pool:
        list(pool.submit(noop, 0).result() for _ in range(1))  # start the workers first
        start = time.perf_counter()
        count = sum(1 for _ in pool.map(noop, range(jobs), chunksize=chunksize))
        return time.perf_counter() - start, count


async def run_taskgroup(jobs):
    async def job(value):
        return value

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for value in range(jobs):
            group.create_task(job(value))
    return time.perf_counter() - start, jobs


async def run_queue(jobs, workers):
    queue = asyncio.Queue()
    done = 0

    async def worker():
        nonlocal done
        while True:
            item = await queue.get()
            if item is None:
                return
            noop(item)
            done += 1

    start = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    for value in range(jobs):
        queue.put_nowait(value)
    for _ in range(workers):
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    return time.perf_counter() - start, done


def cpu_seconds():
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main():
    kind, jobs = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    before = cpu_seconds()
    if kind == "process-1":
        wall, count = run_pool(concurrent.futures.ProcessPoolExecutor, jobs, workers, 1)
    elif kind == "process-1000":
        wall, count = run_pool(concurrent.futures.ProcessPoolExecutor, jobs, workers, 1000)
    elif kind == "thread":
        wall, count = run_pool(concurrent.futures.ThreadPoolExecutor, jobs, workers, 1)
    elif kind == "taskgroup":
        wall, count = asyncio.run(run_taskgroup(jobs))
    elif kind == "asyncio-queue":
        wall, count = asyncio.run(run_queue(jobs, workers))
    else:
        sys.exit(f"unknown kind {kind}")
    assert count == jobs
    print(json.dumps({"kind": kind, "jobs": jobs, "wall_s": wall, "cpu_s": cpu_seconds() - before, "jobs_per_s": jobs / wall}))


if __name__ == "__main__":
    main()
