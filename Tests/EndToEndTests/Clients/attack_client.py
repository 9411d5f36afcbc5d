#!/usr/bin/env python3
"""Clients that misbehave on concurd's control socket, for the tests and the benchmark: each
mode prints one JSON line with what it saw.

Usage:
  attack_client.py pipeline SOCKET CONNECTIONS CALLS STATUS_CALLS
      CONNECTIONS clients each send CALLS Stats calls without reading a reply; meanwhile a
      well-behaved client times STATUS_CALLS Status calls. Reports the latencies (ms) and, per
      flooder, whether concurd closed it and how many calls it got to send.
  attack_client.py status SOCKET CALLS
      Times CALLS Status calls of a well-behaved client (run it beside a flood in another process).
  attack_client.py watchers SOCKET COUNT SECONDS
      COUNT clients each start WatchJobs (every job) with a tiny receive buffer and never read,
      for SECONDS; reports how many concurd closed.
  attack_client.py lists SOCKET COUNT LIMIT STATUS_CALLS SECONDS
      COUNT clients each ask for the LIMIT newest jobs (ListJobs, one large reply) with a tiny
      receive buffer and never read; meanwhile a well-behaved client times STATUS_CALLS Status
      calls. After SECONDS more, reports the latencies and how many of the COUNT concurd closed.
  attack_client.py impostor SOCKET SECONDS
      Listens on SOCKET in concurd's place for SECONDS and answers every call with the error
      org.example.Impostor (for the test that concurctl refuses to talk to it).
  attack_client.py hold SOCKET COUNT SECONDS
      Opens COUNT idle connections and holds them for SECONDS; reports how many connected and
      how many concurd closed (or refused) meanwhile.
"""
import json
import os
import select
import socket
import sys
import threading
import time


def connect(path, timeout=10.0, receive_buffer=None):
    """A connection; a full listen backlog (EAGAIN) is retried for up to `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if receive_buffer:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        client.settimeout(timeout)
        try:
            client.connect(path)
            return client
        except BlockingIOError:
            client.close()
            if time.time() > deadline:
                raise
            time.sleep(0.005)


def call(method):
    return json.dumps({"method": "io.concur.Supervisor." + method}).encode() + b"\0"


def closed_by_peer(client, wait=0.0):
    """Whether the other end hung up (EOF, reset, or HUP), looking at most `wait` seconds."""
    poller = select.poll()
    poller.register(client, select.POLLIN | select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0x2000))
    events = poller.poll(wait * 1000)
    if not events:
        return False
    mask = events[0][1]
    if mask & (select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0x2000)):
        return True
    return False


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def pipeline(path, connections, calls, status_calls):
    results = [None] * connections
    message = call("Stats")

    def flood(index):
        sent = 0
        closed = False
        try:
            client = connect(path, timeout=5.0)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            burst = message * 100
            while sent < calls:
                try:
                    client.sendall(burst)
                    sent += 100
                except socket.timeout:
                    break  # blocked: concurd reads no more from it (backpressure)
            closed = closed_by_peer(client, wait=15.0)
            client.close()
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        results[index] = {"sent": sent, "closed": closed}

    threads = [threading.Thread(target=flood, args=(index,)) for index in range(connections)]
    for thread in threads:
        thread.start()
    report = {}
    if status_calls > 0:
        time.sleep(0.2)
        report = status_latencies(path, status_calls)
    for thread in threads:
        thread.join()
    report["flooders"] = results
    print(json.dumps(report))


def status_latencies(path, calls):
    """Times `calls` Status calls, one at a time, 2 ms apart, on one connection (a reply may
    take up to two minutes, so that even a stalled daemon is measured)."""
    good = connect(path, timeout=120.0)
    latencies = []
    buffer = b""
    for _ in range(calls):
        start = time.perf_counter()
        good.sendall(call("Status"))
        while b"\0" not in buffer:
            chunk = good.recv(65536)
            if not chunk:
                raise SystemExit("the well-behaved client was disconnected")
            buffer += chunk
        reply, _, buffer = buffer.partition(b"\0")
        latencies.append((time.perf_counter() - start) * 1000)
        if "error" in json.loads(reply):
            raise SystemExit("Status failed: " + reply.decode())
        time.sleep(0.002)
    good.close()
    return {
        "status_p50_ms": percentile(latencies, 0.5), "status_p99_ms": percentile(latencies, 0.99),
        "status_max_ms": max(latencies), "slowest_call": latencies.index(max(latencies)), "calls": calls,
    }


def watchers(path, count, seconds):
    clients = []
    for _ in range(count):
        client = connect(path, receive_buffer=4096)
        client.sendall(json.dumps({"method": "io.concur.Supervisor.WatchJobs", "more": True}).encode() + b"\0")
        clients.append(client)
    print(json.dumps({"watching": len(clients)}), flush=True)
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.2)
    closed = sum(1 for client in clients if closed_by_peer(client))
    print(json.dumps({"watchers": count, "closed": closed}))


def lists(path, count, limit, status_calls, seconds):
    clients = []
    message = json.dumps({"method": "io.concur.Supervisor.ListJobs", "parameters": {"limit": limit}}).encode() + b"\0"
    for _ in range(count):
        client = connect(path, receive_buffer=4096)
        client.sendall(message)
        clients.append(client)
    report = status_latencies(path, status_calls)
    time.sleep(seconds)
    report["closed"] = sum(1 for client in clients if closed_by_peer(client))
    report["listers"] = count
    print(json.dumps(report))


def hold(path, count, seconds):
    clients = []
    failed = 0
    for _ in range(count):
        try:
            clients.append(connect(path, timeout=2.0))
        except OSError:
            failed += 1
    print(json.dumps({"connected": len(clients), "failed": failed}), flush=True)
    time.sleep(seconds)
    closed = sum(1 for client in clients if closed_by_peer(client))
    print(json.dumps({"connected": len(clients), "failed": failed, "closed": closed}))


def impostor(path, seconds):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o666)
    server.listen(16)
    server.settimeout(0.2)
    print(json.dumps({"listening": path}), flush=True)
    deadline = time.time() + seconds
    answered = 0
    while time.time() < deadline:
        try:
            client, _ = server.accept()
        except socket.timeout:
            continue
        client.settimeout(2)
        try:
            if client.recv(65536):
                client.sendall(json.dumps({"error": "org.example.Impostor", "parameters": {}}).encode() + b"\0")
                answered += 1
        except OSError:
            pass
        client.close()
    server.close()
    os.unlink(path)
    print(json.dumps({"answered": answered}), flush=True)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    numbers = [int(value) for value in sys.argv[3:]]
    if mode == "pipeline":
        pipeline(path, *numbers)
    elif mode == "status":
        print(json.dumps(status_latencies(path, *numbers)))
    elif mode == "watchers":
        watchers(path, *numbers)
    elif mode == "impostor":
        impostor(path, *numbers)
    elif mode == "lists":
        lists(path, *numbers)
    elif mode == "hold":
        hold(path, *numbers)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
