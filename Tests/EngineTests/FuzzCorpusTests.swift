import Foundation
import Testing
@testable import Engine

/// The fuzz corpora of the checkpoint readers (tools/fuzz/corpus: the seeds, and every input a
/// fuzzer found a crash with) replayed through the normal API in the ordinary test build: each
/// input loads, or is refused with a one-line LoadError.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/fuzz/corpus")

    static func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let dir = corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        return try names.map { ($0, [UInt8](try Data(contentsOf: dir.appendingPathComponent($0)))) }
    }

    @Test(arguments: ["safetensors", "zip"])
    func checkpointCorpus(target: String) throws {
        let inputs = try Self.inputs(target)
        #expect(!inputs.isEmpty)
        for (_, bytes) in inputs { _ = CheckpointFuzzTests.exercise(bytes, safetensors: target == "safetensors") }
    }

    @Test func pickleCorpus() throws {
        let inputs = try Self.inputs("pickle")
        #expect(!inputs.isEmpty)
        for (name, bytes) in inputs {
            let result = bytes.withUnsafeBytes { b in
                Result { () throws(LoadError) -> PickleValue in
                    var u = Unpickler(b, file: "fuzz.bin", entry: "archive/data.pkl")
                    return try u.run()
                }
            }
            if case .failure(let e) = result {
                #expect(!e.description.contains("\n") && !e.reason.isEmpty, "\(name): \(e.description)")
            }
        }
    }
}
