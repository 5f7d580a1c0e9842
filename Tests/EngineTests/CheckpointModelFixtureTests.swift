import Foundation
import Testing
@testable import Engine

// The tiny reference models (Tests/Fixtures/models/<model>/<variant>/) load to the tensors the
// fixture generator recorded (Tests/Fixtures/expected/tensors-<model>.json), and every weight
// layout of one model holds the same values.
@Suite("Checkpoint model fixtures")
struct CheckpointModelFixtureTests {
    // Decoded with JSONDecoder: on Linux, JSONSerialization misreads some doubles by an ulp or two
    // (0.7615724802017212 comes back as 0.7615724802017214); JSONDecoder parses them exactly.
    struct Expected: Decodable {
        let name: String
        let dtype: String
        let shape: [Int]
        let sum: Double, wsum: Double, absSum: Double
        let first8: [Double], last8: [Double]
        enum CodingKeys: String, CodingKey { case name, dtype, shape, sum, wsum, absSum = "abs_sum", first8, last8 }
    }

    struct ExpectedFile: Decodable {
        let variants: [String]
        let tensors: [Expected]
        /// Tensors loaders ignore (e.g. rotary inv_freq) that only some variants carry.
        let ignoredTensors: [Expected]?
        enum CodingKeys: String, CodingKey { case variants, tensors, ignoredTensors = "ignored_tensors" }
    }

    static let models: [String] = {
        let dir = CheckpointFixtures.fixtures.appendingPathComponent("expected")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.filter { $0.hasPrefix("tensors-") && $0.hasSuffix(".json") }
            .map { String($0.dropFirst("tensors-".count).dropLast(".json".count)) }.sorted()
    }()

    static func expected(_ model: String) throws -> ExpectedFile {
        let url = CheckpointFixtures.fixtures.appendingPathComponent("expected/tensors-\(model).json")
        return try JSONDecoder().decode(ExpectedFile.self, from: Data(contentsOf: url))
    }

    /// Neumaier-compensated sum: close enough to Python's exact fsum for a tolerance of 1e-9.
    static func sum(_ v: [Float], _ f: (Int, Double) -> Double) -> Double {
        var s = 0.0, c = 0.0
        for (i, x) in v.enumerated() {
            let y = f(i, Double(x))
            let t = s + y
            c += abs(s) >= abs(y) ? (s - t) + y : (y - t) + s
            s = t
        }
        return s + c
    }

    @Test("every variant matches the recorded tensors", arguments: models)
    func variantsMatch(model: String) throws {
        let file = try Self.expected(model)
        let variants = file.variants, ignored = file.ignoredTensors ?? []
        let tensors = file.tensors + ignored
        #expect(!variants.isEmpty && !file.tensors.isEmpty)
        var reference: Checkpoint?
        for variant in variants {
            let folder = CheckpointFixtures.fixtures.appendingPathComponent("models/\(model)/\(variant)").path
            let ck = try Checkpoint(folder: folder)
            let required = Set(file.tensors.map(\.name))
            let known = Set(tensors.map(\.name))
            #expect(required.isSubset(of: Set(ck.names)), "\(model)/\(variant) lacks \(required.subtracting(ck.names).sorted())")
            #expect(Set(ck.names).isSubset(of: known), "\(model)/\(variant) has unexpected \(Set(ck.names).subtracting(known).sorted())")
            for e in tensors where ck.info(e.name) != nil {
                let where_ = "\(model)/\(variant) \(e.name)"
                let t = try #require(ck.info(e.name))
                #expect(t.dtype.rawValue == e.dtype, "\(where_) dtype")
                #expect(t.shape == e.shape, "\(where_) shape")
                let v = try ck.floats(e.name)
                #expect(v.count == t.count)
                #expect(Array(v.prefix(8)).map(Double.init) == e.first8, "\(where_) first values")
                #expect(Array(v.suffix(8)).map(Double.init) == e.last8, "\(where_) last values")
                let tolerance = 1e-9 * max(1, e.absSum)
                #expect(abs(Self.sum(v) { $1 } - e.sum) <= tolerance, "\(where_) sum")
                #expect(abs(Self.sum(v) { i, x in x * Double(i % 97 + 1) } - e.wsum) <= tolerance * 97, "\(where_) weighted sum")
                #expect(abs(Self.sum(v) { abs($1) } - e.absSum) <= tolerance, "\(where_) abs sum")
                // Bit-identical across variants, not just close.
                if let r = reference, r.info(e.name) != nil {
                    #expect(try r.floats(e.name).map(\.bitPattern) == v.map(\.bitPattern), "\(where_) differs from \(r.format)")
                }
            }
            if reference == nil { reference = ck }
        }
    }
}
