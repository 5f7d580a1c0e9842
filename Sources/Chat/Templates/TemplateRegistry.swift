/// Template names -> constructors, with the options a persona may give.
public enum TemplateRegistry {
    public struct Options: Sendable, Equatable {
        /// System / meta text kept on every turn (templates with `acceptsPreamble`).
        public var preamble: String?
        /// ChatGLM's process_response on replies (glm-cosplay only; glm-chat always applies it).
        public var chatGLMPostprocess: Bool

        public init(preamble: String? = nil, chatGLMPostprocess: Bool = false) {
            self.preamble = preamble
            self.chatGLMPostprocess = chatGLMPostprocess
        }
    }

    /// The fixed formats (each written after a seed system's code).
    public static let ids = ["baichuan-qa", "glm-cosplay", "glm-chat", "cutegpt", "cutegpt-readme", "plain"]
    /// The base's own `chat_template` (tokenizer_config.json) when it has one, else `plain`;
    /// resolved when the runtime knows the base (`Persona.onBase`).
    public static let auto = "auto"
    /// Every name a persona may give.
    public static var names: [String] { ids + [auto] }

    public static func make(_ id: String, _ options: Options = Options()) -> (any PromptTemplate)? {
        switch id {
        case "baichuan-qa": BaichuanQATemplate()
        case "glm-cosplay": GLMCosplayTemplate(preamble: options.preamble ?? "", chatGLMPostprocess: options.chatGLMPostprocess)
        case "glm-chat": GLMChatTemplate()
        case "cutegpt": CuteGPTTemplate(variant: .current, preamble: options.preamble)
        case "cutegpt-readme": CuteGPTTemplate(variant: .readme, preamble: options.preamble)
        case "plain", auto: PlainTemplate(preamble: options.preamble ?? "")
        default: nil
        }
    }
}
