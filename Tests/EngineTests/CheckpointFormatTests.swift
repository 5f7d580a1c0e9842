import Foundation
import Testing
@testable import Engine

// Every layout of the same small state dict reads back bit for bit, and torch views come out as
// the contiguous values torch itself gives.
@Suite("Checkpoint formats")
struct CheckpointFormatTests {
    /// Compares one loaded tensor with the fixture script's description.
    func check(_ info: TensorInfo?, floats: () throws -> [Float], _ e: ExpectedCheckpointTensor, strides: Bool = false,
               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let t = try #require(info, "missing tensor \(e.name)", sourceLocation: sourceLocation)
        #expect(t.dtype.rawValue == e.dtype, "\(e.name) dtype", sourceLocation: sourceLocation)
        #expect(t.shape == e.shape, "\(e.name) shape", sourceLocation: sourceLocation)
        #expect(t.count == e.shape.reduce(1, *), sourceLocation: sourceLocation)
        if strides {
            #expect(t.strides == e.strides, "\(e.name) strides", sourceLocation: sourceLocation)
            #expect(t.isContiguous == e.contiguous, "\(e.name) contiguity", sourceLocation: sourceLocation)
        }
        if let bits = e.bits {
            let got = fp32Bits(try floats())
            #expect(got == bits, "\(e.name) values", sourceLocation: sourceLocation)
        }
    }

