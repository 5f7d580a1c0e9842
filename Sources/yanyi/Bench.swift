import ArgumentParser
import Engine
import Foundation

/// `yanyi bench`: load time, memory, prefill and decode speed, and how close decode runs to the
/// memory-bandwidth limit (weight bytes streamed per token ÷ measured read bandwidth).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure load time, peak RSS, prefill and decode tokens/s, and % of the bandwidth limit.")

    @OptionGroup var options: ModelOptions

    @Option(help: "Prompt tokens to prefill.")
    var promptTokens = 512

    @Option(help: "Tokens to decode after the prompt.")
    var genTokens = 128

    @Option(help: "Bytes read to measure memory bandwidth (at least 1 GiB).")
    var bandwidthBytes = 1 << 30

    @Flag(help: "JSON output.")
    var json = false

    @Option(help: "Also decode --gen-tokens steps of beam search with this many beams (2–8): per-step cost vs one beam.")
    var beams = 1

    @Flag(help: "Also measure a change of speaker in a scene: the --adapter set and the --speaker-adapter set (none: the bare base) take turns; time to first token with KV snapshots, without, and with no change.")
    var speakerChange = false

    @Option(help: "The other speaker's adapter, DIR[=SCALE] (repeatable; with --speaker-change).")
    var speakerAdapter: [String] = []

    @Option(help: "Also time up to this many sequences decoding together (one forward per step): step cost of 1, 2, 4, … and this many, relative to one.")
    var batch = 1

    @Option(help: "Also time one speculative step of prompt lookup: a forward of 1 + this many tokens (the last pick and its guesses, 1–7) against a forward of one; with the guesses picked per step (`yanyi generate --stats`, `/stats on`), what it saves.")
    var promptLookup = 0

    @Option(help: "Bytes ahead that decode's int8 products prefetch in each 16-row weight tile (CPUs with VNNI; 0: none). For tuning; default 0.")
    var prefetchBytes: Int?

    @Option(help: "Bytes ahead that the int8 products of 4 or more tokens (batches, prefill) prefetch into L2 while their weight tiles are first read from memory, shared by the tiles read side by side (CPUs with VNNI; 0: none). For tuning; default 8192.")
    var batchPrefetchBytes: Int?

    @Option(help: "Weight tiles decode's int8 products read side by side, 1–4, each a stream of its own (CPUs with VNNI). For tuning; default 4.")
    var decodeTiles: Int?

    @Option(help: "Also run this many pairs of one stream of --gen-tokens through the OpenAI server's whole path (HTTP, scheduler, events; started in this process on the same weights) and bench's own decode loop, in turn: the server's cost as the median of the pairs.")
    var serverPairs = 0

    @Flag(help: "With --batch: sequence i runs under the i-th --adapter alone (mod their count), one adapter group each, instead of all under the set.")
    var batchAdapters = false

    func validate() throws {
        if promptTokens < 2 || genTokens < 1 { throw ValidationError("--prompt-tokens ≥ 2 and --gen-tokens ≥ 1") }
        if bandwidthBytes < 1 << 30 { throw ValidationError("--bandwidth-bytes must be ≥ 1 GiB") }
        if !(1...8).contains(beams) { throw ValidationError("--beams must be 1–8") }
        if !(1...64).contains(batch) { throw ValidationError("--batch must be 1–64") }
        if !(0...PromptLookup.maxTokens).contains(promptLookup) { throw ValidationError("--prompt-lookup must be 0–\(PromptLookup.maxTokens)") }
        if promptLookup > 0 && genTokens < promptLookup + 1 { throw ValidationError("--prompt-lookup needs --gen-tokens ≥ \(promptLookup + 1)") }
        if serverPairs < 0 || serverPairs > 100 { throw ValidationError("--server-pairs must be 0–100") }
        if serverPairs > 0 && (!options.adapter.isEmpty || genTokens < 3) {
            throw ValidationError("--server-pairs runs the bare base (no --adapter) and needs --gen-tokens ≥ 3")
        }
        if batchAdapters && (batch < 2 || options.adapter.isEmpty) { throw ValidationError("--batch-adapters needs --batch ≥ 2 and --adapter") }
    }

    /// Greedy-decodes `n` tokens after `logits` in `session`, one forward each; seconds taken.
    static func greedyDecode(_ lm: any LanguageModel, _ n: Int, _ session: ModelSession, _ logits: inout [Float]) throws -> Double {
        let t = Measure.now()
        for _ in 0..<n { logits = try lm.forward([GreedyDecoder.argmax(logits[...])], session: session, logits: .last) }
        return Measure.now() - t
    }

    func run() throws {
        if let prefetchBytes { Int8Matrix.tilePrefetchBytes = prefetchBytes }
        if let decodeTiles { Int8Matrix.tileDecodeStreams = decodeTiles }
        if let batchPrefetchBytes { Int8Matrix.tileBatchPrefetchBytes = batchPrefetchBytes }
        let t0 = Measure.now()
        let (folder, lm, pool) = options.loadBase()
        let loadSeconds = Measure.now() - t0
        let rssLoaded = Measure.currentRSS() ?? 0
        let peakLoad = Measure.peakRSS()

        // Adapters: read them and check their fit (load), then time switching the set on and off
        // (what a persona change costs before any re-prefill).
        let ta = Measure.now()
        let adapters = options.loadAdapters()
        do { try lm.setAdapters(adapters) } catch { fail(error.description) }
        let adapterLoadSeconds = Measure.now() - ta
        var switches: [Double] = []
        if !adapters.isEmpty {
            for _ in 0..<21 {
                let t = Measure.now()
                try? lm.setAdapters([])
                try? lm.setAdapters(adapters)
                switches.append((Measure.now() - t) / 2)
            }
        }
        let switchSeconds = switches.sorted()[switches.count / 2 ..< switches.count / 2 + (switches.isEmpty ? 0 : 1)].first ?? 0

        // A fixed pseudo-random prompt of ordinary tokens; ChatGLM's ends in [gMASK] <sop> — the
        // model's own ids (config.json), which a stand-in tokenizer need not share.
        var rng = SplitMix64(seed: 42)
        var top = Int32(min(lm.vocabSize, folder.tokenizer.vocabSize))
        if let glm = lm as? ChatGLMModel { top = min(top, glm.maskID) }
        var prompt = (0..<promptTokens).map { _ in Int32(3 + Int(rng.next() % UInt64(max(Int(top) - 3, 1)))) }
        if let glm = lm as? ChatGLMModel {
            prompt[promptTokens - 2] = glm.gmaskID
            prompt[promptTokens - 1] = glm.sopID
        }
        let session = lm.makeSession(capacity: promptTokens + genTokens)
        let tp = Measure.now()
        var logits: [Float]
        do { logits = try lm.forward(prompt, session: session, logits: .last) } catch { fail(error.description) }
        let prefillSeconds = Measure.now() - tp
        _ = GreedyDecoder.argmax(logits[...])     // the first token: what a user waits for after sending
        let firstTokenSeconds = Measure.now() - tp

        // Decode in chunks of 16 tokens, each followed by one read-bandwidth pass, so that every
        // chunk is compared with the bandwidth of its own moment (median of the per-chunk ratios).
        // With adapters, a second session runs the same prompt without them, and the two decode
        // in alternating chunks, so both see the same machine noise.
        let peakRun = Measure.peakRSS()           // before the bandwidth probe's own buffer
        let probe = BandwidthProbe(bytes: bandwidthBytes, pool: pool)
        probe.pass()
        var decodeSeconds = 0.0, baseDecodeSeconds = 0.0
        var chunkRatios: [Double] = []
        do {
            var base: (session: ModelSession, logits: [Float])?
            if !adapters.isEmpty {
                try lm.setAdapters([])
                let s = lm.makeSession(capacity: promptTokens + genTokens)
                base = (s, try lm.forward(prompt, session: s, logits: .last))
            }
            func decode(_ n: Int, _ s: ModelSession, _ logits: inout [Float]) throws -> Double {
                try Bench.greedyDecode(lm, n, s, &logits)
            }
            var done = 0
            while done < genTokens {
                let chunk = min(16, genTokens - done)
                if !adapters.isEmpty { try lm.setAdapters(adapters) }
                let seconds = try decode(chunk, session, &logits)
                decodeSeconds += seconds
                let bw = probe.pass()
                chunkRatios.append(Double(chunk) / seconds * Double(lm.bytesPerToken) / bw)
                if var b = base {
                    try lm.setAdapters([])
                    baseDecodeSeconds += try decode(chunk, b.session, &b.logits)
                    base = b
                }
                done += chunk
            }
            if !adapters.isEmpty { try lm.setAdapters(adapters) }
        } catch {
            fail("\(error)")
        }
        let beamRate = beams > 1 ? Self.beamDecodeRate(lm, folder, prompt, session, beams: beams, steps: genTokens) : 0
        var speakers: SpeakerChangeCost?
        if speakerChange {
            var other = options
            other.adapter = speakerAdapter
            do {
                speakers = try SpeakerChangeCost.measure(lm, prompt: prompt, a: adapters, b: other.loadAdapters(), vocab: top)
            } catch {
                fail("\(error)")
            }
        }
        let batchSteps = batch > 1 ? Self.batchDecode(lm, prompt, session, upTo: batch, steps: genTokens,
                                                      adapters: batchAdapters ? adapters : nil) : []
        let lookupStep = promptLookup > 0 ? Self.lookupStepCost(lm, prompt, session, guesses: promptLookup, steps: genTokens) : nil
        var pairs: [ServerPairs.Pair] = []
        if serverPairs > 0 {
            do { pairs = try ServerPairs.measure(lm, folder, prompt: prompt, tokens: genTokens, rounds: serverPairs) } catch { fail("\(error)") }
        }
        let bandwidth = median(probe.passes)

        let prefillRate = Double(promptTokens) / prefillSeconds
        let decodeRate = Double(genTokens) / decodeSeconds
        let limit = bandwidth / Double(lm.bytesPerToken)
        var r: [(String, String, Any)] = [
            ("model", options.model, options.model),
            ("architecture", folder.family.rawValue, folder.family.rawValue),
            ("precision", lm.precision.rawValue, lm.precision.rawValue),
            ("threads", "\(pool.threads)", pool.threads),
            ("load", String(format: "%.2f s", loadSeconds), loadSeconds),
            ("weights in memory", Self.gib(lm.weightBytes), lm.weightBytes),
            ("RSS after load", Self.gib(rssLoaded), rssLoaded),
            ("peak RSS while loading", Self.gib(peakLoad), peakLoad),
            ("prefill", String(format: "%d tokens, %.2f tok/s", promptTokens, prefillRate), prefillRate),
            ("decode", String(format: "%d tokens, %.2f tok/s", genTokens, decodeRate), decodeRate),
            ("time to first token", String(format: "%.3f s (prompt of %d)", firstTokenSeconds, promptTokens), firstTokenSeconds),
            ("weight bytes per token", Self.gib(lm.bytesPerToken), lm.bytesPerToken),
            ("read bandwidth", String(format: "%.2f GB/s median of %d passes (%.2f–%.2f)", bandwidth / 1e9, probe.passes.count,
                                      (probe.passes.min() ?? 0) / 1e9, (probe.passes.max() ?? 0) / 1e9), bandwidth),
            ("bandwidth limit", String(format: "%.2f tok/s", limit), limit),
            ("decode vs limit", String(format: "%.0f%% (median of %d chunks; overall %.0f%%)", 100 * median(chunkRatios),
                                       chunkRatios.count, 100 * decodeRate / limit), median(chunkRatios)),
            ("peak RSS", Self.gib(peakRun) + " (before the bandwidth buffer)", peakRun),
        ]
        if !adapters.isEmpty {
            let baseRate = Double(genTokens) / baseDecodeSeconds
            let modules = adapters.reduce(0) { $0 + $1.adapter.modules.count }
            let bytes = adapters.reduce(0) { $0 + $1.adapter.byteSize }
            r += [
                ("adapters", "\(adapters.count): \(modules) modules, \(Self.gib(bytes))", adapters.map(\.adapter.path)),
                ("adapter load", String(format: "%.3f s", adapterLoadSeconds), adapterLoadSeconds),
                ("adapter switch", String(format: "%.3f ms (median of %d, no re-prefill)", switchSeconds * 1000, switches.count), switchSeconds),
                ("decode, no adapter", String(format: "%.2f tok/s", baseRate), baseRate),
                ("LoRA decode overhead", String(format: "%.1f%%", 100 * (baseRate / decodeRate - 1)), baseRate / decodeRate - 1),
            ]
        }
        if beams > 1 {
            r += [
                ("beam decode", String(format: "%d beams, %.2f steps/s", beams, beamRate), beamRate),
                ("beam step cost", String(format: "%.2f × one beam (%.2f per beam)", decodeRate / beamRate,
                                          decodeRate / beamRate / Double(beams)), decodeRate / beamRate),
            ]
        }
        if let c = speakers {
            r += [
                ("speaker change", String(format: "%.3f s to first token (restored %d tokens, re-ran %d; median of %d turns)",
                                          c.change, c.restored, c.rerun, c.turns), c.change),
                ("same speaker", String(format: "%.3f s to first token (no change)", c.same), c.same),
                ("change, no snapshots", String(format: "%.3f s to first token (the history re-runs)", c.noSnapshots), c.noSnapshots),
            ]
        }
        if let one = batchSteps.first {
            for b in batchSteps {
                var text = String(format: "step %.1f ms = %.2f × one sequence; %.2f tok/s in all, %.2f each",
                                  b.seconds * 1000, b.seconds / one.seconds, Double(b.sequences) / b.seconds, 1 / b.seconds)
                var value: [String: Any] = ["sequences": b.sequences, "step_seconds": b.seconds, "relative": b.seconds / one.seconds]
                if let alone = b.separately, let base = one.separately {
                    text += String(format: " (one forward each: %.2f ×)", alone / base)
                    value["separately_relative"] = alone / base
                }
                r.append(("batch of \(b.sequences)", text, value))
            }
        }
        if let (one, many) = lookupStep {
            r.append(("prompt lookup step", String(format: "1 + %d tokens %.1f ms = %.2f × one token (%.1f ms); it pays when more than %.2f guesses a step are picked",
                                                   promptLookup, many * 1000, many / one, one * 1000, many / one - 1),
                      ["guesses": promptLookup, "step_seconds": many, "one_token_seconds": one, "relative": many / one]))
        }
        if !pairs.isEmpty {
            let diffs = pairs.map { $0.server / $0.bench - 1 }
            r.append(("server vs bench", String(format: "%+.1f%% (median of %d pairs, one stream of %d tokens each: %@)", 100 * median(diffs),
                                                 pairs.count, genTokens,
                                                 pairs.map { String(format: "%.2f/%.2f", $0.server, $0.bench) }.joined(separator: " ")),
                      ["median": median(diffs), "server": pairs.map(\.server), "bench": pairs.map(\.bench)]))
        }
        if json {
            var obj: [String: Any] = [:]
            for (k, _, v) in r { obj[k.replacingOccurrences(of: " ", with: "_")] = v }
            let d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else {
            for (k, v, _) in r { print(k.padding(toLength: 24, withPad: " ", startingAt: 0) + v) }
            print(String(format: "decode runs at %.0f%% of the memory-bandwidth limit", 100 * median(chunkRatios)))
        }
    }

    /// Steps per second of a beam search (no EOS, so every step runs all beams) continuing the
    /// prompt `session` already holds; each beam's session holds prompt + steps positions.
    static func beamDecodeRate(_ lm: any LanguageModel, _ folder: ModelFolder, _ prompt: [Int32],
                               _ session: ModelSession, beams: Int, steps: Int) -> Double {
        session.truncate(to: prompt.count)
        var s = GenerationSettings()
        s.numBeams = beams
        s.maxNewTokens = steps
        s.earlyStopping = .never
        do {
            let g = try TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: prompt, settings: s, session: session)
            while let e = try g.next() {
                if case .finished(let r) = e { return Double(r.stats.beamSteps) / r.stats.decodeSeconds }
            }
        } catch {
            fail(error.description)
        }
        return 0
    }

    /// Median seconds per decode step of 1, 2, 4, … and `upTo` sequences decoding together (one
    /// `forwardBatch` a step), and of the same sequences each run by its own `forward` (the weights
    /// read once per sequence: what a step cost before batching). Each sequence is a copy of
    /// `session` (which holds the prompt) and decodes its own greedy continuation from its own
    /// first token; sizes and the two ways take turns in chunks of 8 steps, each chunk starting
    /// again from the prompt, so that all see the same context lengths and the same machine noise.
    /// `adapters`: sequence i runs under adapter i mod count alone (one group each) instead of the
    /// active set (then only batched: a lone forward takes the active set).
    static func batchDecode(_ lm: any LanguageModel, _ prompt: [Int32], _ session: ModelSession, upTo n: Int, steps: Int,
                            adapters: [(adapter: LoRAAdapter, multiplier: Float)]?)
        -> [(sequences: Int, seconds: Double, separately: Double?)] {
        session.truncate(to: prompt.count)
        let sizes = Array(Set(Array(sequence(first: 1) { $0 * 2 }.prefix { $0 < n }) + [n])).sorted()
        let chunk = 8
        do {
            let stacks = try adapters.map { list in try (0..<n).map { i in try lm.makeAdapterStack([list[i % list.count]]) } }
            let sessions = (0..<n).map { _ in session.fork(capacity: prompt.count + chunk) }
            var batched: [Int: [Double]] = [:], separate: [Int: [Double]] = [:]
            for _ in 0..<max(1, steps / chunk) {
                for size in sizes {
                    for together in stacks == nil ? [true, false] : [true] {
                        let live = Array(sessions.prefix(size))
                        for s in live { s.truncate(to: prompt.count) }
                        var next = (0..<size).map { Int32(100 + 7 * $0) }
                        let t = Measure.now()
                        for _ in 0..<chunk {
                            let logits = together
                                ? try lm.forwardBatch((0..<size).map { BatchItem(tokens: [next[$0]], session: live[$0], adapters: stacks?[$0]) })
                                : try (0..<size).map { try lm.forward([next[$0]], session: live[$0], logits: .last) }
                            next = logits.map { GreedyDecoder.argmax($0[...]) }
                        }
                        let seconds = (Measure.now() - t) / Double(chunk)
                        if together { batched[size, default: []].append(seconds) } else { separate[size, default: []].append(seconds) }
                    }
                }
            }
            session.truncate(to: prompt.count)
            return sizes.map { ($0, median(batched[$0]!), separate[$0].map(median)) }
        } catch {
            fail("\(error)")
        }
    }

    /// Median seconds of a forward of one token and of 1 + `guesses` tokens (all logits: a speculative
    /// step), each after the prompt `session` holds, taking turns `steps` times.
    static func lookupStepCost(_ lm: any LanguageModel, _ prompt: [Int32], _ session: ModelSession, guesses: Int, steps: Int)
        -> (one: Double, many: Double) {
        var one: [Double] = [], many: [Double] = []
        do {
            for i in 0..<steps {
                let tokens = (0...guesses).map { Int32(100 + 7 * ((i + $0) % 50)) }
                session.truncate(to: prompt.count)
                var t = Measure.now()
                _ = try lm.forward([tokens[0]], session: session, logits: .last)
                one.append(Measure.now() - t)
                session.truncate(to: prompt.count)
                t = Measure.now()
                _ = try lm.forward(tokens, session: session, logits: .all)
                many.append(Measure.now() - t)
            }
        } catch {
            fail("\(error)")
        }
        session.truncate(to: prompt.count)
        return (median(one), median(many))
    }

    static func gib(_ b: Int) -> String {
        b >= 1 << 30 ? String(format: "%.2f GiB", Double(b) / Double(1 << 30)) : String(format: "%.1f MiB", Double(b) / Double(1 << 20))
    }
}
