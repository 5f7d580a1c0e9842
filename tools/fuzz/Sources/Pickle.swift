@testable import Engine

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
