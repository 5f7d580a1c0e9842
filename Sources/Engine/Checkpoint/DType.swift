// Element types a checkpoint may store, spelled as safetensors spells them.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }

    /// Whether `floats(_:)` can convert it (integers and booleans are not weights).
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: true
        default: false
        }
    }
}

/// How a model folder stores its weights.
public enum CheckpointFormat: String, Sendable {
    case safetensors, safetensorsSharded, pytorchBin, pytorchBinSharded
}
