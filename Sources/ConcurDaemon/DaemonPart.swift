/// One part of a running concurd: started in order, stopped in reverse.
///
/// `start` either succeeds, returning how to stop what it started (nil: nothing to stop), or
/// fails with the message to log; the parts already started are then stopped in reverse and
/// concurd exits with status 1.
struct DaemonPart {
    /// What the part does, as a verb ("open the job journal").
    let name: String
    /// Starts the part; returns its stop.
    let start: () throws(DaemonStartFailure) -> (() -> Void)?
}

/// A part could not start: what to log (critical) before concurd exits with status 1.
struct DaemonStartFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The parts of a run, started in order; ``stop()`` stops the started ones in reverse.
struct StartedParts {
    private var stops: [() -> Void] = []

    /// Starts `parts` in order; on the first failure, stops what started and returns it.
    mutating func start(_ parts: [DaemonPart]) -> DaemonStartFailure? {
        for part in parts {
            do throws(DaemonStartFailure) {
                if let stop = try part.start() { stops.append(stop) }
            } catch {
                stop()
                return error
            }
        }
        return nil
    }

    /// Stops every started part, the last started first.
    mutating func stop() {
        while let stop = stops.popLast() { stop() }
    }
}
