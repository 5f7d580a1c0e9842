import ArgumentParser
import Engine
import Foundation

/// `yanyi cache ls`: one line per entry — whether a load would use it, size, when it was
/// written, precision and block, and the model folder it was made from.
struct CacheList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List cached models: valid?, size, date, precision/block, model folder.")

    func run() throws {
        let cache = WeightCache.standard()
        let entries = cache.entries()
        print(cache.directory + (entries.isEmpty ? ": empty" : ""))
        for line in Self.lines(entries) { print(line) }
    }

    static func lines(_ entries: [WeightCache.Entry]) -> [String] {
        let date = DateFormatter()
        date.dateFormat = "yyyy-MM-dd HH:mm"
        return entries.map { e in
            let status: String, why: String
            switch e.status {
            case .valid: (status, why) = ("valid", "")
            case .stale(let s): (status, why) = ("stale", " (\(s))")
            case .corrupt(let s): (status, why) = ("corrupt", " (\(s))")
            case .modelMissing: (status, why) = ("orphan", " (model folder gone)")
            }
            let quant = e.precision.map { "\($0) b\(e.block ?? 0)" } ?? "-"
            let what = e.model ?? (e.path as NSString).lastPathComponent
            return [status.padding(toLength: 8, withPad: " ", startingAt: 0),
                    formatBytes(e.bytes).padding(toLength: 11, withPad: " ", startingAt: 0),
                    (e.created.map { date.string(from: $0) } ?? "-").padding(toLength: 17, withPad: " ", startingAt: 0),
                    quant.padding(toLength: 9, withPad: " ", startingAt: 0),
                    what + why].joined()
        }
    }
}
