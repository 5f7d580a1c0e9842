@testable import Engine

// Checkpoint readers, in memory (MappedFile(path:bytes:) has the mapping's bounds checks). A file
// that loads has every tensor read every way, as a model load would.

enum FuzzSafeTensors {
    static func run(_ input: UnsafeRawBufferPointer) {
        let file = try? SafeTensorsFile(mapped: MappedFile(path: "fuzz.safetensors", bytes: Array(input)))
        file.map(FuzzTensors.readAll)
    }
}

enum FuzzTorchArchive {
    static func run(_ input: UnsafeRawBufferPointer) {
        let file = try? TorchArchiveFile(mapped: MappedFile(path: "fuzz.bin", bytes: Array(input)))
        file.map(FuzzTensors.readAll)
    }
}

/// The restricted unpickler alone (a zip's data.pkl), then the state-dict walk over its result.
enum FuzzPickle {
    static func run(_ input: UnsafeRawBufferPointer) {
        var unpickler = Unpickler(input, file: "fuzz.bin", entry: "archive/data.pkl")
        guard let root = try? unpickler.run(), let dict = try? TorchArchiveFile.stateDict(root, "fuzz.bin") else { return }
        for (key, value) in dict.entries {
            guard case .tensor(let t) = value else { continue }
            // Locate each tensor as if its storage started at byte 0 of the file.
            _ = try? TorchArchiveFile.view(key.describedKey, t, 0, "fuzz.bin")
        }
    }
}

enum FuzzTensors {
    static func readAll(_ file: some TensorFile) {
        for name in file.names {
            guard let t = file.info(name) else { fatalError("listed tensor \(name) has no info") }
            if t.dtype.isFloatingPoint, let v = try? file.floats(name), v.count != t.count {
                fatalError("\(name): \(v.count) floats for \(t.count) elements")
            }
            if t.isContiguous, let n = try? file.withRawBytes(name, { $0.count }), n != t.byteCount {
                fatalError("\(name): \(n) raw bytes for \(t.byteCount)")
            }
            file.releasePages(name)
        }
    }
}
