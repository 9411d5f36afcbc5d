package import ConcurCore
import ConcurProtocol
package import Varlink

/// A pool's changes folded into one row per job, sent as one JSON array to one `UPDATE ... FROM
/// jsonb_to_recordset(...)`: what the shared store must hold of each job once the batch commits.
///
/// Pure. A job's changes within one batch collapse to their end: a start the same batch
/// finishes is not written apart, a retry's failed run is appended once, a finish carries the
/// whole record. Each row names the claim its node holds (the fencing token), so a write from
/// a node that lost the job matches nothing. Changes the shared store never receives from a
/// pool (`accepted`: shared submits are inserted directly; `claimed`: the claim is already the
/// row's) are skipped. (JSON rather than one array per column: postgres-nio 1.33 binds no
/// array with NULL elements, and most columns are NULL for most rows.)
package struct WriteBatch: Sendable, Equatable {
    /// What one job's row becomes.
    package struct Row: Sendable, Equatable {
        /// The job.
        package var id: Int64
        /// The claim it was written under.
        package var claim: Int64
        /// The state it ends the batch in (``JobEncoding/State`` codes: claimed 1, running 2, final 3 to 5).
        package var state: JobEncoding.State = .handedOver
        /// Attempts started, and of those preempted (nil: not changed in this batch).
        package var attempts: Int?
        /// Attempts preempted.
        package var preemptions: Int?
        /// The worker of its last start, and that worker's model.
        package var worker: Int?
        /// The model of that worker.
        package var model: String?
        /// Unix times of its last start and of its end.
        package var started: Double?
        /// Its end, once final.
        package var finished: Double?
        /// Its output's columns.
        package var output = JobEncoding.OutputColumns(nil)
        /// Why it failed or was cancelled.
        package var error: String?
        /// The whole history of failed runs, for a final row.
        package var history: [JSON]?
        /// Failed runs to append, for a row a retry keeps going (appended once: only while the
        /// row's attempts are below this row's).
        package var retried: [JSON] = []
        /// A cancel asked for while this node holds it.
        package var cancelReason: String?

        /// The row as `jsonb_to_recordset` reads it (absent keys are NULL).
        var json: JSON {
            var object: JSONObject = ["id": .int(id), "claim": .int(claim), "state": .int(Int64(state.rawValue))]
            object.set("attempts", attempts)
            object.set("preemptions", preemptions)
            object.set("worker", worker)
            object.set("model", model)
            object.set("started", started)
            object.set("finished", finished)
            if output.kind != .none { object["out_kind"] = .int(Int64(output.kind.rawValue)) }
            object.set("out_a", output.a)
            object.set("out_b", output.b)
            object.set("out_seconds", output.seconds)
            object.set("out_text", output.text)
            object.set("error", error)
            if let history { object["history"] = .array(history) }
            if !retried.isEmpty { object["retried"] = .array(retried) }
            object.set("cancel_reason", cancelReason)
            return .object(object)
        }
    }

    /// The rows, in the order each job's first change came.
    package var rows: [Row] = []
    /// Jobs whose changes came without a claim this node holds (given back or surrendered):
    /// not written.
    package var unclaimed: [JobID] = []

    /// Whether there is nothing to write.
    package var isEmpty: Bool { rows.isEmpty }

    /// The rows as one JSON array, the statement's parameter.
    package var json: String { JSON.array(rows.map(\.json)).serialized }

    /// The batch of `changes`, with each job's claim from `claim` (nil: not held).
    package init(_ changes: [JournalChange], clock: MonotonicClock, claim: (JobID) -> Int64?) {
        var row: [JobID: Int] = [:]
        func index(_ id: JobID) -> Int? {
            if let found = row[id] { return found }
            guard let token = claim(id) else {
                unclaimed.append(id)
                return nil
            }
            row[id] = rows.count
            rows.append(Row(id: Int64(id), claim: token))
            return rows.count - 1
        }
        for change in changes {
            switch change {
            case .accepted, .claimed:
                continue
            case .started(let id, let count, let preempted, let worker, let model, let at):
                guard let i = index(id) else { continue }
                rows[i].state = .running
                rows[i].attempts = count
                rows[i].preemptions = preempted
                rows[i].worker = worker
                rows[i].model = model.rawValue
                rows[i].started = clock.unixTime(at)
            case .requeued(let id, let count, let preempted):
                guard let i = index(id) else { continue }
                rows[i].state = .handedOver
                rows[i].attempts = count
                rows[i].preemptions = preempted
            case .retrying(let id, let attempt, let count):
                guard let i = index(id) else { continue }
                rows[i].state = .handedOver
                rows[i].attempts = count
                rows[i].retried.append(attempt.info(clock: clock).json)
            case .cancelRequested(let id, let reason):
                guard let i = index(id) else { continue }
                rows[i].cancelReason = reason
            case .finished(let record):
                guard let i = index(record.id) else { continue }
                rows[i].finish(record, clock: clock)
            }
        }
    }
}

extension WriteBatch.Row {
    /// Fills the row from a final record.
    fileprivate mutating func finish(_ record: JobRecord, clock: MonotonicClock) {
        state =
            switch record.state {
            case .done: .done
            case .failed: .failed
            default: .cancelled
            }
        attempts = record.attempts
        preemptions = record.preemptions
        worker = record.worker
        model = record.model?.rawValue
        started = record.startedAt.map(clock.unixTime)
        finished = record.finishedAt.map(clock.unixTime)
        error = record.error
        history = record.history.isEmpty ? nil : record.history.map { $0.info(clock: clock).json }
        retried = []
        output = JobEncoding.OutputColumns(record.output)
    }
}
