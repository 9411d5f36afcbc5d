import ConcurProtocol

extension JobEncoding.OutputColumns {
    /// Columns as read back from a store: `kind` raw (nil: NULL), the rest as stored.
    package init(rawKind kind: Int64?, a: Int64?, b: Int64?, seconds: Double?, text: String?) throws(JobEncoding.Damage) {
        guard let kind else {
            self.init(nil)
            return
        }
        guard let known = UInt8(exactly: kind).flatMap(JobEncoding.Output.init(rawValue:)), known != .none else {
            throw JobEncoding.Damage(field: "out_kind", value: "\(kind)", allowed: "1...4")
        }
        self.init(nil)
        self.kind = known
        self.a = a
        self.b = b
        self.seconds = seconds
        self.text = text
    }

    /// What the job produced, every value checked: the inverse of ``init(_:)``, for the values
    /// read back from the SQLite journal and the shared queue alike.
    package func output() throws(JobEncoding.Damage) -> JobOutput? {
        switch kind {
        case .none:
            return nil
        case .checksum:
            return .checksum(UInt64(bitPattern: a ?? 0))
        case .primality:
            return .primality(n: UInt64(bitPattern: a ?? 0), factor: UInt64(bitPattern: b ?? 0))
        case .slept:
            let milliseconds = a ?? 0
            guard (0...Int64(JobLimits.sleepMilliseconds.upperBound)).contains(milliseconds) else {
                throw JobEncoding.Damage(
                    field: "out_a", value: "\(milliseconds)", allowed: "0...\(JobLimits.sleepMilliseconds.upperBound)")
            }
            return .slept(milliseconds: Int(milliseconds))
        case .command:
            if let a, !(0...255).contains(a) {
                throw JobEncoding.Damage(field: "out_a (exit code)", value: "\(a)", allowed: "0...255")
            }
            if let b, !(1...64).contains(b) {
                throw JobEncoding.Damage(field: "out_b (signal)", value: "\(b)", allowed: "1...64")
            }
            let elapsed = seconds ?? 0
            guard elapsed.isFinite && elapsed >= 0 && elapsed <= 1e9 else {
                throw JobEncoding.Damage(field: "out_seconds", value: "\(elapsed)", allowed: "0...1e9")
            }
            return .command(exitCode: a.map(Int.init), signal: b.map(Int.init), seconds: elapsed, output: text ?? "")
        }
    }
}
