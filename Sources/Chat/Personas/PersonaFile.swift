import Foundation
import Engine
import Yams

/// Reads and validates one persona YAML file. Every problem is one `ChatError` naming the file,
/// the field (dotted path) and its line; unknown keys are errors too, so a misspelt
/// `temprature` is not silently ignored.
public enum PersonaFile {
    static let topKeys = ["name", "group", "book", "description", "greeting", "greetings", "template",
                          "preamble", "speaker", "scene", "model", "adapters", "sampling", "stop", "history",
                          "postprocess", "accent", "lore"]
    static let samplingKeys = ["temperature", "top_p", "top_k", "repetition_penalty", "no_repeat_ngram_size",
                               "max_repeat_run", "max_new_tokens", "do_sample", "num_beams", "max_history",
                               "prompt_lookup_num_tokens"]
    /// Theme roles an accent may name instead of a colour.
    static let themeRoles = ["primary", "accent", "user", "assistant", "system", "muted", "error", "border"]

    /// `path` is `…/<group>/<id>.yaml`; the group is the folder's name.
    public static func load(_ path: String) throws(ChatError) -> Persona {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ChatError(path, "cannot read as UTF-8 text")
        }
        let url = URL(fileURLWithPath: path)
        let id = url.deletingPathExtension().lastPathComponent
        let folder = url.deletingLastPathComponent().lastPathComponent
        return try parse(text, file: path, id: id, folder: folder)
    }

    public static func parse(_ text: String, file: String, id: String, folder: String) throws(ChatError) -> Persona {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            throw yamlError(e, file: file)
        } catch {
            throw ChatError(file, "not valid YAML (\(error))")
        }
        guard let root else { throw ChatError(file, "is empty; expected a mapping of persona fields") }
        return try parse(root: root, file: file, id: id, folder: folder)
    }

    /// Validates a persona given as a YAML node (a file, or a card's `extensions.yanyi` turned
    /// into one). `folder` nil: the group is whatever the node says (default `cards`); `prefix`
    /// is put before field names in errors.
    static func parse(root: Node, file: String, id: String, folder: String?, prefix: String = "") throws(ChatError) -> Persona {
        guard let map = root.mapping else {
            throw ChatError(file, field: prefix, "expected a mapping of persona fields")
        }
        let r = Fields(file: file, prefix: prefix, mapping: map, line: root.mark?.line)
        try r.rejectUnknown(topKeys)

        let name = try r.requiredString("name")
        let group = try r.string("group") ?? folder ?? "cards"
        if let folder, group != folder {
            throw r.error("group", "is '\(group)' but the file is in folder '\(folder)'")
        }
        let template = try r.requiredString("template")
        guard let tmpl = TemplateRegistry.make(template) else {
            throw r.error("template", "unknown template \(template.quotedForError) (known: \(TemplateRegistry.names.joined(separator: ", ")))")
        }

        var greetings = try r.strings("greetings") ?? []
        if let g = try r.string("greeting") {
            if r.has("greetings") { throw r.error("greeting", "give either greeting or greetings, not both") }
            greetings = [g]
        }
        if let i = greetings.firstIndex(where: { $0.pythonStripped.isEmpty }) {
            throw r.error(r.has("greetings") ? "greetings[\(i)]" : "greeting", "is empty")
        }

        let preamble = try r.string("preamble", allowEmpty: true)
        if preamble != nil && !tmpl.acceptsPreamble {
            throw r.error("preamble", "the \(template) template has no place for a preamble")
        }

        var speaker: Persona.Speaker?
        if let s = try r.mapping("speaker") {
            if template != "glm-cosplay" { throw r.error("speaker", "only glm-cosplay personas hand over to a speaker") }
            try s.rejectUnknown(["name", "verb"])
            speaker = Persona.Speaker(name: try s.string("name") ?? name, verb: try s.string("verb") ?? "曰")
        } else if template == "glm-cosplay" {
            speaker = Persona.Speaker(name: name)
        }
        let scene = try r.string("scene")

        let model = try r.relativePath("model", required: true)!
        var adapters: [Persona.AdapterRef] = []
        if let list = try r.sequence("adapters") {
            for (i, node) in list.enumerated() {
                let field = "adapters[\(i)]"
                if let m = node.mapping {
                    let a = Fields(file: file, prefix: r.path(field), mapping: m, line: node.mark?.line)
                    try a.rejectUnknown(["path", "scale"])
                    let path = try a.relativePath("path", required: true)!
                    let scale = try a.double("scale", in: -100...100) ?? 1.0
                    adapters.append(.init(path: path, scale: scale))
                } else if let s = node.scalar {
                    try checkRelative(s.string, field: field, reader: r, line: node.mark?.line)
                    adapters.append(.init(path: s.string))
                } else {
                    throw r.error(field, "expected a folder path or {path, scale}", line: node.mark?.line)
                }
            }
        }

        var sampling = Persona.Sampling()
        if let s = try r.mapping("sampling") {
            try s.rejectUnknown(samplingKeys)
            sampling.temperature = try s.double("temperature", in: 0...100)
            sampling.topP = try s.double("top_p", in: 0...1, openLow: true)
            sampling.topK = try s.int("top_k", in: 0...1_000_000)
            sampling.repetitionPenalty = try s.double("repetition_penalty", in: 0...100, openLow: true)
            sampling.noRepeatNgramSize = try s.int("no_repeat_ngram_size", in: 0...64)
            sampling.maxRepeatRun = try s.int("max_repeat_run", in: 0...64)
            sampling.maxNewTokens = try s.int("max_new_tokens", in: 1...1_000_000)
            sampling.doSample = try s.bool("do_sample")
            sampling.numBeams = try s.int("num_beams", in: 1...16)
            sampling.maxHistory = try s.int("max_history", in: 0...10_000)
            sampling.promptLookupNumTokens = try s.int("prompt_lookup_num_tokens", in: 0...PromptLookup.maxTokens)
            if template == "baichuan-qa", let h = sampling.maxHistory, h > 0 {
                throw s.error("max_history", "baichuan-qa is single-turn; max_history must be 0")
            }
        }

        let stop = try r.strings("stop") ?? []
        if let i = stop.firstIndex(where: \.isEmpty) { throw r.error("stop[\(i)]", "is empty") }

        var history = Persona.HistoryPolicy()
        if let h = try r.mapping("history") {
            try h.rejectUnknown(["overflow", "include_greeting"])
            if let o = try h.string("overflow") {
                guard let v = Persona.HistoryPolicy.Overflow(rawValue: o) else {
                    throw h.error("overflow", "must be one of \(Persona.HistoryPolicy.Overflow.allCases.map(\.rawValue).joined(separator: ", ")) (got \(o.quotedForError))")
                }
                history.overflow = v
            }
            history.includeGreeting = try h.bool("include_greeting") ?? false
        }

        var postprocess = false
        if let p = try r.string("postprocess") {
            switch p {
            case "none": postprocess = false
            case "chatglm":
                guard template == "glm-cosplay" else {
                    throw r.error("postprocess", "chatglm post-processing is an option of glm-cosplay (glm-chat always applies it)")
                }
                postprocess = true
            default: throw r.error("postprocess", "must be chatglm or none (got \(p.quotedForError))")
            }
        }

        let lore = try r.strings("lore") ?? []
        for (i, name) in lore.enumerated() where name.isEmpty || name.contains("/") || name.hasPrefix(".") {
            throw r.error("lore[\(i)]", "must be a lorebook's name in Personas/lore/ (got \(name.quotedForError))")
        }
        if !lore.isEmpty && !tmpl.acceptsPreamble {
            throw r.error("lore", "the \(template) template has no place before the conversation for a lorebook")
        }

        let accent = try r.string("accent")
        if let a = accent, !isHexColour(a) && !themeRoles.contains(a) {
            throw r.error("accent", "must be #rrggbb or a theme role (\(themeRoles.joined(separator: ", "))), got \(a.quotedForError)")
        }

        var p = Persona(id: "\(group)/\(id)", name: name, group: group, book: try r.string("book"),
                        description: try r.string("description", allowEmpty: true) ?? "", greetings: greetings,
                        template: template, preamble: preamble, speaker: speaker, scene: scene, model: model,
                        adapters: adapters, sampling: sampling, stop: stop, history: history,
                        chatGLMPostprocess: postprocess, accent: accent, source: file)
        p.lore = lore
        return p
    }

    static func isHexColour(_ s: String) -> Bool {
        let u = Array(s.utf8)
        return u.count == 7 && u[0] == UInt8(ascii: "#") && u[1...].allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102) }
    }

    static func checkRelative(_ p: String, field: String, reader r: Fields, line: Int?) throws(ChatError) {
        if p.isEmpty { throw r.error(field, "is empty", line: line) }
        if p.hasPrefix("/") || p.hasPrefix("~") {
            throw r.error(field, "must be relative to Models/ (got \(p.quotedForError))", line: line)
        }
        if p.split(separator: "/").contains("..") {
            throw r.error(field, "must stay inside Models/ (no '..'; got \(p.quotedForError))", line: line)
        }
    }

    static func yamlError(_ e: YamlError, file: String) -> ChatError {
        switch e {
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ChatError(file, field: duplicates.joined(separator: ", "), "key given twice", line: context.mark.line)
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
            return ChatError(file, "not valid YAML: \(what)", line: mark.line)
        default:
            return ChatError(file, "not valid YAML: \("\(e)".split(separator: "\n").first ?? "")")
        }
    }
}

