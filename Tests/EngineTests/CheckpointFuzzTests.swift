import Foundation
import Testing
@testable import Engine

// Truncated and corrupted files must load or throw a LoadError: never trap, never read outside
// the mapping. Cases run in memory (MappedFile(path:bytes:)) with the same bounds checks as a
// real mapping, so thousands of them take seconds.
@Suite("Checkpoint fuzz")
struct CheckpointFuzzTests {
    /// Opens the bytes and, when they load, reads every tensor every way. True when it loaded.
    static func exercise(_ bytes: [UInt8], safetensors: Bool, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let mapped = MappedFile(path: "fuzz", bytes: bytes)
        do throws(LoadError) {
            let file: any TensorFile = safetensors ? try SafeTensorsFile(mapped: mapped) : try TorchArchiveFile(mapped: mapped)
            for name in file.names {
                guard let t = file.info(name) else {
                    Issue.record("listed tensor \(name) has no info", sourceLocation: sourceLocation)
                    continue
                }
                if t.dtype.isFloatingPoint, let v = try? file.floats(name), v.count != t.count {
                    Issue.record("\(name): \(v.count) floats for \(t.count) elements", sourceLocation: sourceLocation)
                }
                if t.isContiguous, let n = try? file.withRawBytes(name, { $0.count }), n != t.byteCount {
                    Issue.record("\(name): \(n) raw bytes for \(t.byteCount)", sourceLocation: sourceLocation)
                }
            }
            return true
        } catch {
            if error.description.contains("\n") || error.reason.isEmpty {
                Issue.record("badly formed error: \(error.description)", sourceLocation: sourceLocation)
            }
            return false
        }
    }

    /// Byte ranges where corruption is most interesting, by weight: the safetensors header; the
    /// zip's pickle (40%), central directory and end records (30%) and local headers (15%);
    /// anywhere in the file for the rest.
    static func structure(_ bytes: [UInt8], safetensors: Bool) throws -> [(weight: Int, range: Range<Int>)] {
        if safetensors {
            let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            return [(85, 0..<(8 + n)), (15, 0..<bytes.count)]
        }
        let zip = try ZipArchive(MappedFile(path: "fuzz", bytes: bytes))
        var regions: [(weight: Int, range: Range<Int>)] = [(30, zip.centralDirectoryOffset..<bytes.count), (15, 0..<bytes.count)]
        let locals = zip.entries.count
        for e in zip.entries {
            let data = try zip.dataRange(e)
            // Only the fixed part and the name of a local header matter (the extra field is padding).
            regions.append((max(1, 15 / locals), e.localHeaderOffset..<min(data.lowerBound, e.localHeaderOffset + 30 + e.name.utf8.count)))
            if e.name.hasSuffix("/data.pkl") { regions.append((40, data)) }
        }
        return regions
    }

    static func pick(_ regions: [(weight: Int, range: Range<Int>)], _ rng: inout SplitMix64) -> Int {
        var w = Int.random(in: 0..<regions.reduce(0) { $0 + $1.weight }, using: &rng)
        for r in regions {
            if w < r.weight { return Int.random(in: r.range, using: &rng) }
            w -= r.weight
        }
        return 0
    }

    @Test("truncation at every offset and 600 seeded corruptions per file", arguments: CheckpointFixtures.validFiles)
    func corruptions(file: String) throws {
        let good = try CheckpointFixtures.bytes(file)
        let st = file.hasSuffix(".safetensors")
        #expect(Self.exercise(good, safetensors: st), "the pristine file must load")

        // Every truncation point (the fixtures are a few KB).
        var truncatedLoads = 0
        for cut in 0..<good.count where Self.exercise(Array(good.prefix(cut)), safetensors: st) { truncatedLoads += 1 }
        if !st { #expect(truncatedLoads == 0, "a truncated zip lost its end records, yet loaded") }

        // Seeded mutations of 1-3 bytes, aimed mostly at the structure.
        let regions = try Self.structure(good, safetensors: st)
        var rng = SplitMix64(seed: UInt64(truncatingIfNeeded: file.utf8.reduce(5381) { $0 &* 33 &+ Int($1) }))
        var loaded = 0
        let mutations = 600
        for _ in 0..<mutations {
            var b = good
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Self.pick(regions, &rng)
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<5: b[at] = UInt8.random(in: 0...255, using: &rng)
                case 5..<8: b[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                case 8: b[at] = 0
                default: b[at] = 0xFF
                }
            }
            if Self.exercise(b, safetensors: st) { loaded += 1 }
        }
        print("fuzz \(file): \(good.count) truncations (\(truncatedLoads) loaded), \(mutations) mutations (\(loaded) loaded)")
    }

