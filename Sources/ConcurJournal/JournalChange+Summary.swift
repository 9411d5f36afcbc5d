package import ConcurCore
import ConcurRuntime

extension JournalChange {
    /// The jobs `changes` concern, by what happened to them, with consecutive ids as ranges:
    /// `accepted 41-60; handed over 12, 14; finished 3-11`, for the log.
    package static func summary(of changes: [JournalChange]) -> String {
        let groups = grouped(changes)
        let parts = groups.compactMap { name, ids in ids.isEmpty ? nil : "\(name) \(ranges(ids))" }
        return parts.isEmpty ? "nothing" : parts.joined(separator: "; ")
    }

    /// What becomes of the jobs whose `changes` were never written, for the log at a stop: an
    /// accepted job is not in the journal (lost), a finished one will run again after the
    /// restart (its end was not recorded), one handed over or started may too.
    package static func consequences(of changes: [JournalChange]) -> String {
        let groups = Dictionary(uniqueKeysWithValues: grouped(changes))
        var parts: [String] = []
        if let ids = groups["accepted"], !ids.isEmpty {
            parts.append("jobs \(ranges(ids)) are not in the journal and will not run after the restart")
        }
        if let ids = groups["finished"], !ids.isEmpty {
            parts.append("jobs \(ranges(ids)) finished but will run again after the restart (their end is not in the journal)")
        }
        if let ids = groups["being cancelled"]?.filter({ !(groups["finished"] ?? []).contains($0) }), !ids.isEmpty {
            parts.append(
                "jobs \(ranges(ids)) were being cancelled and may run again after the restart (the cancel is not in the journal)")
        }
        let moved = Set((groups["handed over"] ?? []) + (groups["started"] ?? []) + (groups["re-queued"] ?? []))
            .subtracting(groups["finished"] ?? [])
        if !moved.isEmpty { parts.append("jobs \(ranges(Array(moved))) go back to the queue as the journal last saw them") }
        return parts.isEmpty ? "nothing that matters" : parts.joined(separator: "; ")
    }

    private static func grouped(_ changes: [JournalChange]) -> [(String, [JobID])] {
        var accepted: [JobID] = []
        var handedOver: [JobID] = []
        var started: [JobID] = []
        var requeued: [JobID] = []
        var finished: [JobID] = []
        var cancelling: [JobID] = []
        for change in changes {
            switch change {
            case .accepted(let id, _, _): accepted.append(id)
            case .claimed(let id, _): handedOver.append(id)
            case .started(let id, _, _, _, _, _): started.append(id)
            case .requeued(let id, _, _), .retrying(let id, _, _): requeued.append(id)
            case .cancelRequested(let id, _): cancelling.append(id)
            case .finished(let record): finished.append(record.id)
            }
        }
        return [
            ("accepted", accepted), ("handed over", handedOver), ("started", started), ("re-queued", requeued),
            ("being cancelled", cancelling), ("finished", finished),
        ]
    }

    /// `3-11, 14, 20-21`: sorted, distinct ids with consecutive runs joined.
    static func ranges(_ ids: [JobID]) -> String {
        var runs: [String] = []
        var start: JobID?
        var previous: JobID = 0
        for id in Set(ids).sorted() {
            if start != nil && id == previous + 1 {
                previous = id
                continue
            }
            if let first = start { runs.append(first == previous ? "\(first)" : "\(first)-\(previous)") }
            start = id
            previous = id
        }
        if let first = start { runs.append(first == previous ? "\(first)" : "\(first)-\(previous)") }
        return runs.joined(separator: ", ")
    }
}
