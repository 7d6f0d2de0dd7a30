#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import Crypto
import Logging
import NIOCore
import Synchronization

/// `aemp sendfile`: a file sent over a DataConn (Perl: `AnyEvent::MP::DataConn::connect_to`) to the
/// `aemp::sendfile` receiver that `aemp run` registers.
///
/// The exchange on the data connection, after the rendezvous whose init data are
/// `[remote path, size]`:
/// 1. receiver → sender: `ok\n` once the target file is open, or `error <message>\n` (then it closes);
/// 2. sender → receiver: exactly `size` bytes of file data;
/// 3. receiver → sender: `done <sha256 hex>\n` once the file is written and in place, or
///    `error <message>\n`. The sender compares the checksum with its own.
///
/// The receiver writes only below its `sendfile_dir`: relative paths without `..`, and every
/// directory on the way must be a real directory (a symbolic link is refused). The data goes to a
/// temporary file beside the target that is renamed into place at the end, so a broken transfer
/// leaves nothing behind and a symbolic link at the target name is replaced, not followed.
enum SendFile {
    /// The DataConn function name of the receiver.
    static let functionName = "aemp::sendfile"
    /// The size of the reads from the file and of the writes to it.
    static let chunkSize = 256 * 1024
    /// Either side gives up after this many seconds without any data moving.
    static let idleTimeout: Double = 30

    /// A file opened for sending.
    struct LocalFile: Sendable {
        /// The open file descriptor (read only).
        var descriptor: Int32
        /// The file's size when it was opened.
        var size: UInt64
        /// The path as given.
        var path: String

        /// Opens a regular file for reading.
        ///
        /// - Throws: ``CLIError`` when it cannot be opened or is not a regular file.
        static func open(_ path: String) throws(CLIError) -> LocalFile {
            #if canImport(Darwin)
            let descriptor = Darwin.open(path, O_RDONLY | O_CLOEXEC)
            #elseif canImport(Musl)
            let descriptor = Musl.open(path, O_RDONLY | O_CLOEXEC)
            #else
            let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            #endif
            guard descriptor >= 0 else { throw CLIError("sendfile: \(path): \(SendFile.errorText())") }
            var status = stat()
            guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
                closeDescriptor(descriptor)
                throw CLIError("sendfile: \(path): not a regular file")
            }
            return LocalFile(descriptor: descriptor, size: UInt64(status.st_size), path: path)
        }

