#!/usr/bin/env python3
"""Throws bad input at concurd's control socket for a bounded time while a well-behaved client
keeps calling Status and checks every answer. Prints one JSON summary line.

Usage: fuzz_client.py SOCKET SECONDS SEED

Bad input: random bytes, truncated and oversized messages (over 1 MiB), deep nesting, wrong
types and unknown fields for every method, unknown methods and interfaces, many connections at
once, and slow partial writes.
"""
import json
import os
import random
import socket
import sys
import threading
import time

METHODS = ["Submit", "Generate", "Status", "Stats", "Resize", "SetModel", "ListJobs", "WatchJobs", "WatchStats",
           "Pause", "Resume", "Reload"]
VALUES = [None, True, False, 0, -1, 2**63, -2**63, 1.5, float("1e308"), "", "x" * 10000, [], {}, [1, "a"], {"a": 1},
          "threads", "sleep", [{"kind": "fail"}], [{"kind": "sleep", "ms": -5}], [{"kind": "cpu", "size": "big"}]]
PARAMETERS = ["jobs", "count", "kind", "seed", "scale", "workers", "model", "preempt", "ids", "state", "limit",
              "interval", "events", "timeout", "bogus"]


def connect(path):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(5)
    client.connect(path)
    return client


def bad_message(rng):
    choice = rng.randrange(9)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000))) + b"\0"
    if choice == 1:
        return json.dumps({"method": "io.concur.Supervisor." + rng.choice(METHODS)}).encode()[: rng.randrange(1, 30)] + b"\0"
    if choice == 2:
        return b'{"method":"io.concur.Supervisor.Status","parameters":{"x":"' + b"a" * (1 << 20) + b'"}}\0'
    if choice == 3:
        depth = rng.choice([100, 1000, 100000])
        return b'{"method":"io.concur.Supervisor.Status","parameters":{"x":' + b"[" * depth + b"]" * depth + b"}}\0"
    if choice == 4:
        return json.dumps({"method": "io.concur.Supervisor.Nope" + str(rng.randrange(99))}).encode() + b"\0"
    if choice == 5:
        return json.dumps({"method": "com.example.Other.Call"}).encode() + b"\0"
    if choice == 6:
        return json.dumps({"method": rng.choice([1, None, [], "", "noDots"]), "parameters": rng.choice(VALUES)},
                          allow_nan=True).encode() + b"\0"
    parameters = {rng.choice(PARAMETERS): rng.choice(VALUES) for _ in range(rng.randrange(0, 4))}
    call = {"method": "io.concur.Supervisor." + rng.choice([m for m in METHODS if m not in ("Reload",)]),
            "parameters": parameters}
    if rng.random() < 0.2:
        call["more"] = rng.choice([True, "yes", 1])
    if rng.random() < 0.1:
        call["oneway"] = True
    return json.dumps(call).encode() + b"\0"


def attacker(path, deadline, seed, counts):
    rng = random.Random(seed)
    while time.time() < deadline:
        try:
            client = connect(path)
            for _ in range(rng.randrange(1, 5)):
                message = bad_message(rng)
                if rng.random() < 0.1:
                    # A slow partial write: a few bytes at a time.
                    for index in range(0, min(len(message), 40), 4):
                        client.sendall(message[index:index + 4])
                        time.sleep(0.01)
                else:
                    client.sendall(message)
                counts["sent"] += 1
                try:
                    client.recv(1 << 16)
                except (socket.timeout, OSError):
                    pass
            client.close()
        except OSError:
            counts["refused"] += 1  # the daemon closed on us: allowed


def crowd(path, deadline, counts):
    """Many connections at once, held briefly."""
    while time.time() < deadline:
        held = []
        for _ in range(300):
            try:
                held.append(connect(path))
            except OSError:
                counts["crowd_refused"] += 1
                break
        counts["crowd_max"] = max(counts["crowd_max"], len(held))
        time.sleep(0.2)
        for client in held:
            client.close()


def main(path, seconds, seed):
    deadline = time.time() + seconds
    counts = {"sent": 0, "refused": 0, "crowd_refused": 0, "crowd_max": 0}
    threads = [threading.Thread(target=attacker, args=(path, deadline, seed + index, counts)) for index in range(3)]
    threads.append(threading.Thread(target=crowd, args=(path, deadline, counts)))
    for thread in threads:
        thread.start()
    good, wrong, slowest = 0, [], 0.0
    while time.time() < deadline:
        start = time.time()
        try:
            # As concurctl does: a full listen backlog (EAGAIN) is retried for up to a second.
            for attempt in range(100):
                try:
                    client = connect(path)
                    break
                except BlockingIOError:
                    if attempt == 99:
                        raise
                    time.sleep(0.01)
            client.sendall(b'{"method":"io.concur.Supervisor.Status"}\0')
            reply = b""
            while not reply.endswith(b"\0"):
                chunk = client.recv(1 << 16)
                if not chunk:
                    break
                reply += chunk
            client.close()
            status = json.loads(reply[:-1])["parameters"]["status"]
            if status["phase"] != "serving" or status["workers"]["target"] < 1:
                wrong.append(status)
            good += 1
        except Exception as error:  # noqa: BLE001 - every failure of the good client is reported
            wrong.append(repr(error))
        slowest = max(slowest, time.time() - start)
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    print(json.dumps({"good_calls": good, "wrong": wrong[:5], "wrong_count": len(wrong), "slowest_good_s": slowest,
                      **counts}))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
