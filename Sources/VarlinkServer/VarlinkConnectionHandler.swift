import DequeModule
import Logging
import NIOCore
import Varlink

/// The limits one connection lives within, so that no client holds more than its share of the
/// daemon's memory or of its event loop.
struct ConnectionLimits: Sendable {
    /// The largest message; a longer one gets an error and the connection is closed.
    var maxMessageSize = VarlinkFraming.defaultMaxMessageSize
    /// Calls sent while the client leaves the replies to earlier ones unread; one more closes
    /// the connection (a client that pipelines while it reads is only slowed down).
    var maxPipelined = 64
    /// Calls answered in one go before the event loop serves the other connections.
    var callsPerTurn = 2
    /// Bytes of unread replies (queued in the daemon, beyond what the kernel holds) past which
    /// the connection is closed. A backstop: calls are not taken while replies wait unread, and
    /// streams deliver only while the client reads, so no service of ours gets near it.
    var maxUnreadBytes = 4 << 20
    /// Bytes received and not yet answered past which the connection is not read from until it
    /// catches up (the kernel then holds the client's writes back).
    var maxBacklogBytes = 64 << 10
    /// Seconds a client may leave the daemon's replies unread before it is disconnected.
    var stalledClientTimeout: Double = 30
}

/// One client connection: frames its byte stream, answers calls strictly in order, and keeps a
/// streaming call open until its final reply.
///
/// Fair to the others: it answers at most ``ConnectionLimits/callsPerTurn`` calls before it
/// lets the event loop serve another connection, stops reading while a backlog waits or while
/// the client leaves its replies unread (the kernel then holds the client back), and closes a
/// connection that sends more than ``ConnectionLimits/maxPipelined`` calls behind unread
/// replies or leaves more than ``ConnectionLimits/maxUnreadBytes`` unread.
///
/// Lives on its channel's event loop. Handlers may answer from any thread; replies hop here.
final class VarlinkConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct ActiveCall {
        let id: UInt64
        let oneway: Bool
        /// A call of several replies: a stream whose client is gone ends with its input.
        var more = false
        var closeHandlers: [@Sendable () -> Void] = []
        var writableHandlers: [@Sendable () -> Void] = []
    }

    private let service: VarlinkService
    private let peer: VarlinkPeer
    private let authorized: Bool
    private let logger: Logger
    private let limits: ConnectionLimits
    private let invalidMessage: @Sendable (String) -> VarlinkError
    private let oversizedReply: @Sendable (Int) -> VarlinkError
    /// Bytes received and not yet taken as calls.
    private var inbound: ByteBuffer?
    /// Bytes at the start of `inbound` already searched for a NUL without finding one.
    private var scanned = 0
    private var active: ActiveCall?
    private var nextCallID: UInt64 = 0
    private var context: ChannelHandlerContext?
    private var closing = false
    /// The client shut its side down (or closed): the calls it sent are answered, then the
    /// connection closes.
    private var inputEnded = false
    /// The pipeline asked to read while reading was held back.
    private var readHeld = false
    /// Taking calls now: a call answered inline must not start the next one re-entrantly.
    private var pumping = false
    /// A continuation of the calls is scheduled on the event loop (the budget was spent).
    private var resumeScheduled = false
    private var scratch: [UInt8] = []
    /// Closes the connection if its output stays backed up for the stalled-client timeout.
    private var stallCheck: Scheduled<Void>?
    private let activity: ConnectionActivity
    private let unreadBudget: UnreadReplyBudget?
    /// What this connection last told `unreadBudget` it leaves unread.
    private var charged = 0
    /// Unread bytes below this are not charged to the shared budget.
    static let chargedFrom = 64 << 10

    init(
        service: VarlinkService, peer: VarlinkPeer, authorized: Bool, logger: Logger, limits: ConnectionLimits = .init(),
        invalidMessage: @escaping @Sendable (String) -> VarlinkError = { _ in VarlinkError.invalidParameter("message") },
        oversizedReply: @escaping @Sendable (Int) -> VarlinkError = { _ in VarlinkError.invalidParameter("reply") },
        activity: ConnectionActivity = ConnectionActivity(), unreadBudget: UnreadReplyBudget? = nil
    ) {
        self.unreadBudget = unreadBudget
        self.oversizedReply = oversizedReply
        self.activity = activity
        self.service = service
        self.peer = peer
        self.authorized = authorized
        self.logger = logger
        self.limits = limits
        self.invalidMessage = invalidMessage
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var bytes = unwrapInboundIn(data)
        if var buffer = inbound.take() {
            // What was taken is let go of now and then, not moved down at every call.
            if buffer.readerIndex >= limits.maxBacklogBytes { buffer.discardReadBytes() }
            buffer.writeBuffer(&bytes)
            inbound = buffer
        } else {
            inbound = bytes
        }
        if !context.channel.isWritable {
            closeIfPipeliningBehindUnread(context: context)
        }
        pump(context: context)
    }

    /// Holds reading back while replies wait unread, or while a backlog of calls waits (a
    /// message still arriving is always read on, up to the size limit).
    func read(context: ChannelHandlerContext) {
        if shouldHoldReading(context) {
            readHeld = true
            return
        }
        context.read()
    }

    private func shouldHoldReading(_ context: ChannelHandlerContext) -> Bool {
        let buffered = inbound?.readableBytes ?? 0
        // Bytes not yet searched for a NUL may hold whole calls; searched ones are one partial message.
        let callsMayWait = scanned < buffered
        return closing || !context.channel.isWritable || (callsMayWait && buffered >= limits.maxBacklogBytes)
    }

    private func resumeReading(context: ChannelHandlerContext) {
        guard readHeld, !shouldHoldReading(context) else { return }
        readHeld = false
        context.read()
    }

    /// The next whole message, without its NUL; nil until one has arrived. Throws for a message
    /// over the size limit.
    private func nextFrame() throws(FramingError) -> ByteBuffer? {
        // Taken out while it changes, so that it is not copied on write.
        guard var buffer = inbound.take(), buffer.readableBytes > 0 else { return nil }
        defer { if buffer.readableBytes > 0 { inbound = buffer } }
        let view = buffer.readableBytesView
        let start = view.index(view.startIndex, offsetBy: min(scanned, view.count))
        guard let nul = view[start...].firstIndex(of: 0) else {
            scanned = view.count
            if view.count > limits.maxMessageSize { throw .messageTooLarge(limit: limits.maxMessageSize) }
            return nil
        }
        let length = nul - view.startIndex
        guard length <= limits.maxMessageSize else { throw .messageTooLarge(limit: limits.maxMessageSize) }
        let message = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        scanned = 0
        return message
    }

    /// Calls waiting in the backlog (whole messages received, not yet taken).
    private var waitingCalls: Int {
        guard let inbound else { return 0 }
        return inbound.readableBytesView.reduce(0) { $1 == 0 ? $0 + 1 : $0 }
    }

    /// A client that keeps sending calls while it reads none of the replies is closed.
    private func closeIfPipeliningBehindUnread(context: ChannelHandlerContext) {
        guard waitingCalls > limits.maxPipelined else { return }
        logger.notice(
            "closing a connection that sent more than \(limits.maxPipelined) calls without reading the replies",
            metadata: ["peer": "\(peer)"])
        closeConnection(context: context)
    }

    /// Takes and answers calls in order: one at a time, at most ``ConnectionLimits/callsPerTurn``
    /// before the event loop serves others, and none while the client leaves replies unread.
    private func pump(context: ChannelHandlerContext) {
        guard !pumping else { return }
        pumping = true
        defer { pumping = false }
        var budget = limits.callsPerTurn
        while active == nil, !closing {
            guard context.channel.isWritable else { break }  // resumed by channelWritabilityChanged
            guard budget > 0 else {
                scheduleResume(context: context)
                break
            }
            let frame: ByteBuffer?
            do {
                frame = try nextFrame()
            } catch {
                refuseMessage("\(error)", context: context)
                return
            }
            guard let frame else { break }
            budget -= 1
            take(frame, context: context)
        }
        if inputEnded, active == nil, !closing, waitingCalls == 0 {
            finishAfterInput(context: context)
            return
        }
        resumeReading(context: context)
    }

    /// Closes a connection whose client ended its input, once the replies to every call it
    /// sent have been written (a close alone would drop those still queued in the channel).
    private func finishAfterInput(context: ChannelHandlerContext) {
        closing = true
        inbound = nil
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    private func scheduleResume(context: ChannelHandlerContext) {
        guard !resumeScheduled else { return }
        resumeScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let connection = bound.value
            connection.resumeScheduled = false
            guard let context = connection.context else { return }
            connection.pump(context: context)
        }
    }

    /// Decodes one message and starts its call, or answers why it is not one.
    private func take(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        let json: JSON
        do {
            json = try frame.withUnsafeReadableBytes { raw in try JSON.parse(raw) }
        } catch {
            // The stream can no longer be trusted to be in step: say why, then hang up.
            refuseMessage("\(error)", context: context)
            return
        }
        nextCallID &+= 1
        let id = nextCallID
        let call: VarlinkCall
        do {
            call = try VarlinkCall(json: json)
        } catch {
            active = ActiveCall(id: id, oneway: false)
            deliver(VarlinkReply(error: error), callID: id)
            return
        }
        guard authorized else {
            refuse(call)
            return
        }
        active = ActiveCall(id: id, oneway: call.oneway, more: call.more)
        activity.setBusy(true)
        service.dispatch(call, peer: peer, responder: makeResponder(callID: id, call: call))
    }

    /// Answers a message that is not a Varlink call (not JSON, nested too deep, too large) with
    /// an error, then closes: what follows it cannot be trusted to be in step.
    private func refuseMessage(_ reason: String, context: ChannelHandlerContext) {
        logger.debug("closing connection: \(reason)", metadata: ["peer": "\(peer)"])
        closing = true
        inbound = nil
        let error = invalidMessage(reason)
        let buffer = context.channel.allocator.buffer(bytes: VarlinkFraming.frame(VarlinkReply(error: error).json))
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: Events

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // A client that shut its side down still reads the replies to the calls it sent
            // (what `concurctl bridge` relays): they are answered first. A stream has no end
            // of its own, and a client gone entirely reads nothing: it ends with the input.
            inputEnded = true
            if active?.more == true {
                closeConnection(context: context)
            } else {
                pump(context: context)
            }
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // Silent for the idle timeout with no call running (a partial message counts as
            // silence): an idle or half-open connection gives its place back.
            guard active == nil else { return }
            logger.debug("closing a connection idle for the idle timeout", metadata: ["peer": "\(peer)"])
            closeConnection(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stallCheck?.cancel()
            stallCheck = nil
            chargeUnread(context)
            if var active, !active.writableHandlers.isEmpty {
                let handlers = active.writableHandlers
                active.writableHandlers = []
                self.active = active
                for handler in handlers { handler() }
            }
            pump(context: context)
        } else if stallCheck == nil {
            closeIfPipeliningBehindUnread(context: context)
            // The client has stopped reading what it is sent: give it a while, then let go.
            let timeout = TimeAmount.nanoseconds(Int64(limits.stalledClientTimeout * 1e9))
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            stallCheck = context.eventLoop.scheduleTask(in: timeout) {
                let connection = bound.value
                guard let context = connection.context, !context.channel.isWritable else { return }
                connection.logger.warning(
                    "disconnecting a client that has left its replies unread for \(Double(timeout.nanoseconds) / 1e9) s",
                    metadata: ["peer": "\(connection.peer)"])
                connection.closeConnection(context: context)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        unreadBudget?.remove(ObjectIdentifier(self))
        stallCheck?.cancel()
        stallCheck = nil
        closing = true
        inbound = nil
        if let active {
            self.active = nil
            for handler in active.closeHandlers { handler() }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("closing connection: \(error)", metadata: ["peer": "\(peer)"])
        closeConnection(context: context)
    }

    private func closeConnection(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        inbound = nil
        context.close(promise: nil)
    }

    /// Answers `PermissionDenied` and hangs up once the answer is written.
    private func refuse(_ call: VarlinkCall) {
        logger.warning(
            "refused a call from a peer that is not allowed",
            metadata: ["peer": "\(peer)", "method": "\(call.method)"])
        inbound = nil
        closing = true
        guard let context else { return }
        let buffer = context.channel.allocator.buffer(bytes: VarlinkFraming.frame(VarlinkReply(error: .permissionDenied).json))
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: Replies

    private func makeResponder(callID: UInt64, call: VarlinkCall) -> VarlinkResponder {
        guard let context else {
            return VarlinkResponder(
                more: call.more, oneway: call.oneway, deliver: { _ in }, onClose: { $0() }, schedule: { _ in })
        }
        let eventLoop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        return VarlinkResponder(
            more: call.more, oneway: call.oneway,
            deliver: { reply in
                if eventLoop.inEventLoop {
                    bound.value.deliver(reply, callID: callID)
                } else {
                    eventLoop.execute { bound.value.deliver(reply, callID: callID) }
                }
            },
            onClose: { handler in
                eventLoop.execute {
                    let connection = bound.value
                    if connection.active?.id == callID {
                        connection.active?.closeHandlers.append(handler)
                    } else if connection.closing {
                        handler()
                    }
                }
            },
            schedule: { body in eventLoop.execute(body) },
            whenWritable: { handler in
                eventLoop.execute {
                    let connection = bound.value
                    guard connection.active?.id == callID, let context = connection.context, !connection.closing else { return }
                    if context.channel.isWritable {
                        handler()
                    } else {
                        connection.active?.writableHandlers.append(handler)
                    }
                }
            })
    }

    /// Bytes of replies written and not yet taken by the kernel.
    private func unreadBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    /// Tells the shared budget what this connection leaves unread now, and closes the
    /// connections (this one or others) it picks when all together leave too much.
    private func chargeUnread(_ context: ChannelHandlerContext) {
        guard let unreadBudget else { return }
        // Less than a socket buffer's worth is not worth the shared lock: a client that reads
        // keeps about that much in flight, reply after reply.
        let raw = unreadBytes(context)
        let unread = raw >= Self.chargedFrom ? raw : 0
        guard unread != charged else { return }
        charged = unread
        let channel = context.channel
        let evictions = unreadBudget.update(ObjectIdentifier(self), bytes: unread, peer: "\(peer)") {
            channel.close(promise: nil)
        }
        for eviction in evictions {
            logger.warning(
                "closing a client that left \(eviction.bytes >> 10) KiB of replies unread: all clients together left more than \(unreadBudget.limit >> 20) MiB",
                metadata: ["peer": "\(eviction.peer)"])
            eviction.close()
        }
    }

    private func deliver(_ reply: VarlinkReply, callID: UInt64) {
        guard let active, active.id == callID, let context else { return }
        if reply.droppable, !context.channel.isWritable {
            // The client has not read the replies before this one; a newer one will follow.
            return
        }
        var ends = !reply.continues
        if !active.oneway, !closing {
            if unreadBytes(context) > limits.maxUnreadBytes {
                logger.warning(
                    "dropping a client that left more than \(limits.maxUnreadBytes >> 20) MiB of replies unread",
                    metadata: ["peer": "\(peer)"])
                closeConnection(context: context)
                return
            }
            scratch.removeAll(keepingCapacity: true)
            reply.frame(into: &scratch)
            let size = scratch.count
            if size > limits.maxMessageSize + 1 {
                // No client takes it (the limit holds both ways): the call ends with an error instead.
                logger.error(
                    "a reply of \(size) bytes, over the \(limits.maxMessageSize) one message may hold, was replaced by an error",
                    metadata: ["peer": "\(peer)"])
                scratch.removeAll(keepingCapacity: true)
                VarlinkReply(error: oversizedReply(size)).frame(into: &scratch)
                ends = true
            }
            var buffer = context.channel.allocator.buffer(capacity: scratch.count)
            buffer.writeBytes(scratch)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            // A large reply's room is not kept for the connection's life.
            if scratch.capacity > 64 << 10 { scratch = [] }
            chargeUnread(context)
        }
        if ends {
            self.active = nil
            activity.setBusy(false)
            pump(context: context)
        }
    }
}
