#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small blocking helpers for the system text files the resolver reads (resolv.conf, hosts,
/// services). Those files are local and small, so reading them inline is fine.
enum TextFiles {
    /// Refuse files larger than this instead of allocating without bound.
    static let maximumSize = 32 << 20

    /// The modification time of `path` in nanoseconds, or `nil` if it cannot be stat'ed.
    static func modificationTime(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Darwin)
        return Int64(info.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(info.st_mtimespec.tv_nsec)
        #else
        return Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        #endif
    }

    /// Reads a whole file as UTF-8 text (invalid bytes are repaired); `nil` if it cannot be read
    /// or exceeds ``maximumSize``.
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > maximumSize { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Splits text into lines with comments (from any of `commentCharacters`) removed and
    /// whitespace-separated fields; empty lines are skipped.
    static func fieldLines(_ text: String, commentCharacters: Set<Character> = ["#"]) -> [[Substring]] {
        var lines: [[Substring]] = []
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.prefix { !commentCharacters.contains($0) }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if !fields.isEmpty { lines.append(fields) }
        }
        return lines
    }
}

/// `read(2)`, named apart from ``TextFiles/read(_:)``.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    #if canImport(Darwin)
    Darwin.read(fd, buffer, count)
    #elseif canImport(Musl)
    Musl.read(fd, buffer, count)
    #else
    Glibc.read(fd, buffer, count)
    #endif
}
