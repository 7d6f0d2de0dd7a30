import NIOCore
import NIOHTTP1

/// Writes a complete HTTP/1.1 response (head, body, end) for the small servers of `aemp run`
/// (`metrics`, `dashboard`): adds `Content-Length`, and `Connection: close` (closing after the
/// write) when the request did not keep the connection alive.
///
/// - Parameters:
///   - context: the HTTP handler's context.
///   - status: the status.
///   - headers: the other headers (content type and such).
///   - body: the body.
///   - omitBody: a `HEAD` response: the length of `body`, without it.
///   - keepAlive: whether the connection stays open.
func writeHTTPResponse(
    _ context: ChannelHandlerContext, status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8],
    omitBody: Bool, keepAlive: Bool
) {
    var headers = headers
    headers.add(name: "Content-Length", value: String(body.count))
    if !keepAlive { headers.add(name: "Connection", value: "close") }
    let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
    context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
    if !omitBody {
        let buffer = context.channel.allocator.buffer(bytes: body)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
    }
    let done = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
    if !keepAlive {
        let channel = context.channel
        done.whenComplete { _ in channel.close(promise: nil) }
    }
}
