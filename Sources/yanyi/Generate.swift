import ArgumentParser
import Engine
import Foundation

/// `yanyi generate`: continue a raw prompt, streaming the text as it comes.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt (raw, no chat template) and stream the text.")

    @OptionGroup var options: ModelOptions

    @Option(help: "The prompt, encoded as the model's tokenizer does (ChatGLM appends [gMASK] <sop>).")
    var prompt: String

    @Option(help: "At most this many new tokens.")
    var maxNewTokens = 128

    @Flag(help: "Greedy decoding (the only mode until the sampling issue lands).")
    var greedy = false

    @Flag(help: "Print tokens/s at the end (to standard error).")
    var stats = false

    func validate() throws {
        if maxNewTokens < 1 { throw ValidationError("--max-new-tokens must be ≥ 1") }
    }

    func run() throws {
        let (folder, lm, _) = try options.load()
        let tokenizer = folder.tokenizer
        let ids = tokenizer.encode(prompt, addSpecialTokens: true)
        guard !ids.isEmpty else { fail("the prompt encodes to no tokens") }
        var stops = Set<Int32>()
        for e in folder.generation?.eosTokenId?.values ?? folder.config.eosTokenId?.values ?? [] { stops.insert(Int32(e)) }
        if let e = tokenizer.specials.eos { stops.insert(e) }
        let session = lm.makeSession(capacity: min(lm.contextLength, ids.count + maxNewTokens))
        var stream = tokenizer.makeStreamingDecoder()
        let out = FileHandle.standardOutput
        let t0 = Measure.now()
        var firstTokenAt = 0.0
        let decoder = GreedyDecoder(model: lm, stopIDs: stops)
        let generated: [Int32]
        do {
            generated = try decoder.run(prompt: ids, maxNewTokens: maxNewTokens, session: session) { id in
                if firstTokenAt == 0 { firstTokenAt = Measure.now() }
                if !stops.contains(id) { out.write(Data(stream.push(id).utf8)) }
                return true
            }
        } catch {
            fail(error.description)
        }
        out.write(Data((stream.flush() + "\n").utf8))
        if stats {
            let t1 = Measure.now()
            let decodeRate = Double(max(generated.count - 1, 0)) / max(t1 - firstTokenAt, 1e-9)
            FileHandle.standardError.write(Data(String(
                format: "prompt %d tokens in %.2f s (%.1f tok/s); %d new tokens, decode %.2f tok/s\n",
                ids.count, firstTokenAt - t0, Double(ids.count) / max(firstTokenAt - t0, 1e-9),
                generated.count, decodeRate).utf8))
        }
    }
}
