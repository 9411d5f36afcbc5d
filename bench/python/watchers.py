#!/usr/bin/env python3
"""N clients that each follow WatchStats at an interval and read every frame, until SIGTERM.

Usage: watchers.py SOCKET COUNT INTERVAL
Prints {"frames": total frames read, "cpu_s": this process's CPU time} when told to stop.
"""
import json
import os
import selectors
import signal
import socket
import sys


def main(path, count, interval):
    selector = selectors.DefaultSelector()
    for _ in range(count):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(path)
        call = {"method": "io.concur.Supervisor.WatchStats", "parameters": {"interval": interval}, "more": True}
        client.sendall(json.dumps(call).encode() + b"\0")
        selector.register(client, selectors.EVENT_READ)
    frames = 0
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while running:
        for key, _ in selector.select(timeout=0.2):
            data = key.fileobj.recv(1 << 20)
            if not data:
                selector.unregister(key.fileobj)
                continue
            frames += data.count(b"\0")
    times = os.times()
    print(json.dumps({"frames": frames, "cpu_s": times.user + times.system}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
