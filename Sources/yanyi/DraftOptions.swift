import ArgumentParser
import Chat
import Engine
import Foundation

/// Speculative decoding with a draft model, for the commands that generate.
struct DraftOptions: ParsableArguments {
    @Option(name: .customLong("draft-model"), help: "A smaller Hugging Face model folder with the same tokenizer: each forward also runs the tokens it guesses come next (in place of prompt lookup). The output does not change.")
    var model: String?

    @Option(name: .customLong("draft-tokens"), help: "With --draft-model: most tokens it guesses a forward (1–7).")
    var tokens = 4

    @Option(name: .customLong("draft-p-min"), help: "With --draft-model: stop guessing after a token it gives less than this probability (0–1).")
    var minProbability: Float = 0.3

    func validate() throws {
        if !(1...PromptLookup.maxTokens).contains(tokens) { throw ValidationError("--draft-tokens must be 1–\(PromptLookup.maxTokens)") }
        if !(0...1).contains(minProbability) { throw ValidationError("--draft-p-min must be in 0–1") }
    }

    /// What the chat's model host loads beside each base (nil without --draft-model).
    var setting: DraftSetting? { model.map { DraftSetting(path: $0, tokens: tokens, minProbability: minProbability) } }

    /// The draft model for `target`, or the one-line error and exit 1 (nil without --draft-model).
    func load(for target: ModelFolder, precision: Precision, pool: ThreadPool, noCache: Bool) -> DraftModel? {
        guard let setting else { return nil }
        do {
            return try setting.load(for: target, precision: precision, pool: pool, cache: noCache ? nil : .standard())
        } catch {
            fail(error.description)
        }
    }
}
