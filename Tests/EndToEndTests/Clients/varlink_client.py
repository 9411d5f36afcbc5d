#!/usr/bin/env python3
"""Drives concurd with the reference Python Varlink implementation (pip install varlink).

The client downloads io.concur.Supervisor's definition, parses it, and checks every call and
reply against it. Prints one JSON object per step, for the Swift end-to-end test to check.

Usage: varlink_client.py SOCKET
"""
import json
import sys

import varlink


def main(socket_path):
    address = "unix:" + socket_path
    with varlink.Client(address=address) as client:
        print(json.dumps({"step": "interfaces", "value": client.get_interfaces()}))
        interface = client.get_interface("io.concur.Supervisor")
        print(json.dumps({"step": "parsed", "methods": sorted(m for m in interface.members if m[0].isupper() and hasattr(interface.members[m], "in_type"))}))
        with client.open("io.concur.Supervisor") as supervisor:
            status = supervisor.Status()
            print(json.dumps({"step": "status", "value": status["status"]}))
            # A streaming call: Submit with more replies with the ids, then one job per reply.
            replies = list(supervisor.Submit([{"kind": "prime", "n": 97}, {"kind": "sleep", "ms": 5}], _more=True))
            print(json.dumps({"step": "submit", "first": replies[0], "jobs": [r["job"] for r in replies[1:]]}))
            # A model switch: the reply comes once a worker of the new model serves.
            switched = supervisor.SetModel("tasks", True)
            print(json.dumps({"step": "switch", "value": switched, "status": supervisor.Status()["status"]}))
            # Live statistics: three frames of WatchStats, each checked against the definition.
            frames = []
            for frame in supervisor.WatchStats(0.05, _more=True):
                frames.append({"uptime": frame["status"]["uptimeSeconds"], "done": frame["status"]["totals"]["done"]})
                if len(frames) == 3:
                    break
            print(json.dumps({"step": "watchstats", "frames": frames}))
        with client.open("io.concur.Supervisor") as supervisor:
            try:
                supervisor.Resize(0)
            except varlink.VarlinkError as error:
                print(json.dumps({"step": "error", "name": error.error(), "parameters": error.parameters()}))
        # Cancel: a running job is stopping; the same job again (now ended) is JobFinished.
        with client.open("io.concur.Supervisor") as supervisor:
            ids = supervisor.Submit([{"kind": "sleep", "ms": 600000}])["ids"]
            while supervisor.Status()["status"]["running"] == 0:
                pass
            cancelled = supervisor.Cancel(ids, None)
            ended = list(supervisor.WatchJobs(ids, None, None, _more=True))
            try:
                supervisor.Cancel(ids, None)
                again = None
            except varlink.VarlinkError as error:
                again = {"name": error.error(), "parameters": error.parameters()}
            print(json.dumps({"step": "cancel", "value": cancelled, "job": ended[-1]["job"], "again": again}))


if __name__ == "__main__":
    main(sys.argv[1])