    @Test("random opcode streams through the unpickler")
    func pickleStreams() {
        // Mostly opcodes a state dict uses (plus a few it must refuse), with random arguments.
        let opcodes: [UInt8] = [0x80, 0x95, 0x2E, 0x63, 0x93, 0x71, 0x72, 0x94, 0x68, 0x6A, 0x28, 0x30, 0x31, 0x32,
                                0x7D, 0x64, 0x5D, 0x6C, 0x29, 0x74, 0x85, 0x86, 0x87, 0x73, 0x75, 0x61, 0x65,
                                0x4A, 0x4B, 0x4D, 0x8A, 0x8B, 0x58, 0x8C, 0x8D, 0x54, 0x55, 0x42, 0x43, 0x8E,
                                0x4E, 0x88, 0x89, 0x47, 0x52, 0x81, 0x62, 0x51, 0x69, 0x8F]
        let names: [[UInt8]] = ["collections\nOrderedDict\n", "torch._utils\n_rebuild_tensor_v2\n", "torch\nFloatStorage\n",
                                "torch._utils\n_rebuild_parameter\n", "torch\nSize\n", "os\nsystem\n"].map { Array($0.utf8) }
        var rng = SplitMix64(seed: 42)
        var stopped = 0
        let streams = 5000
        for _ in 0..<streams {
            var b: [UInt8] = [0x80, 0x02]
            for _ in 0..<Int.random(in: 1...80, using: &rng) {
                let op = opcodes.randomElement(using: &rng) ?? 0x2E
                b.append(op)
                if op == 0x63, let n = names.randomElement(using: &rng) { b += n; continue }
                for _ in 0..<Int.random(in: 0...2, using: &rng) { b.append(UInt8.random(in: 0...8, using: &rng)) }
            }
            b.withUnsafeBytes { raw in
                var u = Unpickler(raw, file: "fuzz.bin", entry: "archive/data.pkl")
                do throws(LoadError) { _ = try u.run(); stopped += 1 } catch {
                    if error.description.contains("\n") { Issue.record("badly formed error: \(error.description)") }
                }
            }
        }
        print("fuzz pickle: \(streams) random opcode streams (\(stopped) reached STOP)")
    }

    @Test("corrupted shard indexes")
    func shardIndexes() throws {
        let dir = try CheckpointScratch()
        let folder = try dir.copyFolder("small/safetensors-sharded", as: "m")
        let index = folder + "/model.safetensors.index.json"
        let good = try CheckpointFixtures.bytes("small/safetensors-sharded/model.safetensors.index.json")
        var rng = SplitMix64(seed: 7)
        var loaded = 0
        let cases = 300
        for k in 0..<cases {
            var b = k % 3 == 0 ? Array(good.prefix(Int.random(in: 0..<good.count, using: &rng))) : good
            if k % 3 != 0 {
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            try Data(b).write(to: URL(fileURLWithPath: index))
            do throws(LoadError) {
                let ck = try Checkpoint(folder: folder)
                for n in ck.names { _ = try? ck.floats(n) }
                loaded += 1
            } catch {
                #expect(!error.description.contains("\n"))
            }
        }
        print("fuzz shard index: \(cases) corrupted indexes (\(loaded) loaded)")
    }
}
