package import ArgumentParser
import ConcurProtocol
import Glibc

extension ConcurctlCommand {
    /// `concurctl bridge`: Varlink between standard input and output and concurd's socket.
    package struct Bridge: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Relay Varlink between standard input and output and concurd's socket.",
            discussion: """
                What `concurctl --host USER@HOST` runs on the other host through ssh, as `varlink bridge` \
                does: any Varlink client that speaks over a command's standard streams can use it. Who \
                answers on the socket is checked first, as for every command.
                """)

        @OptionGroup var common: ConnectionOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Refuses the options that have no meaning for a relay.
        package func validate() throws {
            if common.host != nil { throw ValidationError("bridge relays this host's socket: leave out --host") }
        }

        /// Runs the command.
        package func run() throws {
            try perform { () throws(ClientFailure) in
                let client = try common.connect()
                switch StreamRelay.run(input: 0, output: 1, socket: client.fileDescriptor) {
                case .closed, .outputGone: return
                case .failed(let operation, let code):
                    throw ClientFailure(
                        "bridge: \(operation) failed: \(String(cString: strerror(code)))",
                        exitCode: ClientFailure.ExitStatus.unavailable)
                }
            }
        }
    }
}
