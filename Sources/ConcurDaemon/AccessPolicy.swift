import Glibc
package import Varlink

/// Who may use the control socket: root, the daemon's own user, and the users and groups the
/// configuration allows (`allowed_users`, `allowed_groups`). A peer's groups are its primary
/// group (SO_PEERCRED) and the groups its user belongs to in the group database.
package struct AccessPolicy: Sendable, Equatable {
    /// User ids allowed besides root and the daemon's own.
    package var users: Set<UInt32>
    /// Group ids whose members are allowed.
    package var groups: Set<UInt32>
    /// The daemon's own user id.
    package var ownUID: UInt32

    /// A policy allowing `users` and the members of `groups`, besides root and `ownUID`.
    package init(users: Set<UInt32> = [], groups: Set<UInt32> = [], ownUID: UInt32 = geteuid()) {
        self.users = users
        self.groups = groups
        self.ownUID = ownUID
    }

    /// Whether `peer` may call the daemon. `memberships` gives a user's groups (injectable for
    /// tests; by default the group database).
    package func allows(_ peer: VarlinkPeer, memberships: (UInt32, UInt32) -> [UInt32] = AccessPolicy.groups(of:primary:))
        -> Bool
    {
        if peer.uid == 0 || peer.uid == ownUID || users.contains(peer.uid) { return true }
        guard !groups.isEmpty else { return false }
        if groups.contains(peer.gid) { return true }
        return memberships(peer.uid, peer.gid).contains { groups.contains($0) }
    }

    /// The groups user `uid` belongs to (getgrouplist), or only `primary` if the user is unknown.
    package static func groups(of uid: UInt32, primary: UInt32) -> [UInt32] {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return [primary] }
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, primary, &list, &count) < 0 {
            list = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, primary, &list, &count) >= 0 else { return [primary] }
        }
        return Array(list.prefix(Int(count)))
    }

    /// A user id from a name or a number; nil if there is no such user.
    static func userID(_ name: String) -> UInt32? {
        if let number = UInt32(name) { return number }
        return getpwnam(name).map { $0.pointee.pw_uid }
    }

    /// A group id from a name or a number; nil if there is no such group.
    static func groupID(_ name: String) -> UInt32? {
        if let number = UInt32(name) { return number }
        return getgrnam(name).map { $0.pointee.gr_gid }
    }
}
