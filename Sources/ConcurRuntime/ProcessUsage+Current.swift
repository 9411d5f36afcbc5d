import ConcurCore
package import ConcurProtocol
import Glibc

extension ProcessUsage {
    /// This process's CPU time (getrusage), resident memory and thread count (/proc/self).
    package static func current() -> ProcessUsage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        let statm = readProcFile("/proc/self/statm").split(separator: " ")
        let residentPages = statm.count > 1 ? Int(statm[1]) ?? 0 : 0
        let status = readProcFile("/proc/self/status")
        let threads =
            status.split(separator: "\n").first { $0.hasPrefix("Threads:") }
            .flatMap { Int($0.dropFirst("Threads:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" })) } ?? 0
        return ProcessUsage(
            cpuUserSeconds: seconds(usage.ru_utime), cpuSystemSeconds: seconds(usage.ru_stime),
            rssBytes: residentPages * Int(sysconf(Int32(_SC_PAGESIZE))), threads: threads)
    }

    /// The resident memory of process `pid`, in bytes, or nil if it is gone.
    package static func residentBytes(of pid: Int) -> Int? {
        let statm = readProcFile("/proc/\(pid)/statm").split(separator: " ")
        guard statm.count > 1, let pages = Int(statm[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The text of a small /proc file, or "" if it cannot be read.
    static func readProcFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension ProcessUsage {
    /// The CPU time process `pid` has used (user and system), in seconds, or nil if it is gone.
    package static func cpuSeconds(of pid: Int) -> Double? {
        let stat = readProcFile("/proc/\(pid)/stat")
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// The CPU used by the daemon and its child workers between two samples, in percent of one core.
///
/// Child workers are followed by pid: a child's time counts from the first sample that saw it,
/// and one that has gone simply stops counting (its last moments are lost, never counted
/// twice or negative).
package struct CPUMeter: Sendable {
    private var last: (time: UInt64, own: Double, children: [Int: Double])?
    /// The share measured between the last two samples.
    package private(set) var percent = 0.0

    /// A meter with no sample yet.
    package init() {}

    /// Samples the daemon's own CPU time and that of `children` (pids) at monotonic `now`.
    package mutating func sample(now: UInt64, own: Double, children: [Int: Double]) {
        if let last, now > last.time {
            var used = max(0, own - last.own)
            for (pid, seconds) in children {
                if let before = last.children[pid] { used += max(0, seconds - before) }
            }
            percent = used / (Double(now - last.time) / 1e9) * 100
        }
        last = (now, own, children)
    }
}
