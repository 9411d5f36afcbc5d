package import ArgumentParser
import ConcurArguments
import ConcurCore
import ConcurProtocol
import ConcurRuntime

/// `concurd`: the daemon's command line. The executable only calls `main()`.
package struct ConcurdCommand: ParsableCommand {
    /// The command's name, help text and subcommands.
    package static let configuration = CommandConfiguration(
        commandName: "concurd",
        abstract: "A supervisor daemon whose worker pool runs jobs from one shared queue.",
        discussion: """
            Without a subcommand, concurd serves: it listens on its control socket (see concurctl) \
            until SIGTERM or SIGINT, which drains running jobs; a second signal interrupts them.
            """,
        version: Daemon.version,
        subcommands: [
            Serve.self, Run.self, Compare.self, Worker.self, ForkServerHelper.self, GuardHelper.self, ConfigManual.self,
        ],
        defaultSubcommand: Serve.self)

    /// An empty command, filled in by the argument parser.
    package init() {}

    /// Runs concurd with the process's arguments by the conventions of ``CommandLineRun``: a
    /// wrong option exits with 2, as a wrong config value does; never returns.
    package static func run() -> Never {
        CommandLineRun.run(Self.self, arguments: Array(CommandLine.arguments.dropFirst()), usageStatus: 2)
    }
}

/// The options of the daemon's hidden child modes: the daemon's pid, the execution log, and
/// how far below the daemon the workers run.
package struct ChildOptions: ParsableArguments {
    @Option(help: "The daemon's pid; the child exits if its parent is another.")
    var parent: Int32

    @Option(name: .customLong("execution-log"), help: "Where each run of a job is recorded (the daemon's log).")
    var executionLog: String?

    @Option(help: "Nice levels below the daemon the workers run at.")
    var nice: Int = 0

    @Option(name: .customLong("output-directory"), help: "Where exec jobs' output goes (the daemon's).")
    var outputDirectory: String?

    @Option(name: .customLong("max-output"), help: "Bytes kept of each stream of an exec job's output.")
    var maxOutput: Int = CommandOutput.defaultMaxBytes

    /// An empty set of options, filled in by the argument parser.
    package init() {}

    /// Opens the execution log, if one was given, and takes the output settings; `who` names
    /// the child in the error.
    func openExecutionLog(who: String) throws {
        do {
            try CommandOutput.configure(directory: outputDirectory, maxBytes: maxOutput)
        } catch {
            StandardStreams.printError("concurd \(who): \(error)")
            throw ExitCode(74)
        }
        guard let executionLog else { return }
        do {
            try ExecutionLog.open(path: executionLog)
        } catch {
            StandardStreams.printError("concurd \(who): \(error)")
            throw ExitCode(74)
        }
    }
}

extension ConcurdCommand {
    /// `concurd __config-manual`: prints concurd.toml(5) (what scripts/install installs).
    package struct ConfigManual: ParsableCommand {
        /// Hidden: for the installer, which writes it where man(1) looks.
        package static let configuration = CommandConfiguration(commandName: "__config-manual", shouldDisplay: false)

        @Option(help: "The page's date (YYYY-MM-DD).")
        var date = "2026-12-04"

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Prints the page.
        package func run() throws {
            StandardStreams.printText(DaemonSettings.manualPage(date: date))
        }
    }

    /// `concurd __worker`: the child worker of the processes model (not for people).
    package struct Worker: ParsableCommand {
        /// Hidden: started by the daemon itself, with its channel as fd 3.
        package static let configuration = CommandConfiguration(commandName: "__worker", shouldDisplay: false)

        @OptionGroup var child: ChildOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Serves jobs until retired or orphaned; never returns.
        package func run() throws {
            try child.openExecutionLog(who: "worker")
            ChildWorker.run(parentPID: child.parent, nice: child.nice)
        }
    }

    /// `concurd __guard`: the helper that kills the daemon's commands when it is gone (not for
    /// people).
    package struct GuardHelper: ParsableCommand {
        /// Hidden: started by the daemon itself, with its pipe as fd 3.
        package static let configuration = CommandConfiguration(commandName: "__guard", shouldDisplay: false)

        @Option(help: "The daemon's pid.")
        var parent: Int32

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Watches the daemon's commands until it is gone; never returns.
        package func run() throws {
            CommandGuard.serveAsHelper(parentPID: parent)
        }
    }

    /// `concurd __forkserver`: the forkserver helper of the processes model (not for people).
    package struct ForkServerHelper: ParsableCommand {
        /// Hidden: started by the daemon itself, with its socket as fd 3.
        package static let configuration = CommandConfiguration(commandName: "__forkserver", shouldDisplay: false)

        @OptionGroup var child: ChildOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Forks workers on request until the daemon goes away; never returns.
        package func run() throws {
            try child.openExecutionLog(who: "forkserver")
            ForkServer.serveAsHelper(parentPID: child.parent, nice: child.nice)
        }
    }
}