    @Test("small state dict: all four layouts load identically", arguments: CheckpointFixtures.smallLayouts)
    func smallLayouts(folder: String, format: CheckpointFormat) throws {
        let expected = try ExpectedCheckpointTensor.load("small.json")
        let ck = try Checkpoint(folder: CheckpointFixtures.path(folder))
        #expect(ck.format == format)
        #expect(Set(ck.names) == Set(expected.map(\.name)))
        #expect(ck.names.count == expected.count)
        let shardCount = format == .safetensorsSharded || format == .pytorchBinSharded ? 2 : 1
        #expect(ck.files.count == shardCount)
        #expect(ck.files == ck.files.sorted())
        if format == .pytorchBin {
            #expect(ck.names == expected.map(\.name), "a torch state dict keeps its order")
        }
        for e in expected {
            try check(ck.info(e.name), floats: { try ck.floats(e.name) }, e)
            if e.ints != nil {
                let values = try ck.withRawBytes(e.name) { b in (0..<(b.count / 8)).map { Int(b.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
                #expect(values == e.ints)
            }
        }
    }

    @Test("the layouts agree with each other on every byte")
    func layoutsAgree() throws {
        let all = try CheckpointFixtures.smallLayouts.map { try Checkpoint(folder: CheckpointFixtures.path($0.0)) }
        for name in all[0].names {
            let reference = all[0].info(name)
            for ck in all.dropFirst() {
                let t = try #require(ck.info(name))
                #expect(t.dtype == reference?.dtype && t.shape == reference?.shape && t.strides == reference?.strides)
                let a = try all[0].withRawBytes(name) { Array($0) }
                let b = try ck.withRawBytes(name) { Array($0) }
                #expect(a == b, "\(name): stored bytes differ between \(all[0].format) and \(ck.format)")
            }
        }
    }

    @Test("torch views: transposes, offsets, strides, shared storage, 0-dim and empty tensors")
    func views() throws {
        let path = CheckpointFixtures.path("views.bin")
        let f = try TorchArchiveFile(path: path)
        let expected = try ExpectedCheckpointTensor.load("views.json")
        #expect(f.names == expected.map(\.name))
        for e in expected {
            try check(f.info(e.name), floats: { try f.floats(e.name) }, e, strides: true)
            if let ints = e.ints {
                let got = try f.withRawBytes(e.name) { b in (0..<(b.count / 8)).map { Int(b.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
                #expect(got == ints, "\(e.name)")
            }
        }
        // Views of one storage point into the same bytes.
        let base = try #require(f.info("base"))
        #expect(f.info("transpose")?.offset == base.offset)
        #expect(f.info("rows_1_to_3")?.offset == base.offset + 6 * 4)
        #expect(f.info("column_3")?.offset == base.offset + 3 * 4)
        #expect(f.info("element_2_5")?.offset == base.offset + 17 * 4)
        #expect(f.info("tied_a")?.offset == f.info("tied_b")?.offset)
        #expect(f.info("scalar")?.shape == [] && f.info("scalar")?.count == 1)
        #expect(try f.floats("empty").isEmpty && f.info("empty")?.count == 0)
        // Raw bytes only for contiguous tensors; a contiguous slice gives just its own bytes.
        #expect(try f.withRawBytes("rows_1_to_3") { $0.count } == 12 * 4)
        let e = checkpointError { _ = try f.withRawBytes("transpose") { $0.count } }
        expectCheckpointError(e, file: path, ["transpose", "not contiguous"])
    }

    @Test("nn.Parameter state dicts (_rebuild_parameter, OrderedDict _metadata BUILD)")
    func parameters() throws {
        let f = try TorchArchiveFile(path: CheckpointFixtures.path("parameter.bin"))
        let expected = try ExpectedCheckpointTensor.load("parameter.json")
        #expect(f.names == expected.map(\.name))
        for e in expected { try check(f.info(e.name), floats: { try f.floats(e.name) }, e, strides: true) }
    }

    @Test("pickle protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE) and fp16 module weights")
    func protocol4() throws {
        let f = try TorchArchiveFile(path: CheckpointFixtures.path("module_p4.bin"))
        let expected = try ExpectedCheckpointTensor.load("module_p4.json")
        #expect(f.names == expected.map(\.name))
        for e in expected { try check(f.info(e.name), floats: { try f.floats(e.name) }, e, strides: true) }
    }

    @Test("a state dict wrapped in {\"state_dict\": …}, ZIP64 records, and a hand-built archive")
    func wrappedAndZip64() throws {
        let expected = try ExpectedCheckpointTensor.load("small.json")
        for file in ["nested.bin", "zip64.bin"] {
            let f = try TorchArchiveFile(path: CheckpointFixtures.path(file))
            #expect(f.names == expected.map(\.name), "\(file)")
            for e in expected { try check(f.info(e.name), floats: { try f.floats(e.name) }, e) }
        }
        let z = try TorchArchiveFile(path: CheckpointFixtures.path("zip64.bin"))
        #expect(z.metadata["archive"] == "archive")
        #expect(try TorchArchiveFile(path: CheckpointFixtures.path("small/bin/pytorch_model.bin")).metadata["archive"] == "pytorch_model")

        let h = try TorchArchiveFile(path: CheckpointFixtures.path("handmade.bin"))
        #expect(try h.floats("w") == [1, 2, 3])
        #expect(try h.floats("v") == [0, 2, 1, 3])
        #expect(h.metadata["byteorder"] == "little" && h.metadata["version"] == "3")
    }

    @Test("safetensors metadata and raw bytes")
    func safetensorsDetails() throws {
        let f = try SafeTensorsFile(path: CheckpointFixtures.path("small/safetensors/model.safetensors"))
        #expect(f.metadata == ["format": "pt"])
        let t = try #require(f.info("model.layers.0.self_attn.qkv.weight"))
        #expect(t.dtype == .f16 && t.shape == [12, 4] && t.strides == [4, 1] && t.isContiguous)
        #expect(try f.withRawBytes(t.name) { $0.count } == 12 * 4 * 2)
        let path = CheckpointFixtures.path("small/safetensors/model.safetensors")
        let e = checkpointError { _ = try f.floats("model.position_ids") }
        expectCheckpointError(e, file: path, ["model.position_ids", "I64", "only F32, F16, BF16 and F64"])
        let e2 = checkpointError { _ = try f.floats("no.such.tensor") }
        expectCheckpointError(e2, file: path, ["no tensor named 'no.such.tensor'"])
    }

    @Test("DType sizes")
    func dtypeSizes() {
        #expect(DType.allCases.map(\.byteSize) == [4, 2, 2, 8, 8, 4, 2, 1, 1, 1])
        #expect(DType(rawValue: "BF16") == .bf16 && DType(rawValue: "BOOL") == .bool)
    }
}
