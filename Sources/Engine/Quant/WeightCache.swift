#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The quantized-weights cache: the first int8 load of a model folder writes every tensor it
/// produced (int8 codes and scales, embeddings, norms, biases) to one file in `directory`; later
/// loads map that file and read no checkpoint tensor, so a second start costs page-cache speed
/// instead of quantization. One entry per model folder, precision and block size; an entry whose
/// checkpoint changed (WeightCacheKey), or that is damaged, is replaced, with a one-line notice.
/// Nothing here fails a load: any cache trouble is a notice and a load without the cache.
public struct WeightCache: Sendable {
    /// Where entries live (one `.ywc` file each).
    public let directory: String
    /// Hash every cached byte before using an entry, not just its header and index.
    public var verify: Bool
    /// Receives the one-line notices (entry rebuilt, written, skipped for lack of disk, …).
    public var notice: @Sendable (String) -> Void
    /// Free space to leave on the disk after writing an entry.
    public var headroom: Int = 1 << 30
    /// Write a new entry on a thread of its own, so the loaded model is used at once instead of
    /// after ~8 GB have gone to disk (a 7B's first start); `finishWrites()` waits for them. Off:
    /// the load returns after the write.
    public var writeInBackground = false

    public init(directory: String, verify: Bool = false, notice: @escaping @Sendable (String) -> Void = { _ in }) {
        self.directory = directory
        self.verify = verify
        self.notice = notice
    }

    /// `$XDG_CACHE_HOME/yanyi/weights`, else `$HOME/.cache/yanyi/weights` (the caller passes the environment).
    public static func defaultDirectory(environment env: [String: String]) -> String {
        if let x = env["XDG_CACHE_HOME"], x.hasPrefix("/") { return x + "/yanyi/weights" }
        return (env["HOME"] ?? NSHomeDirectory()) + "/.cache/yanyi/weights"
    }

