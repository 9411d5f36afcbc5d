import CSystemd
import Glibc

/// Sockets passed by systemd's socket activation (sd_listen_fds(3)).
public enum ListenedSockets {
    /// A descriptor systemd passed, with the name from `FileDescriptorName=`.
    public struct Socket: Sendable, Equatable {
        /// The descriptor (3 and up).
        public let fileDescriptor: Int32
        /// Its name, `unknown` if the unit gave none.
        public let name: String
    }

    /// The sockets passed to this process; the environment variables are unset afterwards so
    /// children do not inherit them.
    public static func take() -> [Socket] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else { return [] }
        defer {
            if let names {
                for index in 0..<Int(count) { free(names[index]) }
                free(names)
            }
        }
        return (0..<Int(count)).map { index in
            let name = names?[index].map { String(cString: $0) } ?? "unknown"
            return Socket(fileDescriptor: SD_LISTEN_FDS_START + Int32(index), name: name)
        }
    }
}
