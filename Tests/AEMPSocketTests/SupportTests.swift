import AEMPSocket
import Testing

@Suite struct SocketErrorTests {
    @Test func equalityComparesCodesOnly() {
        #expect(SocketError(.connectionRefused, "a") == SocketError(.connectionRefused, "b"))
        #expect(SocketError(.connectionRefused) != SocketError(.timedOut))
        #expect(SocketError(.noSuchAddress).code.name == "ENXIO")
        #expect(SocketError(.timedOut, "connect to x").description == "connect to x (ETIMEDOUT)")
    }
}
