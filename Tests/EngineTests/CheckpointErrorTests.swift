import Foundation
import Testing
@testable import Engine

// Every broken or hostile input gives one LoadError naming the file and what is wrong.
@Suite("Checkpoint errors")
struct CheckpointErrorTests {
    // ---- safetensors ------------------------------------------------------------------------
    /// A valid two-tensor file: a F32 [2] at [0, 8), b F16 [2] at [8, 12).
    static let goodHeader = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}}"#

    func safetensorsError(_ header: String, data: [UInt8] = Array(repeating: 0, count: 12), length: UInt64? = nil,
                          _ words: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = try CheckpointScratch()
        let path = try dir.write("model.safetensors", safetensorsBytes(header, data: data, length: length))
        let e = checkpointError(sourceLocation) { _ = try SafeTensorsFile(path: path) }
        expectCheckpointError(e, file: path, words, sourceLocation)
    }

    @Test func safetensorsBaselineLoads() throws {
        let dir = try CheckpointScratch()
        let data: [UInt8] = [Float(1.5), -2].withUnsafeBytes { Array($0) } + [0x00, 0x3C, 0x00, 0xC0]  // f16 1, -2
        let path = try dir.write("model.safetensors", safetensorsBytes(Self.goodHeader, data: data))
        let f = try SafeTensorsFile(path: path)
        #expect(f.names == ["a", "b"])
        #expect(try f.floats("a") == [1.5, -2])
        #expect(try f.floats("b") == [1, -2])
        #expect(f.metadata.isEmpty)
        // Data at an odd address (header length odd): F16 goes through an aligned copy.
        let odd = Self.goodHeader.utf8.count % 2 == 0 ? Self.goodHeader + " " : Self.goodHeader
        let oddPath = try dir.write("odd.safetensors", safetensorsBytes(odd, data: data))
        let g = try SafeTensorsFile(path: oddPath)
        #expect(g.info("b").map { $0.offset % 2 } == 1)
        #expect(try g.floats("b") == [1, -2] && g.floats("a") == [1.5, -2])
    }

    @Test func safetensorsHeaderProblems() throws {
        try safetensorsError(Self.goodHeader, length: 10_000, ["header length 10000", "runs past the end of the file"])
        try safetensorsError(Self.goodHeader, length: UInt64.max, ["runs past the end of the file"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#, ["invalid JSON header"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} trailing"#, ["invalid JSON header", "after the JSON value"])
        try safetensorsError(#"[1,2]"#, ["not a JSON object"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}}"#,
                             ["duplicate key 'a'"])
        try safetensorsError(#"{"__metadata__":{"format":1}}"#, ["__metadata__", "'format'", "not a string"])
        try safetensorsError(#"{"__metadata__":[]}"#, ["__metadata__", "not an object"])
        try safetensorsError(String(repeating: "[", count: 200), ["invalid JSON header", "nesting"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b\ud800":{}}"#, ["invalid JSON header", "surrogate"])
    }

    @Test func safetensorsTensorProblems() throws {
        try safetensorsError(#"{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, ["tensor 'a'", "unknown dtype 'F8_E4M3'"])
        try safetensorsError(#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, ["tensor 'a'", "no dtype"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}"#, ["tensor 'a'", "[0, 800]", "outside the data section (12 bytes)"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, ["tensor 'a'", "end before"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[-4,4]}}"#, ["tensor 'a'", "data_offsets"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, ["tensor 'a'", "data_offsets"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, ["tensor 'a'", "holds 8 bytes", "shape [3] of F32 needs 12"])
        try safetensorsError(#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#, ["tensor 'a'", "holds 8 bytes", "F16 needs 4"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, ["tensor 'a'", "dimension 2.5"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, ["tensor 'a'", "dimension -2"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#, ["tensor 'a'", "dimension '2'"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}"#, ["tensor 'a'", "no shape array"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}"#, ["tensor 'a'", "too large"])
        try safetensorsError(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                             ["tensors 'a' [0, 8) and 'b' [4, 8) overlap"])
        try safetensorsError(#"{"a":[]}"#, ["tensor 'a'", "not an object"])
    }

    @Test func safetensorsTruncatedAndForeign() throws {
        let dir = try CheckpointScratch()
        let good = try CheckpointFixtures.bytes("small/safetensors/model.safetensors")
        // Data cut short: the last tensor's offsets now lie outside the data.
        var path = try dir.write("cut.safetensors", Array(good.dropLast(3)))
        var e = checkpointError { _ = try SafeTensorsFile(path: path) }
        expectCheckpointError(e, file: path, ["outside the data section", "truncated"])
        // Header cut short.
        path = try dir.write("cut-header.safetensors", Array(good.prefix(40)))
        e = checkpointError { _ = try SafeTensorsFile(path: path) }
        expectCheckpointError(e, file: path, ["runs past the end of the file (40 bytes)"])
        path = try dir.write("tiny.safetensors", [1, 2, 3])
        e = checkpointError { _ = try SafeTensorsFile(path: path) }
        expectCheckpointError(e, file: path, ["too short (3 bytes)"])
        path = try dir.write("empty.safetensors", [UInt8]())
        e = checkpointError { _ = try SafeTensorsFile(path: path) }
        expectCheckpointError(e, file: path, ["empty"])
        path = try dir.write("lfs.safetensors", "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
        e = checkpointError { _ = try SafeTensorsFile(path: path) }
        expectCheckpointError(e, file: path, ["Git LFS pointer"])
        path = CheckpointFixtures.path("small/bin/pytorch_model.bin")
        e = checkpointError { _ = try SafeTensorsFile(path: path) }
        expectCheckpointError(e, file: path, ["zip archive", "not safetensors"])
        path = dir.path("missing.safetensors")
        e = checkpointError { _ = try SafeTensorsFile(path: path) }
        expectCheckpointError(e, file: path, ["cannot open", "No such file"])
        e = checkpointError { _ = try SafeTensorsFile(path: dir.url.path) }
        expectCheckpointError(e, file: dir.url.path, ["not a regular file"])
    }

    @Test func safetensorsAbsurdHeaderLength() throws {
        // A sparse file just big enough that the length does not run past its end.
        let dir = try CheckpointScratch()
        let path = try dir.write("huge.safetensors", safetensorsBytes("{}", data: [], length: 100_000_001))
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: 100_000_100)
        try h.close()
        let e = checkpointError { _ = try SafeTensorsFile(path: path) }
        expectCheckpointError(e, file: path, ["header length 100000001 is absurd"])
    }

    // ---- PyTorch archives -----------------------------------------------------------------
    func torchError(_ file: String, _ words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let path = CheckpointFixtures.path(file)
        let e = checkpointError(sourceLocation) { _ = try TorchArchiveFile(path: path) }
        expectCheckpointError(e, file: path, words, sourceLocation)
    }

    @Test func evilPicklesAreRefusedAndNeverRun() throws {
        let markers = ["/tmp/yanyi-checkpoint-pwned-system", "/tmp/yanyi-checkpoint-pwned-eval", "/tmp/yanyi-checkpoint-pwned-p4"]
        for m in markers { try? FileManager.default.removeItem(atPath: m) }
        torchError("bad/evil_system.bin", ["pickle references global 'posix.system', which a weights file never needs; refusing to load it"])
        // Protocol 2 spells builtins the Python 2 way.
        torchError("bad/evil_eval.bin", ["global '__builtin__.eval'", "refusing"])
        torchError("bad/evil_protocol4.bin", ["global 'posix.system'", "refusing"])
        torchError("bad/unknown_global.bin", ["global 'argparse.Namespace'", "refusing"])
        for m in markers { #expect(!FileManager.default.fileExists(atPath: m), "\(m) exists: a payload ran") }
    }

    @Test func torchArchiveProblems() throws {
        torchError("bad/legacy.bin", ["legacy (pre-zip) PyTorch format; re-save it with a newer torch (torch.save with the default zip serialization)"])
        torchError("bad/compressed.bin", ["zip entry 'pytorch_model/", "is compressed (method 8)"])
        torchError("bad/view_past_storage.bin", ["tensor 'w'", "reaches past its storage '0' of 4 elements"])
        torchError("bad/expanded.bin", ["tensor 'w'", "expanded"])
        torchError("bad/missing_storage.bin", ["tensor 'w'", "storage '7'", "no entry 'archive/data/7'"])
        torchError("bad/short_storage.bin", ["tensor 'w'", "storage '0' holds 16 bytes, fewer than its 100 F32 elements"])
        torchError("bad/big_endian.bin", ["byte order is 'big'"])
        torchError("bad/size_stride_mismatch.bin", ["tensor 'w'", "size [2, 2] but stride [1]"])
        torchError("bad/not_torch.zip", ["no '<folder>/data.pkl' entry"])
    }

    @Test func torchTruncatedAndForeign() throws {
        let dir = try CheckpointScratch()
        let good = try CheckpointFixtures.bytes("small/bin/pytorch_model.bin")
        var path = try dir.write("half.bin", Array(good.prefix(good.count / 2)))
        var e = checkpointError { _ = try TorchArchiveFile(path: path) }
        expectCheckpointError(e, file: path, ["end-of-central-directory", "truncated"])
        // Directory records intact but pointing past a file whose middle is gone.
        let cut = Array(good.prefix(200)) + Array(good.suffix(good.count - 1200))
        path = try dir.write("holed.bin", cut)
        e = checkpointError { _ = try TorchArchiveFile(path: path) }
        expectCheckpointError(e, file: path, ["end-of-central-directory", "truncated?"])
        // The pickle alone, outside its archive.
        let zip = try ZipArchive(MappedFile(path: CheckpointFixtures.path("small/bin/pytorch_model.bin")))
        let pkl = try #require(zip.entry("pytorch_model/data.pkl"))
        path = try dir.write("bare.pkl", Array(try zip.data(pkl)))
        e = checkpointError { _ = try TorchArchiveFile(path: path) }
        expectCheckpointError(e, file: path, ["bare pickle"])
        path = CheckpointFixtures.path("small/safetensors/model.safetensors")
        e = checkpointError { _ = try TorchArchiveFile(path: path) }
        expectCheckpointError(e, file: path, ["is a safetensors file"])
        path = try dir.write("text.bin", "hello, I am not a checkpoint")
        e = checkpointError { _ = try TorchArchiveFile(path: path) }
        expectCheckpointError(e, file: path, ["not a PyTorch zip archive"])
        path = try dir.write("lfs.bin", "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
        e = checkpointError { _ = try TorchArchiveFile(path: path) }
        expectCheckpointError(e, file: path, ["Git LFS pointer"])
    }

    /// Pickles the unpickler must refuse without running anything, byte by byte.
    @Test func pickleOpcodeProblems() throws {
        func unpickle(_ bytes: [UInt8]) -> LoadError? {
            bytes.withUnsafeBytes { (b) -> LoadError? in
                var u = Unpickler(b, file: "x.bin", entry: "archive/data.pkl")
                do throws(LoadError) { _ = try u.run(); return nil } catch { return error }
            }
        }
        let cases: [([UInt8], String)] = [
            ([0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8) + [0x2E], "global 'os.system'"),
            ([0x80, 0x02, 0x63] + Array("torch\nComplexFloatStorage\n".utf8) + [0x2E], "storage type 'torch.ComplexFloatStorage'"),
            ([0x80, 0x02, 0x7D, 0x28, 0x75], "ends without STOP"),
            ([0x80, 0x02, 0x2E], "stack underflow"),
            ([0x80, 0x02, 0x74, 0x2E], "no MARK"),
            ([0x80, 0x02, 0x68, 0x05, 0x2E], "memo key 5"),
            ([0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F], "runs past the end"),
            ([0x80, 0x02, 0x8F, 0x2E], "opcode 0x8f"),  // EMPTY_SET
            ([0x80, 0x02, 0x69], "opcode 0x69 ('i')"),  // INST: calls a class by name
            ([0x80, 0x06, 0x2E], "unsupported pickle protocol 6"),
            ([0x80, 0x02, 0x4E, 0x29, 0x52, 0x2E], "REDUCE calls None"),
            ([0x80, 0x02, 0x5D, 0x94, 0x5D, 0x68, 0x00, 0x61, 0x68, 0x00, 0x5D, 0x61, 0x2E], "after nesting"),
            ([0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2E], "inside itself"),
        ]
        for (bytes, words) in cases {
            let e = unpickle(bytes)
            #expect(e?.description.contains(words) == true, "\(words): \(e?.description ?? "loaded")")
        }
        // Nesting is capped (deep structures would overflow the stack when freed).
        let deep: [UInt8] = [0x80, 0x02, 0x29] + Array(repeating: 0x85, count: 100) + [0x2E]
        #expect(unpickle(deep)?.description.contains("nesting deeper than 64") == true)
        // LONG1 sign extension and BINFLOAT decode as Python does.
        let longs: [UInt8] = [0x80, 0x02, 0x8A, 0x02, 0xFF, 0x7F, 0x8A, 0x01, 0xFF, 0x86, 0x2E]
        try longs.withUnsafeBytes { b in
            var u = Unpickler(b, file: "x.bin", entry: "p")
            guard case .tuple(let items, _) = try u.run(), case .int(let a) = items[0], case .int(let c) = items[1] else {
                Issue.record("not a tuple of ints"); return
            }
            #expect(a == 32767 && c == -1)
        }
    }

    // ---- folders and shard indexes ------------------------------------------------------------
    func folderError(_ folder: String, file: String, _ words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let e = checkpointError(sourceLocation) { _ = try Checkpoint(folder: folder) }
        expectCheckpointError(e, file: file, words, sourceLocation)
    }

    @Test(arguments: ["safetensors", "bin"])
    func shardIndexProblems(kind: String) throws {
        let dir = try CheckpointScratch()
        let st = kind == "safetensors"
        let index = st ? "model.safetensors.index.json" : "pytorch_model.bin.index.json"
        let shard1 = st ? "model-00001-of-00002.safetensors" : "pytorch_model-00001-of-00002.bin"
        let shard2 = st ? "model-00002-of-00002.safetensors" : "pytorch_model-00002-of-00002.bin"
        let original = try String(contentsOfFile: CheckpointFixtures.path("small/\(kind)-sharded/\(index)"), encoding: .utf8)

        // A shard the index names is missing.
        var f = try dir.copyFolder("small/\(kind)-sharded", as: "missing")
        try FileManager.default.removeItem(atPath: f + "/" + shard2)
        folderError(f, file: f + "/" + index, ["weight_map names shard '\(shard2)'", "missing"])

        // The same tensor in two shards (shard 2 replaced by a copy of shard 1).
        f = try dir.copyFolder("small/\(kind)-sharded", as: "twice")
        try FileManager.default.removeItem(atPath: f + "/" + shard2)
        try FileManager.default.copyItem(atPath: f + "/" + shard1, toPath: f + "/" + shard2)
        folderError(f, file: f + "/" + shard2, ["tensor 'model.embed_tokens.weight' is also in \(shard1)"])

        // The index names one tensor twice.
        f = try dir.copyFolder("small/\(kind)-sharded", as: "dupkey")
        try dir.write("dupkey/\(index)", original.replacingOccurrences(
            of: "\"weight_map\": {", with: "\"weight_map\": {\n  \"model.norm.weight\": \"\(shard1)\","))
        folderError(f, file: f + "/" + index, ["names 'model.norm.weight' twice"])

        // The index puts a tensor in the wrong shard, or names one no shard holds.
        f = try dir.copyFolder("small/\(kind)-sharded", as: "wrong")
        try dir.write("wrong/\(index)", original.replacingOccurrences(
            of: "\"model.norm.weight\": \"\(shard2)\"", with: "\"model.norm.weight\": \"\(shard1)\""))
        folderError(f, file: f + "/" + index, ["weight_map puts tensor 'model.norm.weight' in \(shard1), but it is in \(shard2)"])
        f = try dir.copyFolder("small/\(kind)-sharded", as: "phantom")
        try dir.write("phantom/\(index)", original.replacingOccurrences(
            of: "\"weight_map\": {", with: "\"weight_map\": {\n  \"ghost.weight\": \"\(shard1)\","))
        folderError(f, file: f + "/" + index, ["tensor 'ghost.weight'", "no shard holds it"])

        // Broken JSON, a missing weight_map, and a shard outside the folder.
        f = try dir.copyFolder("small/\(kind)-sharded", as: "badjson")
        try dir.write("badjson/\(index)", String(original.dropLast(4)))
        folderError(f, file: f + "/" + index, ["invalid JSON"])
        try dir.write("badjson/\(index)", #"{"metadata": {}}"#)
        folderError(f, file: f + "/" + index, ["no \"weight_map\""])
        try dir.write("badjson/\(index)", #"{"weight_map": {"a": "../../etc/passwd"}}"#)
        folderError(f, file: f + "/" + index, ["tensor 'a'", "'../../etc/passwd'", "not a file inside the model folder"])
        try dir.write("badjson/\(index)", #"{"weight_map": {}}"#)
        folderError(f, file: f + "/" + index, ["weight_map is empty"])
        try dir.write("badjson/\(index)", #"{"weight_map": {"a": 3}}"#)
        folderError(f, file: f + "/" + index, ["'a'", "not a file name"])
    }

    @Test func folderProblems() throws {
        let dir = try CheckpointScratch()
        folderError(dir.path("nope"), file: dir.path("nope"), ["no such folder"])
        let file = try dir.write("file.txt", "x")
        folderError(file, file: file, ["not a folder"])
        try FileManager.default.createDirectory(atPath: dir.path("empty"), withIntermediateDirectories: true)
        folderError(dir.path("empty"), file: dir.path("empty"), ["no weights", "model.safetensors", "pytorch_model.bin"])
        // Shards without their index.
        let f = try dir.copyFolder("small/bin-sharded", as: "noindex")
        try FileManager.default.removeItem(atPath: f + "/pytorch_model.bin.index.json")
        folderError(f, file: f, ["found pytorch_model-00001-of-00002.bin", "index missing"])
        // A broken preferred file: no silent fallback, but the error says what else is there.
        let both = try dir.copyFolder("small/bin", as: "both")
        try dir.write("both/model.safetensors", [1, 2, 3])
        folderError(both, file: both + "/model.safetensors", ["too short", "also has pytorch_model.bin"])
        // Unknown tensors.
        let ck = try Checkpoint(folder: CheckpointFixtures.path("small/bin"))
        let e = checkpointError { _ = try ck.floats("missing.weight") }
        expectCheckpointError(e, file: CheckpointFixtures.path("small/bin"), ["no tensor named 'missing.weight'"])
        #expect(ck.info("missing.weight") == nil)
    }

    @Test func onDiskTruncationThroughCheckpoint() throws {
        let dir = try CheckpointScratch()
        for (layout, file) in [("small/bin", "pytorch_model.bin"), ("small/safetensors", "model.safetensors")] {
            let f = try dir.copyFolder(layout, as: "cut-\(file)")
            let bytes = try CheckpointFixtures.bytes("\(layout)/\(file)")
            try dir.write("cut-\(file)/\(file)", Array(bytes.prefix(bytes.count - 10)))
            let e = checkpointError { _ = try Checkpoint(folder: f) }
            #expect(e?.file == f + "/" + file)
        }
    }
}
