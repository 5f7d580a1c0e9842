import Foundation

/// One model folder's weights, in whichever of the Hugging Face layouts it uses. Every weight
/// file is memory-mapped and indexed at init (shards are opened eagerly: mapping costs no I/O,
/// and a broken shard is reported before a model starts loading); tensors are read one at a
/// time, so a checkpoint bigger than memory loads fine.
public final class Checkpoint: @unchecked Sendable {
    public let folder: String
    public let format: CheckpointFormat
    /// Weight files (shards) in order.
    public let files: [String]
    private let shards: [any TensorFile]
    private let location: [String: Int]   // tensor name -> index into shards
    private let order: [String]

    /// The file names looked for, in order of preference (as transformers prefers them).
    static let candidates: [(name: String, format: CheckpointFormat)] = [
        ("model.safetensors", .safetensors),
        ("model.safetensors.index.json", .safetensorsSharded),
        ("pytorch_model.bin", .pytorchBin),
        ("pytorch_model.bin.index.json", .pytorchBinSharded),
    ]

    public init(folder: String) throws(LoadError) {
        self.folder = folder
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDir) else { throw LoadError(folder, "no such folder") }
        guard isDir.boolValue else { throw LoadError(folder, "not a folder (give the model folder)") }
        let present = Checkpoint.candidates.filter { fm.fileExists(atPath: joinPath(folder, $0.name)) }
        guard let chosen = present.first else {
            let wanted = Checkpoint.candidates.map(\.name).joined(separator: ", ")
            let strays = ((try? fm.contentsOfDirectory(atPath: folder)) ?? [])
                .filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".bin") }.sorted()
            if strays.isEmpty { throw LoadError(folder, "no weights: expected one of \(wanted)") }
            throw LoadError(folder, "no weights Yanyi can open: found \(strays.prefix(4).map(\.printable).joined(separator: ", ")) but none of \(wanted) (is the shard index missing?)")
        }
        format = chosen.format

        let opened: (files: [String], shards: [any TensorFile], location: [String: Int], order: [String])
        do {
            opened = try Checkpoint.open(folder, chosen.name, chosen.format)
        } catch {
            // No silent fallback to another layout: say what else is there.
            let others = present.dropFirst().map(\.name)
            if others.isEmpty { throw error }
            throw LoadError(error.file, "\(error.reason) (the folder also has \(others.joined(separator: ", ")), not tried)")
        }
        (files, shards, location, order) = opened
    }

    private static func openFile(_ path: String, _ format: CheckpointFormat) throws(LoadError) -> any TensorFile {
        switch format {
        case .safetensors, .safetensorsSharded: try SafeTensorsFile(path: path)
        case .pytorchBin, .pytorchBinSharded: try TorchArchiveFile(path: path)
        }
    }

    private static func open(_ folder: String, _ name: String, _ format: CheckpointFormat) throws(LoadError)
        -> (files: [String], shards: [any TensorFile], location: [String: Int], order: [String]) {
        let path = joinPath(folder, name)
        guard format == .safetensorsSharded || format == .pytorchBinSharded else {
            let f = try openFile(path, format)
            var location: [String: Int] = [:]
            for n in f.names { location[n] = 0 }
            return ([path], [f], location, f.names)
        }

        let index = try ShardIndex(path: path)
        var files: [String] = []
        var shards: [any TensorFile] = []
        for shard in index.shards {
            let p = joinPath(folder, shard)
            guard FileManager.default.fileExists(atPath: p) else {
                throw LoadError(path, "weight_map names shard \(shard.quoted), which is missing from the folder")
            }
            files.append(p)
            shards.append(try openFile(p, format))
        }
        // A tensor lives in exactly one shard.
        var location: [String: Int] = [:]
        var order: [String] = []
        for (k, f) in shards.enumerated() {
            for n in f.names {
                if let other = location[n] {
                    throw LoadError(files[k], "tensor \(n.quoted) is also in \(index.shards[other].printable); a tensor must be in one shard only")
                }
                location[n] = k
                order.append(n)
            }
        }
        // Every claim of the index holds.
        let shardNumber = Dictionary(uniqueKeysWithValues: index.shards.enumerated().map { ($1, $0) })
        for (tensor, shard) in index.weightMap {
            guard let k = location[tensor], k == shardNumber[shard] else {
                let actual = location[tensor].map { "it is in \(index.shards[$0].printable)" } ?? "no shard holds it"
                throw LoadError(path, "weight_map puts tensor \(tensor.quoted) in \(shard.printable), but \(actual)")
            }
        }
        return (files, shards, location, order)
    }

    /// Tensor names, in file order (shard by shard).
    public var names: [String] { order }

    public func info(_ name: String) -> TensorInfo? {
        location[name].flatMap { shards[$0].info(name) }
    }

    /// A row-major contiguous fp32 copy of one tensor (honours strides and storage offsets).
    public func floats(_ name: String) throws(LoadError) -> [Float] {
        guard let k = location[name] else { throw LoadError(folder, "no tensor named \(name.quoted)") }
        return try shards[k].floats(name)
    }

    /// The mapped bytes of one contiguous tensor in its stored dtype (no copy; may be unaligned).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let k = location[name] else { throw LoadError(folder, "no tensor named \(name.quoted)") }
        return try shards[k].withRawBytes(name, body)
    }

    /// Lets the pages of a tensor already consumed leave memory (the loader calls it per tensor).
    public func releasePages(_ name: String) {
        if let k = location[name] { shards[k].releasePages(name) }
    }

    /// The same for elements `range` of a contiguous tensor.
    public func releasePages(_ name: String, elements range: Range<Int>) {
        if let k = location[name] { shards[k].releasePages(name, elements: range) }
    }
}
