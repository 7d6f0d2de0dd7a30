import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import AEMPTestSupport
import Testing

/// Spec §9.2 step 4: the first dial that fails ends the rendezvous with its error.
@Suite("DataConn: a refused dial")
struct DataConnRefusedDialTests {
    @Test func refusedDialEndsTheRendezvousWithItsError() async throws {
        let seed = try await DataConnScenarioTests.globalNode("dc-refuse-seed")
        let secret = DataConnScenarioTests.secret
        let initiator = try await Node.start(
            NodeConfiguration(nodeID: "dc-refuse-initiator", binds: ["127.0.0.1:0"], seeds: seed.listenerAddresses, secret: secret))
        let target = try await Node.start(
            NodeConfiguration(nodeID: "dc-refuse-target", binds: ["127.0.0.1:0"], seeds: seed.listenerAddresses, secret: secret))
        target.registerDataConnFunction("dc::never") { _, _, handle in handle.destroy() }
        // The target publishes a listener nobody listens on (port 1 on loopback refuses).
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            target.dbSet("'l", target.nodeID.rawValue, ["127.0.0.1:1"])
            let listeners = try await seed.dbFamily("'l", timeout: .seconds(2))
            // The target must also be able to find the initiator (its listeners reached the seed).
            if listeners[target.nodeID.rawValue] == ["127.0.0.1:1"], listeners[initiator.nodeID.rawValue] != nil { break }
            if ContinuousClock.now > deadline { throw InboxTimeout(timeout: .seconds(10)) }
            try await Task.sleep(for: .milliseconds(20))
        }
        // The target dials the initiator (it finds the real address), so the message connection is up
        // while the initiator knows the target only by its (refusing) published listener.
        let inbox = Inbox<[Value]>()
        let port = initiator.port { _, message in inbox.put(message) }
        target.send(port, "hello")
        #expect(try await inbox.next() == ["hello"])

        let started = ContinuousClock.now
        do {
            _ = try await initiator.dataConnection(
                to: target.nodeID.rawValue, timeout: .seconds(8), function: "dc::never")
            Issue.record("the rendezvous succeeded through a refusing address")
        } catch {
            #expect(error.message != nil)
            #expect(error.message?.contains("unable to establish") == false)
            #expect(error.message?.lowercased().contains("refused") == true, "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(8))
        await target.shutdown()
        await initiator.shutdown()
        await seed.shutdown()
    }
}
