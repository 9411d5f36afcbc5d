/// What a node of the shared store needs to reach it and name itself there: read from the
/// daemon's configuration by `concurd`, used by the PostgreSQL node of `concurd-postgres`.
package struct StoreNodeSettings: Sendable, Equatable {
    /// Where the store is.
    package var address: StoreAddress
    /// The password, if the server asks for one.
    package var password: String?
    /// The file the password came from (named in errors).
    package var passwordFile: String?
    /// This node's name.
    package var node: String
    /// Seconds a lease lasts without a heartbeat.
    package var leaseSeconds: Double
    /// This host, and this process (what `nodes` shows; a dead process of this host may be
    /// taken over at once).
    package var host: String
    /// This process.
    package var pid: Int32
    /// concurd's version.
    package var version: String

    /// Settings for node `node` of the store at `address`.
    package init(
        address: StoreAddress, password: String?, passwordFile: String?, node: String, leaseSeconds: Double,
        host: String, pid: Int32, version: String
    ) {
        self.address = address
        self.password = password
        self.passwordFile = passwordFile
        self.node = node
        self.leaseSeconds = leaseSeconds
        self.host = host
        self.pid = pid
        self.version = version
    }
}
