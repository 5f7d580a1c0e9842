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
    /// The cache where the environment puts it, its notices on standard error. `background`: new
    /// entries are written while the model is already in use (chat, serve; call `finishPending()`
    /// before a normal exit); commands that measure or exit at once write before they go on.
    static func standard(background: Bool = false) -> WeightCache {
        var cache = WeightCache(directory: defaultDirectory(environment: ProcessInfo.processInfo.environment)) {
            FileHandle.standardError.write(Data("\($0)\n".utf8))
        }
        cache.writeInBackground = background
        return cache
    }

    /// Waits for entries still being written, saying so (an interrupt leaves the entry to the next start).
    static func finishPending() {
        if writing { FileHandle.standardError.write(Data("yanyi: finishing the quantized-weights cache (Ctrl-C leaves it to the next start)\n".utf8)) }
        finishWrites()
    }
}

/// "7.61 GiB", "312.0 MiB".
func formatBytes(_ n: Int) -> String {
    n >= 1 << 30 ? String(format: "%.2f GiB", Double(n) / Double(1 << 30)) : String(format: "%.1f MiB", Double(n) / Double(1 << 20))
}
