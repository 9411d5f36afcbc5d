/// Why `concurd compare` could not measure, in a sentence for the user.
struct ComparisonFailure: Error, CustomStringConvertible {
    /// What went wrong.
    var description: String

    init(_ description: String) { self.description = description }
}
