/// config.json -> the code that builds the model: one entry per architecture family.
public enum ModelRegistry {
    typealias Builder = @Sendable (ModelFolder, WeightLoader, ThreadPool) throws(LoadError) -> any LanguageModel

    static let builders: [ModelFamily: Builder] = [
        .llama: { m, w, pool throws(LoadError) in try LlamaModel.load(m, w, pool: pool) },
        .baichuan: { m, w, pool throws(LoadError) in try Baichuan.load(m, w, pool: pool) },
        .chatGLM: { m, w, pool throws(LoadError) in try ChatGLMModel.load(m, w, pool: pool) },
    ]

    /// Loads the weights of an opened folder, quantizing linear layers as they stream in. With a
    /// `cache`, an int8 load maps the weights that an earlier load of the same files quantized,
    /// or writes them for the next one (f32 loads do not use it: fp32 copies are bigger than
    /// the checkpoint and as quick to make as to read).
    public static func load(_ folder: ModelFolder, precision: Precision = .int8, block: Int = 32,
                            pool: ThreadPool, cache: WeightCache? = nil) throws(LoadError) -> any LanguageModel {
        guard let build = builders[folder.family] else {
            throw LoadError(folder.path, "no builder for \(folder.family.rawValue)")
        }
        guard let cache, precision == .int8 else {
            return try build(folder, WeightLoader(checkpoint: folder.checkpoint, precision: precision, block: block, pool: pool), pool)
        }
        return try cache.load(folder, precision: precision, block: block, pool: pool) { (w) throws(LoadError) in try build(folder, w, pool) }
    }
}
