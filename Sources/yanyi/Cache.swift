import ArgumentParser
import Engine
import Foundation

/// `yanyi cache`: the quantized-weights cache that makes a model's second start a mapping of
/// int8 weights quantized by its first (`ls`, `rm`; `--no-cache` on a command bypasses it).
struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "List or remove the quantized weights cached in $XDG_CACHE_HOME/yanyi/weights (else ~/.cache/yanyi/weights).",
        subcommands: [CacheList.self, CacheRemove.self])
}

extension WeightCache {
    /// The cache where the environment puts it, its notices on standard error.
    static func standard() -> WeightCache {
        WeightCache(directory: defaultDirectory(environment: ProcessInfo.processInfo.environment)) {
            FileHandle.standardError.write(Data("\($0)\n".utf8))
        }
    }
}

/// "7.61 GiB", "312.0 MiB".
func formatBytes(_ n: Int) -> String {
    n >= 1 << 30 ? String(format: "%.2f GiB", Double(n) / Double(1 << 30)) : String(format: "%.1f MiB", Double(n) / Double(1 << 20))
}
