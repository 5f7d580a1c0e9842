import Foundation
import Testing
@testable import Engine

/// Fixture paths for the checkpoint tests (found from this file, not from bundle resources).
enum CheckpointFixtures {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let root = fixtures.appendingPathComponent("checkpoint")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// The small state dict in every layout: (folder, format).
    static let smallLayouts: [(String, CheckpointFormat)] = [
        ("small/safetensors", .safetensors),
        ("small/safetensors-sharded", .safetensorsSharded),
        ("small/bin", .pytorchBin),
        ("small/bin-sharded", .pytorchBinSharded),
    ]

    /// Every valid weights file (the fuzz loop mutates each of them).
    static let validFiles = [
        "small/safetensors/model.safetensors",
        "small/safetensors-sharded/model-00001-of-00002.safetensors",
        "small/safetensors-sharded/model-00002-of-00002.safetensors",
        "small/bin/pytorch_model.bin",
        "small/bin-sharded/pytorch_model-00001-of-00002.bin",
        "small/bin-sharded/pytorch_model-00002-of-00002.bin",
        "views.bin", "parameter.bin", "module_p4.bin", "nested.bin", "zip64.bin", "handmade.bin",
    ]

    static func bytes(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(relative)))
    }
}

/// One tensor as the fixture script describes it.
struct ExpectedCheckpointTensor: Decodable {
    let name: String
    let dtype: String
    let shape: [Int]
    let strides: [Int]
    let contiguous: Bool
    let bits: [UInt32]?    // fp32 bit patterns, row-major, for float tensors
    let ints: [Int]?       // values of integer tensors

    static func load(_ relative: String) throws -> [ExpectedCheckpointTensor] {
        let data = try Data(contentsOf: CheckpointFixtures.root.appendingPathComponent(relative))
        return try JSONDecoder().decode([ExpectedCheckpointTensor].self, from: data)
    }
}

/// A scratch folder removed when the test is done with it.
final class CheckpointScratch {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("yanyi-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path(name)
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: p).deletingLastPathComponent(),
                                                withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String { try write(name, Array(text.utf8)) }

    /// Copies a fixture folder's files into `name/` and returns its path.
    func copyFolder(_ fixture: String, as name: String) throws -> String {
        let src = CheckpointFixtures.root.appendingPathComponent(fixture)
        let dst = url.appendingPathComponent(name)
        try FileManager.default.copyItem(at: src, to: dst)
        return dst.path
    }
}

/// safetensors bytes: header length (or an override), header text, data.
func safetensorsBytes(_ header: String, data: [UInt8], length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    let n = length ?? UInt64(h.count)
    return withUnsafeBytes(of: n.littleEndian) { Array($0) } + h + data
}

/// fp32 bit patterns of a float array.
func fp32Bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }


/// Opens any single weights file by its kind (as the Checkpoint does), from a path.
func openWeightsFile(_ path: String) throws(LoadError) -> any TensorFile {
    path.hasSuffix(".safetensors") ? try SafeTensorsFile(path: path) : try TorchArchiveFile(path: path)
}

/// The LoadError a closure throws, failing the test if it throws nothing or something else.
func checkpointError(_ sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> LoadError? {
    do {
        try body()
        Issue.record("expected a LoadError, but it loaded", sourceLocation: sourceLocation)
    } catch let e as LoadError {
        #expect(!e.description.contains("\n"), "one line: \(e.description)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected a LoadError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Asserts the error names the file and every key word.
func expectCheckpointError(_ e: LoadError?, file: String, _ words: [String],
                           _ sourceLocation: SourceLocation = #_sourceLocation) {
    guard let e else { return }
    #expect(e.file == file, "file: \(e.description)", sourceLocation: sourceLocation)
    for w in words {
        #expect(e.description.contains(w), "'\(w)' missing from: \(e.description)", sourceLocation: sourceLocation)
    }
}
