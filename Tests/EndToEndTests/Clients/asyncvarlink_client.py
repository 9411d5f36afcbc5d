#!/usr/bin/env python3
"""Drives concurd with asyncvarlink (pip install asyncvarlink), a second independent Varlink
implementation, through the same steps as varlink_client.py, printing the same JSON lines.

asyncvarlink types its interfaces in Python; the calls here go through its protocol layer
(framing, pipelining, continued replies, errors) with plain parameters, so what is tested is
concurd's wire behaviour as another implementation reads it.

Usage: asyncvarlink_client.py SOCKET
"""
import asyncio
import json
import re
import sys

from asyncvarlink import VarlinkClientProtocol, VarlinkMethodCall, connect_unix_varlink

SUPERVISOR = "io.concur.Supervisor"


async def call(protocol, method, parameters=None):
    """One reply's parameters, or {"error": name, "parameters": ...} for an error reply."""
    reply, _ = await protocol.call(VarlinkMethodCall(method, parameters or {}))
    if reply.error is not None:
        return {"error": reply.error, "parameters": reply.parameters}
    return reply.parameters


async def call_more(protocol, method, parameters, limit=None):
    replies = []
    async for reply, _ in protocol.call_more(VarlinkMethodCall(method, parameters, more=True)):
        if reply.error is not None:
            raise RuntimeError(f"{method}: {reply.error} {reply.parameters}")
        replies.append(reply.parameters)
        if limit is not None and len(replies) == limit:
            break
    return replies


def quiet_about_abandoned_streams(loop, context):
    """The replies of the WatchStats stream left after three frames fail when its connection is
    closed; that is the point, not an error worth a traceback."""
    if not isinstance(context.get("exception"), ConnectionResetError):
        loop.default_exception_handler(context)


async def main(socket_path):
    asyncio.get_running_loop().set_exception_handler(quiet_about_abandoned_streams)
    transport, protocol = await connect_unix_varlink(VarlinkClientProtocol, socket_path)
    try:
        info = await call(protocol, "org.varlink.service.GetInfo")
        print(json.dumps({"step": "interfaces", "value": info["interfaces"], "info": info}))
        description = (await call(protocol, "org.varlink.service.GetInterfaceDescription", {"interface": SUPERVISOR}))[
            "description"]
        methods = sorted(set(re.findall(r"^\s*method\s+(\w+)\s*\(", description, re.MULTILINE)))
        print(json.dumps({"step": "parsed", "methods": methods}))
        status = await call(protocol, f"{SUPERVISOR}.Status")
        print(json.dumps({"step": "status", "value": status["status"]}))
        replies = await call_more(protocol, f"{SUPERVISOR}.Submit", {"jobs": [{"kind": "prime", "n": 97}, {"kind": "sleep", "ms": 5}]})
        print(json.dumps({"step": "submit", "first": replies[0], "jobs": [r["job"] for r in replies[1:]]}))
        switched = await call(protocol, f"{SUPERVISOR}.SetModel", {"model": "tasks", "preempt": True})
        after = await call(protocol, f"{SUPERVISOR}.Status")
        print(json.dumps({"step": "switch", "value": switched, "status": after["status"]}))
        frames = await call_more(protocol, f"{SUPERVISOR}.WatchStats", {"interval": 0.05}, limit=3)
        print(json.dumps({"step": "watchstats", "frames": [
            {"uptime": f["status"]["uptimeSeconds"], "done": f["status"]["totals"]["done"]} for f in frames]}))
    finally:
        transport.close()
    # A stream left early is ended by closing its connection: the next calls get their own.
    transport, protocol = await connect_unix_varlink(VarlinkClientProtocol, socket_path)
    try:
        error = await call(protocol, f"{SUPERVISOR}.Resize", {"workers": 0})
        print(json.dumps({"step": "error", "name": error.get("error"), "parameters": error.get("parameters")}))
        ids = (await call(protocol, f"{SUPERVISOR}.Submit", {"jobs": [{"kind": "sleep", "ms": 600000}]}))["ids"]
        while (await call(protocol, f"{SUPERVISOR}.Status"))["status"]["running"] == 0:
            await asyncio.sleep(0.01)
        cancelled = await call(protocol, f"{SUPERVISOR}.Cancel", {"ids": ids})
        ended = await call_more(protocol, f"{SUPERVISOR}.WatchJobs", {"ids": ids})
        again = await call(protocol, f"{SUPERVISOR}.Cancel", {"ids": ids})
        print(json.dumps({"step": "cancel", "value": cancelled, "job": ended[-1]["job"],
                          "again": {"name": again.get("error"), "parameters": again.get("parameters")}}))
    finally:
        transport.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
