// aemp-chat: a chat room on an AEMP node network (Examples/Chat/README.md).
//
//   aemp-chat server [bind=127.0.0.1:4050] [secret=...]
//   aemp-chat client <nick> [seed=127.0.0.1:4050] [secret=...]
//
// The server node registers its room port in the global database (family "chat", key "room"). A
// client finds it there, joins with `["join", nick, <its inbox port>]`, sends every line it reads as
// `["say", nick, line]`, and prints what the room sends its inbox: `["said", nick, text]`,
// `["joined", nick]`, `["left", nick]`. The room monitors each member's inbox, so a client that
// quits or crashes is announced as gone. Every message is a plain array of strings: a Perl
// AnyEvent::MP node joins the same room (see the README).
import AEMP
import AEMPCodecs
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes a line to standard output at once (a test or a pipe reads it while we run).
func say(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(1, $0, strlen($0)) }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("aemp-chat: \(message)\n".utf8))
    exit(1)
}

let defaultSecret = "aemp-chat-example"
let defaultAddress = "127.0.0.1:4050"

var arguments = Array(CommandLine.arguments.dropFirst())
guard let role = arguments.first else {
    fail("usage: aemp-chat server [bind=host:port] [secret=s] | aemp-chat client <nick> [seed=host:port] [secret=s]")
}
arguments.removeFirst()
var settings: [String: String] = [:]
var positional: [String] = []
for argument in arguments {
    if let equals = argument.firstIndex(of: "=") {
        settings[String(argument[..<equals])] = String(argument[argument.index(after: equals)...])
    } else {
        positional.append(argument)
    }
}
let secret = settings["secret"] ?? defaultSecret
/// Node log lines (to standard error) only for warnings and errors: the chat is the output.
var logger: Logger {
    var logger = Logger(label: "aemp-chat")
    logger.logLevel = .warning
    return logger
}

switch role {
case "server":
    let address = settings["bind"] ?? defaultAddress
    let node: Node
    do {
        node = try await Node.start(
            NodeConfiguration(nodeID: "chat-server", binds: [address], seeds: [address], secret: secret), logger: logger)
    } catch {
        fail("cannot start the server node: \(error)")
    }
    let room = ChatRoom(node: node)
    room.open()
    say("chat room \(room.port) on \(node.listenerAddresses.joined(separator: " "))")
    try await node.run()  // until the node shuts down (Ctrl-C ends the process)

case "client":
    guard let nick = positional.first else { fail("client: which nick? (aemp-chat client alice)") }
    let seed = settings["seed"] ?? defaultAddress
    let node: Node
    do {
        node = try await Node.start(NodeConfiguration(binds: [], seeds: [seed], secret: secret), logger: logger)
    } catch {
        fail("cannot start the client node: \(error)")
    }
    // The room's port, from the global database.
    var room: PortID?
    for _ in 0..<50 where room == nil {
        let family = (try? await node.dbFamily("chat", timeout: .seconds(2))) ?? [:]
        room = family.keys.compactMap(PortID.init).first
        if room == nil { try await Task.sleep(for: .milliseconds(200)) }
    }
    guard let room else { fail("no chat room found through \(seed)") }
    let inbox = node.messagePort()
    node.send(room, ["join", .text(nick), .text(inbox.id.description)])
    // Lines from standard input go to the room (on a thread of its own: reading blocks); the end of
    // input leaves the room.
    Thread.detachNewThread {
        while let line = readLine() {
            node.send(room, ["say", .text(nick), .text(line)])
        }
        node.send(room, ["leave", .text(nick)])
        usleep(300_000)
        inbox.finish()
    }
    let roomGone = Task { try? await node.deathOf(room) }
    Task {
        _ = await roomGone.value
        say("* the room is gone")
        inbox.finish()
    }
    for await message in inbox.messages {
        let words = message.values.map { $0.stringValue ?? "\($0)" }
        switch words.first {
        case "said" where words.count == 3: say("\(words[1]): \(words[2])")
        case "joined" where words.count == 2: say("* \(words[1]) joined")
        case "left" where words.count == 2: say("* \(words[1]) left")
        default: say("? \(words.joined(separator: " "))")
        }
    }
    await node.shutdown(gracePeriod: .seconds(1))

default:
    fail("unknown role \(role): server or client")
}

/// The room: members by nick, each with its inbox port and the monitor that notices it go.
final class ChatRoom: Sendable {
    let node: Node
    let port: PortID
    private let members = Members()

    init(node: Node) {
        self.node = node
        self.port = node.port()
    }

    func open() {
        let node = self.node
        node.receive(port, tag: "join") { [self] _, values in
            guard values.count == 2, let nick = values[0].stringValue, let inbox = values[1].stringValue.flatMap(PortID.init)
            else { return }
            // A member whose inbox dies (quit, crash, lost connection) has left.
            let monitor = node.monitor(inbox) { [self] _ in leave(nick) }
            members.add(nick, inbox: inbox, monitor: monitor)
            broadcast(["joined", .text(nick)])
        }
        node.receive(port, tag: "say") { [self] _, values in
            guard values.count == 2, let nick = values[0].stringValue, members.contains(nick) else { return }
            broadcast(["said", .text(nick), values[1]])
        }
        node.receive(port, tag: "leave") { [self] _, values in
            guard let nick = values.first?.stringValue else { return }
            leave(nick)
        }
        node.dbReg("chat", port: port, value: "room")
    }

    private func leave(_ nick: String) {
        guard members.remove(nick) else { return }
        broadcast(["left", .text(nick)])
    }

    private func broadcast(_ message: [Value]) {
        for inbox in members.inboxes { node.send(inbox, message) }
    }
}

/// The member table; the port callbacks run on the node's loop, one at a time, but the monitors'
/// guards are kept here too.
final class Members: Sendable {
    private struct Member {
        var inbox: PortID
        var monitor: MonitorGuard
    }
    private let table = Mutex<[String: Member]>([:])

    func add(_ nick: String, inbox: PortID, monitor: MonitorGuard) {
        table.withLock { $0[nick] = Member(inbox: inbox, monitor: monitor) }
    }

    func remove(_ nick: String) -> Bool {
        let removed = table.withLock { $0.removeValue(forKey: nick) }
        removed?.monitor.cancel()
        return removed != nil
    }

    func contains(_ nick: String) -> Bool { table.withLock { $0[nick] != nil } }

    var inboxes: [PortID] { table.withLock { Array($0.values.map(\.inbox)) } }
}