        /// Closes the descriptor.
        func closeFile() {
            closeDescriptor(descriptor)
        }
    }

    /// How far a transfer is.
    struct Progress: Sendable, Hashable {
        /// Bytes handed to the connection so far.
        var sent: UInt64
        /// The file size.
        var total: UInt64
        /// Time since the data started to flow.
        var elapsed: Duration
    }

    /// A finished, verified transfer.
    struct Outcome: Sendable, Hashable {
        /// The bytes sent.
        var bytes: UInt64
        /// The SHA-256 both sides computed, lowercase hex.
        var sha256: String
        /// How long the data took to flow and be confirmed.
        var elapsed: Duration
    }

    /// A receiver-side failure, reported back to the sender as `error <message>`.
    struct Refusal: Error, Sendable, CustomStringConvertible {
        /// Why, e.g. `a/../b: `..` is not allowed ...`.
        var message: String
        /// Creates a refusal.
        init(_ message: String) { self.message = message }
        /// The message.
        var description: String { message }
    }

    /// The text of an errno value (`strerror`).
    static func errorText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// Closes a file descriptor, ignoring errors.
    static func closeDescriptor(_ descriptor: Int32) {
        #if canImport(Darwin)
        _ = Darwin.close(descriptor)
        #elseif canImport(Musl)
        _ = Musl.close(descriptor)
        #else
        _ = Glibc.close(descriptor)
        #endif
    }

    /// Lowercase hex of a digest.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var result: [UInt8] = []
        result.reserveCapacity(64)
        for byte in bytes {
            result.append(digits[Int(byte >> 4)])
            result.append(digits[Int(byte & 15)])
        }
        return String(decoding: result, as: UTF8.self)
    }

    // MARK: Paths

    /// Splits a remote path into the components below the receiving directory.
    ///
    /// - Throws: ``Refusal`` for an empty or absolute path, a `..` component, a NUL byte, or a path
    ///   that names a directory.
    static func components(of path: String) throws(Refusal) -> [String] {
        guard !path.isEmpty else { throw Refusal("empty remote path") }
        guard !path.hasPrefix("/") else { throw Refusal("\(path): absolute paths are not allowed (paths are relative to the receiving directory)") }
        guard !path.utf8.contains(0) else { throw Refusal("remote path contains a NUL byte") }
        let parts = path.split(separator: "/").map(String.init)
        guard !parts.contains("..") else { throw Refusal("\(path): `..` is not allowed (writes stay below the receiving directory)") }
        let names = parts.filter { $0 != "." }
        guard let last = names.last, !path.hasSuffix("/"), last != "." else {
            throw Refusal("\(path): names a directory, not a file")
        }
        return names
    }

    /// Opens (creating as needed) the directory that will hold the target file, refusing symbolic
    /// links on the way. Returns its descriptor and the file name.
    static func openTargetDirectory(_ root: String, _ components: [String], path: String) throws(Refusal) -> (Int32, String) {
        var directory = openat(AT_FDCWD, root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw Refusal("the receiving directory is not usable: \(errorText())") }
        for part in components.dropLast() {
            if mkdirat(directory, part, 0o755) != 0 && errno != EEXIST {
                let text = errorText()
                closeDescriptor(directory)
                throw Refusal("\(path): cannot create directory \(part): \(text)")
            }
            let next = openat(directory, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            closeDescriptor(directory)
            guard next >= 0 else {
                if code == ELOOP || code == ENOTDIR {
                    throw Refusal("\(path): \(part) is a symbolic link or not a directory (writes stay below the receiving directory)")
                }
                throw Refusal("\(path): \(part): \(errorText(code))")
            }
            directory = next
        }
        return (directory, components[components.count - 1])
    }

    // MARK: Sender

    /// Streams `file` over `handle` to a receiver and verifies the checksum it reports.
    ///
    /// - Throws: ``CLIError`` for a refusal, a broken connection, or a checksum mismatch.
    static func send(
        _ file: LocalFile, remotePath: String, to target: NodeID, over handle: Handle,
        progress: @escaping @Sendable (Progress) -> Void
    ) async throws -> Outcome {
        try await handle.eventLoop.submit {
            handle.onError { _, _ in }
            handle.readBufferMax = 64 * 1024  // only short answer lines come back
        }.get()
        handle.setTimeout(idleTimeout)
        defer { handle.destroy() }
        let answer = try await answerLine(handle, target, expecting: "the receiver's answer")
        if answer.hasPrefix("error ") { throw CLIError("sendfile: \(target) refused: \(answer.dropFirst(6))") }
        guard answer == "ok" else { throw CLIError("sendfile: \(target) answered something unexpected: \(answer.prefix(200))") }

        let clock = ContinuousClock()
        let start = clock.now
        var hasher = SHA256()
        var sent: UInt64 = 0
        var loaded: UInt64 = 0
        // One write in flight while the next piece is read and hashed; writes stay in order.
        var inFlight: Task<Void, any Error>?
        var inFlightCount = 0
        func settle() async throws {
            guard let writing = inFlight else { return }
            inFlight = nil
            do {
                try await writing.value
            } catch {
                throw CLIError("sendfile: the data connection to \(target) broke after \(sent) bytes: \(error)")
            }
            sent += UInt64(inFlightCount)
            progress(Progress(sent: sent, total: file.size, elapsed: clock.now - start))
        }
        progress(Progress(sent: 0, total: file.size, elapsed: .zero))
        while loaded < file.size {
            let wanted = Int(min(UInt64(chunkSize), file.size - loaded))
            var buffer = handle.allocator.buffer(capacity: wanted)
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { pointer -> Int in
                while true {
                    let result = read(file.descriptor, pointer.baseAddress, wanted)
                    if result < 0 && errno == EINTR { continue }
                    return result
                }
            }
            guard count >= 0 else { throw CLIError("sendfile: \(file.path): \(errorText())") }
            guard count > 0 else { throw CLIError("sendfile: \(file.path) became shorter while it was sent") }
            buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            loaded += UInt64(count)
            try await settle()
            let piece = buffer
            inFlight = Task { try await handle.write(piece) }
            inFlightCount = count
        }
        try await settle()
        let local = hex(hasher.finalize())
        let final = try await answerLine(handle, target, expecting: "the checksum")
        if final.hasPrefix("error ") { throw CLIError("sendfile: \(target) failed: \(final.dropFirst(6))") }
        guard final.hasPrefix("done ") else { throw CLIError("sendfile: \(target) answered something unexpected: \(final.prefix(200))") }
        try verify(local: local, remote: String(final.dropFirst(5)), path: remotePath, target: target)
        return Outcome(bytes: sent, sha256: local, elapsed: clock.now - start)
    }

    /// Compares the checksums.
    ///
    /// - Throws: ``CLIError`` when they differ.
    static func verify(local: String, remote: String, path: String, target: NodeID) throws(CLIError) {
        guard local == remote else {
            throw CLIError("sendfile: checksum mismatch for \(path) on \(target): sent sha256 \(local), received \(remote)")
        }
    }

    private static func answerLine(_ handle: Handle, _ target: NodeID, expecting what: String) async throws -> String {
        do {
            return try await handle.read(.line()).string
        } catch {
            throw CLIError(
                "sendfile: \(target) closed the data connection before sending \(what) (\(error)); "
                    + "is it an `aemp run` node with a sendfile_dir?")
        }
    }

    // MARK: Receiver

    /// The `aemp::sendfile` DataConn function of `aemp run`.
    final class Receiver: Sendable {
        /// The directory files go below; `nil`: every request is refused.
        let directory: String?
        let logger: Logger
        private let counter = Atomic<Int>(0)

        /// Creates the receiver; `directory` is `sendfile_dir` (`nil`: refuse everything).
        init(directory: String?, logger: Logger) {
            self.directory = directory
            self.logger = logger
        }

        /// The DataConn receiver: runs on the handle's loop with the quiescent handle.
        func accept(_ context: FunctionContext, _ arguments: [Value], _ handle: Handle) {
            handle.onError { _, _ in }
            handle.setTimeout(SendFile.idleTimeout)
            let source = context.sourceNode
            let local = context.node.nodeID
            Task { await self.serve(handle, arguments, from: source, local: local) }
        }

        private func serve(_ handle: Handle, _ arguments: [Value], from source: NodeID, local: NodeID) async {
            do {
                try await receive(handle, arguments, from: source, local: local)
            } catch let refusal as Refusal {
                logger.notice("sendfile from \(source) refused: \(refusal.message)")
                let line = refusal.message.replacing("\n", with: " ")
                try? await handle.write("error \(line)\n")
                handle.pushShutdown()
            } catch {
                logger.notice("sendfile from \(source) failed: \(error)")
                handle.destroy()
            }
        }

        private func receive(_ handle: Handle, _ arguments: [Value], from source: NodeID, local: NodeID) async throws {
            guard let directory else {
                throw Refusal("receiving files is not enabled on node \(local) (start it with `aemp run ... sendfile_dir <directory>`)")
            }
            guard arguments.count >= 2, let path = arguments[0].stringValue, let size = arguments[1].intValue, size >= 0 else {
                throw Refusal("malformed sendfile request (expected remote path and size)")
            }
            let components = try SendFile.components(of: path)
            let (folder, name) = try SendFile.openTargetDirectory(directory, components, path: path)
            defer { closeDescriptor(folder) }
            let temporary = ".\(name).aemp-partial-\(getpid())-\(counter.add(1, ordering: .relaxed).newValue)"
            let file = openat(folder, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard file >= 0 else { throw Refusal("\(path): cannot create the file: \(errorText())") }
            var open = true
            var placed = false
            defer {
                if open { closeDescriptor(file) }
                if !placed { unlinkat(folder, temporary, 0) }
            }
            try await handle.write("ok\n")

            var hasher = SHA256()
            var remaining = UInt64(size)
            while remaining > 0 {
                let chunk = try await handle.read(AvailableBytes(limit: Int(min(remaining, UInt64(SendFile.chunkSize)))))
                try chunk.withUnsafeReadableBytes { bytes throws(Refusal) in
                    hasher.update(bufferPointer: bytes)
                    try Self.writeAll(file, bytes, path: path)
                }
                remaining -= UInt64(chunk.readableBytes)
            }
            guard fsync(file) == 0 else { throw Refusal("\(path): \(errorText())") }
            open = false
            guard close(file) == 0 else { throw Refusal("\(path): \(errorText())") }
            guard renameat(folder, temporary, folder, name) == 0 else {
                throw Refusal("\(path): cannot put the file in place: \(errorText())")
            }
            placed = true
            let checksum = SendFile.hex(hasher.finalize())
            logger.info("sendfile: received \(path) (\(size) bytes) from \(source), sha256 \(checksum)")
            try await handle.write("done \(checksum)\n")
            handle.pushShutdown()
        }

        private static func writeAll(_ file: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(Refusal) {
            var offset = 0
            while offset < bytes.count {
                let written = write(file, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw Refusal("\(path): \(errorText())")
                }
                offset += written
            }
        }
    }

    /// Reads whatever is buffered, at least one byte and at most `limit`.
    struct AvailableBytes: HandleReader, Sendable {
        /// The most bytes one read returns.
        let limit: Int

        /// Returns up to `limit` buffered bytes, or `nil` while there are none.
        mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> ByteBuffer? {
            let count = min(buffer.readableBytes, limit)
            return count > 0 ? buffer.readSlice(length: count) : nil
        }
    }

    // MARK: Progress display

    /// Shows progress: a bar redrawn in place (bytes, rate, ETA) on a terminal, otherwise a plain
    /// line at most once a second, and always the final state.
    final class ProgressDisplay: Sendable {
        private let terminal: Bool
        private let raw: @Sendable (String) -> Void
        private let line: @Sendable (String) -> Void
        private let shown = Mutex<(last: Duration?, finished: Bool)>((nil, false))

        /// Creates a display writing bars with `raw` (when `terminal`) or lines with `line`.
        init(terminal: Bool, raw: @escaping @Sendable (String) -> Void, line: @escaping @Sendable (String) -> Void) {
            self.terminal = terminal
            self.raw = raw
            self.line = line
        }

        /// Shows `progress` unless the last update was too recent (the final state always shows, once).
        func update(_ progress: Progress) {
            let done = progress.sent >= progress.total
            let interval: Duration = terminal ? .milliseconds(100) : .seconds(1)
            let show = shown.withLock { state -> Bool in
                if state.finished { return false }
                if done || state.last == nil || progress.elapsed - state.last! >= interval {
                    state.last = progress.elapsed
                    state.finished = done
                    return true
                }
                return false
            }
            guard show else { return }
            if terminal {
                raw("\r" + SendFile.bar(progress) + (done ? "\n" : ""))
            } else {
                line("sendfile: " + SendFile.summary(progress))
            }
        }
    }

    /// `  45% [=============>                ] 1.4 MiB / 3.0 MiB  12.3 MiB/s  ETA 0:01`
    static func bar(_ progress: Progress) -> String {
        let width = 30
        let fraction = progress.total == 0 ? 1.0 : Double(progress.sent) / Double(progress.total)
        let filled = Int((fraction * Double(width)).rounded(.down))
        var bar = String(repeating: "=", count: min(filled, width))
        if filled < width { bar += ">" + String(repeating: " ", count: width - filled - 1) }
        let percent = String(Int((fraction * 100).rounded(.down)))
        return String(repeating: " ", count: 4 - percent.count) + percent + "% [" + bar + "] "
            + "\(bytes(progress.sent)) / \(bytes(progress.total))  \(rate(progress))  ETA \(eta(progress))  "
    }

    /// `1.4 MiB of 3.0 MiB (45%), 12.3 MiB/s, ETA 0:01`
    static func summary(_ progress: Progress) -> String {
        let fraction = progress.total == 0 ? 1.0 : Double(progress.sent) / Double(progress.total)
        return "\(bytes(progress.sent)) of \(bytes(progress.total)) (\(Int((fraction * 100).rounded(.down)))%), "
            + "\(rate(progress)), ETA \(eta(progress))"
    }

    /// `512 B`, `1.5 KiB`, `3.0 MiB`, `2.1 GiB`.
    static func bytes(_ count: UInt64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        guard count >= 1024 else { return "\(count) B" }
        var value = Double(count) / 1024
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return "\(oneDecimal(value)) \(units[unit])"
    }

    /// The average rate so far, e.g. `12.3 MiB/s`.
    static func rate(_ progress: Progress) -> String {
        let seconds = Double(progress.elapsed.components.seconds) + Double(progress.elapsed.components.attoseconds) / 1e18
        guard seconds > 0 else { return "- B/s" }
        return bytes(UInt64(Double(progress.sent) / seconds)) + "/s"
    }

    /// The remaining time as `m:ss` or `h:mm:ss`; `-:--` while unknown.
    static func eta(_ progress: Progress) -> String {
        let seconds = Double(progress.elapsed.components.seconds) + Double(progress.elapsed.components.attoseconds) / 1e18
        guard progress.sent > 0, seconds > 0 else { return progress.sent >= progress.total ? "0:00" : "-:--" }
        let remaining = Double(progress.total - progress.sent) / (Double(progress.sent) / seconds)
        guard remaining.isFinite, remaining < 360_000 else { return "-:--" }
        let total = Int(remaining.rounded(.up))
        let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60)
        let paddedSeconds = secs < 10 ? "0\(secs)" : "\(secs)"
        if hours > 0 { return "\(hours):\(minutes < 10 ? "0" : "")\(minutes):\(paddedSeconds)" }
        return "\(minutes):\(paddedSeconds)"
    }

    /// `value` with one decimal, e.g. `1.5` (non-negative values).
    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
