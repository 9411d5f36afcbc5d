import ConcurProtocol
import Testing

@Suite("The io.concur.Supervisor definition")
struct InterfaceDefinitionTests {
    /// The names declared with `keyword` (method, error, type) in the definition.
    func declared(_ keyword: String) -> Set<String> {
        Set(
            SupervisorInterface.definition.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix(keyword + " ") else { return nil }
                return line.dropFirst(keyword.count + 1).prefix { $0.isLetter || $0.isNumber }.description
            })
    }

    @Test("declares exactly the methods the service handles")
    func methods() {
        #expect(declared("method") == Set(SupervisorInterface.Method.allCases.map(\.rawValue)))
    }

    @Test("declares every error the service sends")
    func errors() {
        let sent = [
            SupervisorError.queueFull(limit: 1, queued: 1), SupervisorError.shuttingDown,
            SupervisorError.invalidWorkers(min: 1, max: 2),
            SupervisorError.noSuchJob(1), SupervisorError.invalidValue(parameter: "p", reason: "r"), SupervisorError.execDisabled,
            SupervisorError.crashRefused(model: .threads), SupervisorError.modelUnavailable(model: .tasks, reason: "r"),
            SupervisorError.switchSuperseded(by: .threads), SupervisorError.invalidConfiguration(reason: "r"),
            SupervisorError.journalUnavailable(reason: "r"), SupervisorError.invalidMessage(reason: "r"),
            SupervisorError.jobFinished(1, state: .done), SupervisorError.unknownPool("io", pools: ["default"]),
            SupervisorError.storeUnavailable(reason: "r", inDoubt: nil), SupervisorError.notShared,
        ]
        #expect(Set(sent.map(\.shortName)) == declared("error"))
    }

    @Test("gives every member a name of its own (types, methods and errors share one namespace)")
    func uniqueMembers() {
        let names = ["type", "method", "error"].flatMap { declared($0) }
        #expect(names.count == Set(names).count)
        #expect(declared("type").isDisjoint(with: declared("method")))
    }

    @Test("names the interface on its first declaration line")
    func name() {
        #expect(SupervisorInterface.definition.contains("\ninterface io.concur.Supervisor\n"))
    }
}
