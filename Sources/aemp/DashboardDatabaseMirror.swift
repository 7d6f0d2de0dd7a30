import AEMP
import Synchronization

/// The dashboard's copy of the global database: a `db_mon` (``AEMP/Node/dbMonitor(_:_:)``, which a
/// Perl node's master answers too) of each family the survey found, so the page follows every change
/// without the families being read again and again. At most ``familyLimit`` families.
final class DashboardDatabaseMirror: Sendable {
    /// Families followed at most.
    static let familyLimit = 32

    private struct State {
        var watched: Set<String> = []
        var monitors: [String: MonitorGuard] = [:]
        var families: [String: DatabaseFamily] = [:]
        var version = 0
        var stopped = false
    }

    private let node: Node
    private let state = Mutex(State())

    init(node: Node) {
        self.node = node
    }

    /// Follows exactly `names` (the first ``familyLimit`` in order): new ones get a monitor, the
    /// others' monitors are cancelled and their contents dropped.
    func watch(_ names: [String]) {
        let wanted = Set(names.prefix(Self.familyLimit))
        let (added, removed) = state.withLock { state -> ([String], [MonitorGuard]) in
            guard !state.stopped else { return ([], []) }
            let added = wanted.subtracting(state.watched).sorted()
            let gone = state.watched.subtracting(wanted)
            state.watched = wanted
            var removed: [MonitorGuard] = []
            for name in gone {
                if let monitor = state.monitors.removeValue(forKey: name) { removed.append(monitor) }
                if state.families.removeValue(forKey: name) != nil { state.version += 1 }
            }
            return (added, removed)
        }
        for monitor in removed { monitor.cancel() }
        for name in added {
            let monitor = node.dbMonitor(name) { [weak self] change in self?.update(change) }
            let keep = state.withLock { state -> Bool in
                guard state.watched.contains(name), !state.stopped else { return false }
                state.monitors[name] = monitor
                return true
            }
            if !keep { monitor.cancel() }
        }
    }

    private func update(_ change: DatabaseChange) {
        state.withLock { state in
            guard state.watched.contains(change.familyName) else { return }
            state.families[change.familyName] = change.family
            state.version += 1
        }
    }

    /// The families followed, and a number that changes with them.
    var contents: (version: Int, families: [String: DatabaseFamily]) {
        state.withLock { ($0.version, $0.families) }
    }

    /// Cancels every monitor.
    func stop() {
        let monitors = state.withLock { state -> [MonitorGuard] in
            state.stopped = true
            defer { state.monitors.removeAll() }
            return Array(state.monitors.values)
        }
        for monitor in monitors { monitor.cancel() }
    }
}
