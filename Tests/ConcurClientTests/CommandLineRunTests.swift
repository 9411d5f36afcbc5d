import ConcurArguments
import Testing

@testable import ConcurClient

/// The conventions concurd's and concurctl's command lines share (``CommandLineRun``).
@Suite("Command-line conventions")
struct CommandLineRunTests {
    let subcommands: Set<String> = ["status", "submit", "jobs"]

    @Test("options every subcommand takes may come before it; anything else is left as it is")
    func hoisting() {
        let globals = ConcurctlCommand.globalOptions
        #expect(
            CommandLineRun.hoisting(["--socket", "/s", "--json", "status"], globals: globals, subcommands: subcommands)
                == ["status", "--socket", "/s", "--json"])
        #expect(
            CommandLineRun.hoisting(["--socket=/s", "-q", "submit", "sleep:1"], globals: globals, subcommands: subcommands)
                == ["submit", "--socket=/s", "-q", "sleep:1"])
        // After the subcommand already, an unknown option first, or no subcommand: untouched.
        for arguments in [["status", "--json"], ["--pool", "io", "status"], ["--socket", "/s"], ["--json", "stauts"]] {
            #expect(CommandLineRun.hoisting(arguments, globals: globals, subcommands: subcommands) == arguments)
        }
        // A value that looks like a subcommand is the option's value.
        #expect(
            CommandLineRun.hoisting(["--host", "status", "jobs"], globals: globals, subcommands: subcommands)
                == ["jobs", "--host", "status"])
    }

    @Test("did you mean: a slip or a prefix gets the closest name, anything farther none")
    func suggestions() {
        let names = ["status", "stats", "submit", "shutdown", "resume", "resize"]
        #expect(CommandLineRun.suggestion(for: "stauts", among: names) == "status")
        #expect(CommandLineRun.suggestion(for: "sumbit", among: names) == "submit")
        #expect(CommandLineRun.suggestion(for: "shut", among: names) == "shutdown")
        #expect(CommandLineRun.suggestion(for: "resiz", among: names) == "resize")
        #expect(CommandLineRun.suggestion(for: "xyz", among: names) == nil)
        #expect(CommandLineRun.suggestion(for: "", among: names) == nil)
        #expect(CommandLineRun.distance("kitten", "sitting") == 3 && CommandLineRun.distance("ab", "ba") == 1)
    }

    @Test("the parser's errors read as concur's: no 'Error:', a lower-case start")
    func sentences() {
        #expect(CommandLineRun.sentence("Error: Unknown option '--bogus'") == "unknown option '--bogus'")
        #expect(CommandLineRun.sentence("Error: IO error") == "IO error")
        #expect(CommandLineRun.sentence("give --json or --quiet, not both") == "give --json or --quiet, not both")
    }
}
