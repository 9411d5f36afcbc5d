package import ConcurProtocol
import Glibc
package import Varlink

/// A failed `concurctl` command: one line for the user, saying what to do, and the exit status.
package struct ClientFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message, with its hint.
    package let message: String
    /// The process exit status.
    package let exitCode: Int32

    /// A failure with the given message and exit status.
    package init(_ message: String, exitCode: Int32 = ExitStatus.refused) {
        self.message = message
        self.exitCode = exitCode
    }

    /// The text shown to people.
    package var description: String { message }

    /// The exit statuses of `concurctl`.
    package enum ExitStatus {
        /// The daemon refused the request, or some jobs did not end `done`.
        package static let refused: Int32 = 1
        /// A wrong argument (sysexits EX_USAGE, as the argument parser uses).
        package static let usage: Int32 = 64
        /// The daemon cannot be reached (EX_UNAVAILABLE).
        package static let unavailable: Int32 = 69
        /// The caller may not use the daemon (EX_NOPERM).
        package static let permission: Int32 = 77
        /// `wait --timeout` passed with jobs still not ended (as timeout(1) exits).
        package static let timedOut: Int32 = 124
    }

    /// The user-facing failure for a Varlink client error on the socket at `socket`, from a
    /// call of `method` (which some errors depend on: a shutdown means something else to a
    /// model switch than to a submit).
    package static func from(
        _ error: VarlinkClientError, socket: String, method: SupervisorInterface.Method? = nil
    ) -> ClientFailure {
        switch error {
        case .connectFailed(_, let code) where code == ENOENT:
            return ClientFailure(
                "no concurd socket at \(socket): is concurd running? Start it with `concurd` (or `systemctl start concurd`), or point --socket or CONCUR_SOCKET at its socket",
                exitCode: ExitStatus.unavailable)
        case .connectFailed(_, let code) where code == ECONNREFUSED:
            return ClientFailure(
                "nothing listens on \(socket): concurd is not running (it left its socket behind); start it again",
                exitCode: ExitStatus.unavailable)
        case .connectFailed(_, let code) where code == EACCES || code == EPERM:
            return ClientFailure(
                "permission denied opening \(socket): only root and the user running concurd may connect; try sudo",
                exitCode: ExitStatus.permission)
        case .connectFailed(_, let code):
            return ClientFailure(
                "cannot connect to \(socket): \(String(cString: strerror(code)))", exitCode: ExitStatus.unavailable)
        case .pathTooLong(let path):
            return ClientFailure(
                "socket path too long (a Unix socket path has at most 107 bytes): \(path)", exitCode: ExitStatus.usage)
        case .timedOut:
            return ClientFailure(
                "concurd did not answer in time on \(socket); is it overloaded or stuck?", exitCode: ExitStatus.unavailable)
        case .closedByPeer:
            return ClientFailure(
                "concurd closed the connection on \(socket) (is it shutting down?)", exitCode: ExitStatus.unavailable)
        case .io(let operation, let code):
            return ClientFailure(
                "lost the connection to concurd (\(operation): \(String(cString: strerror(code))))",
                exitCode: ExitStatus.unavailable)
        case .malformedReply(let detail):
            return ClientFailure(
                "concurd sent a reply this concurctl does not understand (are they different versions?): \(detail)")
        case .remote(let error):
            return from(error, method: method)
        }
    }

    /// The user-facing failure for an error reply to a call of `method`.
    package static func from(_ error: VarlinkError, method: SupervisorInterface.Method? = nil) -> ClientFailure {
        func int(_ key: String) -> String {
            if case .int(let value) = error.parameters[key] { return String(value) }
            return "?"
        }
        func string(_ key: String) -> String {
            if case .string(let value) = error.parameters[key] { return value }
            return "?"
        }
        switch error.name {
        case SupervisorError.queueFull(limit: 0, queued: 0).name:
            return ClientFailure(
                "the queue has no room for these jobs (\(int("queued")) of its \(int("limit")) places taken): submit fewer, wait for jobs to finish, or restart concurd with a larger --max-queue"
            )
        case SupervisorError.invalidConfiguration(reason: "").name:
            return ClientFailure("concurd kept its configuration: \(string("reason"))")
        case SupervisorError.shuttingDown.name:
            switch method {
            case .setModel?:
                return ClientFailure(
                    "concurd began shutting down before the new model served: the switch did not complete (after a restart concurd runs the model its configuration names)"
                )
            case .submit?, .generate?, nil:
                return ClientFailure("concurd is shutting down and accepts no new jobs; submit again once it has restarted")
            default:
                return ClientFailure("concurd is shutting down: nothing was changed")
            }
        case SupervisorError.unknownPool("", pools: []).name:
            var pools: [String] = []
            if case .array(let names) = error.parameters["pools"] {
                pools = names.compactMap { if case .string(let name) = $0 { name } else { nil } }
            }
            let list = pools.joined(separator: ", ")
            if error.parameters["removed"] == .bool(true) {
                return ClientFailure(
                    "pool \(string("pool")) was removed from concurd's configuration: it takes no work (its kept jobs can be listed and cancelled with --queued --pool \(string("pool"))); add [pools.\(string("pool"))] back and reload to run them. Pools: \(list)"
                )
            }
            return ClientFailure(
                "concurd runs no pool named \(string("pool")); its pools: \(list) (add [pools.\(string("pool"))] to its configuration and reload for a new one)"
            )
        case SupervisorError.invalidWorkers(min: 0, max: 0).name:
            return ClientFailure(
                "workers must be between \(int("min")) and \(int("max")); concurd's --max-workers sets the upper bound")
        case SupervisorError.noSuchJob(0).name:
            return ClientFailure(
                "no job \(int("id")): it was never submitted, or it finished long enough ago to be forgotten (concurd keeps --retain-jobs finished jobs)"
            )
        case SupervisorError.jobFinished(0, state: .done).name:
            return ClientFailure(
                "job \(int("id")) has already ended (\(string("state"))): there is nothing to cancel; `concurctl jobs \(int("id"))` shows how it ended"
            )
        case SupervisorError.invalidValue(parameter: "", reason: "").name where string("parameter") == "more":
            // A stream cut off because its client fell behind: not a wrong argument.
            return ClientFailure(
                "concurd cut this stream off: \(string("reason")); too many watchers at once, or a slow terminal (try again, or fewer at a time)",
                exitCode: ExitStatus.unavailable)
        case SupervisorError.invalidValue(parameter: "", reason: "").name:
            return ClientFailure("concurd refused \(string("parameter")): \(string("reason"))")
        case SupervisorError.execDisabled.name:
            return ClientFailure(
                "concurd does not accept exec jobs: start it with --allow-exec (or allow_exec = true in its config) to let it run commands"
            )
        case SupervisorError.crashRefused(model: .threads).name:
            return ClientFailure(
                "a crash job would take concurd down under the \(string("model")) model; switch to the processes model, or add --force to crash it on purpose"
            )
        case SupervisorError.modelUnavailable(model: .threads, reason: "").name:
            return ClientFailure(
                "concurd cannot run the \(string("model")) model: \(string("reason"))"
            )
        case SupervisorError.journalUnavailable(reason: "").name:
            return ClientFailure(
                "concurd cannot record jobs in its journal: \(string("reason")); check the disk of its state directory (its log says more)"
            )
        case SupervisorError.storeUnavailable(reason: "").name:
            var text = "concurd cannot queue jobs in its job store: \(string("reason"))"
            if case .int(let first)? = error.parameters["first"], case .int(let last)? = error.parameters["last"] {
                text += "; jobs \(first) to \(last) may or may not be queued: concurctl jobs shows which are"
            }
            return ClientFailure(text + "; try again once it is back (concurctl status says when)")
        case SupervisorError.notShared.name:
            return ClientFailure(
                "this concurd keeps a queue of its own (it was started without --store), so there is no cluster to show; concurctl status shows its pools"
            )
        case SupervisorError.invalidMessage(reason: "").name:
            return ClientFailure(
                "concurd could not read what concurctl sent (\(string("reason"))): are they different versions?")
        case SupervisorError.switchSuperseded(by: .threads).name:
            return ClientFailure(
                "another switch, to the \(string("model")) model, was asked for before this one served; the pool now switches to \(string("model"))"
            )
        case VarlinkError.permissionDenied.name:
            return ClientFailure(
                "concurd refused the call: only root and the user running concurd may use it; try sudo",
                exitCode: ExitStatus.permission)
        case VarlinkError.invalidParameter("").name:
            return ClientFailure(
                "concurd rejected the parameter '\(string("parameter"))': is this concurctl the same version as concurd?")
        case VarlinkError.methodNotFound("").name:
            return ClientFailure("concurd does not know \(string("method")): is it an older version than concurctl?")
        default:
            return ClientFailure("concurd answered \(error)")
        }
    }
}
