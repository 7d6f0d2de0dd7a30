import AEMPTestSupport
import AEMPSocket
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One `kind: "sockaddr"` case of socket-hostport.json.
struct SockaddrVector: Sendable, CustomTestStringConvertible {
    enum Port: Sendable, Equatable {
        case number(Int)
        case text(String)
        case fraction(Double)
    }

    var host: String
    var port: Port
    var hostBytes: [UInt8]
    var packed: [UInt8]
    var unpackedService: Port
    var unpackedHost: [UInt8]

    var testDescription: String { "\(host) \(port)" }

    static func port(_ value: Any?) -> Port {
        if let text = value as? String { return .text(text) }
        let number = value as? Double ?? .nan
        return number == number.rounded() ? .number(Int(number)) : .fraction(number)
    }

    static func load() throws -> [SockaddrVector] {
        try SocketVectors.cases("socket-hostport.json").filter { $0["kind"] as? String == "sockaddr" }.map { json in
            SockaddrVector(
                host: try #require(json["host"] as? String), port: port(json["port"]),
                hostBytes: SocketVectors.bytes(hex: try #require(json["host_hex"] as? String)),
                packed: SocketVectors.bytes(hex: try #require(json["packed_hex"] as? String)),
                unpackedService: port(json["unpacked_service"]),
                unpackedHost: SocketVectors.bytes(hex: try #require(json["unpacked_host_hex"] as? String)))
        }
    }
}

/// The sockaddr cases where this port deliberately differs from Perl, keyed by
/// `testDescription`, with the reason. All other cases must equal Perl byte for byte.
enum SockaddrDeviations {
    static let throwsInstead: [String: String] = [
        "127.0.0.1 number(65536)": "Perl truncates a port above 0xFFFF to 0 (with a warning); packSockaddr throws",
        "::1 number(65536)": "Perl's IPv6 path wraps 65536 to 0 silently; packSockaddr throws",
        "::1 number(-1)": "Perl's IPv6 path wraps -1 to 65535 silently; packSockaddr throws",
        "unix/ text(\"/" + String(repeating: "z", count: 108) + "\")":
            "a 109-byte path does not fit sun_path; Perl truncates it (with a warning), packSockaddr throws",
    ]
    static let notRepresentable: [String: String] = [
        "127.0.0.1 text(\"http\")": "the port parameter is an Int; Perl numifies 'http' to 0",
        "::1 text(\"80abc\")": "the port parameter is an Int; Perl numifies '80abc' to 80",
        "::1 fraction(4040.7)": "the port parameter is an Int; Perl truncates 4040.7 to 4040",
    ]
    /// Packs like Perl, but unpacks to the path that was packed.
    static let emptyPath = "unix/ text(\"\")"
    static let emptyPathReason = "an all-zero sun_path unpacks to \"\"; Perl returns 108 NULs (an abstract name)"
}

@Suite("socket-hostport.json vectors: pack_sockaddr / unpack_sockaddr")
struct SockaddrVectorTests {
    @Test("pack_sockaddr / unpack_sockaddr equal Perl", arguments: try SockaddrVector.load())
    func replay(vector: SockaddrVector) throws {
        let name = vector.testDescription
        if let reason = SockaddrDeviations.notRepresentable[name] {
            // Nothing to call: the Swift signature rules these inputs out.
            #expect(!reason.isEmpty)
            return
        }
        var address: IPAddress?
        if vector.host != "unix/" {
            let parsed = try #require(parseIP(vector.host))
            #expect(parsed.bytes == vector.hostBytes, "parse_address")
            address = parsed
        }
        let packed: [UInt8]
        do throws(SocketError) {
            switch (address, vector.port) {
            case (nil, .text(let path)): packed = try packSockaddr(unixPath: path)
            case (let address?, .number(let port)): packed = try packSockaddr(port: port, host: address)
            default: throw SocketError(.invalidArgument, "unexpected vector shape")
            }
        } catch {
            #expect(SockaddrDeviations.throwsInstead[name] != nil, "unexpected error \(error)")
            #expect(error.code == .invalidArgument)
            return
        }
        #expect(SockaddrDeviations.throwsInstead[name] == nil, "listed as throwing, but packed")
        #if os(Linux)
        #expect(SocketVectors.hex(packed) == SocketVectors.hex(vector.packed), "pack_sockaddr bytes")
        #endif
        let unpacked = try unpackSockaddr(packed)
        switch unpacked {
        case .ip(let address, let port):
            #expect(address.bytes == vector.unpackedHost, "unpack_sockaddr host")
            #expect(SockaddrVector.Port.number(port) == vector.unpackedService, "unpack_sockaddr port")
        case .unix(let path):
            #expect(vector.unpackedHost == [1, 0], "Perl's UNIX token")
            if name == SockaddrDeviations.emptyPath {
                #expect(path == "", "\(SockaddrDeviations.emptyPathReason)")
                #expect(vector.unpackedService != .text(""), "listed as a deviation but equals Perl")
            } else {
                #expect(SockaddrVector.Port.text(path) == vector.unpackedService, "unpack_sockaddr path")
            }
        }
    }

    @Test("unpack_sockaddr of an unknown family fails")
    func unknownFamily() throws {
        let cases = try SocketVectors.cases("socket-hostport.json").filter { $0["kind"] as? String == "unpack_sockaddr" }
        #expect(cases.count == 1)
        for json in cases {
            let bytes = SocketVectors.bytes(hex: try #require(json["input_hex"] as? String))
            #expect((json["error"] as? String)?.contains("unsupported protocol family 99") == true)
            #if os(Linux)
            #expect(throws: SocketError(.addressFamilyNotSupported)) { try unpackSockaddr(bytes) }
            #endif
        }
    }

    @Test("the vector file has the documented case counts")
    func caseCounts() throws {
        #expect(try SockaddrVector.load().count == 22)
    }
}

@Suite("Sockaddr: own cases")
struct SockaddrTests {
    @Test("pack then unpack round-trips for every address family")
    func roundTrip() throws {
        var generator = SeededRandom(seed: 0x5eed_50c4)
        for _ in 0..<500 {
            let count = Bool.random(using: &generator) ? 4 : 16
            let address = try #require(IPAddress(bytes: (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }))
            let port = Int.random(in: 0...65535, using: &generator)
            let packed = try packSockaddr(port: port, host: address)
            #expect(packed.count == (count == 4 ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size))
            #expect(try unpackSockaddr(packed) == .ip(address, port: port))
            // Any Collection works, not only arrays.
            #expect(try unpackSockaddr(packed[...]) == .ip(address, port: port))
        }
        for path in ["/tmp/aemp.sock", "relative", "/", "ü/ñ", String(repeating: "p", count: 104)] {
            let packed = try packSockaddr(unixPath: path)
            #expect(packed.count == MemoryLayout<sockaddr_un>.size)
            #expect(try unpackSockaddr(packed) == .unix(path: path))
        }
        #expect(try unpackSockaddr(packSockaddr(unixPath: "")) == .unix(path: ""))
    }

    #if os(Linux)
    @Test("Linux abstract names keep their leading NUL and pack short")
    func abstractNames() throws {
        let packed = try packSockaddr(unixPath: "\0aemp")
        #expect(packed == [1, 0, 0, 0x61, 0x65, 0x6d, 0x70])
        #expect(try unpackSockaddr(packed) == .unix(path: "\0aemp"))
        // A family-only sockaddr (an unbound socket) is the empty path.
        #expect(try unpackSockaddr([1, 0]) == .unix(path: ""))
        // A full-size path without NUL terminator.
        let full = String(repeating: "x", count: 108)
        #expect(try unpackSockaddr(packSockaddr(unixPath: full)) == .unix(path: full))
    }
    #endif

    @Test("pack rejects ports and paths that Perl would corrupt")
    func packErrors() {
        let address = IPAddress.ipv4Loopback
        for port in [-1, 65536, Int.max, Int.min] {
            #expect(throws: SocketError(.invalidArgument)) { try packSockaddr(port: port, host: address) }
            #expect(throws: SocketError(.invalidArgument)) { try packSockaddr(port: port, host: .ipv6Loopback) }
        }
        let capacity = MemoryLayout<sockaddr_un>.size - MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        #expect(throws: SocketError(.invalidArgument)) {
            try packSockaddr(unixPath: String(repeating: "z", count: capacity + 1))
        }
        #expect(throws: SocketError(.invalidArgument)) { try packSockaddr(unixPath: "/tmp/a\0b") }
        do {
            _ = try packSockaddr(port: 70000, host: address)
        } catch {
            #expect(error.message.contains("70000"))
        }
    }

    @Test("unpack rejects malformed input with a clear error", arguments: [
        ([] as [UInt8], "too short"),
        ([2], "too short"),
        (Array(repeating: 0, count: 129), "longer than any sockaddr"),
    ])
    func unpackLengthErrors(bytes: [UInt8], phrase: String) {
        do {
            let value = try unpackSockaddr(bytes)
            Issue.record("unpacked \(value)")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains(phrase), "\(error.message)")
        }
    }

    @Test("unpack checks the structure size of each family")
    func unpackFamilyErrors() throws {
        let v4 = try packSockaddr(port: 80, host: .ipv4Loopback)
        let v6 = try packSockaddr(port: 80, host: .ipv6Loopback)
        let unix = try packSockaddr(unixPath: "/tmp/s")
        for bad in [Array(v4.dropLast()), v4 + [0], Array(v6.dropLast()), v6 + [0], unix + [0]] {
            do {
                let value = try unpackSockaddr(bad)
                Issue.record("unpacked \(value)")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains("must be"), "\(error.message)")
            }
        }
        // An unknown family.
        var unknown = v4
        let familyOffset = MemoryLayout<sockaddr_storage>.offset(of: \.ss_family)!
        unknown[familyOffset] = 99
        #expect(throws: SocketError(.addressFamilyNotSupported)) { try unpackSockaddr(unknown) }
        // A Unix path that is not UTF-8.
        var latin1 = unix
        latin1[MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!] = 0xe9
        do {
            let value = try unpackSockaddr(latin1)
            Issue.record("unpacked \(value)")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("UTF-8"))
        }
    }

    /// The kernel is the final judge of the layout: bind the packed bytes, then read them back
    /// with getsockname.
    @Test("the kernel accepts packed addresses and getsockname unpacks", arguments: [
        IPAddress.ipv4Loopback, IPAddress.ipv6Loopback,
    ])
    func kernelRoundTrip(address: IPAddress) throws {
        let family = address.family == .ipv4 ? AF_INET : AF_INET6
        #if canImport(Glibc)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(family, SOCK_STREAM, 0)
        #endif
        try #require(fd >= 0)
        defer { close(fd) }
        let packed = try packSockaddr(port: 0, host: address)
        let bound = packed.withUnsafeBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        if bound != 0, address.family == .ipv6, errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT {
            return  // no IPv6 loopback on this machine
        }
        try #require(bound == 0, "bind failed: errno \(errno)")
        var storage = [UInt8](repeating: 0, count: MemoryLayout<sockaddr_storage>.size)
        var length = socklen_t(storage.count)
        let result = storage.withUnsafeMutableBytes { raw in
            getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        try #require(result == 0)
        guard case .ip(let host, let port) = try unpackSockaddr(storage.prefix(Int(length))) else {
            Issue.record("not an IP sockaddr")
            return
        }
        #expect(host == address)
        #expect(port > 0)
    }

    @Test("the kernel accepts a packed Unix path")
    func kernelUnixRoundTrip() throws {
        let path = "/tmp/aemp-sockaddr-test-\(getpid()).sock"
        unlink(path)
        defer { unlink(path) }
        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        try #require(fd >= 0)
        defer { close(fd) }
        let packed = try packSockaddr(unixPath: path)
        let bound = packed.withUnsafeBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        try #require(bound == 0, "bind failed: errno \(errno)")
        var storage = [UInt8](repeating: 0, count: MemoryLayout<sockaddr_storage>.size)
        var length = socklen_t(storage.count)
        let result = storage.withUnsafeMutableBytes { raw in
            getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        try #require(result == 0)
        #expect(try unpackSockaddr(storage.prefix(Int(length))) == .unix(path: path))
    }
}
