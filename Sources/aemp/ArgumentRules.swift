import AEMP
import AEMPCodecs
import NIOCore

/// Perl bin/aemp's rule for JSON arguments.
///
/// - If the only argument starts with `[`, it is a JSON array whose elements replace all arguments
///   (`aemp '["setseeds", ["a:4040", "b:4040"]]'`).
/// - Otherwise every argument starting with `[`, `{` or `"` is one JSON value (`aemp run binds '["*:4040"]'`,
///   `aemp setsecret '"[not an array]"'`); every other argument is a plain string.
enum ArgumentRules {
    /// Whether `arguments` is the single-JSON-array form.
    static func isWholeArray(_ arguments: [String]) -> Bool {
        arguments.count == 1 && arguments[0].hasPrefix("[")
    }

    /// Applies the whole-array rule: the decoded elements.
    ///
    /// - Throws: ``CLIError`` if the text is not a JSON array.
    static func wholeArray(_ text: String) throws(CLIError) -> [Value] {
        guard case .array(let elements) = try json(text) else {
            throw CLIError("argument \(text): expected a JSON array")
        }
        return elements
    }

    /// Applies the per-argument rule to each argument.
    ///
    /// - Throws: ``CLIError`` naming the argument that is not valid JSON.
    static func values(_ arguments: [String]) throws(CLIError) -> [Value] {
        var result: [Value] = []
        result.reserveCapacity(arguments.count)
        for argument in arguments { result.append(try value(argument)) }
        return result
    }

    /// One argument: JSON if it starts with `[`, `{` or `"`, else the string itself.
    ///
    /// - Throws: ``CLIError`` if a JSON-looking argument is not valid JSON.
    static func value(_ argument: String) throws(CLIError) -> Value {
        guard let first = argument.utf8.first, first == UInt8(ascii: "[") || first == UInt8(ascii: "{") || first == UInt8(ascii: "\"")
        else { return .text(argument) }
        return try json(argument)
    }

    private static func json(_ text: String) throws(CLIError) -> Value {
        do {
            return try ConfigFile.parseJSON(ByteBuffer(string: text), path: nil)
        } catch {
            throw CLIError("argument \(text): \(error.reason)")
        }
    }

    /// A value as Perl prints it with `join " "`: strings as they are, `null` as the empty string,
    /// everything else as compact JSON.
    static func plain(_ value: Value) -> String {
        switch value {
        case .null, .undefined: ""
        case .text, .bytes: value.stringValue ?? ""
        default: (try? ConfigFile.renderJSON(value, pretty: false)) ?? value.description
        }
    }

    /// Values as compact JSON separated by commas, like a JSON array without its brackets (Perl:
    /// what `aemp cal` and `aemp eval` print).
    static func jsonList(_ values: [Value]) -> String {
        let text = (try? ConfigFile.renderJSON(.array(values), pretty: false)) ?? Value.array(values).description
        return String(text.dropFirst().dropLast())
    }
}
