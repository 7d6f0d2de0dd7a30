import AEMPCodecs

extension NodeCore {
    /// Whether a node-port tag belongs to the global database protocol (gproto, spec §6.3).
    func isDatabaseTag(_ tag: String) -> Bool {
        tag.hasPrefix("g_")
    }

    func databaseReceive(tag: String, _ arguments: [Value], from source: NodeID) {
        switch tag {
        case "g_found":
            guard let node = arguments.first?.stringValue.flatMap(NodeID.init) else { return }
            let addresses = arguments.dropFirst().first?.arrayValue?.compactMap(\.stringValue)
            if let addresses { knownAddresses[node] = addresses }
            let waiting = addressWaiters.removeValue(forKey: node) ?? []
            for waiter in waiting { waiter(addresses) }
        default:
            break
        }
    }

    /// Finds the listener addresses of a node (spec §7 step 2).
    func lookupAddresses(of node: NodeID, _ completion: @escaping ([String]?) -> Void) {
        if let known = knownAddresses[node] {
            completion(known)
            return
        }
        completion(nil)
    }

    /// A node's listener list (family `'l`), for DataConn.
    func lookupListeners(of node: NodeID, _ completion: @escaping ([String]?) -> Void) {
        lookupAddresses(of: node, completion)
    }

    func databaseSeedGreeted(_ node: NodeID) {}
    func databaseNodeUp(_ node: NodeID) {}
    func databaseNodeDown(_ node: NodeID) {}
    func databasePortDied(_ port: PortID) {}
    func databaseCancel(_ id: UInt64) {}
    func becomeGlobal() {}
}
