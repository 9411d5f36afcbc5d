public import Varlink

/// When and in what order a job may start: its priority, its earliest start, and the jobs it
/// runs after. Shared by `JobSpec` and `Generate` (whose jobs all get the same).
public struct JobPlacement: Sendable, Hashable {
    /// How urgent the job is among its pool's queued jobs (``JobLimits/priority``; higher runs first).
    public var priority = 0
    /// The Unix time (seconds) before which the job does not start; nil: as soon as a worker is free.
    public var startAt: Double?
    /// The jobs that must all end `done` before this one starts, by id.
    public var after: [UInt64] = []

    /// A placement with the given fields (the defaults: start now, priority 0).
    public init(priority: Int = 0, startAt: Double? = nil, after: [UInt64] = []) {
        self.priority = priority
        self.startAt = startAt
        self.after = after
    }

    /// Whether every field is at its default.
    public var isDefault: Bool { priority == 0 && startAt == nil && after.isEmpty }

    /// Reads `priority`, `startAt` and `after`, checking their ranges.
    ///
    /// A `startAt` is checked to be a plausible Unix time only: whether it lies in the past or
    /// too far ahead is the daemon's to decide when it accepts the job (a journal read back at a
    /// later start holds times that have passed).
    public init(reading reader: inout ParameterReader) throws(VarlinkError) {
        priority = try reader.optional("priority") ?? 0
        guard JobLimits.priority.contains(priority) else {
            throw SupervisorError.invalidValue(
                parameter: reader.name("priority"),
                reason: "priority must be between \(JobLimits.priority.lowerBound) and \(JobLimits.priority.upperBound)")
        }
        startAt = try reader.optional("startAt")
        if let startAt, !JobLimits.unixTime.contains(startAt) {
            throw SupervisorError.invalidValue(
                parameter: reader.name("startAt"), reason: "startAt must be a Unix time in seconds (between 2000 and 2100)")
        }
        after = try reader.optional("after") ?? []
        if let problem = Self.problem(withAfter: after) {
            throw SupervisorError.invalidValue(parameter: reader.name("after"), reason: problem)
        }
    }

    /// What is wrong with a list of jobs to run after, if anything.
    public static func problem(withAfter ids: [UInt64]) -> String? {
        if ids.count > JobLimits.dependencies { return "a job may run after at most \(JobLimits.dependencies) jobs" }
        if ids.contains(0) { return "job ids start at 1" }
        if Set(ids).count != ids.count { return "a job id is named twice" }
        return nil
    }

    /// Writes the fields that are not at their default.
    public func write(into object: inout JSONObject) {
        if priority != 0 { object["priority"] = priority.json }
        object.set("startAt", startAt)
        if !after.isEmpty { object["after"] = .array(after.map(\.json)) }
    }
}
