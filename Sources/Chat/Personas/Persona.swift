import Foundation

/// A character (or assistant) to chat with: who speaks, in which seed format, on which base model
/// with which adapters, and how to sample. Read from `Personas/<group>/<id>.yaml` or a character card.
public struct Persona: Sendable, Equatable {
    /// `<group>/<file name without .yaml>`, e.g. `sanguo/liubei`.
    public var id: String
    public var name: String
    /// Folder it lives in: `sanguo`, `xiyou`, `shuihu`, `honglou`, `assistants`, ….
    public var group: String
    /// Book or collection shown with the group (三国演义 …).
    public var book: String?
    public var description: String
    /// First messages; the first is the default, the others are alternatives (card "swipes").
    public var greetings: [String]
    /// Registry name of the prompt template (`auto`: the base's own chat template, else `plain`).
    public var template: String
    /// For `auto`: the chat template of the base this persona runs on, once the runtime has read
    /// it (nil: not read yet, or the base has none, and `plain` applies).
    public var baseChatTemplate: ModelChatTemplate?
    /// System / meta text kept on every turn (templates that have room for one).
    public var preamble: String?
    /// How a cosplay turn hands over to this character: `{context}，{name}{verb}：`.
    public var speaker: Speaker?
    /// Default scene for the first turn of a cosplay conversation.
    public var scene: String?
    /// Lorebooks (names of `Personas/lore/<name>.json`) whose entries the prompt gets.
    public var lore: [String] = []
    /// Base model folder, relative to the repository's `Models/`.
    public var model: String
    public var adapters: [AdapterRef]
    public var sampling: Sampling
    /// Extra stop strings on top of the template's own.
    public var stop: [String]
    public var history: HistoryPolicy
    /// Apply ChatGLM's process_response to replies (glm-cosplay).
    public var chatGLMPostprocess: Bool
    /// Theme accent for this persona: a theme role name or `#rrggbb`.
    public var accent: String?
    /// Where it came from (file path), for messages.
    public var source: String
    /// The character card it was imported from, whole, so exporting it again keeps every field.
    public var card: JSON?

    public struct Speaker: Sendable, Equatable {
        /// The name the novel uses for the speaker (玄德, 孔明, 行者 …).
        public var name: String
        /// 曰, 道, 说, 笑道 ….
        public var verb: String

        public init(name: String, verb: String = "曰") {
            self.name = name
            self.verb = verb
        }
    }

    /// An adapter folder relative to `Models/`, applied with `scale` (multiplying alpha/r).
    public struct AdapterRef: Sendable, Equatable {
        public var path: String
        public var scale: Double

        public init(path: String, scale: Double = 1.0) {
            self.path = path
            self.scale = scale
        }
    }

    /// Sampling defaults; nil leaves the engine's (or model's generation_config) choice.
    public struct Sampling: Sendable, Equatable {
        public var temperature: Double?
        public var topP: Double?
        public var topK: Int?
        public var repetitionPenalty: Double?
        /// transformers' no_repeat_ngram_size.
        public var noRepeatNgramSize: Int?
        /// Yanyi's run guard (RunGuard): no unit of 1–4 tokens more than this many times in a row.
        public var maxRepeatRun: Int?
        public var maxNewTokens: Int?
        public var doSample: Bool?
        public var numBeams: Int?
        /// History kept, in the template's unit (utterances for glm-cosplay, rounds otherwise).
        public var maxHistory: Int?
        /// Speculative decoding by prompt lookup: draft tokens per forward (0 = off; output unchanged).
        public var promptLookupNumTokens: Int?

        public init(temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil,
                    repetitionPenalty: Double? = nil, maxNewTokens: Int? = nil, doSample: Bool? = nil,
                    numBeams: Int? = nil, maxHistory: Int? = nil, noRepeatNgramSize: Int? = nil, maxRepeatRun: Int? = nil) {
            self.noRepeatNgramSize = noRepeatNgramSize
            self.maxRepeatRun = maxRepeatRun
            self.temperature = temperature
            self.topP = topP
            self.topK = topK
            self.repetitionPenalty = repetitionPenalty
            self.maxNewTokens = maxNewTokens
            self.doSample = doSample
            self.numBeams = numBeams
            self.maxHistory = maxHistory
        }
    }

