import ArgumentParser
import Engine
import Foundation

/// `yanyi cache rm MODEL | --all`: deletes a model folder's entries (every precision and block),
/// or the whole cache.
struct CacheRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove the cached weights of a model folder, or all of them (--all).")

    @Argument(help: "The model folder whose cached weights to remove.")
    var model: String?

    @Flag(help: "Remove every entry (and any temporary file a crashed writer left).")
    var all = false

    func validate() throws {
        if (model == nil) == !all { throw ValidationError("give a model folder or --all (not both)") }
    }

    func run() throws {
        let cache = WeightCache.standard()
        do {
            if all {
                print("removed \(try cache.removeAll()) files from \(cache.directory)")
            } else if let model {
                let gone = try cache.remove(model: model)
                if gone.isEmpty { fail("\(model): no cached weights in \(cache.directory) (see yanyi cache ls)") }
                print("removed \(gone.count) \(gone.count == 1 ? "entry" : "entries") (\(formatBytes(gone.reduce(0) { $0 + $1.bytes })))")
            }
        } catch {
            fail("\(cache.directory): \(error.localizedDescription)")
        }
    }
}
