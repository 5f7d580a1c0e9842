import Engine

extension Persona.Sampling {
    /// The persona's layer of generate keywords (between generation_config.json and the user's).
    /// `max_history` is the chat layer's own and stays out.
    public var generationParameters: GenerationParameters {
        var p = GenerationParameters()
        p.temperature = temperature.map { Float($0) }
        p.topP = topP.map { Float($0) }
        p.topK = topK
        p.repetitionPenalty = repetitionPenalty.map { Float($0) }
        p.noRepeatNgramSize = noRepeatNgramSize
        p.maxRepeatRun = maxRepeatRun
        p.maxNewTokens = maxNewTokens
        p.doSample = doSample
        p.numBeams = numBeams
        p.promptLookupNumTokens = promptLookupNumTokens
        return p
    }
}

/// What the user set with `/set` (or the TUI's sliders): the top layer over the model's
/// generation_config.json and the persona's sampling. Unset keys fall through to the layers below.
public struct SamplingOverrides: Sendable, Equatable {
    public var parameters = GenerationParameters()
    /// History kept, in the template's unit (nil: the persona's, then the template's default;
    /// negative: everything that fits).
    public var maxHistory: Int?

    public static let keys = ["temperature", "top_p", "top_k", "min_p", "repetition_penalty", "no_repeat_ngram_size",
                              "max_repeat_run", "max_new_tokens", "do_sample", "num_beams", "length_penalty", "max_history", "seed",
                              "prompt_lookup_num_tokens"]

    public init() {}

    /// Sets `key` from its text; `default` (or an empty value) clears it. The value is checked on
    /// its own here; combinations (sampling at temperature 0) are checked by the runtime.
    public mutating func set(_ key: String, _ value: String) throws(ChatError) {
        guard Self.keys.contains(key) else {
            throw ChatError("", field: key, "unknown setting; known: \(Self.keys.joined(separator: ", "))")
        }
        let v = value.pythonStripped
        if v.isEmpty || v == "default" {
            unset(key)
            return
        }
        func bad(_ what: String) -> ChatError { ChatError("", field: key, "must be \(what) (got \(v.quotedForError))") }
        func float(_ ok: (Float) -> Bool, _ what: String) throws(ChatError) -> Float {
            guard let f = Float(v), f.isFinite, ok(f) else { throw bad(what) }
            return f
        }
        func int(_ ok: (Int) -> Bool, _ what: String) throws(ChatError) -> Int {
            guard let i = Int(v), ok(i) else { throw bad(what) }
            return i
        }
        switch key {
        case "temperature": parameters.temperature = try float({ $0 >= 0 && $0 <= 100 }, "a number from 0 to 100")
        case "top_p": parameters.topP = try float({ $0 > 0 && $0 <= 1 }, "a number above 0 and at most 1")
        case "top_k": parameters.topK = try int({ $0 >= 0 }, "a whole number ≥ 0 (0 = off)")
        case "min_p": parameters.minP = try float({ $0 >= 0 && $0 <= 1 }, "a number from 0 to 1 (0 = off)")
        case "repetition_penalty": parameters.repetitionPenalty = try float({ $0 > 0 && $0 <= 10 }, "a number above 0, at most 10")
        case "no_repeat_ngram_size": parameters.noRepeatNgramSize = try int({ $0 >= 0 && $0 <= 64 }, "a whole number from 0 to 64 (0 = off)")
        case "max_repeat_run": parameters.maxRepeatRun = try int({ $0 >= 0 && $0 <= 64 }, "a whole number from 0 to 64 (0 = off)")
        case "max_new_tokens": parameters.maxNewTokens = try int({ $0 >= 1 && $0 <= 1 << 20 }, "a whole number ≥ 1")
        case "num_beams": parameters.numBeams = try int({ (1...8).contains($0) }, "a whole number from 1 to 8")
        case "length_penalty": parameters.lengthPenalty = Double(try float({ $0 >= -10 && $0 <= 10 }, "a number from -10 to 10"))
        case "max_history": maxHistory = try int({ _ in true }, "a whole number (negative: keep all)")
        case "prompt_lookup_num_tokens":
            parameters.promptLookupNumTokens = try int({ (0...PromptLookup.maxTokens).contains($0) },
                                                       "a whole number from 0 to \(PromptLookup.maxTokens) (0 = off)")
        case "do_sample":
            switch v.lowercased() {
            case "true", "on", "yes", "1": parameters.doSample = true
            case "false", "off", "no", "0": parameters.doSample = false
            default: throw bad("true or false")
            }
        default:   // seed
            guard let s = UInt64(v) else { throw bad("a whole number ≥ 0") }
            parameters.seed = s
        }
    }

    public mutating func unset(_ key: String) {
        switch key {
        case "temperature": parameters.temperature = nil
        case "top_p": parameters.topP = nil
        case "top_k": parameters.topK = nil
        case "min_p": parameters.minP = nil
        case "repetition_penalty": parameters.repetitionPenalty = nil
        case "no_repeat_ngram_size": parameters.noRepeatNgramSize = nil
        case "max_repeat_run": parameters.maxRepeatRun = nil
        case "max_new_tokens": parameters.maxNewTokens = nil
        case "do_sample": parameters.doSample = nil
        case "num_beams": parameters.numBeams = nil
        case "length_penalty": parameters.lengthPenalty = nil
        case "max_history": maxHistory = nil
        case "seed": parameters.seed = nil
        case "prompt_lookup_num_tokens": parameters.promptLookupNumTokens = nil
        default: break
        }
    }

    /// The keys set here with their values, in `keys` order.
    public var entries: [(key: String, value: String)] {
        Self.keys.compactMap { k in Self.text(k, in: parameters, maxHistory: maxHistory).map { (k, $0) } }
    }

    /// `key`'s value in a parameter set, as text (nil when unset there).
    static func text(_ key: String, in p: GenerationParameters, maxHistory: Int?) -> String? {
        switch key {
        case "temperature": p.temperature.map { "\($0)" }
        case "top_p": p.topP.map { "\($0)" }
        case "top_k": p.topK.map { "\($0)" }
        case "min_p": p.minP.map { "\($0)" }
        case "repetition_penalty": p.repetitionPenalty.map { "\($0)" }
        case "no_repeat_ngram_size": p.noRepeatNgramSize.map { "\($0)" }
        case "max_repeat_run": p.maxRepeatRun.map { "\($0)" }
        case "max_new_tokens": p.maxNewTokens.map { "\($0)" }
        case "do_sample": p.doSample.map { "\($0)" }
        case "num_beams": p.numBeams.map { "\($0)" }
        case "length_penalty": p.lengthPenalty.map { "\($0)" }
        case "max_history": maxHistory.map { "\($0)" }
        case "seed": p.seed.map { "\($0)" }
        case "prompt_lookup_num_tokens": p.promptLookupNumTokens.map { "\($0)" }
        default: nil
        }
    }
}

/// One setting as the next reply will use it, and the layer it comes from.
public struct ResolvedSetting: Sendable, Equatable {
    public enum Layer: String, Sendable { case builtIn = "default", model, persona, user }
    public var key: String
    /// The value as text ("random" for an unset seed, "all" for unlimited history).
    public var value: String
    public var layer: Layer
}
