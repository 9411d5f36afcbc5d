"""Durable no-op jobs through the Python PostgreSQL queues concur's cluster is measured against,
on the same server in the same run: pgqueuer and procrastinate (pip install pgqueuer
procrastinate asyncpg "psycopg[binary,pool]").

    python3 pg_queues.py TOOL DSN JOBS WORKERS

Queues JOBS no-op jobs, then starts WORKERS worker processes (each a node, with its tool's
default concurrency and batch sizes), each running until the queue is empty, and prints one
JSON object: the tool, the jobs, the wall time from the first worker's start to the last
worker's end, and the workers' CPU seconds. The jobs are queued, and the tool imported, before
the clock starts (concur's time includes queueing its jobs: this favours the tools); each
tool's schema is created fresh in the database given.
"""

import asyncio
import json
import os
import resource
import sys
import time


async def pgqueuer_setup(dsn, jobs):
    import asyncpg
    from pgqueuer import Queries
    from pgqueuer.db import AsyncpgDriver

    connection = await asyncpg.connect(dsn)
    queries = Queries(AsyncpgDriver(connection))
    await queries.install()
    for start in range(0, jobs, 10_000):
        count = min(10_000, jobs - start)
        await queries.enqueue(["noop"] * count, [None] * count, [0] * count)
    await connection.close()


async def pgqueuer_work(dsn):
    import asyncpg
    from pgqueuer import Queries, QueueManager
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.types import QueueExecutionMode

    connection = await asyncpg.connect(dsn)
    manager = QueueManager(Queries(AsyncpgDriver(connection)))

    @manager.entrypoint("noop")
    async def noop(job):
        pass

    await manager.run(mode=QueueExecutionMode.drain)
    await connection.close()


def procrastinate_app(dsn):
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    async def noop():
        pass

    return app, noop


async def procrastinate_setup(dsn, jobs):
    app, noop = procrastinate_app(dsn)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        for start in range(0, jobs, 10_000):
            await noop.batch_defer_async(*[{}] * min(10_000, jobs - start))


async def procrastinate_work(dsn):
    app, _ = procrastinate_app(dsn)
    async with app.open_async():
        await app.run_worker_async(wait=False, install_signal_handlers=False)


TOOLS = {
    "pgqueuer": (pgqueuer_setup, pgqueuer_work),
    "procrastinate": (procrastinate_setup, procrastinate_work),
}


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in TOOLS:
        sys.exit("usage: pg_queues.py pgqueuer|procrastinate DSN JOBS WORKERS")
    tool, dsn, jobs, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if jobs < 1 or workers < 1:
        sys.exit("pg_queues.py: JOBS and WORKERS must be at least 1")
    setup, work = TOOLS[tool]
    __import__(tool)  # imported before the workers fork, so none pays for it on the clock
    asyncio.run(setup(dsn, jobs))
    started = time.perf_counter()
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(work(dsn))
                os._exit(0)
            except BaseException as error:  # the child must not return into the parent's code
                print(f"pg_queues.py: {tool} worker failed: {error!r}", file=sys.stderr)
                os._exit(1)
        children.append(pid)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if failed:
        sys.exit(f"pg_queues.py: {failed} {tool} worker(s) failed")
    print(json.dumps({"tool": tool, "jobs": jobs, "workers": workers, "wall_s": wall, "jobs_per_s": jobs / wall,
                      "workers_cpu_s": usage.ru_utime + usage.ru_stime}))


if __name__ == "__main__":
    main()
