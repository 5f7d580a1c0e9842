import Foundation
import Yams

/// SillyTavern character cards: V1 (fields at the top level), V2 (`spec: chara_card_v2`, fields
/// under `data`) and V3 (`chara_card_v3`, a superset of V2), as JSON files or inside PNGs as
/// base64 `tEXt` chunks (`chara` for V1/V2, `ccv3` for V3; `ccv3` wins when both are there).
/// The whole card is kept, so unknown fields and `extensions` survive a round trip; Yanyi's
/// own settings (template, model, adapters, sampling …) live in `data.extensions.yanyi`.
public struct CharacterCard: Sendable, Equatable {
    public enum Spec: String, Sendable, CaseIterable {
        case v1 = "chara_card_v1"
        case v2 = "chara_card_v2"
        case v3 = "chara_card_v3"
    }

    public var spec: Spec
    /// The card's top-level object, whole.
    public var root: [String: JSON]

    /// Where the character fields are: `data` for V2/V3, the top level for V1.
    public var data: [String: JSON] {
        spec == .v1 ? root : root["data"]?.object ?? [:]
    }

    public var name: String { data["name"]?.string ?? "" }

    // MARK: reading

    /// A card from JSON text. `file` names it in errors.
    public static func decode(json: Data, file: String) throws(ChatError) -> CharacterCard {
        let value: JSON
        do {
            value = try JSON.parse(json)
        } catch {
            throw ChatError(file, "not valid JSON")
        }
        guard let root = value.object else { throw ChatError(file, "a character card must be a JSON object") }
        let specText = root["spec"]?.string
        let spec: Spec
        switch specText {
        case Spec.v3.rawValue: spec = .v3
        case Spec.v2.rawValue: spec = .v2
        case nil, Spec.v1.rawValue?: spec = root["data"]?.object != nil ? .v2 : .v1
        case let other?: throw ChatError(file, field: "spec", "unknown card spec \(other.quotedForError)")
        }
        let card = CharacterCard(spec: spec, root: root)
        let prefix = spec == .v1 ? "" : "data."
        if spec != .v1 && root["data"]?.object == nil {
            throw ChatError(file, field: "data", "a \(spec.rawValue) card needs a data object")
        }
        guard let name = card.data["name"] else { throw ChatError(file, field: prefix + "name", "is required") }
        guard let s = name.string, !s.pythonStripped.isEmpty else {
            throw ChatError(file, field: prefix + "name", "must be non-empty text")
        }
        for key in ["description", "personality", "scenario", "first_mes", "mes_example", "system_prompt",
                    "creator_notes", "post_history_instructions"] {
            if let v = card.data[key], v != .null, v.string == nil {
                throw ChatError(file, field: prefix + key, "must be text")
            }
        }
        if let g = card.data["alternate_greetings"], g != .null, g.array?.allSatisfy({ $0.string != nil }) != true {
            throw ChatError(file, field: prefix + "alternate_greetings", "must be a list of text")
        }
        if let e = card.data["extensions"], e != .null, e.object == nil {
            throw ChatError(file, field: prefix + "extensions", "must be an object")
        }
        return card
    }

    /// The card inside a PNG: the `ccv3` chunk if there is one, else `chara` (keywords compared
    /// without case, as SillyTavern does).
    public static func decode(png bytes: [UInt8], file: String) throws(ChatError) -> CharacterCard {
        let texts = try PNGFile.chunks(bytes, file: file).compactMap(\.textEntry)
        let entry = texts.first { $0.keyword.lowercased() == "ccv3" } ?? texts.first { $0.keyword.lowercased() == "chara" }
        guard let entry else { throw ChatError(file, "PNG has no character card (no 'chara' or 'ccv3' text chunk)") }
        let b64 = entry.text.filter { !$0.isWhitespace }
        let padded = b64 + String(repeating: "=", count: (4 - b64.count % 4) % 4)
        guard let json = Data(base64Encoded: padded) else {
            throw ChatError(file, field: entry.keyword, "text chunk is not base64")
        }
        return try decode(json: json, file: "\(file) (\(entry.keyword) chunk)")
    }

    /// A card file, PNG or JSON by its first bytes; also returns the PNG's bytes (the avatar).
    public static func read(_ path: String) throws(ChatError) -> (card: CharacterCard, png: [UInt8]?) {
        guard let data = FileManager.default.contents(atPath: path) else { throw ChatError(path, "cannot read the file") }
        let bytes = [UInt8](data)
        if bytes.starts(with: PNGFile.signature) { return (try decode(png: bytes, file: path), bytes) }
        return (try decode(json: data, file: path), nil)
    }

    // MARK: card -> persona

    /// The base a card runs on when it binds none (the shipped demo model; `--model` pins another).
    static let defaultModel = "llama-demo"

