package import ConcurProtocol

/// The seeds' Python pools, for `concurd compare --python`: a program concurd runs with
/// `python3` on the same seeded jobs as its own models, so that what the GIL does to threads
/// is measured on this machine rather than asserted.
///
/// The program ships inside concurd (nothing to install beside it). It reads the jobs and the
/// pool sizes as JSON from the file named by its argument and prints a JSON line per run. Its
/// `cpu` job is concur's multiply-xorshift chain, step for step, so the checksums match; a
/// `sleep` job sleeps (`time.sleep`, `asyncio.sleep` in the event loop). Each pool is started
/// and warmed before its clock starts, as concur's workers are.
package enum PythonPool: String, CaseIterable, Sendable {
    /// `concurrent.futures.ThreadPoolExecutor`.
    case threads = "python-threads"
    /// `concurrent.futures.ProcessPoolExecutor`.
    case processes = "python-processes"
    /// Worker coroutines in an `asyncio.TaskGroup` reading one `asyncio.Queue`.
    case asyncio = "python-asyncio"

    /// How a person names it.
    package var title: String {
        switch self {
        case .threads: "Python ThreadPoolExecutor"
        case .processes: "Python ProcessPoolExecutor"
        case .asyncio: "Python asyncio TaskGroup"
        }
    }

    /// The concur model it answers.
    package var counterpart: ConcurrencyModel {
        switch self {
        case .threads: .threads
        case .processes: .processes
        case .asyncio: .tasks
        }
    }

    /// The job kinds the program runs; a `prime` job of 16 to 19 digits takes Python minutes.
    package static let kinds: Set<GeneratedKind> = [.cpu, .sleep]

    /// The program: `python3 -c PROGRAM INPUT.json`.
    package static let program = #"""
        import asyncio, concurrent.futures, json, os, resource, sys, time

        MASK = (1 << 64) - 1

        def cpu(size):
            state = 0x9E3779B97F4A7C15
            for _ in range(int(max(0.0, size) * 37500000.0)):
                state = (state * 6364136223846793005 + 1442695040888963407) & MASK
                state ^= state >> 31
            return state

        def job(spec):
            kind, value = spec
            if kind == "cpu":
                return cpu(value)
            time.sleep(value / 1000)
            return 0

        async def job_async(spec):
            kind, value = spec
            if kind == "cpu":
                return cpu(value)
            await asyncio.sleep(value / 1000)
            return 0

        TICK = os.sysconf("SC_CLK_TCK")

        def cpu_seconds(pids=()):
            # This process, and the pool's live children read from /proc (reaped ones are not
            # counted until their pool shuts down, after the clock stopped).
            own = resource.getrusage(resource.RUSAGE_SELF)
            total = own.ru_utime + own.ru_stime
            for pid in pids:
                try:
                    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / TICK
                except OSError:
                    pass
            return total

        def warm(_):
            return 0

        def measure(pool, workers, jobs):
            if pool == "python-asyncio":
                return asyncio.run(measure_async(workers, jobs))
            executor = (concurrent.futures.ThreadPoolExecutor if pool == "python-threads"
                        else concurrent.futures.ProcessPoolExecutor)(max_workers=workers)
            with executor:
                list(executor.map(warm, range(workers * 2)))
                pids = list(getattr(executor, "_processes", None) or {})
                cpu_before, start = cpu_seconds(pids), time.perf_counter()
                results = [future.result() for future in [executor.submit(job, spec) for spec in jobs]]
                wall = time.perf_counter() - start
                cpu_after = cpu_seconds(pids)
            return wall, cpu_after - cpu_before, results

        async def measure_async(workers, jobs):
            queue, results = asyncio.Queue(), [0] * len(jobs)
            for index, spec in enumerate(jobs):
                queue.put_nowait((index, spec))
            async def worker():
                while not queue.empty():
                    index, spec = queue.get_nowait()
                    results[index] = await job_async(spec)
            cpu_before, start = cpu_seconds(), time.perf_counter()
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(worker())
            return time.perf_counter() - start, cpu_seconds() - cpu_before, results

        def main():
            request = json.load(open(sys.argv[1]))
            jobs = [tuple(spec) for spec in request["jobs"]]
            for round in range(request["repeat"]):
                for pool in request["pools"]:
                    for workers in request["sizes"]:
                        wall, cpu_used, results = measure(pool, workers, jobs)
                        digest = 0
                        for value in results:
                            digest ^= value
                        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                        if pool == "python-processes":
                            peak += workers * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
                        print(json.dumps({"pool": pool, "workers": workers, "round": round + 1, "wall": wall,
                                          "cpu": cpu_used, "finished": len(results), "digest": f"{digest:016x}",
                                          "peakRSS": peak}), flush=True)

        main()
        """#
}
