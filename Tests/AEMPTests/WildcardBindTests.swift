import Testing

@testable import AEMP

/// What a `*` bind publishes as the node's listeners (the `'l` family): what Perl's kernel publishes,
/// so that a peer on another host never dials its own loopback looking for us. The real thing, nodes
/// on several hosts, is `MultiHostTests` (aempCLITests), in network namespaces.
@Suite("Wildcard binds: published addresses")
struct WildcardBindTests {
    @Test(
        "interface addresses → published addresses",
        arguments: [
            // A host on a network: loopback and link-local stay private.
            (["127.0.0.1", "::1", "192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1"], ["192.0.2.2", "fd00::2"]),
            // Two hosts' worth of variety: every 127/8 address, multicast and unspecified are left out;
            // global, unique-local and site-local IPv6 are published; IPv4 first.
            (
                ["2001:db8::5", "127.0.1.1", "10.77.0.1", "127.0.0.1", "fec0::1", "ff02::1", "::"],
                ["10.77.0.1", "2001:db8::5", "fec0::1"]
            ),
            // A host with loopback only still reaches itself.
            (["::1", "127.0.0.1"], ["127.0.0.1", "::1"]),
            // Duplicates (an address on two interfaces) appear once, in address order.
            (["10.0.0.2", "10.0.0.2", "10.0.0.1", "172.16.0.1"], ["10.0.0.1", "10.0.0.2", "172.16.0.1"]),
            // Texts that are no address (e.g. with a zone) are skipped; nothing at all publishes nothing.
            (["fe80::1%eth0", "not an address"], []),
            ([], []),
        ] as [([String], [String])])
    func published(interfaces: [String], expected: [String]) {
        #expect(NodeCore.publishableAddresses(interfaces) == expected)
    }

    @Test("this machine's wildcard addresses never include loopback unless that is all there is")
    func thisMachine() {
        let published = NodeCore.localAddresses()
        let loopback = published.filter { $0.hasPrefix("127.") || $0 == "::1" }
        #expect(loopback.isEmpty || loopback.count == published.count, "\(published)")
        #expect(!published.contains { $0.lowercased().hasPrefix("fe80:") })
    }
}