    /// The persona this card describes. With `extensions.yanyi` the persona is validated like a
    /// YAML file (errors name `data.extensions.yanyi.<field>`); without, it becomes an `auto`-
    /// template persona (the base's chat_template, else `plain`) on the default base whose prompt
    /// RoleplayPrompt builds from the card's fields each turn (macros for the user of the moment).
    /// A binding without `template` or `model` gets those two defaults.
    /// `group`: the group when the card names none (the folder a card file is in); else `cards`.
    public func persona(id defaultID: String, file: String, group: String? = nil) throws(ChatError) -> Persona {
        let prefix = spec == .v1 ? "" : "data."
        let d = data
        let greetings = ([d["first_mes"]?.string ?? ""] + (d["alternate_greetings"]?.array?.compactMap(\.string) ?? []))
            .filter { !$0.pythonStripped.isEmpty }
        let scenario = d["scenario"]?.string.flatMap { $0.isEmpty ? nil : $0 }

        var fields: [(Node, Node)] = [
            ("name", Node(name, .implicit, .doubleQuoted)),
            ("description", Node(d["description"]?.string ?? "", .implicit, .doubleQuoted)),
        ]
        if !greetings.isEmpty {
            fields.append(("greetings", Node(greetings.map { Node($0, .implicit, .doubleQuoted) })))
        }
        if let scenario { fields.append(("scene", Node(scenario, .implicit, .doubleQuoted))) }

        var id = defaultID
        let extPrefix = prefix + "extensions.yanyi"
        if let ext = d["extensions"]?["yanyi"] {
            guard var yanyi = ext.object else { throw ChatError(file, field: extPrefix, "must be an object") }
            if let i = yanyi.removeValue(forKey: "id") {
                guard let s = i.string, !s.isEmpty, !s.contains("/"), !s.hasPrefix(".") else {
                    throw ChatError(file, field: extPrefix + ".id", "must be a plain name (no '/')")
                }
                id = s
            }
            for key in ["name", "description", "greeting", "greetings", "scene"] where yanyi[key] != nil {
                throw ChatError(file, field: extPrefix + "." + key, "belongs in the card's own fields, not in extensions.yanyi")
            }
            for (k, v) in yanyi.sorted(by: { $0.key < $1.key }) { fields.append((Node(k), Self.node(v))) }
            if let group, yanyi["group"] == nil { fields.append(("group", Node(group, .implicit, .doubleQuoted))) }
            // What the card does not bind takes the defaults of a card with no binding.
            if yanyi["template"] == nil { fields.append(("template", Node(TemplateRegistry.auto))) }
            if yanyi["model"] == nil { fields.append(("model", Node(Self.defaultModel))) }
        } else {
            if let group { fields.append(("group", Node(group, .implicit, .doubleQuoted))) }
            fields.append(("template", Node(TemplateRegistry.auto)))
            fields.append(("model", Node(Self.defaultModel)))
        }
        var p = try PersonaFile.parse(root: Node(fields), file: file, id: id, folder: nil, prefix: "")
        p.card = .object(root)
        return p
    }

    /// JSON -> YAML node, so a card's settings go through the same validation as a YAML file.
    /// Strings are quoted so `"true"` stays text; numbers and booleans are plain.
    static func node(_ v: JSON) -> Node {
        switch v {
        case .null: Node("null", .implicit, .plain)
        case .bool(let b): Node(b ? "true" : "false", .implicit, .plain)
        case .int(let i): Node(String(i), .implicit, .plain)
        case .double(let d): Node(String(d), .implicit, .plain)
        case .string(let s): Node(s, .implicit, .doubleQuoted)
        case .array(let a): Node(a.map(node))
        case .object(let o): Node(o.sorted { $0.key < $1.key }.map { (Node($0.key), node($0.value)) })
        }
    }

    // MARK: persona -> card

    /// A V2 or V3 card for `persona`. A persona imported from a card starts from that card, so
    /// fields Yanyi does not use (character_book, creator_notes, other apps' extensions …) stay.
    public init(persona p: Persona, spec: Spec) {
        precondition(spec != .v1, "export writes V2 or V3 cards")
        var root = p.card?.object ?? [:]
        let old = CharacterCard(spec: root["spec"]?.string.flatMap(Spec.init) ?? (root["data"] != nil ? .v2 : .v1), root: root)
        var d = old.data
        let fromCard = p.card != nil
        d["name"] = .string(p.name)
        d["description"] = .string(p.description)
        d["first_mes"] = .string(p.greetings.first ?? "")
        d["alternate_greetings"] = .array(p.greetings.dropFirst().map(JSON.string))
        d["scenario"] = .string(p.scene ?? "")
        if !fromCard { d["system_prompt"] = .string(p.preamble ?? "") }
        for key in ["personality", "mes_example", "creator_notes", "system_prompt", "post_history_instructions"] where d[key] == nil {
            d[key] = .string("")
        }
        if d["tags"] == nil { d["tags"] = .array(([p.group] + (p.book.map { [$0] } ?? [])).map(JSON.string)) }
        if d["creator"] == nil { d["creator"] = .string("Yanyi") }
        if d["character_version"] == nil { d["character_version"] = .string("1.0") }
        if spec == .v3 && d["group_only_greetings"] == nil { d["group_only_greetings"] = .array([]) }
        var ext = d["extensions"]?.object ?? [:]
        ext["yanyi"] = Self.yanyiExtension(p)
        d["extensions"] = .object(ext)

        root["spec"] = .string(spec.rawValue)
        root["spec_version"] = .string(spec == .v2 ? "2.0" : "3.0")
        root["data"] = .object(d)
        if spec == .v2 {   // V1 readers look at the top level (SillyTavern writes both)
            for key in ["name", "description", "personality", "scenario", "first_mes", "mes_example"] { root[key] = d[key] }
        }
        self.init(spec: spec, root: root)
    }

