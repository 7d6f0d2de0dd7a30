import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import AEMPTestSupport
import NIOCore
import Testing

/// Data connections in a node's statistics, and closed by its graceful shutdown.
@Suite("DataConn: statistics and graceful shutdown")
struct DataConnStatisticsTests {
    @Test("open data connections and their bytes are counted on both nodes; a graceful shutdown closes them", .timeLimit(.minutes(1)))
    func countedAndClosed() async throws {
        let (seed, client) = try await DataConnTests.pair(clientListens: true)
        let events = Inbox<String>()
        DataConnTests.registerEcho(on: seed, events: events)
        let handle = try await client.dataConnection(
            to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dc::echo", arguments: [])
        _ = try await events.next()
        let line = String(repeating: "z", count: 10_000)
        for _ in 0..<10 {
            try await handle.write(line + "\n")
            #expect(try await handle.read(.line()).string == "echo: " + line)
        }
        let clientStats = await client.statistics()
        #expect(clientStats.dataConnectionsOpen == 1 && clientStats.dataConnectionsOpened == 1)
        #expect(clientStats.dataBytesSent >= 100_010 && clientStats.dataBytesReceived >= 100_070, "\(clientStats)")
        let seedStats = await seed.statistics()
        #expect(seedStats.dataConnectionsOpen == 1 && seedStats.dataBytesReceived >= 100_010, "\(seedStats)")

        // The seed shuts down gracefully: its end of the data connection closes, the client reads EOF.
        let summary = await seed.shutdown(gracePeriod: .seconds(5))
        #expect(summary.dataConnectionsClosed == 1, "\(summary)")
        #expect(summary.description.contains("1 data connection closed"))
        await #expect(throws: HandleError.self) { _ = try await handle.read(.line()) }

        // Destroyed on the client side too: no longer open, the bytes stay counted.
        handle.destroy()
        try await Task.sleep(for: .milliseconds(20))
        let after = await client.statistics()
        #expect(after.dataConnectionsOpen == 0 && after.dataConnectionsOpened == 1)
        #expect(after.dataBytesSent >= clientStats.dataBytesSent)
        await client.shutdown()
    }
}
