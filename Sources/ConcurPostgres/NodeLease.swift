import ConcurCore
package import ConcurProtocol
import PostgresNIO

/// A node's lease on the jobs it holds: its row in `nodes`, renewed by heartbeats, and the
/// rescue of the jobs of nodes whose lease lapsed.
///
/// A node registers under its name with a new incarnation; every heartbeat renews its lease
/// only for that incarnation, so a node that another start of the same name replaced learns it
/// at its next heartbeat (false) and must stop writing. A node whose lease lapsed (it stopped
/// heartbeating for `lease_seconds`: kill -9, a frozen host, a lost network) is marked lost by
/// the first other node that notices, and its jobs are put back by the same rules a restart
/// applies to the SQLite journal: a requested cancel ends the job cancelled; an at-most-once
/// job that may have run fails; a running job past its attempts fails; every other job is
/// queued again, its attempts as written.
package struct NodeLease: Sendable {
    /// The queue whose nodes these are.
    package let queue: SharedQueue
    /// Seconds a lease lasts past each heartbeat.
    package let seconds: Double

    /// The lease of `queue`'s node, `seconds` long.
    package init(queue: SharedQueue, seconds: Double) {
        self.queue = queue
        self.seconds = seconds
    }

    /// Who holds a node's name now, when it is not this node.
    package struct Holder: Sendable, Equatable {
        /// The host it runs on.
        package var host: String
        /// Its process.
        package var pid: Int32
        /// Seconds since its last heartbeat.
        package var silentFor: Double
    }

    /// Registers this node (`host`, `pid`, concurd `version`) with a new incarnation and returns
    /// it. The jobs an earlier incarnation left in flight (a crash) are put back first.
    ///
    /// - Throws: ``StoreFailure``, permanent when another live node holds the name (its lease
    ///   has not lapsed and it is not a dead process of this host: `isDead(pid)` says).
    package func register(
        host: String, pid: Int32, version: String, isDead: @Sendable (Int32) -> Bool, on session: StoreSession
    ) async throws(StoreFailure) -> Int64 {
        let schema = queue.schema
        let logger = queue.logger
        let name = queue.node
        let existing = try await session.run(limit: queue.limit) { connection in
            var found: (String, Int32, Int16, Double)?
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL:
                        "SELECT host, pid, state, extract(epoch FROM now() - heartbeat_at)::float8, lease_until > now() FROM \(schema).nodes WHERE name = $1",
                    binds: .of(name)), logger: logger)
            for try await (host, pid, state, silent, live) in rows.decode((String, Int32, Int16, Double, Bool).self) {
                found = live && state == 0 ? (host, pid, state, silent) : nil
            }
            return found
        }
        if let (holderHost, holderPID, _, silent) = existing, !(holderHost == host && (holderPID == pid || isDead(holderPID))) {
            throw StoreFailure(
                kind: .permanent,
                message:
                    "node \(name) is already running on \(holderHost) (pid \(holderPID), last heartbeat \(Int(silent)) s ago): give this concurd another name (--node or node = in the config), or stop that one first"
            )
        }
        let incarnation = try await queue.execute(
            """
            INSERT INTO \(schema).nodes (name, incarnation, host, pid, version, state, started_at, heartbeat_at, lease_until,
              lease_seconds)
            VALUES ($1, 1, $2, $3, $4, 0, now(), now(), now() + make_interval(secs => $5), $5)
            ON CONFLICT (name) DO UPDATE SET incarnation = nodes.incarnation + 1, host = EXCLUDED.host, pid = EXCLUDED.pid,
              version = EXCLUDED.version, state = 0, started_at = now(), heartbeat_at = now(),
              lease_until = EXCLUDED.lease_until, lease_seconds = EXCLUDED.lease_seconds
            RETURNING incarnation
            """, .of(name, host, pid, version, seconds), on: session)
        guard let incarnation = incarnation.first else {
            throw StoreFailure(kind: .transient, message: "the job store did not register node \(name): trying again")
        }
        let back = try await rescue(nodes: [name], reason: "concurd on this node stopped without a drain", on: session)
        if back.total > 0 {
            logger.notice(
                "node \(name): \(back.requeued) jobs an earlier run left in flight queued again, \(back.failed) failed, \(back.cancelled) cancelled"
            )
        }
        return incarnation
    }

    /// Renews the lease of `incarnation`, and writes `report` (what `ClusterStatus` shows of the
    /// node) with it when given; false when the node no longer holds its name (marked lost by
    /// another node, or replaced by another start): it must stop writing and stop.
    package func heartbeat(incarnation: Int64, report: NodeReport? = nil, on session: StoreSession)
        async throws(StoreFailure) -> Bool
    {
        let renew = "heartbeat_at = now(), lease_until = now() + make_interval(secs => lease_seconds)"
        let fence = "WHERE name = $1 AND incarnation = $2 AND state = 0 RETURNING incarnation"
        guard let report else {
            return try await !queue.execute(
                "UPDATE \(queue.schema).nodes SET \(renew) \(fence)", .of(queue.node, incarnation), on: session
            ).isEmpty
        }
        return try await !queue.execute(
            """
            UPDATE \(queue.schema).nodes SET \(renew), pools = $3::jsonb, done = $4, failed = $5, cancelled = $6 \(fence)
            """,
            .of(
                queue.node, incarnation, report.pools.json.serialized, Int64(report.done), Int64(report.failed),
                Int64(report.cancelled)), on: session
        ).isEmpty
    }

    /// Marks this node stopped after a drain, putting back whatever it still holds.
    package func stop(incarnation: Int64, on session: StoreSession) async throws(StoreFailure) {
        _ = try await rescue(nodes: [queue.node], reason: "its node stopped", on: session)
        _ = try await queue.execute(
            "UPDATE \(queue.schema).nodes SET state = 1 WHERE name = $1 AND incarnation = $2 RETURNING incarnation",
            .of(queue.node, incarnation), on: session)
    }

    /// What a rescue did.
    package struct Rescue: Sendable, Equatable {
        /// The nodes found lost.
        package var lost: [String] = []
        /// Their jobs queued again.
        package var requeued = 0
        /// Their jobs failed (at most once, or past their attempts).
        package var failed = 0
        /// Their jobs cancelled (a cancel had been asked for).
        package var cancelled = 0
        /// All their jobs.
        package var total: Int { requeued + failed + cancelled }

        /// A rescue of `lost`'s jobs with these counts.
        package init(lost: [String] = [], requeued: Int = 0, failed: Int = 0, cancelled: Int = 0) {
            self.lost = lost
            self.requeued = requeued
            self.failed = failed
            self.cancelled = cancelled
        }
    }

    /// Marks lost every other node whose lease lapsed and puts back their jobs.
    package func rescueLapsed(on session: StoreSession) async throws(StoreFailure) -> Rescue {
        let schema = queue.schema
        let logger = queue.logger
        let me = queue.node
        let lost = try await session.run(limit: queue.limit) { connection in
            var names: [String] = []
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL:
                        "UPDATE \(schema).nodes SET state = 2 WHERE state = 0 AND lease_until < now() AND name <> $1 RETURNING name",
                    binds: .of(me)), logger: logger)
            for try await name in rows.decode(String.self) { names.append(name) }
            return names
        }
        guard !lost.isEmpty else { return Rescue() }
        var rescue = try await self.rescue(nodes: lost, reason: "its node stopped heartbeating", on: session)
        rescue.lost = lost
        logger.warning(
            "nodes \(lost.joined(separator: ", ")) lost their lease: \(rescue.requeued) of their jobs queued again, \(rescue.failed) failed, \(rescue.cancelled) cancelled"
        )
        return rescue
    }

    /// Puts back the jobs `nodes` hold, by the restart rules; `reason` starts the error of the
    /// jobs it fails.
    func rescue(nodes: [String], reason: String, on session: StoreSession) async throws(StoreFailure) -> Rescue {
        let schema = queue.schema
        let logger = queue.logger
        let exec = JobEncoding.Kind.exec.rawValue
        let counted = "j.attempts - j.preemptions - coalesce(jsonb_array_length(j.history), 0)"
        let sql = """
            WITH v AS (
              SELECT j.id, CASE
                WHEN j.cancel_reason IS NOT NULL THEN 5
                WHEN j.at_most_once AND (j.state = 2 OR j.kind <> \(exec)) THEN 4
                WHEN j.state = 2 AND \(counted) >= j.max_attempts THEN 4
                ELSE 0 END AS verdict,
              CASE
                WHEN j.cancel_reason IS NOT NULL THEN j.cancel_reason
                WHEN j.at_most_once AND (j.state = 2 OR j.kind <> \(exec)) THEN $2 || ' (node ' || j.node || ') while it held the job; it may have run, and it is to run at most once'
                WHEN j.state = 2 AND \(counted) >= j.max_attempts THEN $2 || ' (node ' || j.node || ') while it ran (attempt ' || \(counted) || ' of ' || j.max_attempts || ')'
                END AS why
              FROM \(schema).jobs j WHERE j.node = ANY($1) AND j.state IN (1, 2) FOR UPDATE)
            UPDATE \(schema).jobs j SET state = v.verdict, error = coalesce(v.why, j.error),
              finished_at = CASE WHEN v.verdict > 0 THEN now() END,
              node = CASE WHEN v.verdict > 0 THEN j.node END
            FROM v WHERE j.id = v.id
            RETURNING j.state, j.pool
            """
        let binds = PostgresBindings.of(nodes, reason)
        let (rescue, requeuedIn) = try await session.run(limit: queue.limit) { connection in
            var rescue = Rescue()
            var requeuedIn: Set<String> = []
            for try await (state, pool) in try await connection.query(
                PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger
            ).decode((Int16, String).self) {
                switch state {
                case 0:
                    rescue.requeued += 1
                    requeuedIn.insert(pool)
                case 5: rescue.cancelled += 1
                default: rescue.failed += 1
                }
            }
            return (rescue, requeuedIn)
        }
        await queue.notifyReady(requeuedIn, on: session)
        return rescue
    }
}
