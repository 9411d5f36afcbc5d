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

/// Job ids on the command line: `12 15`, `12,15`, `10-20`.
@Suite("Job id words")
struct JobIDWordTests {
    @Test("a word gives ids, a list of them or a range; anything else is refused")
    func parsing() {
        #expect(JobIDWord(argument: "12")?.ids == [12])
        #expect(JobIDWord(argument: "12,15")?.ids == [12, 15])
        #expect(JobIDWord(argument: "3,10-12,40")?.ids == [3, 10, 11, 12, 40])
        #expect(JobIDWord(argument: "7-7")?.ids == [7])
        for wrong in ["", "x", "12,", ",12", "3-1", "1-", "-1", "1-2-3", "1-10001", "9999999999999999999"] {
            #expect(JobIDWord(argument: wrong) == nil, "\(wrong)")
        }
        #expect(JobIDWord(argument: "1-10000")?.ids.count == 10_000)
    }

    @Test("runs of plain ids become one word; option values, the subcommand and what follows -- stay")
    func compacting() {
        let options = ConcurctlCommand.idCommandValueOptions
        #expect(
            JobIDWord.compacting(["wait", "1", "2", "3", "--timeout", "5", "7", "8"], valueOptions: options)
                == ["wait", "1,2,3", "--timeout", "5", "7,8"])
        #expect(JobIDWord.compacting(["jobs", "--limit", "20", "4"], valueOptions: options) == ["jobs", "--limit", "20", "4"])
        #expect(JobIDWord.compacting(["cancel", "1", "--", "2", "3"], valueOptions: options) == ["cancel", "1", "--", "2", "3"])
        #expect(JobIDWord.compacting(["wait", "1", "x2", "3"], valueOptions: options) == ["wait", "1", "x2", "3"])
        // 10,000 ids: one word (the parser takes that in linear time).
        let many = ["wait"] + (1...10_000).map(String.init)
        #expect(JobIDWord.compacting(many, valueOptions: options).count == 2)
        #expect(ConcurctlCommand.prepared(many).count == 2)
    }
}