    /// A model folder as entries record it: absolute, symlinks resolved.
    static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// The entry file for a model folder: its name (for people listing the folder), a hash of its
    /// full path, the precision and block.
    func entryPath(model: String, precision: Precision, block: Int) -> String {
        let name = String((model as NSString).lastPathComponent.unicodeScalars.prefix(48).map {
            CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) ? Character($0) : "_"
        })
        let hash = Array(model.utf8).withUnsafeBytes { ContentHash.hex(ContentHash.xxh64($0)) }.prefix(12)
        return joinPath(directory, "\(name)-\(hash)-\(precision.rawValue)-b\(block).\(WeightCacheFile.fileExtension)")
    }

    /// Loads through the cache: `build` runs with a loader that takes tensors from a valid entry
    /// (mapped) or from the checkpoint; in the second case, or when the entry lacked a tensor,
    /// what was loaded is written as the new entry.
    func load(_ folder: ModelFolder, precision: Precision, block: Int, pool: ThreadPool,
              build: (WeightLoader) throws(LoadError) -> any LanguageModel) throws(LoadError) -> any LanguageModel {
        let plain = WeightLoader(checkpoint: folder.checkpoint, precision: precision, block: block, pool: pool)
        let model = Self.canonical(folder.path)
        let key: WeightCacheKey
        do {
            key = try WeightCacheKey(folder: folder.path, checkpoint: folder.checkpoint, precision: precision, block: block)
        } catch {
            notice("weight cache: \(error); loading without it")
            return try build(plain)
        }
        let path = entryPath(model: model, precision: precision, block: block)
        // Asked before the entry is opened: a writer that ends in between has put the entry in place.
        let beingWritten = BackgroundWrites.shared.isWriting(path)
        var reader: WeightCacheReader?
        switch WeightCacheFile.open(path, key: key, verify: verify, pool: pool) {
        case .absent: break
        case .valid(let r): reader = r
        case .invalid(let why): notice("weight cache: \(path) \(why); rebuilding it")
        }
        let recorder = WeightRecorder()
        let loaded = try build(WeightLoader(checkpoint: folder.checkpoint, precision: precision, block: block, pool: pool,
                                            cached: reader, recorder: recorder))
        if (reader == nil || recorder.misses > 0) && !beingWritten {
            let items = recorder.items
            if writeInBackground {
                // The items are the loaded model's tensors, read-only from here on.
                let job = UncheckedItems(items: items, cache: self)
                BackgroundWrites.shared.start(path) { job.cache.write(job.items, model: model, key: key, to: path) }
            } else {
                write(items, model: model, key: key, to: path)
            }
        }
        return loaded
    }

    /// Waits until every entry being written in the background is on disk (or given up).
    public static func finishWrites() { BackgroundWrites.shared.waitAll() }

    /// Whether an entry is being written in the background now.
    public static var writing: Bool { BackgroundWrites.shared.count > 0 }

    /// Writes an entry, or says in one line why not (the model is loaded either way).
    func write(_ items: [WeightCacheFile.Item], model: String, key: WeightCacheKey, to path: String, failAfter: Int? = nil) {
        let t0 = Measure.now()
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            notice("weight cache: cannot create \(directory) (\(error.localizedDescription)); running without it")
            return
        }
        removeAbandonedTemporaries()
        let need = items.reduce(WeightCacheFile.alignment * 2) { n, item in
            n + item.indexEntry.spans.reduce(0) { $0 + WeightCacheFile.align($1.length) }
        }
        var fs = statvfs()
        if statvfs(directory, &fs) == 0 {
            let free = Int(fs.f_bavail) * Int(fs.f_frsize)
            if free < need + headroom {
                notice("weight cache: not enough disk space in \(directory) (\(WeightCacheFile.gib(need)) needed, \(WeightCacheFile.gib(free)) free); running without it")
                return
            }
        }
        do {
            try WeightCacheFile.write(items, model: model, key: key, to: path, failAfter: failAfter)
            notice(String(format: "weight cache: wrote %@ (%@, %.1f s); later starts map it", path, WeightCacheFile.gib(need), Measure.now() - t0))
        } catch {
            notice("weight cache: \(error); running without it")
        }
    }

    /// Temporary files (`<entry>.tmp.<pid>`) whose writer is gone: a crash mid-write leaves one.
    func removeAbandonedTemporaries() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for n in names {
            guard let r = n.range(of: ".\(WeightCacheFile.fileExtension).tmp."), let pid = Int32(n[r.upperBound...]) else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH { unlink(joinPath(directory, n)) }
        }
    }

    // MARK: listing and removing

    /// One entry as `yanyi cache ls` shows it.
    public struct Entry: Sendable {
        public enum Status: Sendable, Equatable {
            /// A load of `model` would use it.
            case valid
            /// It no longer matches the model folder (changed, or another format/layout version).
            case stale(String)
            /// Damaged, or not a cache file; a load would rebuild it.
            case corrupt(String)
            /// Its model folder is gone.
            case modelMissing
        }

        public let path: String
        /// The model folder it was made from (nil when the entry is unreadable).
        public let model: String?
        public let precision: String?
        public let block: Int?
        public let bytes: Int
        public let created: Date?
        public let status: Status
    }

    /// Every entry in `directory`, by file name; a missing directory is an empty cache.
    public func entries() -> [Entry] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix("." + WeightCacheFile.fileExtension) }.sorted()
        return names.map { describe(joinPath(directory, $0)) }
    }

    private func describe(_ path: String) -> Entry {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch {
            return Entry(path: path, model: nil, precision: nil, block: nil, bytes: 0, created: nil, status: .corrupt(error.reason))
        }
        let index: WeightCacheIndex
        switch WeightCacheFile.readIndex(file) {
        case .failure(.stale(let why)):
            return Entry(path: path, model: nil, precision: nil, block: nil, bytes: file.size, created: nil, status: .stale(why))
        case .failure(.corrupt(let why)):
            return Entry(path: path, model: nil, precision: nil, block: nil, bytes: file.size, created: nil, status: .corrupt(why))
        case .success(let i): index = i
        }
        let status: Entry.Status
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: index.model, isDirectory: &isDir) || !isDir.boolValue {
            status = .modelMissing
        } else if let precision = Precision(rawValue: index.key.precision),
                  let checkpoint = try? Checkpoint(folder: index.model),
                  let now = try? WeightCacheKey(folder: index.model, checkpoint: checkpoint, precision: precision, block: index.key.block) {
            status = now == index.key ? .valid : .stale("the checkpoint changed")
        } else {
            status = .stale("the model folder no longer opens")
        }
        return Entry(path: path, model: index.model, precision: index.key.precision, block: index.key.block, bytes: file.size,
                     created: Date(timeIntervalSince1970: index.created), status: status)
    }

    /// Deletes the entries made from model folder `model` (any precision or block); returns them.
    public func remove(model: String) throws -> [Entry] {
        let target = Self.canonical(model)
        let gone = entries().filter { $0.model == target }
        for e in gone { try FileManager.default.removeItem(atPath: e.path) }
        return gone
    }

    /// Deletes every entry and temporary file; returns how many files went.
    public func removeAll() throws -> Int {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix("." + WeightCacheFile.fileExtension) || $0.contains("." + WeightCacheFile.fileExtension + ".tmp.") }
        for n in names { try FileManager.default.removeItem(atPath: joinPath(directory, n)) }
        return names.count
    }
}

/// What one load produced, in order, for writing an entry; and how many tensors a cache entry
/// that was used did not have.
final class WeightRecorder {
    private(set) var items: [WeightCacheFile.Item] = []
    var misses = 0

    func add(_ item: WeightCacheFile.Item) { items.append(item) }
}

/// A load's tensors handed to the writer thread: immutable once loaded (adapters never write them).
private struct UncheckedItems: @unchecked Sendable {
    let items: [WeightCacheFile.Item]
    let cache: WeightCache
}

/// The entries this process is writing in the background, by path: one writer per path (a model
/// loaded again while its entry is still being written does not start a second).
final class BackgroundWrites: @unchecked Sendable {
    static let shared = BackgroundWrites()
    private let condition = NSCondition()
    private var paths: Set<String> = []

    var count: Int { condition.lock(); defer { condition.unlock() }; return paths.count }

    func isWriting(_ path: String) -> Bool { condition.lock(); defer { condition.unlock() }; return paths.contains(path) }

    func start(_ path: String, _ body: @escaping @Sendable () -> Void) {
        condition.lock()
        let busy = !paths.insert(path).inserted
        condition.unlock()
        if busy { return }
        let thread = Thread { [self] in
            body()
            condition.lock()
            paths.remove(path)
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "yanyi-cache-write"
        thread.qualityOfService = .utility
        thread.start()
    }

    func waitAll() {
        condition.lock()
        while !paths.isEmpty { condition.wait() }
        condition.unlock()
    }
}
