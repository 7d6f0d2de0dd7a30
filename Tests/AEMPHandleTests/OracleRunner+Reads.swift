import AEMPCodecs
import Foundation
import NIOCore
import Testing

@testable import AEMPHandle

extension OracleRun {
    /// Handle operations of the action table.
    func perform(_ op: String, _ action: Object, on handle: Handle, data: [UInt8]?) {
        switch op {
        case "push_read", "unshift_read":
            queueRead(action, on: handle, front: op == "unshift_read")
        case "push_write":
            if let echo = action["echo"] as? Object {
                let bytes = Oracle.bytes(echo["prefix"]) + (data ?? []) + Oracle.bytes(echo["suffix"])
                handle.pushWrite(bytes: bytes)
            } else if let type = action["type"] as? String {
                pushTypedWrite(type, action, on: handle)
            } else {
                handle.pushWrite(bytes: Oracle.bytes(action["data"]))
            }
        case "push_shutdown":
            handle.pushShutdown()
        case "set_cb":
            setCallback(action["cb"] as? String ?? "", action["spec"] as? Object, on: handle)
        case "set":
            let value = action["value"]
            switch action["opt"] as? String ?? "" {
            case "rbuf_max": handle.readBufferMax = value as? Int
            case "wbuf_max": handle.writeBufferMax = value as? Int
            case "autocork": handle.autocork = (value as? Bool) ?? ((value as? Int ?? 0) != 0)
            case "low_water_mark": handle.lowWaterMark = value as? Int ?? 0
            case "linger": handle.linger = value as? Double ?? 0
            case "read_size": handle.readSize = value as? Int ?? 2048
            default: break
            }
        case "timeout", "timeout_reset":
            let kind: HandleTimeoutKind
            switch action["kind"] as? String ?? "" {
            case "r": kind = .read
            case "w": kind = .write
            default: kind = .any
            }
            if op == "timeout" {
                handle.setTimeout(Double(action["ms"] as? Int ?? 0) / 1000, kind: kind)
            } else {
                handle.resetTimeout(kind)
            }
        case "stop_read": handle.stopRead()
        case "start_read": handle.startRead()
        case "destroy": handle.destroy()
        case "consume":
            if let count = action["n"] as? Int { handle.consume(count) } else { handle.consumeAll() }
        case "delete_rbuf": handle.consumeAll()
        default:
            Issue.record("unsupported op \(op)")
        }
    }

    func setCallback(_ name: String, _ spec: Object?, on handle: Handle) {
        switch name {
        case "on_error": handle.onError(spec.map { errorCallback($0) })
        case "on_read": handle.onRead(spec.map { plainCallback("on_read", $0) })
        case "on_eof": handle.onEof(spec.map { plainCallback("on_eof", $0) })
        case "on_drain": handle.onDrain(spec.map { plainCallback("on_drain", $0) })
        case "on_timeout": handle.onTimeout(.any, spec.map { plainCallback("on_timeout", $0) })
        case "on_rtimeout": handle.onTimeout(.read, spec.map { plainCallback("on_rtimeout", $0) })
        case "on_wtimeout": handle.onTimeout(.write, spec.map { plainCallback("on_wtimeout", $0) })
        default: Issue.record("unknown callback \(name)")
        }
    }

    static func regex(_ spec: Any?) -> HandleRegex? {
        guard let spec = spec as? Object, let pattern = spec["re"] as? String else { return nil }
        let flags = spec["flags"] as? String ?? ""
        return try? HandleRegex(pattern, dotMatchesNewlines: flags.contains("s"))
    }

