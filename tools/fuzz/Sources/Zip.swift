@testable import Engine

// A PyTorch .bin (zip, ZIP64, pickle, storages) in memory; one that loads has every tensor read.
enum FuzzTorchArchive {
    static func run(_ input: UnsafeRawBufferPointer) {
        let file = try? TorchArchiveFile(mapped: MappedFile(path: "fuzz.bin", bytes: Array(input)))
        file.map(FuzzTensors.readAll)
    }
}
