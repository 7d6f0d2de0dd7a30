import Synchronization

/// A thread-safe mailbox for tests: callbacks `put` values, the test awaits them with a time limit.
public final class Inbox<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])

    /// An empty inbox.
    public init() {}

    /// Adds a value (callable from any thread).
    public func put(_ element: Element) {
        items.withLock { $0.append(element) }
    }

    /// The values received so far, without removing them.
    public var snapshot: [Element] { items.withLock { $0 } }

    /// Waits for the next value, polling every 2 ms, for at most `timeout`.
    ///
    /// - Throws: ``InboxTimeout`` when nothing arrives in time.
    public func next(within timeout: Duration = .seconds(10)) async throws -> Element {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let element = items.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return element }
            if ContinuousClock.now >= deadline { throw InboxTimeout(timeout: timeout) }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Waits for `count` values.
    public func next(_ count: Int, within timeout: Duration = .seconds(10)) async throws -> [Element] {
        var result: [Element] = []
        let deadline = ContinuousClock.now + timeout
        while result.count < count {
            result.append(try await next(within: max(deadline - ContinuousClock.now, .zero)))
        }
        return result
    }
}

/// Nothing arrived in an ``Inbox`` in time.
public struct InboxTimeout: Error, CustomStringConvertible {
    /// The time waited.
    public let timeout: Duration
    /// Creates the error.
    public init(timeout: Duration) { self.timeout = timeout }
    /// A readable explanation.
    public var description: String { "nothing arrived within \(timeout)" }
}
