import Distributed
import Synchronization

#if canImport(Darwin)
import MachO
#endif

/// The distributed methods compiled into this process, found once in the Swift metadata of every
/// loaded image, so that a call naming a method by its Swift selector (`greet(name:)`, or just
/// `greet` when that is unambiguous — what a Perl caller writes) finds the mangled name of the
/// method's distributed thunk, which `executeDistributedTarget` needs.
///
/// Every `distributed func` (and `distributed var`) gets an *accessible function* record in the
/// section `swift5_accessible_functions`: 20 bytes, the first a 32-bit relative pointer to the
/// thunk's mangled name. `RemoteCallTarget.description` turns a mangled name into
/// `Module.Type.method(label:)`. The records are read through the runtime's list of registered images
/// (`swift_enumerateAllMetadataSections`, ELF) or dyld (Darwin).
struct DistributedTargets: Sendable {
    /// One distributed method of a type.
    struct Method: Sendable, Hashable {
        /// The selector: `greet(name:)`.
        let selector: String
        /// The mangled name of the distributed thunk.
        let identifier: String
    }

    /// Every distributed method of the process: (readable full name, mangled name).
    let all: [(description: String, identifier: String)]

    /// The table of the process, read on first use.
    static let process = DistributedTargets(records: readRecords())

    /// What calls looked up before, so that each call costs one dictionary lookup: by actor type,
    /// the thunk each name resolved to; by thunk, the selector callers send.
    private static let resolved = Mutex<[ObjectIdentifier: [String: Result<String, RemoteCallError>]]>([:])
    private static let selectors = Mutex<[String: String]>([:])

    /// ``resolve(_:on:)`` on the process's table, remembered per type and name.
    static func thunk(_ name: String, on type: Any.Type) -> Result<String, RemoteCallError> {
        let key = ObjectIdentifier(type)
        if let known = resolved.withLock({ $0[key]?[name] }) { return known }
        let result = process.resolve(name, on: type)
        resolved.withLock { table in
            // Bounded: names that resolve to nothing are not kept once a type has many of them.
            if case .failure = result, (table[key]?.count ?? 0) >= 256 { return }
            table[key, default: [:]][name] = result
        }
        return result
    }

    /// ``selector(of:on:)``, remembered per thunk.
    static func cachedSelector(of target: RemoteCallTarget, on type: Any.Type) -> String {
        if let known = selectors.withLock({ $0[target.identifier] }) { return known }
        let selector = selector(of: target, on: type)
        selectors.withLock { $0[target.identifier] = selector }
        return selector
    }

    init(records: [String]) {
        all = records.map { (RemoteCallTarget($0).description, $0) }
    }

    /// The type name used to match methods: `String(reflecting:)` without generic arguments
    /// (`Mod.Box<Swift.Int>` → `Mod.Box`), as `RemoteCallTarget.description` spells it.
    static func typeName(_ type: Any.Type) -> String {
        var result = ""
        var depth = 0
        for character in String(reflecting: type) {
            switch character {
            case "<": depth += 1
            case ">": depth -= 1
            default: if depth == 0 { result.append(character) }
            }
        }
        return result
    }

    /// The selector of `target` as sent on the wire: the part of its description after the actor
    /// type's name (`Mod.Greeter.greet(name:)` → `greet(name:)`); the mangled identifier when the
    /// description does not start with the type name.
    static func selector(of target: RemoteCallTarget, on type: Any.Type) -> String {
        let prefix = typeName(type) + "."
        let description = target.description
        guard description.hasPrefix(prefix), description.count > prefix.count else { return target.identifier }
        return String(description.dropFirst(prefix.count))
    }

    /// The methods of a type, by selector.
    func methods(of type: Any.Type) -> [Method] {
        let prefix = Self.typeName(type) + "."
        return all.compactMap { entry in
            guard entry.description.hasPrefix(prefix) else { return nil }
            return Method(selector: String(entry.description.dropFirst(prefix.count)), identifier: entry.identifier)
        }
    }

