public import ConcurProtocol
import Glibc

extension ProcessUsage {
    /// This process's CPU time (getrusage), resident memory and thread count (/proc/self).
    public static func current() -> ProcessUsage {
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
    public static func residentBytes(of pid: Int) -> Int? {
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
