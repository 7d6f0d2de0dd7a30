import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Testing

@testable import AEMPSocket

/// A real DNS server for the resolver tests: Debian's dnsmasq on 127.0.0.1 at a free high port,
/// serving only the test zone `aemp.test` (nothing is forwarded anywhere).
///
/// One instance is started lazily and shared by all tests. It runs under a tiny `sh` guardian
/// that reads the guardian's stdin (a pipe held by this process) and kills dnsmasq when that pipe
/// closes, so the server dies with the test process however it ends.
final class DNSMasqServer: Sendable {
    let port: Int

    /// The addresses of `many.aemp.test`: enough A records to push a UDP reply past 512 octets.
    static let manyAddresses = (1...40).map { "10.0.1.\($0)" }

    /// The zone, as dnsmasq options.
    static let records: [String] = [
        "--local=/aemp.test/",
        "--host-record=ready.aemp.test,127.0.0.1",
        "--host-record=v4only.aemp.test,192.0.2.1",
        "--host-record=v6only.aemp.test,2001:db8::1",
        "--host-record=both.aemp.test,192.0.2.2,2001:db8::2",
        "--host-record=plain.aemp.test,192.0.2.20,2001:db8::20",
        "--cname=alias.aemp.test,both.aemp.test",
        "--cname=alias2.aemp.test,alias.aemp.test",
        "--txt-record=txt.aemp.test,no addresses here",
        "--srv-host=_multi._tcp.aemp.test,t1.aemp.test,1001,10,60",
        "--srv-host=_multi._tcp.aemp.test,t2.aemp.test,1002,10,40",
        "--srv-host=_multi._tcp.aemp.test,t3.aemp.test,1003,20,0",
        "--host-record=t1.aemp.test,192.0.2.11",
        "--host-record=t2.aemp.test,192.0.2.12,2001:db8::12",
        "--host-record=t3.aemp.test,192.0.2.13",
        "--srv-host=_none._tcp.aemp.test",
        "--srv-host=_dup._tcp.aemp.test,both.aemp.test,2000,1,1",
        "--srv-host=_dup._tcp.aemp.test,alias.aemp.test,2000,2,1",
    ] + manyAddresses.map { "--host-record=many.aemp.test,\($0)" }

    /// The path of the dnsmasq binary, if installed.
    static let executable: String? = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/usr/local/sbin/dnsmasq"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    static var isAvailable: Bool { executable != nil }

    /// The shared instance, started on first use.
    static let shared = Task<DNSMasqServer, any Error> { try await start() }

    private init(port: Int) { self.port = port }

    /// A resolver that asks only this server.
    func resolver(
        timeout: Duration = .seconds(2),
        attempts: Int = 2,
        search: [String] = [],
        hostsFile: String? = nil,
        servicesFile: String = ServicesFile.defaultPath
    ) -> DNSResolver {
        DNSResolver(
            configuration: .init(
                nameservers: [.init(.ipv4Loopback, port: port)],
                timeout: timeout,
                attempts: attempts,
                search: search,
                hostsFile: hostsFile,
                servicesFile: servicesFile
            )
        )
    }

    /// Starts dnsmasq on a free port and waits (bounded) until it answers.
    ///
    /// - Parameter extraRecords: dnsmasq options added to ``records`` (for a test that needs records that depend
    ///   on run-time values such as an ephemeral port). The instance lives until the test process exits.
    static func start(extraRecords: [String] = []) async throws -> DNSMasqServer {
        guard let executable else { throw FixtureError("dnsmasq is not installed (apt-get install -y dnsmasq)") }
        for _ in 0..<5 {
            let port = try await freePort()
            let arguments = [
                "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--keep-in-foreground",
                "--port=\(port)", "--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=",
                "--user=\(getuid() == 0 ? "root" : NSUserName())", "--log-facility=-", "--quiet-dhcp",
            ] + records + extraRecords + ["--host-record=\(instanceName(port)),127.0.0.1"]
            // $0 is the dnsmasq path, "$@" its arguments. Background jobs get /dev/null as stdin unless
            // redirected, so the reader takes the pipe explicitly from fd 3.
            // The shell exits as soon as dnsmasq does (e.g. its port was taken), so a failed start is seen at
            // once; a background reader kills dnsmasq when this process closes the pipe.
            let script = "exec 3<&0; \"$0\" \"$@\" </dev/null & child=$!; (read _ignored <&3; kill $child 2>/dev/null) & wait $child"
            let guardian = try Guardian.spawn(["/bin/sh", "-c", script, executable] + arguments)
            let server = DNSMasqServer(port: port)
            if await server.waitUntilAnswering(while: { !guardian.hasExited }) {
                Guardian.keep(guardian)
                return server
            }
            guardian.stop()  // this attempt's dnsmasq did not come up (port taken?)
        }
        throw FixtureError("dnsmasq did not start answering on any port")
    }

