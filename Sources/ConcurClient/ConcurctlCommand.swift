package import ArgumentParser
import ConcurArguments
import ConcurProtocol
import Glibc
import Varlink

/// `concurctl`: the command line of the client. The executable only calls `main()`.
package struct ConcurctlCommand: ParsableCommand {
    /// The command's name, help text and subcommands.
    package static let configuration = CommandConfiguration(
        commandName: "concurctl",
        abstract: "Control concurd: submit jobs, resize the pool, read status and statistics.",
        discussion: """
            The socket is --socket, else $CONCUR_SOCKET, else /run/concurd/control.sock for root and \
            $XDG_RUNTIME_DIR/concurd/control.sock for anyone else. --socket, --server-user, --host, \
            --json and --quiet may also come before the subcommand. Exit status: 0 success, 1 refused \
            by concurd or some job did not end done, 64 wrong usage, 69 concurd unreachable, 77 not \
            allowed, 124 wait --timeout passed.
            """,
        version: "0.1.0",
        subcommands: [
            Submit.self, Wait.self, Cancel.self, Resize.self, Model.self, Pause.self, Resume.self, Reload.self, Shutdown.self,
            Status.self, Stats.self, Top.self, Jobs.self, Logs.self, Bridge.self,
        ])

    /// An empty command, filled in by the argument parser.
    package init() {}

    /// Runs concurctl with the process's arguments by the conventions of ``CommandLineRun``
    /// (the connection and output options may come before the subcommand;
    /// ``Submit/commandLine(_:)`` applied to a `submit`); never returns.
    package static func run() -> Never {
        let subcommands = Set(configuration.subcommands.map { $0._commandName })
        let hoisted = CommandLineRun.hoisting(
            Array(CommandLine.arguments.dropFirst()), globals: globalOptions, subcommands: subcommands)
        CommandLineRun.run(Self.self, arguments: prepared(hoisted), usageStatus: ClientFailure.ExitStatus.usage)
    }

    /// The options every subcommand that prints takes, which may come before its name (with
    /// whether each takes a value).
    package static let globalOptions: [String: Bool] = [
        "--socket": true, "--server-user": true, "--host": true, "--json": false, "--quiet": false, "-q": false,
    ]

    /// The arguments as the parser must see them: a `submit`'s by ``Submit/commandLine(_:)``,
    /// the ids of `wait`, `jobs` and `cancel` in one word (``JobIDWord/compacting(_:valueOptions:)``).
    package static func prepared(_ arguments: [String]) -> [String] {
        switch arguments.first {
        case "submit"?: return ["submit"] + Submit.commandLine(Array(arguments.dropFirst()))
        case "wait"?, "jobs"?, "cancel"?: return JobIDWord.compacting(arguments, valueOptions: idCommandValueOptions)
        default: return arguments
        }
    }

    /// The options of `wait`, `jobs` and `cancel` that take a value (which may be a number).
    static let idCommandValueOptions: Set<String> = [
        "--timeout", "--state", "--limit", "--pool", "--socket", "--server-user", "--host",
    ]
}

