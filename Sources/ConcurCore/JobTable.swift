package import ConcurProtocol
import DequeModule

/// The records of queued, running and recently finished jobs.
///
/// Made for millions of jobs a second: each job has a small, trivially copied slot (state,
/// attempts, worker, times, and a compact output such as a checksum) in a ring indexed by
/// `id - base` (ids are consecutive, so nothing is hashed on the way every job takes); its
/// spec sits in a parallel ring; the rare bulky details (an error text, a command's output)
/// in a dictionary. Finished records are kept up to `retainFinished`, oldest pruned first. A
/// job that stays unfinished for long would pin the ring's start and let pruned slots pile up
/// behind it; past a bound such stragglers move to a dictionary and the ring moves on, so
/// memory stays bounded however many jobs pass through.
package struct JobTable: Sendable {
    /// The hot part of a record: plain bytes, copied without reference counting.
    struct Slot {
        static let empty: UInt8 = 255
        static let noWorker: Int32 = -1

        var state: UInt8 = Slot.empty  // a JobEncoding.State code, or `empty`
        var model: UInt8 = 255  // ConcurrencyModel's index, or 255
        var outputKind = JobEncoding.Output.none  // a command's output is in `details`
        var attempts: UInt32 = 0
        var preemptions: UInt32 = 0
        var worker: Int32 = Slot.noWorker
        var submittedAt: UInt64 = 0
        var startedAt: UInt64 = 0
        var finishedAt: UInt64 = 0
        var outputA: UInt64 = 0
        var outputB: UInt64 = 0

        var isPresent: Bool { state != Slot.empty }
    }

    /// What a slot cannot hold.
    struct Detail {
        var output: JobOutput?
        var error: String?
        var history: [AttemptRecord] = []
    }

    private var slots: Deque<Slot> = []
    private var specs: Deque<JobSpec> = []
    private var base: JobID = 1
    private var details: [JobID: Detail] = [:]
    private var stragglers: [JobID: JobRecord] = [:]
    private var finishedOrder: Deque<JobID> = []
    /// `finishedOrder` by final state (done, failed, cancelled): a list of one state takes as
    /// long as the jobs it returns, however many of the others are kept.
    private var finishedByState: [Deque<JobID>] = [[], [], []]
    private var held = 0
    /// How many finished records are kept.
    package var retainFinished: Int
    /// Changes for the durable journal not yet taken by it; nil when nothing is journaled.
    private(set) var changes: [JournalChange]?
    /// Changes recorded since the table was made (the journal's sequence numbers).
    private(set) var changeCount: UInt64 = 0

    /// Slots allowed beyond the records held before stragglers are moved out of the ring.
    static let slack = 65_536
    /// Empty slots a gap may always add to a small ring before its records move aside.
    static let gapFill = 64
    private static let models = ConcurrencyModel.allCases

    /// An empty table keeping `retainFinished` finished records.
    package init(retainFinished: Int) {
        self.retainFinished = retainFinished
    }

    /// Slots of the ring, empty ones included (for tests of its bound).
    var ringSlots: Int { slots.count }

    /// Records held (queued, running and retained finished ones).
    package var count: Int { held }

    /// Whether changes are collected for a journal.
    package var isJournaled: Bool { changes != nil }

    /// Starts collecting changes for a journal.
    package mutating func startJournal() {
        if changes == nil { changes = [] }
    }

    /// The changes collected since the last call, and how many there have been in all.
    package mutating func takeChanges() -> (changes: [JournalChange], through: UInt64) {
        guard let taken = changes, !taken.isEmpty else { return ([], changeCount) }
        changes = []
        changes!.reserveCapacity(taken.count)
        return (taken, changeCount)
    }

    @inline(__always)
    private mutating func log(_ change: @autoclosure () -> JournalChange) {
        guard changes != nil else { return }
        changes!.append(change())
        changeCount += 1
    }

    /// Notes, for the store, that `worker` claimed a job (it may start it at any moment).
    package mutating func markClaimed(_ id: JobID, by worker: WorkerID) {
        log(.claimed(id, by: worker))
    }

    /// Puts a job whose run failed back to `queued` for its retry, keeping the run in its
    /// history; returns how many failed runs it has had.
    @discardableResult
    package mutating func markRetrying(_ id: JobID, attempt: AttemptRecord) -> Int {
        let attempts: Int
        if let index = ringIndex(id) {
            guard slots[index].isPresent else { return 0 }
            slots[index].state = Self.index(of: .queued)
            attempts = Int(slots[index].attempts)
            details[id, default: Detail()].history.append(attempt)
        } else if stragglers[id] != nil {
            stragglers[id]!.state = .queued
            stragglers[id]!.history.append(attempt)
            attempts = stragglers[id]!.attempts
        } else {
            return 0
        }
        log(.retrying(id, attempt, attempts: attempts))
        return self[id]?.history.count ?? 0
    }

    /// Notes, for the store, that a job a worker holds was cancelled and is being stopped.
    package mutating func markCancelRequested(_ id: JobID, reason: String) {
        log(.cancelRequested(id, reason: reason))
    }

    private func ringIndex(_ id: JobID) -> Int? {
        id >= base && id - base < JobID(slots.count) ? Int(id - base) : nil
    }

    /// The record of `id`, if it is still held.
    package subscript(id: JobID) -> JobRecord? {
        guard let index = ringIndex(id) else { return stragglers[id] }
        let slot = slots[index]
        guard slot.isPresent else { return nil }
        return record(id: id, slot: slot, spec: specs[index])
    }

    /// The state of `id`'s record, if held, without building the record.
    private func storedState(_ id: JobID) -> JobState? {
        guard let index = ringIndex(id) else { return stragglers[id]?.state }
        let slot = slots[index]
        return slot.isPresent ? Self.state(slot.state) : nil
    }

    private func record(id: JobID, slot: Slot, spec: JobSpec) -> JobRecord {
        let detail =
            slot.outputKind == .command || Self.state(slot.state) == .failed || Self.state(slot.state) == .cancelled
                || spec.retry != nil
            ? details[id] : nil
        let output: JobOutput? =
            switch slot.outputKind {
            case .checksum: .checksum(slot.outputA)
            case .primality: .primality(n: slot.outputA, factor: slot.outputB)
            case .slept: .slept(milliseconds: Int(slot.outputA))
            case .command: detail?.output
            case .none: nil
            }
        return JobRecord(
            id: id, spec: spec, state: Self.state(slot.state), attempts: Int(slot.attempts),
            preemptions: Int(slot.preemptions), submittedAt: slot.submittedAt,
            startedAt: slot.startedAt == 0 ? nil : slot.startedAt, finishedAt: slot.finishedAt == 0 ? nil : slot.finishedAt,
            worker: slot.worker == Slot.noWorker ? nil : Int(slot.worker),
            model: slot.model == 255 ? nil : Self.models[Int(slot.model)], output: output, error: detail?.error,
            history: detail?.history ?? [])
    }

    /// Makes room for `count` more jobs at once: a large batch then fills its slots without
    /// the ring being copied each time it doubles.
    package mutating func reserve(_ count: Int) {
        guard count >= 4096 else { return }
        slots.reserveCapacity(slots.count + count)
        specs.reserveCapacity(specs.count + count)
    }

    /// Records a newly accepted job; ids must arrive in increasing order. A gap before it (ids
    /// a journal pruned, or ids another pool of the daemon took) is filled with empty slots only
    /// while the ring stays within about twice the records held; past that the ring's records
    /// move aside and the ring starts anew at `id`: memory follows the records held, never the
    /// span of their ids.
    package mutating func insert(id: JobID, spec: JobSpec, submittedAt: UInt64) {
        if slots.isEmpty { base = id }
        let end = base + JobID(slots.count)
        precondition(id >= end, "job ids must increase")
        if id != end && Int(id - end) + slots.count > 2 * (held + 1) + Self.gapFill { moveRingAside(startingAt: id) }
        while base + JobID(slots.count) < id {
            slots.append(Slot())
            specs.append(spec)
        }
        var slot = Slot()
        slot.state = Self.index(of: .queued)
        slot.submittedAt = submittedAt
        slots.append(slot)
        specs.append(spec)
        held += 1
        log(.accepted(id, spec, submittedAt: submittedAt))
    }

    /// Puts back a record read from the journal at start-up (ids in increasing order, before
    /// any new job); nothing is logged, the journal already holds it.
    package mutating func restore(_ record: JobRecord) {
        let journal = changes
        changes = nil
        defer { changes = journal }
        insert(id: record.id, spec: record.spec, submittedAt: record.submittedAt)
        if let index = ringIndex(record.id) {
            slots[index].attempts = UInt32(record.attempts)
            slots[index].preemptions = UInt32(record.preemptions)
        }
        if !record.history.isEmpty { details[record.id, default: Detail()].history = record.history }
        guard record.state.isFinal else { return }
        if let worker = record.worker, let model = record.model {
            markRunning(record.id, attempts: record.attempts, worker: worker, model: model, at: record.startedAt ?? 0)
        }
        let outcome: JobOutcome =
            switch record.state {
            case .done: .done(record.output ?? .slept(milliseconds: 0))
            case .failed: .failed(record.error ?? "failed", output: record.output)
            default: .cancelled(record.error ?? "cancelled")
            }
        markFinished(record.id, outcome: outcome, startedAt: record.startedAt, at: record.finishedAt ?? record.submittedAt)
    }

    /// Puts in a job claimed from a store that several nodes share: `record` (queued, with the
    /// attempts and history the store holds) in whatever order claims arrive. Claims come by
    /// priority, and other nodes take the ids in between, so an id may lie below the ring's end:
    /// it fills its empty slot inside the ring, or becomes a straggler below it. Nothing is
    /// logged (the claim is already in the store). False if the table already holds the id,
    /// which a store must never hand out twice.
    package mutating func admit(_ record: JobRecord) -> Bool {
        if slots.isEmpty || record.id >= base + JobID(slots.count) {
            restore(record)
            return true
        }
        guard self[record.id] == nil else { return false }
        if let index = ringIndex(record.id) {
            var slot = Slot()
            slot.state = Self.index(of: .queued)
            slot.submittedAt = record.submittedAt
            slot.attempts = UInt32(record.attempts)
            slot.preemptions = UInt32(record.preemptions)
            slots[index] = slot
            specs[index] = record.spec
            if !record.history.isEmpty { details[record.id, default: Detail()].history = record.history }
        } else {
            var queued = record
            queued.state = .queued
            stragglers[record.id] = queued
        }
        held += 1
        return true
    }

    /// Takes out a job admitted from a shared store (``admit(_:)``) and never started, which the
    /// store gets back: it leaves as if it had never been claimed, and nothing is logged.
    package mutating func giveBack(_ id: JobID) {
        precondition(self[id]?.state == .queued, "only a queued job goes back to the store")
        remove(id)
        // A job claimed again after failed runs brought their history.
        details.removeValue(forKey: id)
    }

    /// The job to hand to a worker, from its record.
    package func job(_ id: JobID) -> Job? {
        if let index = ringIndex(id) {
            let slot = slots[index]
            guard slot.isPresent else { return nil }
            let spec = specs[index]
            return Job(
                id: id, spec: spec, attempts: Int(slot.attempts), submittedAt: slot.submittedAt,
                preemptions: Int(slot.preemptions), failures: spec.retry == nil ? 0 : details[id]?.history.count ?? 0)
        }
        return stragglers[id].map {
            Job(
                id: id, spec: $0.spec, attempts: $0.attempts, submittedAt: $0.submittedAt, preemptions: $0.preemptions,
                failures: $0.history.count)
        }
    }

    /// A slot's code of `state` (the shared ``JobEncoding``).
    @inline(__always)
    private static func index(of state: JobState) -> UInt8 {
        JobEncoding.State(state).rawValue
    }

    /// The state of a present slot's code.
    @inline(__always)
    private static func state(_ code: UInt8) -> JobState {
        JobEncoding.State(rawValue: code).unsafelyUnwrapped.jobState
    }

    private static func index(of model: ConcurrencyModel) -> UInt8 {
        switch model {
        case .threads: 0
        case .processes: 1
        case .tasks: 2
        }
    }

    /// Marks a job as started by `worker`.
    package mutating func markRunning(_ id: JobID, attempts: Int, worker: WorkerID, model: ConcurrencyModel, at now: UInt64) {
        let preemptions: Int
        if let index = ringIndex(id) {
            guard slots[index].isPresent else { return }
            slots[index].state = Self.index(of: .running)
            slots[index].attempts = UInt32(attempts)
            slots[index].startedAt = now
            slots[index].worker = Int32(worker)
            slots[index].model = Self.index(of: model)
            preemptions = Int(slots[index].preemptions)
        } else if stragglers[id] != nil {
            stragglers[id]!.state = .running
            stragglers[id]!.attempts = attempts
            stragglers[id]!.startedAt = now
            stragglers[id]!.worker = worker
            stragglers[id]!.model = model
            preemptions = stragglers[id]!.preemptions
        } else {
            return
        }
        log(.started(id, attempts: attempts, preemptions: preemptions, worker: worker, model: model, at: now))
    }

    /// Puts a started job back to `queued` (given back, its worker died, or a switch preempted
    /// it), with its attempts corrected when the last one never really started.
    package mutating func markRequeued(_ id: JobID, attempts: Int? = nil, preempted: Bool = false) {
        let now: (attempts: Int, preemptions: Int)
        if let index = ringIndex(id) {
            guard slots[index].isPresent else { return }
            slots[index].state = Self.index(of: .queued)
            if let attempts { slots[index].attempts = UInt32(attempts) }
            if preempted { slots[index].preemptions += 1 }
            now = (Int(slots[index].attempts), Int(slots[index].preemptions))
        } else if stragglers[id] != nil {
            stragglers[id]!.state = .queued
            if let attempts { stragglers[id]!.attempts = attempts }
            if preempted { stragglers[id]!.preemptions += 1 }
            now = (stragglers[id]!.attempts, stragglers[id]!.preemptions)
        } else {
            return
        }
        log(.requeued(id, attempts: now.attempts, preemptions: now.preemptions))
    }

    /// Moves a job to its final state and returns when it was submitted (nil if unknown); older
    /// finished records beyond the retention are pruned. `startedAt`, when given, corrects the
    /// start the pool had inferred (a child measures its own).
    @discardableResult
    package mutating func markFinished(_ id: JobID, outcome: JobOutcome, startedAt: UInt64? = nil, at now: UInt64) -> UInt64? {
        let submittedAt: UInt64
        if let index = ringIndex(id) {
            guard slots[index].isPresent else { return nil }
            submittedAt = slots[index].submittedAt
            slots[index].finishedAt = now
            if let startedAt { slots[index].startedAt = startedAt }
            switch outcome {
            case .done(let output):
                slots[index].state = Self.index(of: .done)
                store(output, id: id, at: index)
            case .failed(let reason, let output):
                slots[index].state = Self.index(of: .failed)
                if let output { store(output, id: id, at: index) }
                details[id, default: Detail()].error = reason
            case .cancelled(let reason):
                slots[index].state = Self.index(of: .cancelled)
                details[id, default: Detail()].error = reason
            }
        } else if var record = stragglers.removeValue(forKey: id) {
            submittedAt = record.submittedAt
            record.finishedAt = now
            if let startedAt { record.startedAt = startedAt }
            switch outcome {
            case .done(let output):
                record.state = .done
                record.output = output
            case .failed(let reason, let output):
                record.state = .failed
                record.output = output
                record.error = reason
            case .cancelled(let reason):
                record.state = .cancelled
                record.error = reason
            }
            stragglers[id] = record
        } else {
            return nil
        }
        if changes != nil, let record = self[id] { log(.finished(record)) }
        finishedOrder.append(id)
        if let state = storedState(id), let order = Self.finishedIndex(state) { finishedByState[order].append(id) }
        while finishedOrder.count > retainFinished { dropOldestFinished() }
        return submittedAt
    }

    private mutating func store(_ output: JobOutput, id: JobID, at index: Int) {
        switch output {
        case .checksum(let checksum):
            slots[index].outputKind = .checksum
            slots[index].outputA = checksum
        case .primality(let n, let factor):
            slots[index].outputKind = .primality
            slots[index].outputA = n
            slots[index].outputB = factor
        case .slept(let milliseconds):
            slots[index].outputKind = .slept
            slots[index].outputA = UInt64(milliseconds)
        case .command:
            slots[index].outputKind = .command
            details[id, default: Detail()].output = output
        }
    }

    private mutating func remove(_ id: JobID) {
        if let index = ringIndex(id) {
            let slot = slots[index]
            guard slot.isPresent else { return }
            if slot.outputKind == .command || slot.state == Self.index(of: .failed) || slot.state == Self.index(of: .cancelled) {
                details.removeValue(forKey: id)
            }
            slots[index] = Slot()
            held -= 1
            while let first = slots.first, !first.isPresent {
                slots.removeFirst()
                specs.removeFirst()
                base += 1
            }
            compactIfPinned()
        } else if stragglers.removeValue(forKey: id) != nil {
            held -= 1
        }
    }

    /// Moves every record of the ring into `stragglers` and starts the ring anew at `id`.
    private mutating func moveRingAside(startingAt id: JobID) {
        for (offset, slot) in slots.enumerated() where slot.isPresent {
            let recordID = base + JobID(offset)
            stragglers[recordID] = record(id: recordID, slot: slot, spec: specs[offset])
            details.removeValue(forKey: recordID)
        }
        slots.removeAll()
        specs.removeAll()
        base = id
    }

    /// Moves records at the ring's start into `stragglers` when pruned slots pile up behind an
    /// unfinished one.
    private mutating func compactIfPinned() {
        guard slots.count > 2 * held + Self.slack else { return }
        while slots.count > 2 * held, let slot = slots.first {
            let id = base
            if slot.isPresent { stragglers[id] = record(id: id, slot: slot, spec: specs[0]) }
            details.removeValue(forKey: id)
            slots.removeFirst()
            specs.removeFirst()
            base += 1
        }
        while let first = slots.first, !first.isPresent {
            slots.removeFirst()
            specs.removeFirst()
            base += 1
        }
    }

    /// Forgets finished records that finished before `cutoff` (monotonic nanoseconds): the
    /// retention's age. Records finish in order, so this looks only at the oldest.
    package mutating func pruneFinished(before cutoff: UInt64) {
        while let oldest = finishedOrder.first {
            if let record = self[oldest], (record.finishedAt ?? 0) >= cutoff { break }  // finish order: the rest are newer
            dropOldestFinished()
        }
    }

    /// Forgets the record that finished first, from every order it is in.
    private mutating func dropOldestFinished() {
        guard let oldest = finishedOrder.popFirst() else { return }
        if let state = storedState(oldest), let order = Self.finishedIndex(state), finishedByState[order].first == oldest {
            finishedByState[order].removeFirst()
            remove(oldest)
            return
        }
        remove(oldest)
        // A record that went another way may have left its id at the front of its state's order.
        for order in finishedByState.indices {
            while let first = finishedByState[order].first, storedState(first) == nil { finishedByState[order].removeFirst() }
        }
    }

    private static func finishedIndex(_ state: JobState) -> Int? {
        switch state {
        case .done: 0
        case .failed: 1
        case .cancelled: 2
        case .queued, .scheduled, .waiting, .running: nil
        }
    }

    /// The most recently finished records (optionally only in `state`), newest first.
    package func recentlyFinished(state: JobState?, limit: Int) -> [JobRecord] {
        let order = state.flatMap(Self.finishedIndex).map { finishedByState[$0] } ?? finishedOrder
        var found: [JobRecord] = []
        for id in order.reversed() {
            guard found.count < limit else { break }
            if let record = self[id], state == nil || record.state == state { found.append(record) }
        }
        return found
    }

    /// The ids of the jobs not finished (queued or running), oldest first: a walk over every
    /// record held, for rare calls (cancelling what a drain kept for the next start).
    package func unfinished() -> [JobID] {
        var found: [JobID] = []
        for (offset, slot) in slots.enumerated() where slot.isPresent && !Self.state(slot.state).isFinal {
            found.append(base + JobID(offset))
        }
        for (id, record) in stragglers where !record.state.isFinal { found.append(id) }
        return found.sorted()
    }

    /// Records of the highest ids held, newest first.
    package func newest(limit: Int, below nextID: JobID) -> [JobRecord] {
        var found: [JobRecord] = []
        var id = nextID
        // Pruned ids leave gaps; the scan is bounded by the number of records held.
        var looked = 0
        while id > 1, found.count < limit, looked < held + limit {
            id -= 1
            looked += 1
            if let record = self[id] { found.append(record) }
        }
        return found
    }
}
