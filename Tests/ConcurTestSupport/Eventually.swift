import Glibc

/// Waits until `condition` holds, polling every 2 ms, for at most `seconds`; returns whether it
/// did (the condition is asked once more at the deadline).
package func eventually(_ seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: .milliseconds(Int64(seconds * 1000)))
    while clock.now < deadline {
        if try condition() { return true }
        usleep(2_000)
    }
    return try condition()
}
