#!/usr/bin/env python3
"""The 20-number prime workload through Python's pools, for bench/run to compare with concur.

    primes_pools.py KIND [WORKERS]     prints one JSON object: wall and CPU seconds (this process
                                       and its children), and the number of primes found (9)

KIND: thread (ThreadPoolExecutor), process (ProcessPoolExecutor, as in the concurrent.futures
documentation), procs (a procs.py-style pool: WORKERS multiprocessing.Process workers reading
numbers from a Queue until a None poison pill, results on another Queue).
The test is the same trial division by odd numbers up to isqrt(n) as concur's prime(n) job and
bench/c/primes.c.
"""
import concurrent.futures
import json
import math
import multiprocessing
import resource
import sys
import time

NUMBERS = [
    2, 142702110479723, 299593572317531, 3333333333333301, 3333333333333333, 3333335652092209,
    4444444444444423, 4444444444444444, 4444444488888889, 5555553133149889, 5555555555555503,
    5555555555555555, 6666666666666666, 6666666666666719, 6666667141414921, 7777777536340681,
    7777777777777753, 7777777777777777, 9999999999999917, 9999999999999999,
]


def is_prime(n):
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    for divisor in range(3, math.isqrt(n) + 1, 2):
        if n % divisor == 0:
            return False
    return True


def procs_worker(numbers, results):
    while True:
        n = numbers.get()
        if n is None:  # the poison pill
            return
        results.put((n, is_prime(n)))


def run(kind, workers):
    if kind == "thread":
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(is_prime, NUMBERS))
    if kind == "process":
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(is_prime, NUMBERS))
    if kind == "procs":
        numbers, results = multiprocessing.Queue(), multiprocessing.Queue()
        processes = [multiprocessing.Process(target=procs_worker, args=(numbers, results)) for _ in range(workers)]
        for process in processes:
            process.start()
        for n in NUMBERS:
            numbers.put(n)
        for _ in processes:
            numbers.put(None)
        found = dict(results.get() for _ in NUMBERS)
        for process in processes:
            process.join()
        return [found[n] for n in NUMBERS]
    sys.exit(f"primes_pools.py: unknown kind {kind!r} (thread, process, procs)")


def cpu_seconds():
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    kind = sys.argv[1]
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    cpu_before = cpu_seconds()
    start = time.perf_counter()
    primes = run(kind, workers)
    wall = time.perf_counter() - start
    print(json.dumps({"kind": kind, "workers": workers, "wall_s": wall, "cpu_s": cpu_seconds() - cpu_before,
                      "primes": sum(primes)}))