    init(spec: Spec, root: [String: JSON]) {
        self.spec = spec
        self.root = root
    }

    /// Everything that makes the persona run in Yanyi, in the YAML file's key names.
    static func yanyiExtension(_ p: Persona) -> JSON {
        var o: [String: JSON] = [
            "id": .string(String(p.id.split(separator: "/").last ?? Substring(p.id))),
            "group": .string(p.group),
            "template": .string(p.template),
            "model": .string(p.model),
        ]
        if let b = p.book { o["book"] = .string(b) }
        if let pre = p.preamble { o["preamble"] = .string(pre) }
        if let s = p.speaker { o["speaker"] = .object(["name": .string(s.name), "verb": .string(s.verb)]) }
        if !p.adapters.isEmpty {
            o["adapters"] = .array(p.adapters.map { .object(["path": .string($0.path), "scale": .double($0.scale)]) })
        }
        var s: [String: JSON] = [:]
        let sm = p.sampling
        if let v = sm.temperature { s["temperature"] = .double(v) }
        if let v = sm.topP { s["top_p"] = .double(v) }
        if let v = sm.topK { s["top_k"] = .int(v) }
        if let v = sm.repetitionPenalty { s["repetition_penalty"] = .double(v) }
        if let v = sm.noRepeatNgramSize { s["no_repeat_ngram_size"] = .int(v) }
        if let v = sm.maxRepeatRun { s["max_repeat_run"] = .int(v) }
        if let v = sm.maxNewTokens { s["max_new_tokens"] = .int(v) }
        if let v = sm.doSample { s["do_sample"] = .bool(v) }
        if let v = sm.numBeams { s["num_beams"] = .int(v) }
        if let v = sm.maxHistory { s["max_history"] = .int(v) }
        if !s.isEmpty { o["sampling"] = .object(s) }
        if !p.stop.isEmpty { o["stop"] = .array(p.stop.map(JSON.string)) }
        if p.history != Persona.HistoryPolicy() {
            o["history"] = .object(["overflow": .string(p.history.overflow.rawValue),
                                    "include_greeting": .bool(p.history.includeGreeting)])
        }
        if p.chatGLMPostprocess { o["postprocess"] = .string("chatglm") }
        if let a = p.accent { o["accent"] = .string(a) }
        if !p.lore.isEmpty { o["lore"] = .array(p.lore.map(JSON.string)) }
        return .object(o)
    }

    // MARK: writing

    public func jsonData() -> Data { JSON.object(root).data() }

    /// A PNG carrying `persona` as both a V2 `chara` chunk and a V3 `ccv3` chunk, placed before
    /// IEND. `image` is a PNG to embed into (its old card chunks are replaced); without one a
    /// small square in the persona's accent colour is drawn.
    public static func png(persona p: Persona, image: [UInt8]? = nil, file: String = "image") throws(ChatError) -> [UInt8] {
        var chunks: [PNGFile.Chunk]
        if let image {
            chunks = try PNGFile.chunks(image, file: file).filter { c in
                guard let k = c.textEntry?.keyword.lowercased() else { return true }
                return k != "chara" && k != "ccv3"
            }
        } else {
            chunks = PNGFile.solidImage(width: 64, height: 64, rgb: rgb(p.accent) ?? (0xC0, 0x39, 0x2B))
        }
        let v2 = CharacterCard(persona: p, spec: .v2).jsonData().base64EncodedString()
        let v3 = CharacterCard(persona: p, spec: .v3).jsonData().base64EncodedString()
        chunks.insert(contentsOf: [.text("chara", v2), .text("ccv3", v3)], at: chunks.count - 1)
        return PNGFile.encode(chunks)
    }

    static func rgb(_ hex: String?) -> (UInt8, UInt8, UInt8)? {
        guard let hex, PersonaFile.isHexColour(hex), let v = UInt32(hex.dropFirst(), radix: 16) else { return nil }
        return (UInt8(v >> 16), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF))
    }
}
