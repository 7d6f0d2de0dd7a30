import Testing

@testable import AEMP

@Suite("Node and port identity")
struct IdentityTests {
    @Test(arguments: ["echo", "client-json", "monitor/XLIBBPuyjJ", "a", "host.example:4040", "ünïcode", "with space"])
    func validNodeIDs(_ text: String) throws {
        let id = try NodeID(validating: text)
        #expect(id.rawValue == text)
        #expect(id.description == text)
        #expect(NodeID(text) == id)
    }

    @Test(arguments: ["", "a#b", "a;b", "a\nb", "a\rb", "a\0b", String(repeating: "x", count: 1025)])
    func invalidNodeIDs(_ text: String) {
        #expect(NodeID(text) == nil)
        #expect(throws: NodeIDError.self) { try NodeID(validating: text) }
        #expect(NodeID.validate(text) != nil)
    }

    @Test func errorText() {
        #expect(NodeID.validate("a#b")?.description == "invalid node ID 'a#b': node ID contains '#'")
    }

    @Test func anonymousIDs() {
        let id = NodeID.anonymous()
        #expect(id.rawValue.hasPrefix("anon/"))
        let runiq = id.rawValue.dropFirst(5)
        #expect(runiq.count == 10)
        #expect(runiq.utf8.allSatisfy { RemoteUnique.alphabet.contains($0) })
        #expect(runiq.last.map { !$0.isLowercase } == true)
        #expect(NodeID.anonymous() != id)
        #expect(NodeID.anonymous(runiq: "XLIBBPuyjJ").rawValue == "anon/XLIBBPuyjJ")
    }

    @Test func remoteUniqueShape() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let runiq = RemoteUnique.generate(using: &generator)
            #expect(runiq.utf8.count == 10)
            let last = runiq.utf8.last!
            #expect(!(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(last))
        }
    }

    @Test func templateExpansion() throws {
        let plain = try NodeID.expand(template: "echo", profile: "p", hostname: "h", runiq: "RUNIQRUNIQ")
        #expect(plain.nodeID.rawValue == "echo" && !plain.randomised)
        let host = try NodeID.expand(template: "%n-node", profile: "p", hostname: "box", runiq: "R")
        #expect(host.nodeID.rawValue == "box-node" && !host.randomised)
        let slash = try NodeID.expand(template: "monitor/", profile: "p", hostname: "h", runiq: "XLIBBPuyjJ")
        #expect(slash.nodeID.rawValue == "monitor/XLIBBPuyjJ" && slash.randomised)
        let unique = try NodeID.expand(template: "%n/%u/%u", profile: "p", hostname: "h", runiq: "U")
        #expect(unique.nodeID.rawValue == "h/U/U" && unique.randomised)
        let profile = try NodeID.expand(template: nil, profile: "laptop", hostname: "h", runiq: "ABCDEFGHIJ")
        #expect(profile.nodeID.rawValue == "laptop/ABCDEFGHIJ" && profile.randomised)
        #expect(throws: NodeIDError.self) { try NodeID.expand(template: "bad#id", profile: "p", hostname: "h") }
        #expect(throws: NodeIDError.self) { try NodeID.expand(template: "%n", profile: "p", hostname: "") }
    }

    @Test func hostName() throws {
        let name = NodeID.hostName()
        #expect(!name.isEmpty)
        let expanded = try NodeID.expand(template: "%n", profile: "p", hostname: name)
        #expect(expanded.nodeID.rawValue == name)
    }

    @Test(arguments: [
        ("echo#DIIBdJVBPb", "echo", "DIIBdJVBPb"), ("client-json#GsJl4BY6Nb", "client-json", "GsJl4BY6Nb"),
        ("echo#", "echo", ""), ("n#a#b", "n", "a#b"), ("dc-line#H4My5nyqAb", "dc-line", "H4My5nyqAb"),
    ])
    func portIDs(_ text: String, _ node: String, _ name: String) throws {
        let port = try #require(PortID(text))
        #expect(port.node.rawValue == node)
        #expect(port.name == name)
        #expect(port.description == text)
        #expect(port.isNodePort == name.isEmpty)
        #expect(PortID(node: port.node, name: name) == port)
    }

    @Test(arguments: ["echo", "#name", "", "a;b#c"])
    func invalidPortIDs(_ text: String) {
        #expect(PortID(text) == nil)
    }

    @Test func nodePort() throws {
        let node = try NodeID(validating: "echo")
        #expect(PortID.nodePort(of: node).description == "echo#")
        #expect(PortID.nodePort(of: node).isNodePort)
    }

    @Test(arguments: [
        ("a", "b"), ("z", "aa"), ("az", "ba"), ("zz", "aaa"), ("Zz", "AAa"), ("a9", "b0"), ("Az", "Ba"), ("zZ9", "aaA0"),
        ("99", "100"), ("", "a"),
    ])
    func perlStringIncrement(_ value: String, _ next: String) {
        #expect(PerlStringIncrement.increment(value) == next)
    }

    /// Port names as in the capture: UNIQ (9 chars) + counter (`DIIBdJVBPb`, `DIIBdJVBPc`), and for a
    /// randomised node ID just the counter (`b`, `c`); spawned names RUNIQ + counter (`SvGS2aDmjTd`).
    @Test func portNamesLikePerl() {
        var generator = PortNameGenerator(localPrefix: "DIIBdJVBP", remotePrefix: "SvGS2aDmjT")
        #expect(generator.nextLocalName() == "DIIBdJVBPb")
        #expect(generator.nextLocalName() == "DIIBdJVBPc")
        #expect(generator.nextRemoteName() == "SvGS2aDmjTd")
        #expect(generator.nextCounter() == "e")
        var anonymous = PortNameGenerator(nodeIDRandomised: true, runiq: "XLIBBPuyjJ")
        #expect(anonymous.localPrefix.isEmpty)
        #expect(anonymous.nextLocalName() == "b")
        #expect(anonymous.nextLocalName() == "c")
        #expect(anonymous.nextRemoteName() == "XLIBBPuyjJd")
        let named = PortNameGenerator(nodeIDRandomised: false, runiq: "XLIBBPuyjJ")
        #expect(named.localPrefix.utf8.count == 9)
    }

    @Test func portNamesAreNeverReused() {
        var generator = PortNameGenerator(localPrefix: "", remotePrefix: "R")
        var seen = Set<String>()
        for _ in 0..<20_000 { seen.insert(generator.nextLocalName()) }
        #expect(seen.count == 20_000)
        #expect(generator.counter == "acog")  // Perl: my $s = "a"; $s++ for 1..20000; # acog
    }

    @Test func uniqShape() {
        let uniq = PortNameGenerator.makeUniq(processID: 4242, time: 1_795_305_994)
        #expect(uniq.utf8.count == 9)
        #expect(uniq.prefix(5) == PortNameGenerator.makeUniq(processID: 4242, time: 1_795_305_994).prefix(5))
        #expect(!(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(uniq.utf8.last!))
        #expect(uniq.utf8.allSatisfy { RemoteUnique.alphabet.contains($0) })
    }
}
