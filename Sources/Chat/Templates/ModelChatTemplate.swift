import Engine
import Foundation

/// A base model's own chat template: `chat_template` of its tokenizer_config.json (or the
/// `chat_template.jinja` file beside it, which transformers prefers), with the special tokens the
/// template may print (`bos_token`, `eos_token`, `unk_token`, `pad_token`, as strings; tokenizer
/// config entries may be AddedToken dictionaries, special_tokens_map.json fills gaps).
public struct ModelChatTemplate: Sendable, Equatable {
    /// Where the template came from, as errors name it.
    public var file: String
    public var template: JinjaTemplate
    /// bos_token, eos_token, … -> their text.
    public var tokens: [String: String]

    public init(source: String, file: String, tokens: [String: String]) throws(ChatError) {
        self.file = file
        self.tokens = tokens
        do {
            template = try JinjaTemplate(source)
        } catch {
            throw ChatError(file, field: "chat_template", error.description)
        }
    }

    public static func == (a: ModelChatTemplate, b: ModelChatTemplate) -> Bool {
        a.file == b.file && a.tokens == b.tokens && a.template.source == b.template.source
    }

    public var eosToken: String? { tokens["eos_token"].flatMap { $0.isEmpty ? nil : $0 } }

    /// The template of the model folder at `folder`; nil when it has none. A template that is
    /// there but does not parse is an error naming the file and the line.
    public static func load(folder: String) throws(ChatError) -> ModelChatTemplate? {
        let configPath = (folder as NSString).appendingPathComponent("tokenizer_config.json")
        let jinjaPath = (folder as NSString).appendingPathComponent("chat_template.jinja")
        let config = try jsonObject(configPath)
        var source: String?
        var file = configPath
        if let data = FileManager.default.contents(atPath: jinjaPath) {
            source = String(decoding: data, as: UTF8.self)
            file = jinjaPath
        } else if let value = config?["chat_template"] {
            source = try templateText(value, file: configPath)
        }
        guard let source, !source.isEmpty else { return nil }
        let map = try jsonObject((folder as NSString).appendingPathComponent("special_tokens_map.json"))
        var tokens: [String: String] = [:]
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            if let t = tokenText(config?[key]) ?? tokenText(map?[key]) { tokens[key] = t }
        }
        return try ModelChatTemplate(source: source, file: file, tokens: tokens)
    }

    /// A string, or (newer files) a list of `{"name", "template"}` of which `default` is used.
    static func templateText(_ value: Any, file: String) throws(ChatError) -> String? {
        if value is NSNull { return nil }
        if let s = value as? String { return s }
        if let list = value as? [[String: Any]] {
            let named = list.compactMap { e -> (String, String)? in
                guard let n = e["name"] as? String, let t = e["template"] as? String else { return nil }
                return (n, t)
            }
            return named.first { $0.0 == "default" }?.1 ?? named.first?.1
        }
        throw ChatError(file, field: "chat_template", "must be a string or a list of {\"name\", \"template\"}")
    }

    static func tokenText(_ value: Any?) -> String? {
        if let s = value as? String { return s }
        if let d = value as? [String: Any], let s = d["content"] as? String { return s }
        return nil
    }

    static func jsonObject(_ path: String) throws(ChatError) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ChatError(path, "is not a JSON object")
        }
        return object
    }
}

/// The `auto` template once the base is known: the conversation rendered by the model's own chat
/// template as transformers' `apply_chat_template(messages, add_generation_prompt=True)` renders
/// it: the preamble as a `system` message, then history and the new input as `user` and
/// `assistant` messages. The tokenizer reads the template's own text with special-token parsing
/// (its `<|im_start|>` is the token) and every message's text without (a typed `</s>` stays
/// characters): the template is rendered once with each message replaced by a unique marker, the
/// markers then stand for the messages, and the result is checked against a plain rendering
/// (a template that reshapes message text in other ways than stripping it gets the whole prompt
/// as data, never the reverse).
///
/// Templates that insist on strictly alternating roles or refuse a system message get the
/// conversation as they need it, tried in turn: as is; with leading replies (a greeting) dropped
/// and same-role neighbours joined; with the preamble put in front of the first user message.
public struct ChatTemplatePrompt: PromptTemplate {
    public let id = "chat_template"
    public let historyUnit = HistoryUnit.rounds
    public let defaultMaxHistory: Int? = nil
    public let acceptsPreamble = true
    public let stop: StopRule
    public let model: ModelChatTemplate
    public var preamble: String

