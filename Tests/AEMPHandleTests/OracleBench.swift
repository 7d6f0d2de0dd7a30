import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The socket side of the oracle bench: a connected pair, and the peer end driven by the harness.
enum Bench {
    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    /// A connected stream pair: AF_UNIX socketpair, or 127.0.0.1 TCP (peer with TCP_NODELAY).
    static func makePair(tcp: Bool) throws -> (handle: Int32, peer: Int32) {
        if !tcp {
            var fds: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
                throw SetupError(description: "socketpair: \(errno)")
            }
            try nonBlocking(fds[1])
            return (fds[0], fds[1])
        }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        guard bound == 0, listen(listener, 1) == 0 else { throw SetupError(description: "listen: \(errno)") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) }
        }
        guard connected == 0 else { throw SetupError(description: "connect: \(errno)") }
        let server = accept(listener, nil, nil)
        guard server >= 0 else { throw SetupError(description: "accept: \(errno)") }
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        try nonBlocking(client)
        return (server, client)
    }

    static func nonBlocking(_ fd: Int32) throws {
        let flags = fcntl(fd, F_GETFL)
        guard fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw SetupError(description: "fcntl: \(errno)")
        }
    }

    static func errnoName(_ code: Int32) -> String {
        switch code {
        case EPIPE: return "EPIPE"
        case ECONNRESET: return "ECONNRESET"
        default: return "E\(code)"
        }
    }

    /// Writes everything, waiting for room; returns the errno of a failure, or `ETIMEDOUT` when the
    /// reader took nothing for 10 seconds (a slow but progressing reader is waited for).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        var offset = 0
        var deadline = Date().addingTimeInterval(10)
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written > 0 {
                offset += written
                deadline = Date().addingTimeInterval(10)
            } else if written < 0, errno == EAGAIN || errno == EINTR {
                guard Date() < deadline else { return ETIMEDOUT }
                var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&entry, 1, 50)
            } else {
                return errno
            }
        }
        return nil
    }

    /// Reads until `count` bytes or EOF arrived, for at most `seconds`; returns the bytes and whether EOF was seen.
    static func readUntil(_ fd: Int32, count: Int, seconds: Double) -> (bytes: [UInt8], eof: Bool) {
        var out: [UInt8] = []
        var eof = false
        let deadline = Date().addingTimeInterval(seconds)
        while out.count < count, !eof, Date() < deadline {
            let (data, sawEOF) = readAvailable(fd)
            out += data
            eof = sawEOF
            if data.isEmpty, !eof { usleep(1000) }
        }
        return (out, eof)
    }

    /// Reads everything available now; returns the bytes and whether EOF was seen.
    static func readAvailable(_ fd: Int32) -> (bytes: [UInt8], eof: Bool) {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, 65536) }
            if count > 0 {
                out.append(contentsOf: chunk[0..<count])
            } else if count == 0 {
                return (out, true)
            } else if errno == EINTR {
                continue
            } else {
                return (out, false)
            }
        }
    }

    /// Polls `fd` without waiting.
    static func ready(_ fd: Int32, events: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents != 0
    }
}
