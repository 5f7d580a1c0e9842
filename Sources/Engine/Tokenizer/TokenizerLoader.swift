import Foundation

/// Opens the tokenizer of a Hugging Face model folder: tokenizer_config.json,
/// special_tokens_map.json and added_tokens.json around tokenizer.model or ChatGLM's ice_text.model.
public enum TokenizerLoader {
    public static func load(folder: String) throws(LoadError) -> any Tokenizer {
        func path(_ name: String) -> String { joinPath(folder, name) }
        let fm = FileManager.default

        var config = try JSONFile.decodeIfPresent(TokenizerConfig.self, from: path("tokenizer_config.json")) ?? TokenizerConfig()
        config = config.merged(with: try JSONFile.decodeIfPresent(TokenizerConfig.self, from: path("special_tokens_map.json")))
        let added = try JSONFile.decodeIfPresent([String: Int32].self, from: path("added_tokens.json")) ?? [:]

        let isChatGLM = config.tokenizerClass == "ChatGLMTokenizer" || fm.fileExists(atPath: path("ice_text.model"))
        if isChatGLM {
            let file = path("ice_text.model")
            guard fm.fileExists(atPath: file) else {
                throw LoadError(folder, "tokenizer_config.json names ChatGLMTokenizer but ice_text.model is missing")
            }
            return try ChatGLMTokenizer(model: SentencePieceModel(path: file), config: config)
        }
        let file = path("tokenizer.model")
        guard fm.fileExists(atPath: file) else {
            if fm.fileExists(atPath: path("tokenizer.json")) {
                throw LoadError(folder, "only tokenizer.json (a fast tokenizer) is present; Yanyi needs the SentencePiece tokenizer.model")
            }
            throw LoadError(folder, "no tokenizer.model or ice_text.model")
        }
        let model = try SentencePieceModel(path: file)
        for (text, id) in added where id < 0 {
            throw LoadError(path("added_tokens.json"), "token '\(text)' has negative id \(id)")
        }
        return SentencePieceTokenizer(model: model, config: config, addedTokens: added)
    }
}
