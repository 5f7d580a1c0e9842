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

    public static let ids = ["baichuan-qa", "glm-cosplay", "glm-chat", "cutegpt", "cutegpt-readme", "plain"]

    public static func make(_ id: String, _ options: Options = Options()) -> (any PromptTemplate)? {
        switch id {
        case "baichuan-qa": BaichuanQATemplate()
        case "glm-cosplay": GLMCosplayTemplate(preamble: options.preamble ?? "", chatGLMPostprocess: options.chatGLMPostprocess)
        case "glm-chat": GLMChatTemplate()
        case "cutegpt": CuteGPTTemplate(variant: .current, preamble: options.preamble)
        case "cutegpt-readme": CuteGPTTemplate(variant: .readme, preamble: options.preamble)
        case "plain": PlainTemplate(preamble: options.preamble ?? "")
        default: nil
        }
    }
}
