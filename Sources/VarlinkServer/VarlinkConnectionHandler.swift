import DequeModule
import Logging
import NIOCore
import Varlink

/// Splits the inbound byte stream at NUL bytes; refuses a message longer than the limit.
final class NULFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxMessageSize: Int
    private var scanned = 0

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        let searchStart = view.index(view.startIndex, offsetBy: min(scanned, view.count))
        guard let nul = view[searchStart...].firstIndex(of: 0) else {
            scanned = view.count
            if view.count > maxMessageSize { throw FramingError.messageTooLarge(limit: maxMessageSize) }
            return .needMoreData
        }
        let length = nul - view.startIndex
        let message = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        scanned = 0
        context.fireChannelRead(wrapInboundOut(message))
        return .continue
    }
}

/// One client connection: decodes calls, answers them strictly in order, and keeps a streaming
/// call open until its final reply.
///
/// Lives on its channel's event loop. Handlers may answer from any thread; replies hop here.
final class VarlinkConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Pending {
        case call(VarlinkCall)
        case invalid(VarlinkError)
    }

    private struct ActiveCall {
        let id: UInt64
        let oneway: Bool
        var closeHandlers: [@Sendable () -> Void] = []
        var writableHandlers: [@Sendable () -> Void] = []
    }

    private let service: VarlinkService
    private let peer: VarlinkPeer
    private let authorized: Bool
    private let logger: Logger
    private let maxPipelined: Int
    private var pending: Deque<Pending> = []
    private var active: ActiveCall?
    private var nextCallID: UInt64 = 0
    private var context: ChannelHandlerContext?
    private var closing = false
    private var scratch: [UInt8] = []
    private let stalledClientTimeout: TimeAmount
    /// Closes the connection if its output stays backed up for `stalledClientTimeout`.
    private var stallCheck: Scheduled<Void>?

    private let activity: ConnectionActivity

    init(
        service: VarlinkService, peer: VarlinkPeer, authorized: Bool, logger: Logger, maxPipelined: Int = 64,
        stalledClientTimeout: Double = 30, activity: ConnectionActivity = ConnectionActivity()
    ) {
        self.activity = activity
        self.service = service
        self.peer = peer
        self.authorized = authorized
        self.logger = logger
        self.maxPipelined = maxPipelined
        self.stalledClientTimeout = .nanoseconds(Int64(stalledClientTimeout * 1e9))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let buffer = unwrapInboundIn(data)
        let json: JSON
        do {
            json = try buffer.withUnsafeReadableBytes { raw in try JSON.parse(raw) }
        } catch {
            // The stream can no longer be trusted to be in step: say why, then hang up.
            logger.debug("closing connection: \(error)", metadata: ["peer": "\(peer)"])
            closeConnection(context: context)
            return
        }
        do {
            pending.append(.call(try VarlinkCall(json: json)))
        } catch {
            pending.append(.invalid(error))
        }
        if pending.count > maxPipelined {
            logger.debug("closing connection: more than \(maxPipelined) pipelined calls", metadata: ["peer": "\(peer)"])
            closeConnection(context: context)
            return
        }
        startNextCall()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
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
            if var active, !active.writableHandlers.isEmpty {
                let handlers = active.writableHandlers
                active.writableHandlers = []
                self.active = active
                for handler in handlers { handler() }
            }
        } else if stallCheck == nil {
            // The client has stopped reading what it is sent: give it a while, then let go.
            let timeout = stalledClientTimeout
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
        stallCheck?.cancel()
        stallCheck = nil
        closing = true
        pending.removeAll()
        if let active {
            self.active = nil
            for handler in active.closeHandlers { handler() }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let framing = error as? FramingError {
            logger.debug("closing connection: \(framing)", metadata: ["peer": "\(peer)"])
        } else if let decoding = error as? ByteToMessageDecoderError {
            logger.debug("closing connection: \(decoding)", metadata: ["peer": "\(peer)"])
        }
        closeConnection(context: context)
    }

    private func closeConnection(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        context.close(promise: nil)
    }

    private func startNextCall() {
        while active == nil, !closing, let next = pending.popFirst() {
            nextCallID &+= 1
            let id = nextCallID
            switch next {
            case .invalid(let error):
                active = ActiveCall(id: id, oneway: false)
                deliver(VarlinkReply(error: error), callID: id)
            case .call(let call):
                guard authorized else {
                    refuse(call)
                    return
                }
                active = ActiveCall(id: id, oneway: call.oneway)
                activity.setBusy(true)
                service.dispatch(call, peer: peer, responder: makeResponder(callID: id, call: call))
            }
        }
    }

    /// Answers `PermissionDenied` and hangs up once the answer is written.
    private func refuse(_ call: VarlinkCall) {
        logger.warning(
            "refused a call from a peer that is not allowed",
            metadata: ["peer": "\(peer)", "method": "\(call.method)"])
        pending.removeAll()
        closing = true
        guard let context else { return }
        let buffer = context.channel.allocator.buffer(bytes: VarlinkFraming.frame(VarlinkReply(error: .permissionDenied).json))
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

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

    private func deliver(_ reply: VarlinkReply, callID: UInt64) {
        guard let active, active.id == callID else { return }
        if reply.droppable, let context, !context.channel.isWritable {
            // The client has not read the replies before this one; a newer one will follow.
            return
        }
        if !active.oneway, let context, !closing {
            scratch.removeAll(keepingCapacity: true)
            VarlinkFraming.frame(reply.json, into: &scratch)
            var buffer = context.channel.allocator.buffer(capacity: scratch.count)
            buffer.writeBytes(scratch)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if !reply.continues {
            self.active = nil
            activity.setBusy(false)
            startNextCall()
        }
    }
}
