import Chat
import Engine
import Foundation

/// Which engine a request runs on and under which adapter set, from `model`, `adapters`
/// (Yanyi's `[{"name", "scale"}]`) and `lora` (llama.cpp's `[{"id", "scale"}]`).
struct Target {
    /// Resolved base folder.
    var base: String
    /// A persona's template, stop rule and sampling; nil for a plain base (the `plain` template).
    var persona: Persona?
    /// The engine's adapter set: the persona's, then the request's (a second mention of one
    /// folder changes its scale), scale-0 entries left out (they change nothing).
    var adapters: [AdapterSetting]

    /// `model` may be left out (or empty) when the models folder holds exactly one base.
    static func resolve(_ f: RequestFields, in catalog: ModelCatalog) throws(APIError) -> Target {
        let name = try f.string("model") ?? ""
        let spec: ModelSpec
        if name.trimmingCharacters(in: .whitespaces).isEmpty {
            guard catalog.bases.count == 1 else {
                throw APIError.invalid("'model' is required: one of \(catalog.modelIDs.joined(separator: ", "))", param: "model")
            }
            spec = ModelSpec(target: .base(catalog.bases[0].id), adapters: [])
        } else {
            spec = try ModelSpec.parse(name)
        }
        var t: Target
        switch spec.target {
        case .base(let b):
            t = Target(base: try catalog.base(named: b).path, persona: nil, adapters: [])
        case .persona(let id):
            guard let p = catalog.persona(id) else { throw APIError.modelNotFound("persona:" + id, known: catalog.modelIDs) }
            let base = catalog.resolve(p.model)
            let onBase: Persona
            do throws(ChatError) {
                onBase = try p.onBase(base)   // `auto`: the base's chat_template
            } catch {
                throw APIError.internalError(error.description)
            }
            t = Target(base: base, persona: onBase, adapters: [])
            for a in p.adapters { t.add(catalog.resolve(a.path), Float(min(max(a.scale, 0), 2))) }
        }
        for a in spec.adapters { t.add(try catalog.adapter(named: a.name, param: "model").path, a.scale) }

        if let list = f.value("adapters") {
            guard case .array(let items) = list else { throw APIError.invalid("'adapters' must be an array of {\"name\", \"scale\"}.", param: "adapters") }
            for (i, item) in items.enumerated() {
                let param = "adapters[\(i)]"
                switch item {
                case .string(let s):   // "name" or "name@0.5"
                    let one = try ModelSpec.parse("x+" + s).adapters[0]
                    t.add(try catalog.adapter(named: one.name, param: param).path, one.scale)
                case .object(let o):
                    let e = RequestFields(object: o)
                    guard let key = e.first(["name", "id", "path"]) else {
                        throw APIError.invalid("'\(param)' needs a 'name' (an adapter as GET /v1/models lists it).", param: param)
                    }
                    if case .int(let index)? = e.value(key) {
                        t.add(try catalog.adapter(index: index, param: param).path, try scale(e, param))
                    } else {
                        t.add(try catalog.adapter(named: try e.string(key) ?? "", param: param).path, try scale(e, param))
                    }
                default:
                    throw APIError.invalid("'\(param)' must be {\"name\": …, \"scale\": …} or a name.", param: param)
                }
            }
        }
        if let list = f.value("lora") {
            guard case .array(let items) = list else { throw APIError.invalid("'lora' must be an array of {\"id\", \"scale\"}.", param: "lora") }
            for (i, item) in items.enumerated() {
                let param = "lora[\(i)]"
                guard let o = item.object, let id = try RequestFields(object: o).int("id") else {
                    throw APIError.invalid("'\(param)' must be {\"id\": N, \"scale\": S} (ids from GET /lora-adapters).", param: param)
                }
                t.add(try catalog.adapter(index: id, param: param).path, try scale(RequestFields(object: o), param))
            }
        }
        t.adapters.removeAll { $0.scale == 0 }
        return t
    }

    static func scale(_ e: RequestFields, _ param: String) throws(APIError) -> Float {
        guard let s = try e.double("scale") else { return 1 }
        guard (0...2).contains(s) else { throw APIError.invalid("'\(param).scale' must be from 0 to 2 (got \(s)).", param: param) }
        return Float(s)
    }

    mutating func add(_ path: String, _ scale: Float) {
        if let i = adapters.firstIndex(where: { $0.path == path }) {
            adapters[i].scale = scale
        } else {
            adapters.append(AdapterSetting(path: path, scale: scale))
        }
    }

    /// The persona requests run under: the target's, or the `plain` template on the base.
    var effectivePersona: Persona {
        persona ?? Persona(id: "", name: URL(fileURLWithPath: base).lastPathComponent, group: "", template: "plain", model: base)
    }
}
