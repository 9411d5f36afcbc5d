// concurd.toml(5), written from the same table as the config file's parser and docs/operations.md's
// option table, so the manual cannot drift from what concurd reads.
extension DaemonSettings {
    /// The manual page of the configuration file, in roff (man(7) macros), dated `date`.
    static func manualPage(date: String) -> String {
        var lines = [
            #".TH CONCURD.TOML 5 "\#(date)" "concur \#(Daemon.version)" "File Formats Manual""#,
            ".SH NAME",
            #"concurd.toml \- the configuration file of concurd(8)"#,
            ".SH SYNOPSIS",
            ".B /etc/concurd/concurd.toml",
            ".SH DESCRIPTION",
            "A TOML file that concurd reads at start (\\fB--config\\fR \\fIFILE\\fR) and again on SIGHUP or",
            "\\fBconcurctl reload\\fR. Each key has the meaning of the command-line option of the same",
            "name, which overrides it. Every value is checked: a wrong one stops the start, or is refused",
            "by a reload (the running configuration stays), with a message naming the key. An unknown",
            "key is an error too. The file is read only if no one but root and concurd's user could",
            "have written it.",
            ".SH KEYS",
        ]
        for setting in all where setting.inFile {
            lines.append(".TP")
            lines.append("\\fB\(roff(setting.key))\\fR = \\fI\(roff(setting.expectation))\\fR")
            var text = roff(setting.meaning.replacingBackticks())
            if let defaultText = setting.defaultText { text += "; default: \(roff(defaultText.replacingBackticks()))" }
            if let flag = setting.flag { text += "; option \\fB\(roff(flag))\\fR" }
            switch setting.reload {
            case .live: text += "; a reload applies it"
            case .restart: text += "; a change takes effect at the next start"
            case .ignored: break
            }
            lines.append(text + ".")
        }
        lines += [
            ".SH POOLS",
            "Each table \\fB[pools.\\fINAME\\fB]\\fR adds a pool beside the default one (which the top-level",
            "keys describe), with the keys \(PoolConfiguration.keys.map { "\\fB\(roff($0))\\fR" }.joined(separator: ", ")).",
            "A reload adds and removes pools; a removed pool's unfinished jobs are kept.",
            ".SH EXAMPLE",
            ".nf",
            "workers = 4",
            "model = \"threads\"",
            "drain_timeout = 30",
            "allowed_groups = [\"concur\"]",
            "",
            "[pools.io]",
            "model = \"tasks\"",
            "workers = 64",
            ".fi",
            ".SH SEE ALSO",
            "concurd(8), concurctl(1)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` with roff's escape character and line-leading dots made safe.
    private static func roff(_ text: String) -> String {
        var escaped = ""
        for character in text {
            escaped += character == "\\" ? "\\e" : character == "-" ? "\\-" : String(character)
        }
        return escaped.hasPrefix(".") || escaped.hasPrefix("'") ? "\\&" + escaped : escaped
    }
}

extension String {
    /// The text without Markdown's code quotes (docs/operations.md's table uses them).
    fileprivate func replacingBackticks() -> String { filter { $0 != "`" } }
}
