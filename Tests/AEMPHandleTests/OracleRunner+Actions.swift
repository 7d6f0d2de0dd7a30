import Foundation
import NIOCore

@testable import AEMPHandle

extension OracleRun {
    /// The constructor arguments of a scenario.
    func options(_ setup: Object) -> HandleOptions {
        var options = HandleOptions()
        let values = setup["options"] as? Object ?? [:]
        if let value = values["read_size"] as? Int { options.readSize = value }
        if let value = values["max_read_size"] as? Int { options.maxReadSize = value }
        if let value = values["rbuf_max"] as? Int { options.readBufferMax = value }
        if let value = values["wbuf_max"] as? Int { options.writeBufferMax = value }
        if let value = values["low_water_mark"] as? Int { options.lowWaterMark = value }
        if let value = values["autocork"] as? Bool { options.autocork = value }
        if let value = values["no_delay"] as? Bool { options.noDelay = value }
        if let value = values["linger"] as? Double { options.linger = value }
        if let value = values["timeout_ms"] as? Double { options.timeout = value / 1000 }
        if let value = values["rtimeout_ms"] as? Double { options.readTimeout = value / 1000 }
        if let value = values["wtimeout_ms"] as? Double { options.writeTimeout = value / 1000 }
        for (name, spec) in setup["callbacks"] as? Object ?? [:] {
            guard let spec = spec as? Object else { continue }
            switch name {
            case "on_error": options.onError = errorCallback(spec)
            case "on_read": options.onRead = plainCallback("on_read", spec)
            case "on_eof": options.onEof = plainCallback("on_eof", spec)
            case "on_drain": options.onDrain = plainCallback("on_drain", spec)
            case "on_timeout": options.onTimeout = plainCallback("on_timeout", spec)
            case "on_rtimeout": options.onReadTimeout = plainCallback("on_rtimeout", spec)
            case "on_wtimeout": options.onWriteTimeout = plainCallback("on_wtimeout", spec)
            default: break
            }
        }
        return options
    }

    func errorCallback(_ spec: Object) -> (Handle, HandleError) -> Void {
        { [unowned self] handle, error in
            self.depth += 1
            self.record([
                "ev": "on_error", "fatal": error.isFatal, "errno": error.code.name ?? NSNull(),
                "message": error.message, "rbuf": self.bytes(handle.readBuffer),
            ])
            self.finishCallback("on_error", id: nil, spec: spec, handle: handle, data: nil)
        }
    }

    func plainCallback(_ name: String, _ spec: Object) -> (Handle) -> Void {
        { [unowned self] handle in
            self.depth += 1
            var event: Object = ["ev": name]
            if name == "on_read" || name == "on_eof" { event["rbuf"] = self.bytes(handle.readBuffer) }
            self.record(event)
            self.finishCallback(name, id: nil, spec: spec, handle: handle, data: nil)
        }
    }

    /// Consume, the spec's own actions, then reactions; closes the callback's depth level.
    func finishCallback(_ ev: String, id: String?, spec: Object, handle: Handle, data: [UInt8]?) {
        if let consume = spec["consume"] {
            if let count = consume as? Int { handle.consume(count) } else { handle.consumeAll() }
        }
        execute(spec["do"] as? [Object] ?? [], on: handle, data: data, topLevel: false)
        react(ev, id: id, handle: handle, data: data)
        depth -= 1
    }

    func react(_ ev: String, id: String?, handle: Handle, data: [UInt8]?) {
        let key = ev + "|" + (id ?? "")
        let count = (reactionCounts[key] ?? 0) + 1
        reactionCounts[key] = count
        for reaction in reactions where reaction["ev"] as? String == ev {
            if let wanted = reaction["id"] as? String, wanted != id { continue }
            if let nth = reaction["nth"] as? Int, nth != count { continue }
            execute(reaction["do"] as? [Object] ?? [], on: handle, data: data, topLevel: false)
        }
    }

    /// Runs actions on the loop against `handle` (the callback's handle, or the one under test).
    func execute(_ actions: [Object], on handle: Handle?, data: [UInt8]?, topLevel: Bool) {
        for action in actions {
            if aborted { return }
            if let name = action["use"] as? String, let template = templates[name] {
                execute([template], on: handle, data: data, topLevel: topLevel)
                continue
            }
            let op = action["op"] as? String ?? ""
            if op == "drop" {
                self.handle = nil
                continue
            }
            if op == "mark" {
                record(["ev": "mark", "label": action["label"] as? String ?? ""])
                continue
            }
            if op == "state" {
                recordState(coarse: action["coarse"] as? Bool ?? false, handle: handle)
                continue
            }
            if op == "if" {
                let branch = data == Oracle.bytes(action["data_eq"]) ? "then" : "else"
                execute(action[branch] as? [Object] ?? [], on: handle, data: data, topLevel: topLevel)
                continue
            }
            if op == "seq" {
                execute(action["do"] as? [Object] ?? [], on: handle, data: data, topLevel: topLevel)
                continue
            }
            guard let handle else { continue }
            perform(op, action, on: handle, data: data)
        }
    }

    private func recordState(coarse: Bool, handle: Handle?) {
        var event: Object = ["ev": "state", "rbuf": NSNull()]
        if let handle, self.handle == nil, handle === self.core?.facade {
            event["handle"] = handle.isDestroyed ? "destroyed" : "alive"
        } else {
            event["handle"] = self.handle == nil ? "dropped" : (self.handle!.isDestroyed ? "destroyed" : "alive")
        }
        let target = handle ?? self.handle
        if let target, !target.isDestroyed, event["handle"] as? String == "alive" {
            event["rbuf"] = bytes(target.readBuffer)
            if coarse {
                event["wbuf_empty"] = target.writeBufferLength == 0
            } else {
                event["wbuf_len"] = target.writeBufferLength
            }
        } else if coarse {
            event["wbuf_empty"] = NSNull()
        } else {
            event["wbuf_len"] = NSNull()
        }
        record(event)
    }
}
