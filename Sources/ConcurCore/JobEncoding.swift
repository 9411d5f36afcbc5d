package import ConcurProtocol

/// The numbers a job's state, kind and output are stored and sent as: one encoding shared by
/// the job table's slots, the child wire format (a report's outcome is its final state) and the
/// journal's columns.
///
/// Journal files hold these numbers: a value may be added, never renumbered.
package enum JobEncoding {
    /// A job's state.
    package enum State: UInt8, Sendable, CaseIterable {
        /// Waiting for a worker.
        case queued = 0
        /// Handed to a worker, which may have started it (the journal's view of a hand-over;
        /// the pool shows such a job queued until the worker reports its start).
        case handedOver = 1
        /// A worker is running it.
        case running = 2
        /// It ran to the end.
        case done = 3
        /// It failed.
        case failed = 4
        /// It was cancelled.
        case cancelled = 5

        /// The code of `state`.
        @inlinable @inline(__always)
        package init(_ state: JobState) {
            switch state {
            // Scheduled and waiting jobs are queued ones to the journal: the pool places them.
            case .queued, .scheduled, .waiting: self = .queued
            case .running: self = .running
            case .done: self = .done
            case .failed: self = .failed
            case .cancelled: self = .cancelled
            }
        }

        /// The state shown to people: a job handed over but not known to have started is
        /// still queued.
        @inlinable @inline(__always)
        package var jobState: JobState {
            switch self {
            case .queued, .handedOver: .queued
            case .running: .running
            case .done: .done
            case .failed: .failed
            case .cancelled: .cancelled
            }
        }

        /// The states of a job a worker may have run without a recorded end, for SQL.
        package static let inFlightSQL = "\(State.handedOver.rawValue), \(State.running.rawValue)"
        /// The SQL condition of a finished job's `state` column.
        package static let finishedSQL = "state >= \(State.done.rawValue)"
    }

    /// What a job produced.
    package enum Output: UInt8, Sendable, CaseIterable {
        /// Nothing (yet).
        case none = 0
        /// A checksum (`cpu` jobs).
        case checksum = 1
        /// A number and its smallest factor (`prime` jobs).
        case primality = 2
        /// Milliseconds slept.
        case slept = 3
        /// A command's exit code, signal, seconds and output's tail (`exec` jobs).
        case command = 4

        /// The code of `output`.
        @inlinable @inline(__always)
        package init(_ output: JobOutput?) {
            switch output {
            case nil: self = .none
            case .checksum?: self = .checksum
            case .primality?: self = .primality
            case .slept?: self = .slept
            case .command?: self = .command
            }
        }
    }

    /// What a job produced, as the journal's and the shared store's `out_*` columns: a kind,
    /// two numbers, seconds and a text (a command's tail).
    package struct OutputColumns: Sendable, Equatable {
        /// The output's kind.
        package var kind: Output
        /// The checksum, the number, the milliseconds slept, or the exit code.
        package var a: Int64?
        /// The smallest factor, or the signal.
        package var b: Int64?
        /// A command's seconds.
        package var seconds: Double?
        /// A command's output tail.
        package var text: String?

        /// The columns of `output` (all nil for none).
        package init(_ output: JobOutput?) {
            kind = Output(output)
            switch output {
            case .checksum(let checksum)?:
                a = Int64(bitPattern: checksum)
            case .primality(let n, let factor)?:
                a = Int64(bitPattern: n)
                b = Int64(bitPattern: factor)
            case .slept(let milliseconds)?:
                a = Int64(milliseconds)
            case .command(let exitCode, let signal, let elapsed, let output)?:
                a = exitCode.map(Int64.init)
                b = signal.map(Int64.init)
                seconds = elapsed
                text = output
            case nil:
                break
            }
        }
    }

    /// A job's kind, on the child wire (the journal stores a job's spec as its JSON).
    package enum Kind: UInt8, Sendable, CaseIterable {
        /// `cpu`.
        case cpu = 0
        /// `prime`.
        case prime = 1
        /// `sleep`.
        case sleep = 2
        /// `fail`.
        case fail = 3
        /// `crash`.
        case crash = 4
        /// `exec`.
        case exec = 5

        /// The code of `kind`.
        @inlinable @inline(__always)
        package init(_ kind: JobKind) {
            switch kind {
            case .cpu: self = .cpu
            case .prime: self = .prime
            case .sleep: self = .sleep
            case .fail: self = .fail
            case .crash: self = .crash
            case .exec: self = .exec
            }
        }
    }
}