    /// A name only the instance started for `port` serves, so a probe cannot be answered by another
    /// test's dnsmasq that raced for the same port.
    private static func instanceName(_ port: Int) -> String { "instance-\(getpid())-\(port).aemp.test" }

    /// Polls this instance's own name for at most about five seconds.
    private func waitUntilAnswering(while running: () -> Bool) async -> Bool {
        let probe = resolver(timeout: .milliseconds(100), attempts: 1)
        for _ in 0..<50 where running() {
            if (try? await probe.addresses(for: Self.instanceName(port))) == [.ipv4Loopback] { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// Ports already given to a dnsmasq of this process: two servers starting at once never race for one port.
    private static let handedOut = Mutex<Set<Int>>([])

    /// A port that is free for both UDP and TCP on 127.0.0.1 right now.
    static func freePort() async throws -> Int {
        // Below Linux's ephemeral range (32768-60999): a port picked from inside it could be handed to
        // another test's `bind(port: 0)` between this probe and dnsmasq's own bind.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let port = Int.random(in: 20000..<32000, using: &generator)
            guard let udp = try? await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: port).get()
            else { continue }
            let tcp = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: port).get()
            try? await tcp?.close()
            try await udp.close()
            if tcp != nil, handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw FixtureError("no free port")
    }
}

/// The `sh` process that owns dnsmasq: it waits for EOF on its stdin (a pipe whose write end only
/// this process holds), then terminates dnsmasq and waits for it.
///
/// Spawned with `posix_spawn` and an empty signal mask: the test runner's threads block signals,
/// and a child inheriting that mask could not be stopped with SIGTERM nor reap its children.
struct Guardian {
    let pid: pid_t
    let stdinWriteEnd: Int32

    static func spawn(_ argv: [String]) throws -> Guardian {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw FixtureError("pipe failed: \(errno)") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGCHLD, SIGINT, SIGHUP, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, argv[0], &actions, &attributes, &cArguments, environ)
        close(fds[0])
        guard result == 0 else {
            close(fds[1])
            throw FixtureError("posix_spawn \(argv[0]) failed: \(result)")
        }
        return Guardian(pid: pid, stdinWriteEnd: fds[1])
    }

    /// Whether the guardian (and so dnsmasq) has already exited; reaps it if so.
    var hasExited: Bool { waitpid(pid, nil, WNOHANG) != 0 }

    /// Closes the guardian's stdin and waits (at most about three seconds) for it to finish.
    func stop() {
        close(stdinWriteEnd)
        for _ in 0..<300 {
            if waitpid(pid, nil, WNOHANG) != 0 { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, nil, 0)
    }

    nonisolated(unsafe) private static var running: [Guardian] = []

    /// Keeps `guardian` until the process exits, then stops it (an exit that skips `atexit`
    /// still closes the pipe, and the guardian stops dnsmasq on its own).
    static func keep(_ guardian: Guardian) {
        if running.isEmpty {
            atexit { Guardian.running.forEach { $0.stop() } }
        }
        running.append(guardian)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Hand-made servers for what dnsmasq will not do

/// A UDP "nameserver" on 127.0.0.1 that counts the queries it receives and answers each with
/// whatever `respond` returns (nothing, garbage, several datagrams...).
final class FakeUDPNameserver: Sendable {
    let channel: any Channel
    private let received: NIOLoopBoundBox<Int>

    var port: Int { channel.localAddress?.port ?? 0 }
    var nameserver: DNSResolver.Nameserver {
        .init(channel.localAddress?.protocol == .inet6 ? .ipv6Loopback : .ipv4Loopback, port: port)
    }

    private init(channel: any Channel, received: NIOLoopBoundBox<Int>) {
        self.channel = channel
        self.received = received
    }

    /// Starts a server; `respond` maps a query to the datagrams to send back.
    static func start(
        host: String = "127.0.0.1",
        respond: @escaping @Sendable ([UInt8]) -> [[UInt8]] = { _ in [] }
    ) async throws -> FakeUDPNameserver {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let received = NIOLoopBoundBox.makeBoxSendingValue(0, eventLoop: loop)
        let channel = try await DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Responder(received: received, respond: respond))
                }
            }
            .bind(host: host, port: 0).get()
        return FakeUDPNameserver(channel: channel, received: received)
    }