/// Typed reads from one YAML mapping, each failing with the file, dotted field path and line.
struct Fields {
    let file: String
    let prefix: String
    let mapping: Node.Mapping
    let line: Int?

    func path(_ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }

    func error(_ key: String, _ reason: String, line: Int? = nil) -> ChatError {
        ChatError(file, field: path(key), reason, line: line ?? node(key)?.mark?.line ?? self.line)
    }

    func has(_ key: String) -> Bool { node(key) != nil }

    func node(_ key: String) -> Node? {
        mapping.first { $0.key.scalar?.string == key }?.value
    }

    /// A null value (`key:` or `key: ~`) reads as absent.
    private func present(_ key: String) -> Node? {
        guard let n = node(key) else { return nil }
        if let s = n.scalar, s.style == .plain || s.style == .any, ["", "~", "null", "Null", "NULL"].contains(s.string) {
            return nil
        }
        return n
    }

    func rejectUnknown(_ known: [String]) throws(ChatError) {
        for (k, _) in mapping {
            guard let key = k.scalar?.string else {
                throw ChatError(file, field: prefix, "keys must be plain names", line: k.mark?.line)
            }
            if !known.contains(key) {
                var hint = ""
                if let near = known.min(by: { editDistance($0, key) < editDistance($1, key) }), editDistance(near, key) <= 2 {
                    hint = " (did you mean '\(near)'?)"
                }
                throw ChatError(file, field: path(key), "unknown key\(hint); known keys: \(known.joined(separator: ", "))",
                                line: k.mark?.line)
            }
        }
    }

