import Testing

@testable import ConcurDaemon

/// concurd.toml(5), written from the settings table.
@Suite("The configuration file's manual page")
struct ConfigManualTests {
    @Test("every key of the file is there, with its default and whether a reload applies it; roff stays well formed")
    func everyKey() {
        let page = DaemonSettings.manualPage(date: "2026-12-04")
        #expect(page.hasPrefix(#".TH CONCURD.TOML 5 "2026-12-04""#))
        for key in DaemonSettings.fileKeys {
            #expect(page.contains("\\fB\(key)\\fR = "), "\(key) is missing")
        }
        #expect(page.contains("\\fBworkers\\fR = \\fIan integer\\fR"), "\(page)")
        #expect(page.contains("a reload applies it") && page.contains("takes effect at the next start"))
        #expect(page.contains("[pools.\\fINAME\\fB]") && page.contains("\\fBmax_queue\\fR"))
        // A line of text never starts with a dot or a quote (roff would take it for a request).
        for line in page.split(separator: "\n") where !line.hasPrefix(".") {
            #expect(!line.hasPrefix("'"), "\(line)")
        }
        #expect(!page.contains("`"))
    }
}
