import Chat
import Engine
import Foundation

/// The generation settings a request asks for: OpenAI's fields, and the names
/// text-generation-webui, llama.cpp and SillyTavern use for the same things. What the client
/// leaves out stays unset, so the layers below (the persona, then generation_config.json) decide.
///
/// Sampling: `temperature: 0` means greedy, a temperature above 0 turns sampling on; `do_sample`
/// (text-generation-webui's) says it outright and wins. Neither given: the layers below decide.
struct SamplingRequest {
    /// Only what the client set.
    var parameters = GenerationParameters()
    var maxTokens: Int?
    /// `stop`, `stopping_strings` and `stop_sequence` together.
    var stops: [String] = []
    var n = 1
    var stream = false
    /// `stream_options.include_usage`: a last chunk with `usage` and no choices.
    var includeUsage = false
    /// Generated ids in each choice (`return_tokens`, llama.cpp's name).
    var returnTokens = false
    /// Fields the server knows but does not implement, sent with a value that would matter
    /// (`frequency_penalty` ≠ 0, …): accepted, ignored, and named in the `X-Yanyi-Ignored` header.
    var ignored: [String] = []

    /// Fields other servers implement that this one accepts and ignores, and the values at
    /// which ignoring them changes nothing.
    static let ignorable: [(key: String, neutral: JSON)] = [
        ("frequency_penalty", .int(0)), ("presence_penalty", .int(0)), ("typical_p", .int(1)), ("typical", .int(1)),
        ("tfs", .int(1)), ("top_a", .int(0)), ("epsilon_cutoff", .int(0)), ("eta_cutoff", .int(0)),
        ("mirostat_mode", .int(0)), ("mirostat", .int(0)), ("penalty_alpha", .int(0)), ("encoder_repetition_penalty", .int(1)),
        ("repetition_penalty_range", .int(0)), ("rep_pen_range", .int(0)), ("repeat_last_n", .int(0)),
        ("custom_token_bans", .string("")),
        ("banned_strings", .array([])), ("logit_bias", .object([:])), ("guidance_scale", .int(1)), ("negative_prompt", .string("")),
        ("grammar_string", .string("")), ("grammar", .string("")), ("json_schema", .object([:])), ("dry_multiplier", .int(0)),
        ("xtc_probability", .int(0)), ("smoothing_factor", .int(0)), ("nsigma", .int(0)), ("top_n_sigma", .int(0)),
        ("dynamic_temperature", .bool(false)), ("tfs_z", .int(1)), ("dynatemp_range", .int(0)), ("penalize_nl", .bool(false)),
        ("min_keep", .int(0)), ("skew", .int(0)),
    ]

    static func isNeutral(_ v: JSON, _ neutral: JSON) -> Bool {
        switch (v, neutral) {
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .int(let b)): return a == Double(b)
        case (.array(let a), _): return a.isEmpty
        case (.object(let o), _): return o.isEmpty
        case (.string(let s), _): return s.isEmpty || s == neutral.string
        default: return v == neutral
        }
    }

    init(_ f: RequestFields, maxTokensCap: Int, maxChoices: Int) throws(APIError) {
        if let key = f.first(["max_tokens", "max_completion_tokens", "max_new_tokens", "n_predict"]) {
            let m = try f.int(key)!
            guard m >= 1 else { throw APIError.invalid("'\(key)' must be at least 1 (got \(m)).", param: key) }
            guard m <= maxTokensCap else {
                throw APIError.invalid("'\(key)' is \(m); this server allows at most \(maxTokensCap) (yanyi serve --max-tokens).", param: key,
                                       code: "max_tokens_too_large")
            }
            maxTokens = m
        }
        if let t = try f.double("temperature", in: 0...100, "a number from 0 to 100") {
            if t == 0 { parameters.doSample = false } else { parameters.doSample = true; parameters.temperature = Float(t) }
        }
        if let d = try f.bool("do_sample") { parameters.doSample = d }
        if let p = try f.double("top_p", in: 0...1, "a number from 0 to 1") { parameters.topP = Float(p) }
        if let k = try f.int("top_k") { parameters.topK = max(k, 0) }   // llama.cpp: ≤ 0 is off; transformers: 0 is off
        if let m = try f.double("min_p", in: 0...1, "a number from 0 to 1") { parameters.minP = Float(m) }
        if let key = f.first(["repetition_penalty", "rep_pen", "repeat_penalty"]),
           let r = try f.double(key, in: 0.01...10, "a number above 0, at most 10") {
            parameters.repetitionPenalty = Float(r)
        }
        if let s = try f.int("no_repeat_ngram_size", in: 0...64, "a whole number from 0 to 64") { parameters.noRepeatNgramSize = s }
        if let s = try f.int("max_repeat_run", in: 0...64, "a whole number from 0 to 64") { parameters.maxRepeatRun = s }
        if let key = f.first(["min_tokens", "min_length"]), let m = try f.int(key, in: 0...(1 << 20), "a whole number ≥ 0") {
            parameters.minNewTokens = m
        }
        // llama.cpp's ignore_eos and text-generation-webui's ban_eos_token: the end-of-sequence token
        // is never sampled, so the reply runs to max_tokens or a stop string.
        for key in ["ignore_eos", "ban_eos_token"] where try f.bool(key) == true { parameters.minNewTokens = 1 << 30 }
        if let b = try f.int("num_beams", in: 1...8, "a whole number from 1 to 8") { parameters.numBeams = b }
        if let l = try f.double("length_penalty", in: -10...10, "a number from -10 to 10") { parameters.lengthPenalty = l }
        if let e = try f.bool("early_stopping") { parameters.earlyStopping = e ? .yes : .heuristic }
        if let s = try f.int("seed") { parameters.seed = s < 0 ? nil : UInt64(s) }   // -1: random (llama.cpp, SillyTavern)

        for key in ["stop", "stopping_strings", "stop_sequence"] {
            for s in try f.strings(key) ?? [] where !s.isEmpty && !stops.contains(s) { stops.append(s) }
        }
        guard stops.count <= 64 else { throw APIError.invalid("At most 64 stop strings (got \(stops.count)).", param: "stop") }

        n = try f.int("n", in: 1...maxChoices, "a whole number from 1 to \(maxChoices)") ?? 1
        if let b = try f.int("best_of"), b != n && b != 1 {
            throw APIError.unsupported("best_of", "'best_of' other than 1 or n is not supported; ask for n choices instead.")
        }
        stream = try f.bool("stream") ?? false
        if let o = f.value("stream_options") {
            guard let obj = o.object else { throw APIError.invalid("'stream_options' must be an object.", param: "stream_options") }
            includeUsage = try RequestFields(object: obj).bool("include_usage") ?? false
        }
        returnTokens = try f.bool("return_tokens") ?? false
        for (key, neutral) in Self.ignorable {
            if let v = f.value(key), !Self.isNeutral(v, neutral) { ignored.append(key) }
        }
    }

    /// The seed of choice `i` (n > 1 runs one after another; each gets its own seed).
    func seed(choice i: Int) -> UInt64? { parameters.seed.map { $0 &+ UInt64(i) } }
}