    /// How many datagrams arrived so far.
    func queryCount() async throws -> Int {
        try await channel.eventLoop.submit { self.received.value }.get()
    }

    func stop() async {
        try? await channel.close()
    }

    /// A resolver that asks only this server.
    func resolver(timeout: Duration = .milliseconds(300), attempts: Int = 1, hostsFile: String? = nil) -> DNSResolver {
        DNSResolver(
            configuration: .init(nameservers: [nameserver], timeout: timeout, attempts: attempts, hostsFile: hostsFile)
        )
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let received: NIOLoopBoundBox<Int>
        let respond: @Sendable ([UInt8]) -> [[UInt8]]

        init(received: NIOLoopBoundBox<Int>, respond: @escaping @Sendable ([UInt8]) -> [[UInt8]]) {
            self.received = received
            self.respond = respond
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            received.value += 1
            for reply in respond(Array(envelope.data.readableBytesView)) {
                let out = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: reply))
                context.write(wrapOutboundOut(out), promise: nil)
            }
            context.flush()
        }
    }
}

/// Builds replies for hand-made servers.
enum FakeReply {
    /// A NOERROR reply to `query` (which must be one of ours) with A/AAAA answers for the
    /// question name, using a compression pointer to the question; `truncated` sets TC.
    static func answer(_ query: [UInt8], addresses: [IPAddress], truncated: Bool = false, id: UInt16? = nil) -> [UInt8] {
        var reply = query
        if let id {
            reply[0] = UInt8(id >> 8)
            reply[1] = UInt8(id & 0xFF)
        }
        reply[2] = 0x81 | (truncated ? 0x02 : 0)
        reply[3] = 0x80
        reply[6] = 0
        reply[7] = UInt8(addresses.count)
        for address in addresses {
            let type: UInt8 = address.family == .ipv4 ? 1 : 28
            reply += [0xC0, 12, 0, type, 0, 1, 0, 0, 0, 60, 0, UInt8(address.bytes.count)] + address.bytes
        }
        return reply
    }

    /// A NOERROR reply to `query` with one SRV record per `(priority, weight, port, target)`.
    static func srvAnswer(_ query: [UInt8], records: [(UInt16, UInt16, UInt16, String)]) throws -> [UInt8] {
        var reply = answer(query, addresses: [])
        reply[6] = UInt8(records.count >> 8)
        reply[7] = UInt8(records.count & 0xFF)
        for (priority, weight, port, target) in records {
            var name: [UInt8] = []
            try DNSMessage.appendName(target, to: &name)
            let rdata = [priority, weight, port].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } + name
            reply += [0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60, UInt8(rdata.count >> 8), UInt8(rdata.count & 0xFF)] + rdata
        }
        return reply
    }

    /// A NOERROR reply to `query` whose only answer is `question name CNAME target`.
    static func cnameAnswer(_ query: [UInt8], target: String) throws -> [UInt8] {
        var reply = answer(query, addresses: [])
        reply[7] = 1
        var name: [UInt8] = []
        try DNSMessage.appendName(target, to: &name)
        reply += [0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, UInt8(name.count >> 8), UInt8(name.count & 0xFF)] + name
        return reply
    }

    /// The query's question name (lowercased).
    static func name(of query: [UInt8]) -> String {
        (try? DNSMessage.decode(query).questions.first?.name) ?? ""
    }

    /// The query's type field (the last four octets are type and class).
    static func type(of query: [UInt8]) -> UInt16 {
        UInt16(query[query.count - 4]) << 8 | UInt16(query[query.count - 3])
    }
}

/// Writes `text` to a fresh temporary file and returns its path.
func temporaryFile(_ text: String, name: String = "file") throws -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("aemp-dns-\(name)-\(UUID().uuidString)")
    try Data(text.utf8).write(to: url)
    return url.path
}