/// Where concurd is and whom to trust there: what every subcommand takes.
package struct ConnectionOptions: ParsableArguments {
    @Option(help: "The control socket (default: $CONCUR_SOCKET, else the default path).")
    var socket: String?

    @Option(
        name: .customLong("server-user"),
        help: ArgumentHelp(
            "Also trust a concurd running as this user (name or uid) on the socket (default: $CONCUR_SERVER_USER).",
            discussion: "Without it, only a concurd running as root or as the owner of the socket's directory is trusted."))
    var serverUser: String?

    @Option(
        help: ArgumentHelp(
            "Control concurd on another host, through `ssh HOST concurctl bridge`.",
            discussion:
                "ssh runs in batch mode (keys or an agent); $CONCUR_SSH is the ssh command (words split at blanks), $CONCUR_REMOTE_CONCURCTL the concurctl there. --socket and --server-user are passed on; $CONCUR_SOCKET and $CONCUR_SERVER_USER are this host's and are not.",
            valueName: "[USER@]HOST"))
    var host: String?

    /// An empty command, filled in by the argument parser.
    package init() {}

    /// Connects to the daemon, checking who answers (with `--host`, the bridge on that host
    /// checks).
    func connect() throws(ClientFailure) -> ControlClient {
        if let host {
            let passed = [socket.map { ["--socket", $0] }, serverUser.map { ["--server-user", $0] }]
            return try ControlClient(host: host, remoteArguments: passed.compactMap { $0 }.flatMap { $0 })
        }
        return try ControlClient(socketPath: ControlClient.resolveSocket(socket), serverUser: trustedServerUser())
    }

    /// The user `--server-user` (or `$CONCUR_SERVER_USER`) names, if any.
    func trustedServerUser() throws(ClientFailure) -> UInt32? {
        let (text, source): (String?, String) =
            serverUser.map { ($0, "--server-user") }
            ?? (getenv(ServerCheck.environmentVariable).map { String(cString: $0) }, ServerCheck.environmentVariable)
        guard let text, !text.isEmpty else { return nil }
        guard let uid = ServerCheck.userID(text) else {
            throw ClientFailure(
                "\(source): no user '\(text.prefix(64))' on this machine; give a user name or a numeric uid",
                exitCode: ClientFailure.ExitStatus.usage)
        }
        return uid
    }

}

/// The options of a subcommand that prints a reply: where concurd is, and how to print.
package struct CommonOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print the reply as JSON (one object per line) instead of text.")
    var json = false

    @Flag(name: [.short, .long], help: "Print nothing but errors: the exit status tells how it went.")
    var quiet = false

    /// An empty command, filled in by the argument parser.
    package init() {}

    /// Refuses --json with --quiet, and makes --quiet take effect.
    package func validate() throws {
        if json && quiet { throw ValidationError("give --json or --quiet, not both") }
        if quiet { StandardStreams.quiet = true }
    }

    /// ``ConnectionOptions/connect()``.
    func connect() throws(ClientFailure) -> ControlClient { try connection.connect() }

    /// Calls `method` and prints the reply: as JSON with `--json`, else the lines of `render`.
    func show(
        _ method: SupervisorInterface.Method, _ parameters: JSONObject = [:],
        render: (JSONObject) throws(ClientFailure) -> [String]
    ) throws {
        try perform { () throws(ClientFailure) in try present(connect().call(method, parameters), render: render) }
    }

    /// Prints a reply: as JSON with `--json`, else the lines of `render`.
    func present(_ reply: JSONObject, render: (JSONObject) throws(ClientFailure) -> [String]) throws(ClientFailure) {
        if json {
            printJSON(reply)
        } else {
            for line in try render(reply) { StandardStreams.printLine(line) }
        }
    }
}

/// Runs a subcommand body, turning a ``ClientFailure`` into its one-line message and status.
func perform(_ body: () throws(ClientFailure) -> Void) throws {
    do {
        try body()
    } catch {
        StandardStreams.printError("concurctl: \(TerminalText.escaped(error.message))")
        throw ExitCode(error.exitCode)
    }
}

/// Prints a reply object as one line of JSON.
func printJSON(_ object: JSONObject) {
    StandardStreams.printLine(JSON.object(object).serialized)
}

/// Failures that carry only an exit status (the output already said what happened).
enum ExitCodeFailure {
    /// `submit --wait` or `wait` saw jobs end other than done.
    static func notAllDone(failed: Int, cancelled: Int) -> ClientFailure {
        let parts = [failed > 0 ? "\(failed) failed" : nil, cancelled > 0 ? "\(cancelled) cancelled" : nil].compactMap { $0 }
        return ClientFailure(
            "not every job ended done (\(parts.joined(separator: ", "))): see the lines above",
            exitCode: ClientFailure.ExitStatus.refused)
    }
}
