package import ConcurProtocol
import PostgresNIO
import Varlink

extension SharedQueue {
    /// Reads every node the queue has seen and its jobs counted by pool and state, in one
    /// transaction (the two reads agree). A node's pools that cannot be read back (a record
    /// damaged, or written by a version this one does not understand) leave its pools empty and
    /// say so in its `problem`, never fail the whole status.
    ///
    /// The jobs are counted over the whole table: a sequential scan, as long as finished jobs
    /// are kept.
    package func clusterStatus(on session: StoreSession) async throws(StoreFailure) -> ClusterStatus {
        let (schema, logger, node) = (schema, logger, node)
        return try await session.run(limit: limit) { connection in
            try await connection.withTransaction(logger: logger) { connection in
                var nodes: [ClusterNode] = []
                let rows = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT name, host, pid, version, state, lease_until > now(), extract(epoch FROM started_at)::float8,
                              greatest(extract(epoch FROM now() - heartbeat_at)::float8, 0), lease_seconds, pools::text,
                              done, failed, cancelled
                            FROM \(schema).nodes ORDER BY name
                            """), logger: logger)
                for try await row in rows.decode(
                    (String, String, Int32, String, Int16, Bool, Double, Double, Double, String, Int64, Int64, Int64).self)
                {
                    let (pools, problem) = Self.nodePools(row.9)
                    nodes.append(
                        ClusterNode(
                            name: row.0, host: row.1, pid: Int(row.2), version: row.3,
                            state: Self.nodeState(row.4, leaseHeld: row.5), startedAt: row.6, heartbeatAge: row.7,
                            leaseSeconds: row.8, pools: pools, done: Int(row.10), failed: Int(row.11),
                            cancelled: Int(row.12), problem: problem))
                }
                var queue: [ClusterQueue] = []
                let counts = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "SELECT pool, state, count(*) FROM \(schema).jobs GROUP BY pool, state ORDER BY pool, state"),
                    logger: logger)
                for try await (pool, state, count) in counts.decode((String, Int16, Int64).self) {
                    if queue.last?.pool != pool { queue.append(ClusterQueue(pool: pool)) }
                    Self.count(Int(count), state: state, into: &queue[queue.count - 1])
                }
                return ClusterStatus(answeredBy: node, nodes: nodes, queue: queue)
            }
        }
    }

    /// A node's state from its row: `state` as written, `leaseHeld` whether its lease is still
    /// in the future.
    static func nodeState(_ state: Int16, leaseHeld: Bool) -> NodeState {
        switch state {
        case 0: leaseHeld ? .running : .silent
        case 1: .stopped
        default: .lost
        }
    }

    /// A node's pools from the text of its `pools` column, or why they cannot be read.
    static func nodePools(_ text: String) -> ([NodePool], String?) {
        do {
            return (try [NodePool](json: try JSON.parse(text), path: "pools"), nil)
        } catch let error as JSONParseError {
            return ([], "its pools in the queue are not JSON (\(error)); its next heartbeat writes them again")
        } catch {
            return ([], "its pools in the queue cannot be read (\(error)): is it another version of concurd?")
        }
    }

    /// Adds `count` jobs in queue state `state` to `row`. A state this build does not know
    /// (a newer schema) is counted nowhere.
    static func count(_ count: Int, state: Int16, into row: inout ClusterQueue) {
        switch state {
        case 0: row.queued += count
        case 1: row.claimed += count
        case 2: row.running += count
        case 3: row.done += count
        case 4: row.failed += count
        case 5: row.cancelled += count
        case 6: row.scheduled += count
        default: break
        }
    }
}