    private func queueRead(_ action: Object, on handle: Handle, front: Bool) {
        let id = action["id"] as? String ?? ""
        let type = action["type"] as? String ?? ""
        let spec: Object = ["do": action["do"] ?? []]
        func done(_ fields: Object, data: [UInt8]?) -> (Handle) -> Void {
            { [unowned self] handle in
                self.depth += 1
                var event = fields
                event["ev"] = "read"
                event["id"] = id
                event["type"] = type
                self.record(event)
                self.finishCallback("read", id: id, spec: spec, handle: handle, data: data)
            }
        }
        func add<R: HandleReader>(_ reader: R, _ callback: @escaping (Handle, R.Output) -> Void) {
            if front { handle.unshiftRead(reader, callback) } else { handle.pushRead(reader, callback) }
        }
        switch type {
        case "chunk":
            add(ChunkReader(length: action["len"] as? Int ?? 0)) { handle, data in
                done(["data": self.bytes(data)], data: Array(data.readableBytesView))(handle)
            }
        case "line":
            let reader: LineReader
            if action["eol"] == nil {
                reader = LineReader()
            } else if let regex = Self.regex(action["eol"]) {
                reader = LineReader(eol: regex)
            } else {
                reader = LineReader(eol: Oracle.bytes(action["eol"]))
            }
            add(reader) { handle, line in
                done(["line": self.bytes(line.line), "eol": self.bytes(line.eol)],
                     data: Array(line.line.readableBytesView))(handle)
            }
        case "regex":
            guard let accept = Self.regex(action["accept"]) else {
                Issue.record("bad accept regex")
                return
            }
            let reader = RegexReader(
                accept: accept, reject: Self.regex(action["reject"]), skip: Self.regex(action["skip"]))
            add(reader) { handle, match in
                let groups: [Any] = match.groups.map { self.bytes($0) }
                let data = Array(match.data.readableBytesView)
                done(["data": self.bytes(match.data), "groups": groups], data: data)(handle)
            }
        case "tls_detect":
            add(TLSDetectReader()) { handle, found in
                let fields: Object = [
                    "detect": found.isTLS ? "accept" : NSNull(), "major": found.major ?? NSNull(),
                    "minor": found.minor ?? NSNull(),
                ]
                done(fields, data: nil)(handle)
            }
        case "netstring":
            add(NetstringReader()) { handle, data in
                done(["data": self.bytes(data)], data: Array(data.readableBytesView))(handle)
            }
        case "packstring":
            guard let format = try? PackFormat(action["format"] as? String ?? "") else {
                Issue.record("bad packstring format")
                return
            }
            add(PackstringReader(format: format)) { handle, data in
                done(["data": self.bytes(data)], data: Array(data.readableBytesView))(handle)
            }
        case "json":
            add(JSONReader()) { handle, value in
                done(["value": Oracle.json(value)], data: nil)(handle)
            }
        case "cbor":
            add(CBORReader()) { handle, value in
                done(["value": Oracle.json(value)], data: nil)(handle)
            }
        case "tls_autostart":
            // No callback of its own: TLS starts (or not) and the next read sees the rest.
            let mode: TLSMode = (action["tls"] as? String) == "connect" ? .connect : .accept
            if front { handle.unshiftTLSAutostart(mode) } else { handle.pushTLSAutostart(mode) }
        case "raw":
            let minimum = action["min"] as? Int ?? 0
            let take = action["take"] as? Int
            let entry: (Handle) -> Bool = { [unowned self] handle in
                let ready = handle.readBuffer.readableBytes >= minimum
                self.depth += 1
                self.record([
                    "ev": "read", "id": id, "type": "raw", "rbuf": self.bytes(handle.readBuffer), "done": ready,
                ])
                guard ready else {
                    self.depth -= 1
                    return false
                }
                let taken = Array(handle.readBuffer.readableBytesView.prefix(take ?? Int.max))
                handle.consume(taken.count)
                self.finishCallback("read", id: id, spec: spec, handle: handle, data: taken)
                return true
            }
            if front { handle.unshiftRead(raw: entry) } else { handle.pushRead(raw: entry) }
        default:
            Issue.record("unsupported read type \(type)")
        }
    }
}

extension OracleRun {
    /// `push_write (type => ...)` for the netstring, packstring, json and cbor write types.
    func pushTypedWrite(_ type: String, _ action: Object, on handle: Handle) {
        let data = ByteBuffer(bytes: Oracle.bytes(action["data"]))
        do {
            switch type {
            case "netstring":
                try handle.pushWrite(.netstring(data))
            case "packstring":
                try handle.pushWrite(.packstring(action["format"] as? String ?? "", data))
            case "json":
                try handle.pushWrite(.json(Oracle.value(action["value"])))
            case "cbor":
                try handle.pushWrite(.cbor(Oracle.value(action["value"])))
            default:
                Issue.record("unsupported write type \(type)")
            }
        } catch {
            record(["ev": "croak", "message": error.message])
        }
    }
}

extension Oracle {
    /// A decoded value in the vectors' JSON form: `{"$bytes": hex}`, `{"$tag", "$value"}`,
    /// `{"$float": "nan"|"inf"|"-inf"}`; map keys become strings.
    static func json(_ value: Value) -> Any {
        switch value {
        case .null, .undefined: return NSNull()
        case .bool(let flag): return flag
        case .int(let number): return Int(number)
        case .uint(let number): return number
        case .bignum: return "\(value)"
        case .float(let number):
            if number.isNaN { return ["$float": "nan"] as Object }
            if number.isInfinite { return ["$float": number < 0 ? "-inf" : "inf"] as Object }
            if number == number.rounded(), abs(number) < 1e15 { return Int(number) }
            return number
        case .text(let text): return text
        case .bytes(let bytes): return ["$bytes": hex(Array(bytes.readableBytesView))] as Object
        case .array(let elements): return elements.map { json($0) }
        case .map(let pairs):
            var object: Object = [:]
            for pair in pairs {
                let key: String
                switch pair.key {
                case .text(let text): key = text
                case .bytes(let bytes): key = String(decoding: bytes.readableBytesView, as: UTF8.self)
                default: key = "\(pair.key)"
                }
                object[key] = json(pair.value)
            }
            return object
        case .tagged(let tag, let inner): return ["$tag": Int(tag), "$value": json(inner)] as Object
        case .simple(let number): return ["$simple": Int(number)] as Object
        }
    }

    /// A write value from the vectors: JSON, with `{"$bytes": hex}` for a byte string.
    static func value(_ json: Any?) -> Value {
        switch json {
        case nil, is NSNull: return .null
        case let text as String: return .text(text)
        case let number as NSNumber:
            if isBoolean(number) { return .bool(number.boolValue) }
            let double = number.doubleValue
            if double == double.rounded(), abs(double) < 9e15 { return .int(number.int64Value) }
            return .float(double)
        case let list as [Any]: return .array(list.map { value($0) })
        case let object as Object:
            if let hex = object["$bytes"] as? String { return .bytes(ByteBuffer(bytes: fromHex(hex))) }
            return .map(object.sorted { $0.key < $1.key }.map { (key: Value.text($0.key), value: value($0.value)) })
        default: return .null
        }
    }

    private static func isBoolean(_ number: NSNumber) -> Bool {
        let type = String(cString: number.objCType)
        return type == "c" || type == "B"
    }
}
