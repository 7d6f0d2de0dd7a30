import AEMPCodecs
import NIOCore

extension ConfigFile {
    /// The largest rc file that is read (1 MiB); a certificate chain fits many times over.
    public static let maximumFileSize = 1 << 20

    /// Parses an rc file's JSON text.
    ///
    /// Perl reads the file with JSON::XS's `relaxed` option (comments and trailing commas allowed);
    /// this parser accepts strict JSON only and says where the text goes wrong.
    ///
    /// - Parameters:
    ///   - json: the file's bytes.
    ///   - path: the file name, used in error messages.
    /// - Throws: ``ConfigFileError/Code/malformed`` if the text is not JSON, the top level is not an
    ///   object, `profile` is not an object of objects, or there is more than one JSON text.
    public init(json: ByteBuffer, path: String? = nil) throws(ConfigFileError) {
        let root = try Self.parseJSON(json, path: path)
        guard case .map(let pairs) = root else {
            throw ConfigFileError(.malformed, path: path, reason: "expected a JSON object at the top level")
        }
        var global = ProfileSettings()
        var profiles: [NamedProfile] = []
        for (key, value) in pairs {
            let key = key.stringValue ?? ""
            guard key == "profile" else {
                global[key] = value
                continue
            }
            guard case .map(let named) = value else {
                throw ConfigFileError(.malformed, path: path, reason: "\"profile\" must be a JSON object of profiles")
            }
            for (name, settings) in named {
                let name = name.stringValue ?? ""
                guard case .map(let entries) = settings else {
                    throw ConfigFileError(.malformed, path: path, reason: "profile \"\(name)\" must be a JSON object")
                }
                profiles.append(NamedProfile(name: name, settings: ProfileSettings(entries.map { ($0.key.stringValue ?? "", $0.value) })))
            }
        }
        self.init(global: global, profiles: profiles)
    }

    /// Parses an rc file's JSON text.
    ///
    /// - Parameters:
    ///   - json: the text.
    ///   - path: the file name, used in error messages.
    /// - Throws: ``ConfigFileError/Code/malformed`` as ``init(json:path:)-(ByteBuffer,_)``.
    public init(json: String, path: String? = nil) throws(ConfigFileError) {
        try self.init(json: ByteBuffer(string: json), path: path)
    }

    /// The whole configuration as one JSON value: the global settings, then `profile`.
    public var jsonValue: Value {
        var pairs = global.entries.map { (key: Value.text($0.key), value: $0.value) }
        if !profiles.isEmpty {
            let named = profiles.map { profile in
                (key: Value.text(profile.name), value: Value.map(profile.settings.entries.map { (.text($0.key), $0.value) }))
            }
            pairs.append((.text("profile"), .map(named)))
        }
        return .map(pairs)
    }

    /// The file text: pretty-printed JSON with a final newline, indented like JSON::XS's `pretty`.
    ///
    /// - Returns: the text.
    /// - Throws: ``ConfigFileError/Code/invalidArguments`` if a value cannot be written as JSON
    ///   (a non-finite number, a CBOR tag).
    public func jsonText() throws(ConfigFileError) -> String {
        try Self.renderJSON(jsonValue, pretty: true) + "\n"
    }

    // MARK: JSON helpers shared with the command line

    /// Decodes exactly one JSON text (any value, not only objects); non-finite number words are refused.
    ///
    /// - Parameters:
    ///   - bytes: the text.
    ///   - path: the file name or argument label used in error messages.
    /// - Returns: the value.
    /// - Throws: ``ConfigFileError/Code/malformed`` with the decoder's reason and byte offset.
    public static func parseJSON(_ bytes: ByteBuffer, path: String?) throws(ConfigFileError) -> Value {
        var buffer = bytes
        var decoder = JSONStreamDecoder(options: .init(allowScalars: true, allowNonFiniteNumbers: false, maxDepth: 64))
        do {
            guard let value = try decoder.finish(from: &buffer) else {
                throw ConfigFileError(.malformed, path: path, reason: "empty, expected JSON text")
            }
            if try decoder.finish(from: &buffer) != nil {
                throw ConfigFileError(.malformed, path: path, reason: "more than one JSON text")
            }
            return value
        } catch let error as JSONError {
            throw ConfigFileError(.malformed, path: path, reason: "not valid JSON: \(error.message) (at byte \(error.offset))")
        } catch let error as ConfigFileError {
            throw error
        } catch {
            throw ConfigFileError(.malformed, path: path, reason: "not valid JSON: \(error)")
        }
    }

    /// Writes a value as JSON text: compact (`{"a":[1,2]}`) or pretty, indented by three spaces
    /// with `"key" : value`, as JSON::XS's `pretty` option writes the Perl rc file.
    ///
    /// - Parameters:
    ///   - value: the value.
    ///   - pretty: whether to indent.
    /// - Returns: the JSON text (no final newline).
    /// - Throws: ``ConfigFileError/Code/invalidArguments`` if the value has no JSON form.
    public static func renderJSON(_ value: Value, pretty: Bool) throws(ConfigFileError) -> String {
        var buffer = ByteBuffer()
        do {
            if pretty {
                try writePretty(value, indent: 0, to: &buffer)
            } else {
                try buffer.writeJSON(value, options: .init(byteStrings: .utf8OrLatin1))
            }
        } catch {
            throw ConfigFileError(.invalidArguments, reason: "value cannot be written as JSON: \(error.message)")
        }
        return String(buffer: buffer)
    }

    private static func writePretty(_ value: Value, indent: Int, to buffer: inout ByteBuffer) throws(JSONError) {
        let options = JSONWriterOptions(byteStrings: .utf8OrLatin1)
        switch value {
        case .array(let elements) where !elements.isEmpty:
            buffer.writeString("[\n")
            for (index, element) in elements.enumerated() {
                buffer.writeRepeatingByte(UInt8(ascii: " "), count: indent + 3)
                try writePretty(element, indent: indent + 3, to: &buffer)
                buffer.writeString(index == elements.count - 1 ? "\n" : ",\n")
            }
            buffer.writeRepeatingByte(UInt8(ascii: " "), count: indent)
            buffer.writeString("]")
        case .map(let pairs) where !pairs.isEmpty:
            buffer.writeString("{\n")
            for (index, pair) in pairs.enumerated() {
                buffer.writeRepeatingByte(UInt8(ascii: " "), count: indent + 3)
                try buffer.writeJSON(pair.key, options: options)
                buffer.writeString(" : ")
                try writePretty(pair.value, indent: indent + 3, to: &buffer)
                buffer.writeString(index == pairs.count - 1 ? "\n" : ",\n")
            }
            buffer.writeRepeatingByte(UInt8(ascii: " "), count: indent)
            buffer.writeString("}")
        default:
            try buffer.writeJSON(value, options: options)
        }
    }
}