    public struct HistoryPolicy: Sendable, Equatable {
        public enum Overflow: String, Sendable, CaseIterable {
            /// Drop the oldest history until prompt + reply fit the context.
            case dropOldest = "drop-oldest"
            /// Refuse the turn and say so (the user clears or branches).
            case refuse
        }
        public var overflow: Overflow
        /// Whether the greeting counts as history in prompts (the seeds had none).
        public var includeGreeting: Bool

        public init(overflow: Overflow = .dropOldest, includeGreeting: Bool = false) {
            self.overflow = overflow
            self.includeGreeting = includeGreeting
        }
    }

    public init(id: String, name: String, group: String, book: String? = nil, description: String = "",
                greetings: [String] = [], template: String, preamble: String? = nil, speaker: Speaker? = nil,
                scene: String? = nil, model: String, adapters: [AdapterRef] = [], sampling: Sampling = Sampling(),
                stop: [String] = [], history: HistoryPolicy = HistoryPolicy(), chatGLMPostprocess: Bool = false,
                accent: String? = nil, source: String = "", card: JSON? = nil) {
        self.id = id
        self.name = name
        self.group = group
        self.book = book
        self.description = description
        self.greetings = greetings
        self.template = template
        self.preamble = preamble
        self.speaker = speaker
        self.scene = scene
        self.model = model
        self.adapters = adapters
        self.sampling = sampling
        self.stop = stop
        self.history = history
        self.chatGLMPostprocess = chatGLMPostprocess
        self.accent = accent
        self.source = source
        self.card = card
    }

    /// The template with this persona's options (validated personas always have one).
    public var promptTemplate: any PromptTemplate {
        if template == TemplateRegistry.auto, let baseChatTemplate {
            return ChatTemplatePrompt(model: baseChatTemplate, preamble: preamble ?? "")
        }
        return TemplateRegistry.make(template, .init(preamble: preamble, chatGLMPostprocess: chatGLMPostprocess))
            ?? PlainTemplate(preamble: preamble ?? "")
    }

    /// This persona on the base at `folder`: for `auto`, with that base's chat template (read
    /// from its tokenizer_config.json; none: `plain`). Other templates are left as they are.
    public func onBase(_ folder: String) throws(ChatError) -> Persona {
        guard template == TemplateRegistry.auto else { return self }
        var p = self
        p.baseChatTemplate = try ModelChatTemplate.load(folder: folder)
        return p
    }

    /// The template in words: `auto` says what it resolved to.
    public var templateLabel: String {
        guard template == TemplateRegistry.auto else { return template }
        return baseChatTemplate == nil ? "auto (plain)" : "auto (chat_template)"
    }

    /// Stop rule: the template's plus this persona's stop strings.
    public var stopRule: StopRule {
        var rule = promptTemplate.stop
        for s in stop where !rule.texts.contains(s) { rule.texts.append(s) }
        return rule
    }

    /// What the user typed, as the utterance that enters history: for cosplay personas the
    /// narrative plus `{name}{verb}：` handing the turn to this character; otherwise unchanged.
    public func userUtterance(_ typed: String) -> String {
        guard template == "glm-cosplay", let speaker else { return typed }
        return GLMCosplayTemplate.input(context: typed, speaker: speaker.name, verb: speaker.verb)
    }

    /// The reply as stored: cut at the first stop string, then the template's post-processing.
    public func finishReply(_ raw: String) -> String {
        promptTemplate.finishReply(stopRule.cut(raw))
    }

    /// Folders this persona needs under `modelsRoot` that are missing (checked at load time,
    /// not when personas are validated: the models may be installed later).
    public func missingFolders(modelsRoot: String) -> [String] {
        let root = modelsRoot.hasSuffix("/") ? modelsRoot : modelsRoot + "/"
        return ([model] + adapters.map(\.path)).map { root + $0 }.filter { !isDirectory($0) }
    }
}

func isDirectory(_ path: String) -> Bool {
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
}
