import ArgumentParser
import Engine
import Foundation

/// Options every command that runs a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A Hugging Face model folder.")
    var model: String

    @Option(help: "int8 (default) or f32 (weights upcast; for verification).")
    var precision: Precision = .int8

    @Option(help: "Worker threads, 1 to 4 per logical CPU (at most 256); default: physical cores.")
    var threads: Int?

    @Option(name: .long, help: "A PEFT LoRA adapter folder, optionally with a multiplier 0–2: DIR[=SCALE]. Repeatable (stacked).")
    var adapter: [String] = []

    @Flag(name: .customLong("no-cache"), help: "Quantize from the checkpoint; neither read nor write the quantized-weights cache (see `yanyi cache`).")
    var noCache = false

    func validate() throws {
        if let threads, let problem = ThreadPool.threadCountProblem(threads) { throw ValidationError(problem) }
        for a in adapter where AdapterSpec.parse(a) == nil {
            throw ValidationError("--adapter \(a): expected DIR or DIR=SCALE with SCALE in 0–2")
        }
    }

    /// Opens and loads the model with its adapters, or prints the one-line error and exits 1.
    func load() throws -> (ModelFolder, any LanguageModel, ThreadPool) {
        let (folder, lm, pool) = loadBase()
        do { try lm.setAdapters(loadAdapters()) } catch { fail(error.description) }
        return (folder, lm, pool)
    }

    /// The base model alone.
    func loadBase() -> (ModelFolder, any LanguageModel, ThreadPool) {
        let pool = threads.map { ThreadPool(threads: $0) } ?? ThreadPool()
        do {
            let folder = try ModelFolder.open(model)
            return (folder, try ModelRegistry.load(folder, precision: precision, pool: pool, cache: noCache ? nil : .standard()), pool)
        } catch {
            fail(error.description)
        }
    }

    /// The `--adapter` folders with their multipliers (read, not yet activated); tells what each holds.
    func loadAdapters() -> [(adapter: LoRAAdapter, multiplier: Float)] {
        do {
            var list: [(adapter: LoRAAdapter, multiplier: Float)] = []
            for spec in adapter.compactMap(AdapterSpec.parse) {
                let a = try LoRAAdapter(folder: spec.folder)
                if let base = a.config.baseModelNameOrPath, !base.isEmpty,
                   URL(fileURLWithPath: base).lastPathComponent != URL(fileURLWithPath: model).lastPathComponent {
                    FileHandle.standardError.write(Data("warning: adapter \(spec.folder) was trained on \(base), not \(model)\n".utf8))
                }
                for (name, m) in a.modules.sorted(by: { $0.key < $1.key }).prefix(1) {
                    FileHandle.standardError.write(Data("adapter \(spec.folder): \(a.modules.count) modules, rank \(m.rank), effective scale \(m.scale * spec.multiplier) (e.g. \(name))\n".utf8))
                }
                list.append((a, spec.multiplier))
            }
            return list
        } catch {
            fail(error.description)
        }
    }
}

extension Precision: ExpressibleByArgument {}

/// Prints `error: …` to standard error and exits with status 1.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    Foundation.exit(1)
}

/// Parses "1,2,3" into ids.
func parseIDs(_ text: String) throws -> [Int32] {
    try text.split(separator: ",").map {
        guard let v = Int32($0.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("--ids: '\($0)' is not a token id")
        }
        return v
    }
}