    /// Finds the thunk a call names.
    ///
    /// - Parameters:
    ///   - name: a full selector (`greet(name:)`), a base name (`greet`) that only one method of the
    ///     type has, or a mangled thunk name (`$s…TE`).
    ///   - type: the actor's type.
    /// - Returns: the mangled name of the thunk, or an error saying what the type offers.
    func resolve(_ name: String, on type: Any.Type) -> Result<String, RemoteCallError> {
        let methods = methods(of: type)
        if name.hasPrefix("$s"), methods.contains(where: { $0.identifier == name }) {
            return .success(name)
        }
        if let exact = methods.first(where: { $0.selector == name }) {
            return .success(exact.identifier)
        }
        let sameBase = methods.filter { Self.baseName(of: $0.selector) == name }
        if sameBase.count == 1 {
            return .success(sameBase[0].identifier)
        }
        let choices = (sameBase.isEmpty ? methods : sameBase).map(\.selector).sorted()
        let typeName = Self.typeName(type)
        let reason =
            sameBase.isEmpty
            ? "\(typeName) has no distributed method \(name.debugDescription)"
            : "\(name.debugDescription) is ambiguous on \(typeName)"
        let offer = choices.isEmpty ? "it has none" : "choose one of " + choices.joined(separator: ", ")
        return .failure(RemoteCallError(.unknownMethod, "\(reason); \(offer)"))
    }

    /// `greet(name:)` → `greet`; `name.getter` → `name`.
    static func baseName(of selector: String) -> String {
        let end = selector.firstIndex(where: { $0 == "(" || $0 == "." }) ?? selector.endIndex
        return String(selector[..<end])
    }

    /// The mangled names of every accessible function record in the loaded images.
    private static func readRecords() -> [String] {
        let collector = RecordCollector()
        #if canImport(Darwin)
        for index in 0..<_dyld_image_count() {
            guard let header = _dyld_get_image_header(index) else { continue }
            var size: UInt = 0
            let header64 = UnsafeRawPointer(header).assumingMemoryBound(to: mach_header_64.self)
            guard let start = getsectiondata(header64, "__TEXT", "__swift5_acfuncs", &size) else { continue }
            collector.collect(start: UnsafeRawPointer(start), length: Int(size))
        }
        #else
        let context = Unmanaged.passUnretained(collector).toOpaque()
        swiftEnumerateAllMetadataSections(
            { sections, context in
                // struct MetadataSections (SwiftShims/MetadataSections.h): version, reserved, next, prev,
                // then (start, length) ranges; swift5_accessible_functions is range 12 (version >= 2).
                let version = sections.load(as: UInt.self)
                guard version >= 2, let context else { return true }
                let rangeOffset = 4 * MemoryLayout<UInt>.stride + 12 * 2 * MemoryLayout<UInt>.stride
                let start = sections.load(fromByteOffset: rangeOffset, as: UInt.self)
                let length = sections.load(fromByteOffset: rangeOffset + MemoryLayout<UInt>.stride, as: Int.self)
                if let pointer = UnsafeRawPointer(bitPattern: start), length > 0 {
                    Unmanaged<RecordCollector>.fromOpaque(context).takeUnretainedValue().collect(start: pointer, length: length)
                }
                return true
            }, context)
        #endif
        return collector.names
    }
}

/// Gathers record names during the enumeration callback.
private final class RecordCollector {
    /// The size of `AccessibleFunctionRecord`: five 32-bit fields (name, generic environment, function
    /// type, function: relative pointers; flags).
    static let recordSize = 20
    var names: [String] = []

    func collect(start: UnsafeRawPointer, length: Int) {
        var offset = 0
        while offset + Self.recordSize <= length {
            let record = start + offset
            let relative = Int(record.load(as: Int32.self))
            let name = String(cString: (record + relative).assumingMemoryBound(to: CChar.self))
            if !name.isEmpty { names.append(name.hasPrefix("$s") ? name : "$s" + name) }
            offset += Self.recordSize
        }
    }
}

#if !canImport(Darwin)
/// The Swift runtime's list of registered images with their metadata sections (exported by
/// libswiftCore on ELF platforms; swift-testing discovers tests through it the same way).
@_silgen_name("swift_enumerateAllMetadataSections")
private func swiftEnumerateAllMetadataSections(
    _ body: @convention(c) (UnsafeRawPointer, UnsafeMutableRawPointer?) -> Bool,
    _ context: UnsafeMutableRawPointer?)
#endif