    public init(model: ModelChatTemplate, preamble: String = "") {
        self.model = model
        self.preamble = preamble
        stop = StopRule(tokens: [.eos] + (model.eosToken.map { [.named($0)] } ?? []), texts: model.eosToken.map { [$0] } ?? [])
    }

    struct Message {
        var role: String
        var content: String
    }

    public func render(history: [Utterance], input: String) throws(ChatError) -> Prompt {
        var messages = preamble.isEmpty ? [] : [Message(role: "system", content: preamble)]
        messages += history.map { Message(role: $0.role.rawValue, content: $0.text) }
        messages.append(Message(role: "user", content: input))
        var firstError: JinjaError?
        for attempt in Self.attempts(messages) {
            do {
                return try prompt(attempt)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        throw ChatError(model.file, field: "chat_template", firstError?.description ?? "cannot render the conversation")
    }

    /// The conversation as is, then in the shapes strict templates accept.
    static func attempts(_ messages: [Message]) -> [[Message]] {
        var tidy: [Message] = []
        for m in messages {
            if m.role == "assistant", !tidy.contains(where: { $0.role != "system" }) { continue }
            if let last = tidy.last, last.role == m.role {
                tidy[tidy.count - 1].content += "\n\n" + m.content
            } else {
                tidy.append(m)
            }
        }
        var out = [messages, tidy]
        if let s = tidy.first, s.role == "system" {
            var folded = Array(tidy.dropFirst())
            if let u = folded.firstIndex(where: { $0.role == "user" }) {
                folded[u].content = s.content + "\n\n" + folded[u].content
                out.append(folded)
            }
        }
        return out
    }

    func context(_ messages: [Message]) -> [String: JinjaContextValue] {
        var c: [String: JinjaContextValue] = [
            "messages": .list(messages.map { .dict([("role", .string($0.role)), ("content", .string($0.content))]) }),
            "tools": .none,
            "documents": .none,
            "add_generation_prompt": true,
        ]
        for (k, v) in model.tokens { c[k] = .string(v) }
        return c
    }

    /// Markers: private-use characters around a number, so no template text or message holds one.
    static func marker(_ k: Int) -> String { "\u{F8F0}\(k)\u{F8F1}" }

    func prompt(_ messages: [Message]) throws(JinjaError) -> Prompt {
        let plain = try model.template.render(context(messages))
        // A message that is empty or only whitespace stays as it is (it cannot hold a token, and
        // `{% if message.content %}` must see it as it is); the others become markers, with their
        // outer whitespace kept so `.strip()` and `| trim` act on the marker as on the text.
        var cores: [String] = []
        let marked = messages.map { m -> Message in
            let core = m.content.pythonStripped
            guard !core.isEmpty else { return m }
            let scalars = m.content.unicodeScalars
            let lead = String(scalars.prefix { $0.isPythonWhitespace })
            let trail = String(String.UnicodeScalarView(scalars.reversed().prefix { $0.isPythonWhitespace }.reversed()))
            cores.append(core)
            return Message(role: m.role, content: lead + Self.marker(cores.count - 1) + trail)
        }
        guard !cores.isEmpty, let withMarkers = try? model.template.render(context(marked)) else {
            return Prompt(text: plain, addSpecialTokens: false)
        }
        var parts: [Prompt.Part] = []
        var rest = Substring(withMarkers)
        while let open = rest.range(of: "\u{F8F0}") {
            guard let close = rest[open.upperBound...].range(of: "\u{F8F1}"),
                  let k = Int(rest[open.upperBound..<close.lowerBound]), k < cores.count else { break }
            if open.lowerBound > rest.startIndex { parts.append(Prompt.Part(String(rest[..<open.lowerBound]), markup: true)) }
            parts.append(Prompt.Part(cores[k], markup: false))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(Prompt.Part(String(rest), markup: true)) }
        let prompt = Prompt(parts: parts, addSpecialTokens: false)
        // The markers must have stood for the messages exactly; otherwise all of it is data.
        return prompt.text == plain ? prompt : Prompt(text: plain, addSpecialTokens: false)
    }

    public func finishReply(_ raw: String) -> String { raw.pythonStripped }
}
