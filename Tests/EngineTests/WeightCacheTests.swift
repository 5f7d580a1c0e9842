import Foundation
import Testing
@testable import Engine

/// The quantized-weights cache: a cached model is the uncached one bit for bit; the key follows
/// the checkpoint files; damaged, truncated, stale and half-written entries are caught and
/// rebuilt; listing and removing. Every test uses its own cache folder, never the real one.
@Suite struct WeightCacheTests {
    /// Collects a cache's notices.
    final class Notes: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [String] = []
        func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return list }
        func take() -> [String] { lock.lock(); defer { list = []; lock.unlock() }; return list }
    }

    static func cache(_ notes: Notes, verify: Bool = false) throws -> WeightCache {
        let dir = ModelFolderTests.scratchRoot.appendingPathComponent("cache-" + UUID().uuidString).path
        return WeightCache(directory: dir, verify: verify) { notes.add($0) }
    }

    static func load(_ path: String, _ cache: WeightCache?) throws -> any LanguageModel {
        try ModelRegistry.load(ModelFolder.open(path), precision: .int8, pool: ThreadPool(threads: 2), cache: cache)
    }

    /// Logits at every position of a prompt the model family accepts (ChatGLM's ends in [gMASK] <sop>).
    static func logits(_ lm: any LanguageModel, family: String) throws -> [Float] {
        let ids = try ForwardReferenceTests.reference(family).0.prompts[0].ids
        return try lm.forward(ids, session: lm.makeSession(capacity: ids.count), logits: .all)
    }

    static func entryFiles(_ cache: WeightCache) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: cache.directory)) ?? []).sorted()
    }

    @Test(arguments: [("llama", "llama/safetensors"), ("llama", "llama/bin-sharded"), ("baichuan", "baichuan/bin"),
                      ("baichuan", "baichuan/safetensors"), ("chatglm", "chatglm/bin-sharded"), ("chatglm", "chatglm/safetensors")])
    func cachedModelIsBitIdentical(family: String, model: String) throws {
        let notes = Notes()
        let cache = try Self.cache(notes)
        let path = ModelFolderTests.models.appendingPathComponent(model).path
        let want = try Self.logits(Self.load(path, nil), family: family)

        let first = try Self.load(path, cache)          // quantizes and writes the entry
        #expect(notes.take().contains { $0.contains("wrote") }, "no entry written")
        #expect(try Self.logits(first, family: family) == want)
        let files = Self.entryFiles(cache)
        #expect(files.count == 1 && files[0].hasSuffix(".ywc"), "\(files)")
        let entry = cache.directory + "/" + files[0]
        let stamp = try FileManager.default.attributesOfItem(atPath: entry)[.modificationDate] as? Date

        let second = try Self.load(path, cache)         // maps the entry
        #expect(notes.take().isEmpty, "a valid entry was not used quietly")
        #expect(try FileManager.default.attributesOfItem(atPath: entry)[.modificationDate] as? Date == stamp, "entry rewritten")
        let got = try Self.logits(second, family: family)
        #expect(got == want, "max |Δ| \(zip(got, want).map { abs($0 - $1) }.max() ?? .nan)")
        #expect(second.weightBytes == first.weightBytes)

        // With full verification the same entry passes.
        let verified = try Self.load(path, WeightCache(directory: cache.directory, verify: true) { notes.add($0) })
        #expect(notes.take().isEmpty)
        #expect(try Self.logits(verified, family: family) == want)
    }

    /// Written in the background: the load returns a model that runs at once, the entry appears
    /// whole once `finishWrites` returns (never half-written under its own name), a load while it
    /// is still being written starts no second writer, and the next load maps it.
    @Test func backgroundWriteLeavesAWholeEntry() throws {
        let notes = Notes()
        var cache = try Self.cache(notes)
        cache.writeInBackground = true
        let path = ModelFolderTests.models.appendingPathComponent("llama/safetensors").path
        let want = try Self.logits(Self.load(path, nil), family: "llama")

        let first = try Self.load(path, cache)
        #expect(try Self.logits(first, family: "llama") == want, "the model differs while its entry is written")
        let again = try Self.load(path, cache)          // the entry may still be in flight: no second writer
        #expect(try Self.logits(again, family: "llama") == want)
        for f in Self.entryFiles(cache) where f.hasSuffix(".ywc") {   // whatever is under the entry's name is whole
            let entry = cache.directory + "/" + f
            let folder = try ModelFolder.open(path)
            let key = try WeightCacheKey(folder: path, checkpoint: folder.checkpoint, precision: .int8, block: 32)
            if case .invalid(let why) = WeightCacheFile.open(entry, key: key, verify: true, pool: nil) { Issue.record("half-written entry: \(why)") }
        }
        WeightCache.finishWrites()
        #expect(!WeightCache.writing)
        #expect(notes.take().filter { $0.contains("wrote") }.count == 1, "one writer for one entry")
        let files = Self.entryFiles(cache)
        #expect(files.count == 1 && files[0].hasSuffix(".ywc"), "\(files)")

        let mapped = try Self.load(path, cache)
        #expect(notes.take().isEmpty, "the entry written in the background was not used")
        #expect(try Self.logits(mapped, family: "llama") == want)
    }

    /// A cache hit reads int8 matrices into memory of their own (equal to a fresh quantization),
    /// refuses a wrong shape, and maps the embedding instead of copying it.
    @Test func hitReadsMatricesAndMapsTheEmbedding() throws {
        let notes = Notes()
        let cache = try Self.cache(notes)
        let path = ModelFolderTests.models.appendingPathComponent("llama/safetensors").path
        _ = try Self.load(path, cache)
        let folder = try ModelFolder.open(path)
        let key = try WeightCacheKey(folder: path, checkpoint: folder.checkpoint, precision: .int8, block: 32)
        guard case .valid(let reader) = WeightCacheFile.open(cache.entryPath(model: WeightCache.canonical(path), precision: .int8, block: 32),
                                                             key: key, verify: true, pool: nil) else {
            Issue.record("entry not valid")
            return
        }
        let m = try #require(reader.int8("model.layers.0.mlp.up_proj.weight", rows: 64, cols: 32, block: 32, pool: ThreadPool(threads: 2)))
        let whole = reader.file.all
        m.withUnsafeStorage { q, s in  // read into memory of its own (decode streams that faster)
            #expect(UnsafeRawPointer(q.baseAddress!) < whole.baseAddress! || UnsafeRawPointer(q.baseAddress!) >= whole.baseAddress! + whole.count)
        }
        let fresh = try WeightLoader(checkpoint: folder.checkpoint, precision: .int8).linear("model.layers.0.mlp.up_proj.weight", rows: 64, cols: 32)
        #expect(m.dequantized() == fresh.dequantized())
        #expect(reader.int8("model.layers.0.mlp.up_proj.weight", rows: 32, cols: 64, block: 32, pool: nil) == nil, "wrong shape served")
        let embed = try #require(reader.embedding("model.embed_tokens.weight", rows: 1001, cols: 32))
        guard case .mapped = embed.storage else { Issue.record("embedding copied, not mapped"); return }
        var a = [Float](repeating: 0, count: 32), b = a
        embed.lookup(7, into: &a)
        try WeightLoader(checkpoint: folder.checkpoint, precision: .int8).embedding("model.embed_tokens.weight", rows: 1001, cols: 32).lookup(7, into: &b)
        #expect(a == b)
    }

    @Test func keyFollowsTheCheckpointFiles() throws {
        let dir = try ModelFolderTests.copy("baichuan/bin-sharded")
        func key() throws -> WeightCacheKey {
            try WeightCacheKey(folder: dir.path, checkpoint: Checkpoint(folder: dir.path), precision: .int8, block: 32)
        }
        let k0 = try key()
        #expect(try key() == k0)
        #expect(try WeightCacheKey(folder: dir.path, checkpoint: Checkpoint(folder: dir.path), precision: .int8, block: 64) != k0)
        #expect(try WeightCacheKey(folder: dir.path, checkpoint: Checkpoint(folder: dir.path), precision: .f32, block: 32) != k0)
        #expect(k0.files.map(\.name).contains("pytorch_model.bin.index.json") && k0.files.map(\.name).contains("config.json"))

        let shard = dir.appendingPathComponent("pytorch_model-00002-of-00003.bin")
        let old = try FileManager.default.attributesOfItem(atPath: shard.path)[.modificationDate] as! Date
        try FileManager.default.setAttributes([.modificationDate: old.addingTimeInterval(5)], ofItemAtPath: shard.path)
        let k1 = try key()
        #expect(k1 != k0, "mtime change not seen")

        let h = try FileHandle(forWritingTo: shard)
        try h.seekToEnd()
        try h.write(contentsOf: Data([0]))
        try h.close()
        try FileManager.default.setAttributes([.modificationDate: old.addingTimeInterval(5)], ofItemAtPath: shard.path)
        let k2 = try key()
        #expect(k2 != k1 && k2.files.first { $0.name == shard.lastPathComponent }!.size == k1.files.first { $0.name == shard.lastPathComponent }!.size + 1)
    }

    /// Same size, same mtime, different bytes near an end (a rewritten header): the hash of the ends sees it.
    @Test func keyHashesTheFileEnds() throws {
        let dir = try ModelFolderTests.copy("llama/safetensors")
        let file = dir.appendingPathComponent("model.safetensors")
        func key() throws -> WeightCacheKey {
            try WeightCacheKey(folder: dir.path, checkpoint: Checkpoint(folder: dir.path), precision: .int8, block: 32)
        }
        let k0 = try key()
        var st = stat()
        #expect(stat(file.path, &st) == 0)
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count - 3] ^= 0x40
        try bytes.write(to: file)
        let times = [st.st_atim, st.st_mtim]          // put the old mtime back, to the nanosecond
        #expect(utimensat(AT_FDCWD, file.path, times, 0) == 0)
        let k1 = try key()
        #expect(k1.files.map(\.size) == k0.files.map(\.size) && k1.files.map(\.mtime) == k0.files.map(\.mtime))
        #expect(k1 != k0)
    }

    @Test func changedCheckpointRebuildsTheEntry() throws {
        let notes = Notes()
        let cache = try Self.cache(notes)
        let dir = try ModelFolderTests.copy("llama/bin")
        _ = try Self.load(dir.path, cache)
        _ = notes.take()
        let file = dir.appendingPathComponent("pytorch_model.bin")
        let old = try FileManager.default.attributesOfItem(atPath: file.path)[.modificationDate] as! Date
        try FileManager.default.setAttributes([.modificationDate: old.addingTimeInterval(-60)], ofItemAtPath: file.path)
        #expect(cache.entries().map(\.status) == [.stale("the checkpoint changed")])
        let lm = try Self.load(dir.path, cache)
        let n = notes.take()
        #expect(n.count == 2 && n[0].contains("is stale") && n[0].contains("rebuilding") && n[1].contains("wrote"), "\(n)")
        #expect(cache.entries().map(\.status) == [.valid])
        #expect(try Self.logits(lm, family: "llama") == Self.logits(Self.load(dir.path, nil), family: "llama"))
    }

    /// Each kind of damage: noticed in one line, the model loads right from the checkpoint, and
    /// the entry is rewritten valid.
    @Test(arguments: ["header", "index", "truncated", "garbage", "version", "data", "empty"])
    func damagedEntryIsRebuilt(damage: String) throws {
        let notes = Notes()
        let cache = try Self.cache(notes, verify: damage == "data")
        let path = ModelFolderTests.models.appendingPathComponent("chatglm/safetensors").path
        let want = try Self.logits(Self.load(path, nil), family: "chatglm")
        _ = try Self.load(path, cache)
        _ = notes.take()
        let entry = cache.directory + "/" + Self.entryFiles(cache)[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: entry))
        let indexLength = Int(bytes[16..<24].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let expected: String
        switch damage {
        case "header":
            bytes[20] ^= 1
            expected = "damaged header"
        case "index":
            bytes[64 + indexLength / 2] ^= 1
            expected = "damaged index"
        case "truncated":
            bytes = bytes.prefix(bytes.count - 4096)
            expected = "truncated"
        case "garbage":
            bytes = Data(repeating: 0x5A, count: 10_000)
            expected = "not a weight cache file"
        case "empty":
            bytes = Data()
            expected = "not a weight cache file"
        case "version":
            bytes[8] &+= 1
            let h = bytes.prefix(40).withUnsafeBytes { ContentHash.xxh64($0) }
            withUnsafeBytes(of: h.littleEndian) { bytes.replaceSubrange(40..<48, with: $0) }
            expected = "another version"
        default:
            guard case .success(let index) = WeightCacheFile.readIndex(try MappedFile(path: entry)) else { throw LoadError(entry, "unreadable") }
            let span = index.tensors.flatMap(\.spans).max { $0.length < $1.length }!
            bytes[span.offset + span.length / 2] ^= 1
            expected = "damaged data"
        }
        try bytes.write(to: URL(fileURLWithPath: entry))
        if damage != "data" {
            #expect(cache.entries().count == 1 && cache.entries()[0].status != .valid)
        }

        let lm = try Self.load(path, cache)
        let n = notes.take()
        #expect(n.count == 2 && n[0].contains(expected) && n[0].contains("rebuilding") && n[1].contains("wrote"), "\(n)")
        #expect(n.allSatisfy { !$0.contains("\n") })
        #expect(try Self.logits(lm, family: "chatglm") == want)
        #expect(cache.entries().map(\.status) == [.valid])
        #expect(try Self.logits(Self.load(path, cache), family: "chatglm") == want)
        #expect(notes.take().isEmpty)
    }

    /// A writer that fails part way (a full disk) leaves neither an entry nor its temporary
    /// file; one that crashed (its temporary file, its process gone) is cleaned up by the next write.
    @Test func failedWriteLeavesNoPartialFile() throws {
        let notes = Notes()
        let cache = try Self.cache(notes)
        let path = ModelFolderTests.models.appendingPathComponent("baichuan/safetensors").path
        let folder = try ModelFolder.open(path)
        let key = try WeightCacheKey(folder: path, checkpoint: folder.checkpoint, precision: .int8, block: 32)
        let recorder = WeightRecorder()
        _ = try Baichuan.load(folder, WeightLoader(checkpoint: folder.checkpoint, precision: .int8, block: 32, pool: nil,
                                                   cached: nil, recorder: recorder), pool: ThreadPool(threads: 1))
        let entry = cache.entryPath(model: WeightCache.canonical(path), precision: .int8, block: 32)
        cache.write(recorder.items, model: WeightCache.canonical(path), key: key, to: entry, failAfter: 5000)
        let n = notes.take()
        #expect(n.count == 1 && n[0].contains("simulated failure") && n[0].contains("running without it"), "\(n)")
        #expect(Self.entryFiles(cache).isEmpty, "\(Self.entryFiles(cache))")

        // A crashed writer's leftover: a dead pid (pid_max is below 2^22 on Linux).
        let stray = entry + ".tmp.4194303"
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: stray))
        #expect(cache.entries().isEmpty, "a temporary file listed as an entry")
        cache.write(recorder.items, model: WeightCache.canonical(path), key: key, to: entry)
        #expect(Self.entryFiles(cache) == [(entry as NSString).lastPathComponent])
        #expect(cache.entries().map(\.status) == [.valid])
    }

    @Test func notEnoughDiskMeansNoCache() throws {
        let notes = Notes()
        var cache = try Self.cache(notes)
        cache.headroom = Int.max / 4
        let path = ModelFolderTests.models.appendingPathComponent("llama/safetensors").path
        let lm = try Self.load(path, cache)
        let n = notes.take()
        #expect(n.count == 1 && n[0].contains("not enough disk space") && n[0].contains("running without it"), "\(n)")
        #expect(Self.entryFiles(cache).isEmpty)
        #expect(try Self.logits(lm, family: "llama") == Self.logits(Self.load(path, nil), family: "llama"))
    }

    @Test func unwritableFolderMeansNoCache() throws {
        let notes = Notes()
        let blocker = ModelFolderTests.scratchRoot.appendingPathComponent("file-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: ModelFolderTests.scratchRoot, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: blocker)
        let cache = WeightCache(directory: blocker.path + "/weights") { notes.add($0) }
        _ = try Self.load(ModelFolderTests.models.appendingPathComponent("llama/safetensors").path, cache)
        #expect(notes.take().first?.contains("cannot create") == true)
    }

    @Test func f32LoadsBypassTheCache() throws {
        let notes = Notes()
        let cache = try Self.cache(notes)
        _ = try ModelRegistry.load(ModelFolder.open(ModelFolderTests.models.appendingPathComponent("llama/safetensors").path),
                                   precision: .f32, pool: ThreadPool(threads: 1), cache: cache)
        #expect(Self.entryFiles(cache).isEmpty && notes.all.isEmpty)
    }

    @Test func listAndRemove() throws {
        let notes = Notes()
        let cache = try Self.cache(notes)
        #expect(cache.entries().isEmpty)
        let a = try ModelFolderTests.copy("llama/safetensors"), b = try ModelFolderTests.copy("baichuan/bin")
        _ = try Self.load(a.path, cache)
        _ = try Self.load(b.path, cache)
        let listed = cache.entries()
        #expect(Set(listed.compactMap(\.model)) == [WeightCache.canonical(a.path), WeightCache.canonical(b.path)])
        #expect(listed.allSatisfy { $0.status == .valid && $0.precision == "int8" && $0.block == 32 && $0.bytes > 0 && $0.created != nil })

        try FileManager.default.removeItem(at: b)
        #expect(cache.entries().first { $0.model == WeightCache.canonical(b.path) }?.status == .modelMissing)

        let gone = try cache.remove(model: a.path + "/")        // the folder as a user may type it
        #expect(gone.map(\.model) == [WeightCache.canonical(a.path)])
        #expect(cache.entries().map(\.model) == [WeightCache.canonical(b.path)])
        #expect(try cache.remove(model: a.path).isEmpty)

        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: cache.directory + "/junk.ywc"))
        #expect(cache.entries().contains { $0.status == .corrupt("is not a weight cache file") })
        #expect(try cache.removeAll() == 2)
        #expect(Self.entryFiles(cache).isEmpty)
    }

    @Test func defaultDirectoryFollowsXDG() {
        #expect(WeightCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x/c", "HOME": "/h"]) == "/x/c/yanyi/weights")
        #expect(WeightCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "", "HOME": "/h"]) == "/h/.cache/yanyi/weights")
        #expect(WeightCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "rel", "HOME": "/h"]) == "/h/.cache/yanyi/weights")
    }

    /// Entries of one folder at different paths, precisions or blocks do not collide.
    @Test func entryNamesSeparateModelsAndQuantizations() {
        let c = WeightCache(directory: "/c")
        let a = c.entryPath(model: "/m/llama", precision: .int8, block: 32)
        #expect(a.hasPrefix("/c/llama-") && a.hasSuffix("-int8-b32.ywc"))
        #expect(Set([a, c.entryPath(model: "/n/llama", precision: .int8, block: 32), c.entryPath(model: "/m/llama", precision: .int8, block: 64),
                     c.entryPath(model: "/m/llama", precision: .f32, block: 32)]).count == 4)
        #expect(!c.entryPath(model: "/m/we ird\n/名字", precision: .int8, block: 32).contains(where: { $0 == " " || $0 == "\n" }))
    }

    /// XXH64 against the reference implementation's published values.
    @Test func xxh64MatchesReference() {
        func h(_ s: String) -> String { Array(s.utf8).withUnsafeBytes { ContentHash.hex(ContentHash.xxh64($0)) } }
        #expect(h("") == "ef46db3751d8e999")
        #expect(h("a") == "d24ec4f1a98c6e5b")
        #expect(h("abc") == "44bc2cf5ad770999")
        #expect(h("Nobody inspects the spammish repetition") == "fbcea83c8a378bf1")
    }

    /// The copying initializer (how the cache hands out matrices) computes what the quantizing
    /// one does from the same bytes, split over a pool or not, and counts NaN scales.
    @Test func copiedInt8MatrixMatchesOwned() throws {
        var rng = SplitMix64(seed: 7)
        let rows = 370, cols = 200
        var w = (0..<rows * cols).map { _ in Float(Int(rng.next() % 2001) - 1000) / 500 }
        w[5 * cols + 3] = .nan
        let owned = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0, rows: rows, cols: cols, block: 32) }
        let pool = ThreadPool(threads: 2)
        let copies = owned.withUnsafeStorage { q, s in
            [Int8Matrix(rows: rows, cols: cols, block: 32, q: q, scales: s),
             Int8Matrix(rows: rows, cols: cols, block: 32, q: q, scales: s, pool: pool)]
        }
        let x = (0..<cols).map { _ in Float(Int(rng.next() % 200) - 100) / 50 }
        var a = [Float](repeating: 0, count: rows)
        owned.matvec(x, &a, pool: pool)
        for c in copies {
            var b = [Float](repeating: 0, count: rows)
            c.matvec(x, &b, pool: pool)
            #expect(c.nonFiniteBlocks == 1 && owned.nonFiniteBlocks == 1)
            #expect(a.elementsEqual(b) { $0 == $1 || ($0.isNaN && $1.isNaN) })
            #expect(c.dequantized().elementsEqual(owned.dequantized()) { $0 == $1 || ($0.isNaN && $1.isNaN) })
        }
        // A read that fails in any chunk (a cache file cut short after it was opened) gives nil.
        let failed = Int8Matrix(rows: rows, cols: cols, block: 32, pool: pool) { r, _, _ in r.lowerBound == 0 }
        #expect(failed == nil)
    }
}
