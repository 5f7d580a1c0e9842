@testable import Engine

// A safetensors file in memory (MappedFile(path:bytes:) has the mapping's bounds checks); one
// that loads has every tensor read every way, as a model load would.
enum FuzzSafeTensors {
    static func run(_ input: UnsafeRawBufferPointer) {
        let file = try? SafeTensorsFile(mapped: MappedFile(path: "fuzz.safetensors", bytes: Array(input)))
        file.map(FuzzTensors.readAll)
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
