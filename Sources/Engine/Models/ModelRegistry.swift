/// config.json -> the code that builds the model: one entry per architecture family.
public enum ModelRegistry {
    typealias Builder = @Sendable (ModelFolder, WeightLoader, ThreadPool) throws(LoadError) -> any LanguageModel

    static let builders: [ModelFamily: Builder] = [
        .llama: { m, w, pool throws(LoadError) in try LlamaModel.load(m, w, pool: pool) },
        .baichuan: { m, w, pool throws(LoadError) in try Baichuan.load(m, w, pool: pool) },
        .chatGLM: { m, w, pool throws(LoadError) in try ChatGLMModel.load(m, w, pool: pool) },
    ]

    /// Loads the weights of an opened folder, quantizing linear layers as they stream in.
    public static func load(_ folder: ModelFolder, precision: Precision = .int8, block: Int = 32,
                            pool: ThreadPool) throws(LoadError) -> any LanguageModel {
        guard let build = builders[folder.family] else {
            throw LoadError(folder.path, "no builder for \(folder.family.rawValue)")
        }
        return try build(folder, WeightLoader(checkpoint: folder.checkpoint, precision: precision, block: block, pool: pool), pool)
    }
}
