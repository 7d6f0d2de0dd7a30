import AEMPCodecs

extension DatabaseClient {
    /// Handles a `g_*` message that arrived at this node's node port.
    ///
    /// Perl: the `g_*` entries of `%NODE_REQ` in `AnyEvent::MP::Kernel` and `AnyEvent::MP::Global`.
    /// A bare `["","g_slave"]` makes this node global; the other global requests (`g_slave` with a
    /// database, `g_set`, `g_upd`, `g_find`, `g_db_*`, `g_mon1`, `g_mon0`, and `g_global` from
    /// another node) go to the ``GlobalDatabase``; `g_found`, `g_reply`, `g_chg1` and `g_chg2` are
    /// answers for this node (`g_chg*` are accepted only from the current master).
    ///
    /// - Parameters:
    ///   - from: the node the message came from (Perl `$SRCNODE`).
    ///   - tag: the node-port tag, e.g. `g_reply`.
    ///   - arguments: the message elements after the tag.
    /// - Returns: actions to apply; a malformed message or a global request to a non-global node
    ///   yields a single ``DatabaseAction/malformed(from:tag:reason:)`` and changes nothing.
    public func receive(from: NodeID, tag: String, arguments: [Value]) -> [DatabaseAction] {
        dispatch(from: from, tag: tag, arguments: arguments)
        return finish()
    }

    func dispatch(from: NodeID, tag: String, arguments: [Value]) {
        switch tag {
        case "g_found": handleFound(from: from, arguments)
        case "g_reply": handleReply(from: from, arguments)
        case "g_chg1": handleFullChange(from: from, arguments)
        case "g_chg2": handleIncrementalChange(from: from, arguments)
        case "g_global":
            guard from != localNode else { return }
            knownGlobalNodes.insert(from)
            forwardToGlobal(from: from, tag: tag, arguments: arguments)
        case "g_slave":
            // A bare g_slave (or the first g_slave with a database) turns the node global.
            becomeGlobalNow()
            if !arguments.isEmpty { forwardToGlobal(from: from, tag: tag, arguments: arguments) }
        default:
            guard GlobalDatabase.handles(tag: tag) else {
                output.append(.malformed(from: from, tag: tag, reason: "not a database message"))
                return
            }
            guard globalDatabase != nil else {
                output.append(.malformed(from: from, tag: tag, reason: "this node is not a global node"))
                return
            }
            forwardToGlobal(from: from, tag: tag, arguments: arguments)
        }
    }

    func forwardToGlobal(from: NodeID, tag: String, arguments: [Value]) {
        guard globalDatabase != nil else { return }
        let effects = globalDatabase!.handle(from: from, tag: tag, arguments: arguments)
        apply(effects, from: from, tag: tag)
    }

    /// `["","g_found",node,addrs-or-null]`.
    private func handleFound(from: NodeID, _ arguments: [Value]) {
        guard let name = arguments.first?.stringValue, let node = NodeID(name) else {
            output.append(.malformed(from: from, tag: "g_found", reason: "node ID missing or invalid"))
            return
        }
        let value = arguments.count > 1 ? arguments[1] : .null
        var addresses: [String]?
        if !value.isNull {
            guard let decoded = DatabaseCoding.decodeStrings(value) else {
                output.append(.malformed(from: from, tag: "g_found", reason: "addresses are not an array of strings"))
                return
            }
            addresses = decoded
        }
        pending.removeValue(forKey: "g_find \(name)")
        output.append(.lookupResult(node: node, addresses: addresses))
    }

    /// `["","g_reply",id,result]`.
    private func handleReply(from: NodeID, _ arguments: [Value]) {
        guard let id = arguments.first?.stringValue else {
            output.append(.malformed(from: from, tag: "g_reply", reason: "request ID is not a string"))
            return
        }
        pending.removeValue(forKey: id)
        guard let kind = queries.removeValue(forKey: id) else { return }  // unknown or cancelled
        let value = arguments.count > 1 ? arguments[1] : .null
        let result: DatabaseQueryResult?
        switch kind {
        case .family: result = DatabaseCoding.decodeFamily(value).map { .family($0) }
        case .keys: result = DatabaseCoding.decodeStrings(value).map { .keys($0) }
        case .values: result = value.isNull ? .values([]) : value.arrayValue.map { .values($0) }
        }
        guard let result else {
            output.append(.malformed(from: from, tag: "g_reply", reason: "result of request \(id) has the wrong shape"))
            return
        }
        output.append(.queryResult(DatabaseRequestID(id), result))
    }

    /// `["","g_chg1",family,map-or-null]`: the full family after `g_mon1`.
    private func handleFullChange(from: NodeID, _ arguments: [Value]) {
        guard from == master else { return }  // Perl ignores g_chg* from anyone but the master.
        guard let familyName = arguments.first?.stringValue,
            let pairs = DatabaseCoding.decodePairs(arguments.count > 1 ? arguments[1] : .null)
        else {
            output.append(.malformed(from: from, tag: "g_chg1", reason: "expected family and map"))
            return
        }
        guard var copy = monitorCopies[familyName] else { return }  // no longer monitored
        var added: [String] = []
        var changed: [String] = []
        var present = Set<String>()
        present.reserveCapacity(pairs.count)
        for (key, value) in pairs {
            if copy.updateValue(value, forKey: key) == nil { added.append(key) } else if !present.contains(key) {
                changed.append(key)
            }
            present.insert(key)
        }
        var deleted: [String] = []
        for key in copy.keys where !present.contains(key) { deleted.append(key) }
        for key in deleted { copy.removeValue(forKey: key) }
        monitorCopies[familyName] = copy
        notifyMonitors(
            DatabaseChange(familyName: familyName, family: copy, added: added, changed: changed, deleted: deleted))
    }

    /// `["","g_chg2",family,set,del]`: an incremental change.
    private func handleIncrementalChange(from: NodeID, _ arguments: [Value]) {
        guard from == master else { return }
        guard let familyName = arguments.first?.stringValue,
            let pairs = DatabaseCoding.decodePairs(arguments.count > 1 ? arguments[1] : .null),
            let deleted = DatabaseCoding.decodeStrings(arguments.count > 2 ? arguments[2] : .null)
        else {
            output.append(.malformed(from: from, tag: "g_chg2", reason: "expected family, map and key list"))
            return
        }
        guard var copy = monitorCopies[familyName] else { return }
        var added: [String] = []
        var changed: [String] = []
        for (key, value) in pairs {
            if copy.updateValue(value, forKey: key) == nil { added.append(key) } else { changed.append(key) }
        }
        var actuallyDeleted: [String] = []
        for key in deleted where copy.removeValue(forKey: key) != nil { actuallyDeleted.append(key) }
        monitorCopies[familyName] = copy
        notifyMonitors(
            DatabaseChange(
                familyName: familyName, family: copy, added: added, changed: changed, deleted: actuallyDeleted))
    }

    private func notifyMonitors(_ change: DatabaseChange) {
        for id in familyMonitors[change.familyName] ?? [] { deliver(change, to: id) }
    }
}
