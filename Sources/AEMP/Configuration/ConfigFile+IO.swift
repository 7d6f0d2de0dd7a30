#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

extension ConfigFile {
    /// Where the rc file lives:
    ///
    /// 1. `$AEMP_RC` when set and not empty (point it at a Perl `~/.perl-anyevent-mp` to share it);
    /// 2. else `$XDG_CONFIG_HOME/aemp/config.json` when `XDG_CONFIG_HOME` is an absolute path;
    /// 3. else `$HOME/.config/aemp/config.json`.
    ///
    /// Perl: `$PERL_ANYEVENT_MP_RC`, else `~/.perl-anyevent-mp`.
    ///
    /// - Parameter environment: the process environment (`AEMP_RC`, `XDG_CONFIG_HOME`, `HOME`).
    /// - Returns: the path, or `nil` if none of the variables helps.
    public static func defaultPath(environment: [String: String]) -> String? {
        if let rc = environment["AEMP_RC"], !rc.isEmpty { return rc }
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
            return (xdg.hasSuffix("/") ? xdg : xdg + "/") + "aemp/config.json"
        }
        if let home = environment["HOME"], !home.isEmpty {
            return (home.hasSuffix("/") ? home : home + "/") + ".config/aemp/config.json"
        }
        return nil
    }

    /// Reads an rc file. A missing file yields a fresh ``init()`` configuration, as in Perl.
    ///
    /// Perl: `AnyEvent::MP::Config::load`, which also starts afresh on an unreadable or malformed
    /// file; here those are errors, so a later save cannot overwrite a file that was not understood.
    ///
    /// - Parameter path: the file.
    /// - Returns: the configuration.
    /// - Throws: ``ConfigFileError/Code/unreadable`` (permissions, a directory, larger than
    ///   ``maximumFileSize``) or ``ConfigFileError/Code/malformed``.
    public static func load(path: String) throws(ConfigFileError) -> ConfigFile {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            let code = errno
            if code == ENOENT { return ConfigFile() }
            throw ConfigFileError(.unreadable, path: path, reason: "cannot open: \(errorText(code))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw ConfigFileError(.unreadable, path: path, reason: "cannot stat: \(errorText(errno))")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw ConfigFileError(.unreadable, path: path, reason: "not a regular file")
        }
        var buffer = ByteBufferAllocator().buffer(capacity: min(Int(status.st_size), maximumFileSize) + 1)
        while true {
            guard buffer.readableBytes <= maximumFileSize else {
                throw ConfigFileError(.unreadable, path: path, reason: "larger than \(maximumFileSize) bytes")
            }
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 4096) { raw in
                read(descriptor, raw.baseAddress, raw.count)
            }
            if count == 0 { break }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw ConfigFileError(.unreadable, path: path, reason: "cannot read: \(errorText(code))")
            }
        }
        return try ConfigFile(json: buffer, path: path)
    }

    /// Writes the configuration atomically: the text goes to a temporary file beside `path`
    /// (mode 0600, as the file holds secrets), is flushed to disk and renamed over `path`. Missing
    /// directories are created with mode 0700. When `path` is a symbolic link, the file it points
    /// to is replaced and the link kept.
    ///
    /// Perl: `AnyEvent::MP::Config::save` (writes `<file>~new~` and renames it; it also keeps the
    /// previous version as `<file>~`, which this port does not).
    ///
    /// - Parameter path: the file.
    /// - Throws: ``ConfigFileError/Code/unwritable`` naming the file and the reason, or
    ///   ``ConfigFileError/Code/invalidArguments`` if a value has no JSON form.
    public func save(to path: String) throws(ConfigFileError) {
        let text = try jsonText()
        let target = Self.resolvingSymbolicLink(path)
        try Self.createDirectories(for: target)
        let temporary = "\(target)~new~\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw ConfigFileError(.unwritable, path: temporary, reason: "cannot create: \(Self.errorText(errno))")
        }
        var failure: ConfigFileError?
        if fchmod(descriptor, 0o600) != 0 {
            failure = ConfigFileError(.unwritable, path: temporary, reason: "cannot set mode 0600: \(Self.errorText(errno))")
        }
        if failure == nil {
            var bytes = Array(text.utf8)[...]
            while !bytes.isEmpty {
                let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                if count < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    failure = ConfigFileError(.unwritable, path: temporary, reason: "cannot write: \(Self.errorText(code))")
                    break
                }
                bytes = bytes.dropFirst(count)
            }
        }
        if failure == nil, fsync(descriptor) != 0 {
            failure = ConfigFileError(.unwritable, path: temporary, reason: "cannot flush: \(Self.errorText(errno))")
        }
        if close(descriptor) != 0, failure == nil {
            failure = ConfigFileError(.unwritable, path: temporary, reason: "cannot close: \(Self.errorText(errno))")
        }
        if failure == nil, rename(temporary, target) != 0 {
            failure = ConfigFileError(.unwritable, path: target, reason: "cannot replace: \(Self.errorText(errno))")
        }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }

    // MARK: Helpers

    static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    /// The file a symbolic link finally points to, or `path` itself.
    private static func resolvingSymbolicLink(_ path: String) -> String {
        var status = stat()
        guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFLNK,
            let resolved = realpath(path, nil)
        else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Creates the missing directories above `path` (mode 0700).
    private static func createDirectories(for path: String) throws(ConfigFileError) {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return }
        var prefix = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { components = components.dropFirst() }
        for component in components where !component.isEmpty {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0 {
                let code = errno
                guard code == EEXIST else {
                    throw ConfigFileError(.unwritable, path: prefix, reason: "cannot create directory: \(errorText(code))")
                }
            }
        }
    }
}
