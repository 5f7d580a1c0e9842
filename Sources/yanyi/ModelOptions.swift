import ArgumentParser
import Engine
import Foundation

/// Options every command that runs a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A Hugging Face model folder.")
    var model: String

    @Option(help: "int8 (default) or f32 (weights upcast; for verification).")
    var precision: Precision = .int8

    @Option(help: "Worker threads (default: physical cores).")
    var threads: Int?

    // The LoRA issue adds: @Option var adapter: [String] — DIR[=SCALE], repeatable.

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Opens and loads the model, or prints the one-line error and exits 1.
    func load() throws -> (ModelFolder, any LanguageModel, ThreadPool) {
        let pool = threads.map { ThreadPool(threads: $0) } ?? ThreadPool()
        do {
            let folder = try ModelFolder.open(model)
            let lm = try ModelRegistry.load(folder, precision: precision, pool: pool)
            return (folder, lm, pool)
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
