import CConcurShims
import Glibc
import Logging
import NIOCore

/// What the listening socket does when accepting fails for lack of descriptors (EMFILE,
/// ENFILE) or memory: instead of retrying at once, for ever, at full CPU, it closes the
/// connections waiting in the backlog at once (with a descriptor kept in reserve for the
/// purpose, so their clients see the connection end instead of hanging), logs at most once a
/// second, and waits a little before it accepts again. The connections already open are served
/// all along.
///
/// Lives on the server channel's event loop.
final class AcceptGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel
    typealias OutboundIn = any Channel

    /// How long accepting pauses after it failed.
    static let pause = TimeAmount.milliseconds(100)

    private let listener: Int32
    private let logger: Logger
    private var reserve: Int32
    private var resumeAt: NIODeadline?
    private var scheduledRead: Scheduled<Void>?
    private var lastLog: UInt64 = 0
    private var shedSinceLog = 0
    private var failuresSinceLog = 0

    /// A guard for the listening socket `listener`.
    init(listener: Int32, logger: Logger) {
        self.listener = listener
        self.logger = logger
        reserve = Self.openReserve()
    }

    deinit {
        if reserve >= 0 { Glibc.close(reserve) }
    }

    private static func openReserve() -> Int32 {
        open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let failure = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(failure.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        shedSinceLog += shedBacklog()
        failuresSinceLog += 1
        resumeAt = .now() + Self.pause
        let now = concur_monotonic_nanoseconds()
        if now - lastLog >= 1_000_000_000 {
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            logger.error(
                "cannot accept connections: \(String(cString: strerror(failure.errnoCode))) (descriptor limit \(limit.rlim_cur)); serving the connections open, closing \(shedSinceLog) new one(s) at once since the last report; raise the limit (LimitNOFILE=) or close idle clients"
            )
            lastLog = now
            shedSinceLog = 0
            failuresSinceLog = 0
        }
    }

    /// Accepts and closes what waits in the backlog, with the reserve descriptor freed for it;
    /// returns how many.
    private func shedBacklog() -> Int {
        if reserve >= 0 {
            Glibc.close(reserve)
            reserve = -1
        }
        var count = 0
        while count < 1024 {
            // Closed at once: no exec can inherit it in between.
            let accepted = Glibc.accept(listener, nil, nil)
            guard accepted >= 0 else { break }
            Glibc.close(accepted)
            count += 1
        }
        reserve = Self.openReserve()
        return count
    }

    func read(context: ChannelHandlerContext) {
        guard scheduledRead == nil else { return }
        guard let resumeAt, NIODeadline.now() < resumeAt else {
            self.resumeAt = nil
            context.read()
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        scheduledRead = context.eventLoop.scheduleTask(deadline: resumeAt) {
            let (handler, context) = bound.value
            handler.scheduledRead = nil
            handler.resumeAt = nil
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        scheduledRead?.cancel()
        scheduledRead = nil
        context.fireChannelInactive()
    }
}
