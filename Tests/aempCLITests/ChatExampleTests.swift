#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

/// Examples/Chat run as its README says: a server and two clients, as real processes.
@Suite("Example: chat", .serialized, .enabled(if: AempBinary.path != nil, "needs the built executables"))
struct ChatExampleTests {
    static var chat: String? {
        AempBinary.path.map { URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("aemp-chat").path }
    }

    static func start(_ arguments: [String], input: Bool = false) throws -> AempProcess {
        guard let chat, FileManager.default.isExecutableFile(atPath: chat) else {
            throw CLITestFailure("aemp-chat was not built next to aemp")
        }
        return try AempProcess(arguments, environment: ["PATH": "/usr/bin:/bin"], executable: chat, input: input)
    }

    @Test("two clients join, talk, and one leaving (or crashing) is announced", .timeLimit(.minutes(2)))
    func roomConversation() async throws {
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let server = try Self.start(["server", "bind=\(address)"])
        defer { server.signal(SIGKILL) }
        #expect(await server.waitUntil { $0.output.text.contains("chat room chat-server#") }, "\(server.transcript)")

        let alice = try Self.start(["client", "alice", "seed=\(address)"], input: true)
        defer { alice.signal(SIGKILL) }
        #expect(await alice.waitUntil { $0.output.text.contains("* alice joined") }, "\(alice.transcript)")
        let bob = try Self.start(["client", "bob", "seed=\(address)"], input: true)
        defer { bob.signal(SIGKILL) }
        #expect(await alice.waitUntil { $0.output.text.contains("* bob joined") }, "\(alice.transcript)")

        alice.type("hello bob")
        #expect(await bob.waitUntil { $0.output.text.contains("alice: hello bob") }, "\(bob.transcript)")
        bob.type("hi alice")
        #expect(await alice.waitUntil { $0.output.text.contains("bob: hi alice") }, "\(alice.transcript)")

        // Alice ends her input: she leaves and her client exits.
        alice.closeInput()
        #expect(await bob.waitUntil { $0.output.text.contains("* alice left") }, "\(bob.transcript)")
        #expect(await alice.finish(timeout: .seconds(10)) == 0, "\(alice.transcript)")

        // Carol crashes: the room notices her inbox died.
        let carol = try Self.start(["client", "carol", "seed=\(address)"], input: true)
        #expect(await bob.waitUntil { $0.output.text.contains("* carol joined") }, "\(bob.transcript)")
        carol.signal(SIGKILL)
        #expect(await bob.waitUntil { $0.output.text.contains("* carol left") }, "\(bob.transcript)")

        // The room goes away: the client says so and exits.
        server.signal(SIGKILL)
        #expect(await bob.waitUntil { $0.output.text.contains("* the room is gone") }, "\(bob.transcript)")
        #expect(await bob.finish(timeout: .seconds(10)) == 0, "\(bob.transcript)")
    }
}
