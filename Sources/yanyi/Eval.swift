import ArgumentParser
import Engine
import Foundation

/// `yanyi eval`: perplexity on a text file; with `--against f32`, what int8 costs on this model
/// (KL divergence and top-1 agreement per position, as llama-perplexity --kl-divergence).
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Perplexity of a text; --against f32 adds KL divergence and top-1 agreement vs fp32.")

    @OptionGroup var options: ModelOptions

    @Option(help: "A UTF-8 text file.")
    var text: String

    @Option(help: "Tokens per window; the text is cut into windows of this length.")
    var ctx = 512

    @Option(help: "At most this many windows (0 = all).")
    var windows = 0

    @Option(help: "Compare with this precision (f32): mean/p99 KL(ref ‖ this) and same-top-token rate.")
    var against: Precision?

    @Flag(help: "JSON output.")
    var json = false

    func validate() throws {
        if ctx < 4 { throw ValidationError("--ctx must be ≥ 4") }
        if against == options.precision { throw ValidationError("--against must differ from --precision") }
    }

    func run() throws {
        guard let data = FileManager.default.contents(atPath: text), let body = String(data: data, encoding: .utf8) else {
            fail("\(text): cannot read as UTF-8 text")
        }
        let folder: ModelFolder
        do { folder = try ModelFolder.open(options.model) } catch { fail(error.description) }
        let chunks = EvalWindows.make(folder: folder, text: body, ctx: ctx, limit: windows)
        guard !chunks.isEmpty else { fail("\(text): too short for one window of \(ctx) tokens") }

        var stats = LogitStats()
        if let against {
            // Reference pass first, written to a scratch file so both models are never in memory at once.
            var refOptions = options
            refOptions.precision = against
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("yanyi-eval-\(getpid()).f32")
            defer { try? FileManager.default.removeItem(at: scratch) }
            guard FileManager.default.createFile(atPath: scratch.path, contents: nil) else { fail("cannot write \(scratch.path)") }
            do {
                let (_, ref, _) = try refOptions.load()
                let h = try FileHandle(forWritingTo: scratch)
                for c in chunks {
                    let l = try runWindow(ref, c)
                    l.withUnsafeBytes { h.write(Data($0)) }
                }
                try h.close()
            }
            let (_, lm, _) = try options.load()
            let h = try FileHandle(forReadingFrom: scratch)
            for c in chunks {
                stats.addCharacters(c.scoredCharacters(folder.tokenizer))
                let l = try runWindow(lm, c)
                let bytes = try h.read(upToCount: l.count * 4) ?? Data()
                let r = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                add(&stats, reference: r, test: l, chunk: c, vocab: lm.vocabSize)
            }
        } else {
            let (_, lm, _) = try options.load()
            do { stats = try EvalWindows.score(lm, windows: chunks, tokenizer: folder.tokenizer) } catch { fail("\(error)") }
        }
        report(stats, windows: chunks.count)
    }

    func runWindow(_ lm: any LanguageModel, _ c: EvalWindows.Window) throws -> [Float] {
        do {
            return try lm.forward(c.ids, session: lm.makeSession(capacity: c.ids.count), logits: .all)
        } catch {
            fail(error.description)
        }
    }

    func add(_ s: inout LogitStats, reference r: [Float], test t: [Float], chunk c: EvalWindows.Window, vocab v: Int) {
        for i in c.scoredFrom..<c.ids.count {
            let next: Int32? = i + 1 < c.ids.count ? c.ids[i + 1] : nil
            s.add(reference: r[(i * v)..<((i + 1) * v)], test: t[(i * v)..<((i + 1) * v)], next: next)
        }
    }

    func report(_ s: LogitStats, windows: Int) {
        if json {
            var obj: [String: Any] = ["windows": windows, "ctx": ctx, "positions": s.positions,
                                      "precision": options.precision.rawValue, "perplexity": s.perplexity,
                                      "characters": s.characters, "nats_per_char": s.natsPerCharacter]
            if let against {
                obj["against"] = against.rawValue
                obj["perplexity_against"] = s.perplexityRef
                obj["kl_mean"] = s.meanKL
                obj["kl_p99"] = s.p99KL
                obj["kl_max"] = s.maxKL
                obj["same_top"] = s.sameTopFraction
                obj["same_top_decisive"] = s.sameTopDecisiveFraction
                obj["decisive_positions"] = s.decisive
            }
            let d = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data()
            print(String(decoding: d, as: UTF8.self))
            return
        }
        print("windows \(windows) × \(ctx) tokens, \(s.positions) positions scored")
        print(String(format: "perplexity (%@)  %.4f  (%.4f nats per character over %d characters)",
                     options.precision.rawValue, s.perplexity, s.natsPerCharacter, s.characters))
        if let against {
            print(String(format: "perplexity (%@)  %.4f", against.rawValue, s.perplexityRef))
            print(String(format: "KL(%@ ‖ %@)  mean %.6f  p99 %.6f  max %.6f", against.rawValue,
                         options.precision.rawValue, s.meanKL, s.p99KL, s.maxKL))
            print(String(format: "same top token  %.2f%%", 100 * s.sameTopFraction))
            print(String(format: "same top, decisive  %.2f%% of %d positions (reference top-2 margin ≥ %.2f)",
                         100 * s.sameTopDecisiveFraction, s.decisive, LogitStats.decisiveMargin))
        }
    }
}