    func string(_ key: String, allowEmpty: Bool = false) throws(ChatError) -> String? {
        guard let n = present(key) else { return nil }
        guard let s = n.scalar else { throw error(key, "expected text, got \(kind(n))") }
        if !allowEmpty && s.string.pythonStripped.isEmpty { throw error(key, "is empty") }
        return s.string
    }

    func requiredString(_ key: String) throws(ChatError) -> String {
        guard let s = try string(key) else { throw error(key, "is required") }
        return s
    }

    func relativePath(_ key: String, required: Bool) throws(ChatError) -> String? {
        guard let p = try string(key) else {
            if required { throw error(key, "is required (a folder relative to Models/)") }
            return nil
        }
        try PersonaFile.checkRelative(p, field: key, reader: self, line: node(key)?.mark?.line)
        return p
    }

    func double(_ key: String, in range: ClosedRange<Double>, openLow: Bool = false) throws(ChatError) -> Double? {
        guard let n = present(key) else { return nil }
        guard let s = n.scalar, s.style == .plain, let v = Double(s.string), v.isFinite else {
            throw error(key, "expected a number, got \(kind(n))")
        }
        if !range.contains(v) || (openLow && v == range.lowerBound) {
            let low = openLow ? "above \(fmt(range.lowerBound))" : "at least \(fmt(range.lowerBound))"
            throw error(key, "must be \(low) and at most \(fmt(range.upperBound)) (got \(s.string))")
        }
        return v
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws(ChatError) -> Int? {
        guard let n = present(key) else { return nil }
        guard let s = n.scalar, s.style == .plain, let v = Int(s.string) else {
            throw error(key, "expected a whole number, got \(kind(n))")
        }
        if !range.contains(v) { throw error(key, "must be from \(range.lowerBound) to \(range.upperBound) (got \(v))") }
        return v
    }

    func bool(_ key: String) throws(ChatError) -> Bool? {
        guard let n = present(key) else { return nil }
        guard let s = n.scalar, s.style == .plain, let v = ["true": true, "false": false][s.string.lowercased()] else {
            throw error(key, "expected true or false, got \(kind(n))")
        }
        return v
    }

    func strings(_ key: String) throws(ChatError) -> [String]? {
        guard let n = present(key) else { return nil }
        guard let seq = n.sequence else { throw error(key, "expected a list of text, got \(kind(n))") }
        var out: [String] = []
        for (i, item) in seq.enumerated() {
            guard let s = item.scalar else {
                throw error("\(key)[\(i)]", "expected text, got \(kind(item))", line: item.mark?.line)
            }
            out.append(s.string)
        }
        return out
    }

    func sequence(_ key: String) throws(ChatError) -> [Node]? {
        guard let n = present(key) else { return nil }
        guard let seq = n.sequence else { throw error(key, "expected a list, got \(kind(n))") }
        return Array(seq)
    }

    func mapping(_ key: String) throws(ChatError) -> Fields? {
        guard let n = present(key) else { return nil }
        guard let m = n.mapping else { throw error(key, "expected a mapping of fields, got \(kind(n))") }
        return Fields(file: file, prefix: path(key), mapping: m, line: n.mark?.line)
    }

    private func kind(_ n: Node) -> String {
        switch n {
        case .scalar(let s): s.string.quotedForError
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    private func fmt(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
}

/// Levenshtein distance, for "did you mean" on unknown keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var prev = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
            prev = cur
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}
