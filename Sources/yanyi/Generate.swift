import ArgumentParser
import Engine
import Foundation

/// `yanyi generate`: continue a raw prompt with transformers' `generate` semantics, streaming the
/// text as it comes. Defaults come from the model's generation_config.json; flags override them.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt (raw, no chat template) and stream the text.",
        discussion: """
            Decoding follows transformers 4.30 generate: greedy unless --do-sample; processors \
            (repetition penalty, no-repeat n-gram, min length) then, when sampling, temperature → \
            top-k → top-p → min-p; beam search with --num-beams. Unset options take the model's \
            generation_config.json values, then transformers' defaults (top_k 50 when sampling).
            """)

    @OptionGroup var options: ModelOptions

    @Option(help: "The prompt, encoded as the model's Hugging Face tokenizer does: the tokens it registers as special or added are parsed where they occur (ChatGLM-6B: <sop> <eop> [MASK], not [gMASK]), and ChatGLM appends [gMASK] <sop>.")
    var prompt: String

    @Option(help: "At most this many new tokens (default: generation_config.json, else 128).")
    var maxNewTokens: Int?

    @Option(help: "EOS is suppressed until this many new tokens.")
    var minNewTokens: Int?

    @Option(help: "EOS is suppressed until the sequence (prompt included) is this long.")
    var minLength: Int?

    @Flag(inversion: .prefixedNo, help: "Sample instead of greedy / beam search (default: generation_config.json, else off).")
    var doSample: Bool?

    @Flag(help: "Greedy decoding (same as --no-do-sample).")
    var greedy = false

    @Option(help: "Sampling temperature (> 0).")
    var temperature: Float?

    @Option(help: "Keep the k most likely tokens when sampling (0 = off; transformers' default 50).")
    var topK: Int?

    @Option(help: "Keep the most likely tokens up to this cumulative probability (1 = off).")
    var topP: Float?

    @Option(help: "Drop tokens less likely than this fraction of the most likely one (0 = off).")
    var minP: Float?

    @Option(help: "Penalise every token already in prompt or reply (1 = off; ChatGLM-CuteGPT used 1.1).")
    var repetitionPenalty: Float?

    @Option(help: "No n-gram of this size occurs twice (0 = off).")
    var noRepeatNgramSize: Int?

    @Option(help: "Beam search with this many beams (1–8).")
    var numBeams: Int?

    @Option(help: "Beam scores are Σ log-probs / length^this (> 1 favours longer replies).")
    var lengthPenalty: Double?

    @Option(help: "Beam search stops: true (once num_beams replies are done), false (heuristic), never.")
    var earlyStopping: String?

    @Option(help: "Print this many best beam sequences (n-best) after the reply.")
    var nBest: Int?

    @Option(help: "End-of-sequence ids, comma-separated (default: generation_config.json / config.json).")
    var eos: String?

    @Option(help: "Ids banned as the first new token, comma-separated.")
    var beginSuppressTokens: String?

    @Option(help: "Stop when the reply text contains this (stripped from it). Repeatable.")
    var stop: [String] = []

    @Option(help: "Random seed for sampling (default: a fresh one).")
    var seed: UInt64?

    @Option(help: "Speculative decoding by prompt lookup: each forward also runs up to this many tokens guessed from where the last few tokens occurred before (0–7; 0 = off). The output does not change.")
    var promptLookup: Int?

    @OptionGroup var draft: DraftOptions

    @Flag(help: "Print prompt tokens, prefill time, time to first token, tok/s and finish reason (to standard error).")
    var stats = false

    func validate() throws {
        if let e = earlyStopping, EarlyStopping(e) == nil { throw ValidationError("--early-stopping: true, false or never") }
        if greedy && doSample == true { throw ValidationError("--greedy and --do-sample exclude each other") }
        if let n = nBest, n < 1 { throw ValidationError("--n-best must be ≥ 1") }
        if let m = maxNewTokens, m < 1 { throw ValidationError("--max-new-tokens must be ≥ 1") }
        if let e = eos { _ = try parseIDs(e) }
        if let b = beginSuppressTokens { _ = try parseIDs(b) }
    }

    /// What the flags set (nil where a flag was not given).
    var userParameters: GenerationParameters {
        var p = GenerationParameters()
        p.maxNewTokens = maxNewTokens
        p.minNewTokens = minNewTokens
        p.minLength = minLength
        p.doSample = greedy ? false : doSample
        p.temperature = temperature
        p.topK = topK
        p.topP = topP
        p.minP = minP
        p.repetitionPenalty = repetitionPenalty
        p.noRepeatNgramSize = noRepeatNgramSize
        p.numBeams = numBeams
        p.lengthPenalty = lengthPenalty
        p.earlyStopping = earlyStopping.flatMap(EarlyStopping.init)
        p.numReturnSequences = nBest
        p.eosTokenId = eos.flatMap { try? parseIDs($0) }.map { OneOrMany($0.map(Int.init)) }
        p.beginSuppressTokens = beginSuppressTokens.flatMap { try? parseIDs($0) }.map { $0.map(Int.init) }
        p.stop = stop.isEmpty ? nil : stop
        p.seed = seed
        p.promptLookupNumTokens = promptLookup
        return p
    }

    func run() throws {
        let (folder, lm, pool) = try options.load()
        let draftModel = draft.load(for: folder, precision: options.precision, pool: pool, noCache: options.noCache)
        let tokenizer = folder.tokenizer
        let ids = tokenizer.encode(prompt, addSpecialTokens: true)
        guard !ids.isEmpty else { fail("the prompt encodes to no tokens") }
        let generator: TokenGenerator
        do {
            let defaults = try GenerationParameters.defaults(for: folder)
            let settings = try GenerationParameters.layered(model: defaults, persona: nil, user: userParameters)
                .resolved(promptLength: ids.count)
            generator = try TokenGenerator(model: lm, tokenizer: tokenizer, prompt: ids, settings: settings, draft: draftModel)
        } catch let e as LoadError {
            fail(e.description)
        } catch {
            fail("\(error)")
        }
        let out = FileHandle.standardOutput
        var result: GenerationResult?
        do {
            while let e = try generator.next() {
                switch e {
                case .token(_, let text): if !text.isEmpty { out.write(Data(text.utf8)) }
                case .finished(let r):
                    out.write(Data((r.remainingText + "\n").utf8))
                    result = r
                }
            }
        } catch {
            fail(error.description)
        }
        guard let r = result else { return }
        if r.sequences.count > 1 {
            for (i, s) in r.sequences.enumerated() {
                let text = tokenizer.decode(s.tokens.filter { !generator.settings.eos.contains($0) }, skipSpecialTokens: true)
                out.write(Data(String(format: "#%d score %.4f%@: ", i + 1, s.score, s.finishedByEOS ? " (eos)" : "").utf8))
                out.write(Data((text + "\n").utf8))
            }
        }
        if stats {
            let s = r.stats
            var line = String(format: "prompt %d tokens (%d reused), prefill %.3f s (%.1f tok/s); first token after %.3f s; "
                              + "%d new tokens, decode %.2f tok/s; finished: %@",
                              s.promptTokens, s.reusedPromptTokens, s.prefillSeconds,
                              Double(s.promptTokens - s.reusedPromptTokens) / max(s.prefillSeconds, 1e-9),
                              s.timeToFirstToken, s.generatedTokens, s.tokensPerSecond, r.reason.rawValue)
            if let stop = r.stopString { line += " (\(stop))" }
            if s.beamSteps > 0 { line += ", \(s.beamSteps) beam steps, \(s.forwards) forwards" }
            if draftModel != nil {
                line += String(format: ", %d forwards; draft model: %d of %d guessed tokens picked, guesses ran in %d; %d draft forwards took %.3f s",
                               s.forwards, s.acceptedDraftTokens, s.draftTokens, s.draftSteps, s.draftModelForwards, s.draftModelSeconds)
            } else if s.draftTokens > 0 {
                line += ", \(s.forwards) forwards; prompt lookup: \(s.acceptedDraftTokens) of \(s.draftTokens) guessed tokens picked, guesses ran in \(s.draftSteps)"
            }
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }
}
