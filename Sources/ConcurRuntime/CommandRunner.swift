import CConcurShims
package import ConcurCore
package import ConcurProtocol
import Glibc

/// Runs the command of an `exec` job: no shell, stdin from /dev/null, stdout and stderr
/// together into a pipe of which the last bytes are kept, in a process group of its own so that
/// stopping it stops everything it started.
///
/// It is stopped (SIGTERM to the group, SIGKILL after a grace period) when its cancellation
/// flag is raised or its time limit passes; one that has ended by then, or ends with status 0
/// all the same, keeps its result. Runs on the calling thread, in any model.
package enum CommandRunner {
    /// Bytes of output kept for the job's result.
    package static let outputTail = 4096

    /// Seconds between SIGTERM and SIGKILL when a command is stopped.
    package static let stopGrace = 2.0

    /// Runs `argv` and waits for it; `timeLimit` (seconds) bounds how long it may run; `context`
    /// says where and with what environment (nil: the daemon's); `outputFolder`, if given,
    /// receives its stdout and stderr (see ``CommandOutput``), cleared first for a `rerun`.
    package static func run(
        _ argv: [String], context: CommandContext? = nil, outputFolder: String? = nil, rerun: Bool = true,
        timeLimit: Double?, cancellation: CancellationFlag
    ) -> JobOutcome {
        guard
            var streams = CommandStreams(
                folder: outputFolder, rerun: rerun, maxBytes: CommandOutput.maxBytes, tailLimit: outputTail)
        else { return .failed("cannot run \(argv[0]): \(String(cString: strerror(errno)))") }
        let start = MonotonicClock.now()
        // Cancelled (or preempted) between its hand-over and now: it never starts.
        if cancellation.isRaised {
            streams.close()
            return .cancelled(JobOutcome.interruptedReason)
        }
        var pid: pid_t = 0
        CommandGuard.prepare()
        let result = spawn(argv, context: context, output: streams.writeEnds[0], error: streams.writeEnds[1], pid: &pid)
        streams.closeWriteEnds()
        guard result == 0 else {
            streams.close()
            let place = context?.directory.map { " in \($0)" } ?? ""
            return .failed("cannot run \(argv[0])\(place): \(String(cString: strerror(result)))")
        }
        concur_set_command_group(pid)
        CommandGuard.watch(pid)
        defer {
            concur_set_command_group(0)
            CommandGuard.release(pid)
        }
        let (ending, stopReason) = waitForExit(
            pid, streams: &streams, deadline: timeLimit.map { start + UInt64($0 * 1e9) },
            timeLimit: timeLimit, cancellation: cancellation)
        // What it wrote just before it exited, if a process of its group still holds a pipe.
        streams.drain()
        // Whatever the command left running in its group goes with it.
        kill(-pid, SIGKILL)
        streams.close()
        let seconds = Double(MonotonicClock.now() - start) / 1e9
        let text = String(decoding: streams.tail.suffix(outputTail), as: UTF8.self)
        let output = JobOutput.command(
            exitCode: ending.code >= 0 ? Int(ending.code) : nil, signal: ending.signal >= 0 ? Int(ending.signal) : nil,
            seconds: seconds, output: text)
        return outcome(ending, output: output, stopReason: stopReason)
    }

    /// Waits for the command's exit, taking its output as it comes, and stops it (SIGTERM to its
    /// group, SIGKILL after the grace) when its flag is raised or its deadline passes. The exit
    /// (code, signal; -1 each when it cannot be known) and why it was stopped, if it was.
    private static func waitForExit(
        _ pid: pid_t, streams: inout CommandStreams, deadline: UInt64?, timeLimit: Double?, cancellation: CancellationFlag
    ) -> (ending: (code: Int32, signal: Int32), stopReason: String?) {
        // The command's exit wakes the wait through its pidfd: no sleeping loop between checks.
        // (Without one, pidfd_open refused, the wait falls back to 10 ms naps.)
        let exitFD = concur_pidfd_open(pid, 0)
        defer { if exitFD >= 0 { close(exitFD) } }
        var stopReason: String?
        var stopSentAt: UInt64?
        while true {
            streams.wait(exitFD: exitFD, milliseconds: 50)
            var code: Int32 = -1
            var signal: Int32 = -1
            let reaped = concur_reap(pid, &code, &signal)
            // -1: it cannot be waited for (not ours any more); its status is unknown.
            if reaped != 0 { return (reaped == 1 ? (code, signal) : (-1, -1), stopReason) }
            let now = MonotonicClock.now()
            if stopReason == nil {
                var reason: String?
                if cancellation.isRaised {
                    reason = JobOutcome.interruptedReason
                } else if let deadline, now >= deadline {
                    reason = "exceeded its time limit of \(formatDecimal(timeLimit ?? 0)) s"
                }
                guard let reason else { continue }
                // A command that has already ended keeps its result: the interrupt came too
                // late, and what it did must not be undone by running it again.
                if concur_reap(pid, &code, &signal) == 1 { return ((code, signal), nil) }
                stopReason = reason
                kill(-pid, SIGTERM)
                stopSentAt = now
            } else if let sent = stopSentAt, now >= sent, now - sent >= UInt64(stopGrace * 1e9) {
                // Once: then the wait goes on until the kernel has taken the group down (a
                // leader with much memory to free takes a while).
                kill(-pid, SIGKILL)
                stopSentAt = nil
            }
        }
    }

    /// Why this process cannot run a command in `directory` (it is missing, not a directory, or
    /// not searchable by the daemon's user), or nil: checked when a job is submitted, so that
    /// a job that could never start is refused then rather than failed later.
    package static func problem(enteringDirectory directory: String) -> String? {
        var info = stat()
        let reason: String
        if stat(directory, &info) != 0 {
            reason = String(cString: strerror(errno))
        } else if info.st_mode & S_IFMT != S_IFDIR {
            reason = "not a directory"
        } else if access(directory, X_OK) != 0 {
            reason = String(cString: strerror(errno))
        } else {
            return nil
        }
        return
            "concurd (uid \(geteuid())) cannot enter \(directory): \(reason); give a directory it can reach with --cwd (a hardened unit hides /home, /root and /tmp: see docs/operations.md)"
    }

    /// Spawns the command with stdout on `output` and stderr on `error`, in its context; 0 or an
    /// errno value.
    private static func spawn(_ argv: [String], context: CommandContext?, output: Int32, error: Int32, pid: inout pid_t)
        -> Int32
    {
        let arguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in arguments { free(pointer) } }
        guard let context, !context.isDefault else {
            return concur_spawn_command(argv[0], arguments, environ, output, error, nil, &pid)
        }
        let entries = environment(for: context)
        // The command is looked up in the PATH it is given, not in the daemon's.
        var program = argv[0]
        if !program.contains("/"), let path = entries.last(where: { $0.hasPrefix("PATH=") })?.dropFirst(5) {
            var found: String?
            for directory in path.split(separator: ":") {
                let candidate = "\(directory)/\(program)"
                if access(candidate, X_OK) == 0 {
                    found = candidate
                    break
                }
            }
            guard let found else { return ENOENT }
            program = found
        }
        let variables = entries.map { strdup($0) } + [nil]
        defer { for pointer in variables { free(pointer) } }
        guard let directory = context.directory else {
            return concur_spawn_command(program, arguments, variables, output, error, nil, &pid)
        }
        return concur_spawn_command(program, arguments, variables, output, error, directory, &pid)
    }

    /// The command's environment: the daemon's (or none, when it clears it) with the context's
    /// entries set on top, a later entry of a name replacing an earlier one.
    static func environment(for context: CommandContext) -> [String] {
        var entries: [String] = []
        if !context.clearsEnvironment {
            var cursor = environ
            while let entry = cursor.pointee {
                entries.append(String(cString: entry))
                cursor += 1
            }
        }
        // The last entry of each name, in the order the names first appear.
        var chosen: [Substring: String] = [:]
        var names: [Substring] = []
        for entry in context.environment {
            let name = entry.prefix { $0 != "=" }
            if chosen.updateValue(entry, forKey: name) == nil { names.append(name) }
        }
        entries.removeAll { chosen[$0.prefix { $0 != "=" }] != nil }
        return entries + names.map { chosen[$0]! }
    }

    /// How the job ended, from how the command ended and why it was stopped, if it was.
    private static func outcome(_ ending: (code: Int32, signal: Int32), output: JobOutput, stopReason: String?)
        -> JobOutcome
    {
        if let stopReason {
            // Interrupted, yet it ended with success on its own: it finished (it was ending as
            // the signal came, or let the signal be); its result wins over the interrupt, so a
            // preempted command that had done its work is not run again.
            if stopReason == JobOutcome.interruptedReason && ending.code == 0 { return .done(output) }
            return stopReason == JobOutcome.interruptedReason ? .cancelled(stopReason) : .failed(stopReason, output: output)
        }
        if ending.code == 0 { return .done(output) }
        let how = ending.code >= 0 ? "exited with status \(ending.code)" : "was killed by signal \(ending.signal)"
        return .failed("the command \(how)", output: output)
    }
}
