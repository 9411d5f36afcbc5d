package import ConcurProtocol

extension JobEncoding {
    /// A stored value that no concurd writes: which field, what it held and what is allowed (nil
    /// allowed: it could not be read at all).
    package struct Damage: Error, Sendable, Equatable {
        /// The field, as messages name it (`history attempt`).
        package var field: String
        /// What was there, shortened.
        package var value: String
        /// What the field admits; nil when the value could not be read.
        package var allowed: String?

        /// Damage to `field`, which held `value`.
        package init(field: String, value: String, allowed: String?) {
            self.field = field
            self.value = value
            self.allowed = allowed
        }
    }

    /// The Unix times a stored job may hold (0 to the year 5138): a time outside is damage.
    package static let unixTimes: ClosedRange<Double> = 0...1e11
    /// The most attempts (or preemptions) a stored job may show.
    package static let maxAttempts: Int64 = 1_000_000

    /// A job's failed and retried runs as stored (the JSON array of `JobAttempt` the SQLite
    /// journal and a shared store both keep, parsed by the caller), every value checked.
    ///
    /// - Throws: ``Damage`` naming the field of a value out of range.
    package static func history(_ attempts: [JobAttempt], clock: MonotonicClock) throws(Damage) -> [AttemptRecord] {
        var records: [AttemptRecord] = []
        for attempt in attempts {
            for (field, value) in [("finishedAt", Optional(attempt.finishedAt)), ("startedAt", attempt.startedAt)] {
                if let value, !(value.isFinite && unixTimes.contains(value)) {
                    throw Damage(field: "history \(field)", value: "\(value)", allowed: "Unix times \(unixTimes)")
                }
            }
            guard (0...maxAttempts).contains(Int64(attempt.attempt)) else {
                throw Damage(field: "history attempt", value: "\(attempt.attempt)", allowed: "\(0...maxAttempts)")
            }
            records.append(
                AttemptRecord(
                    attempt: attempt.attempt, startedAt: attempt.startedAt.map { clock.monotonic(unixTime: $0) },
                    finishedAt: clock.monotonic(unixTime: attempt.finishedAt), exitCode: attempt.exitCode,
                    signal: attempt.signal, error: attempt.error))
        }
        return records
    }
}
