import Chat
import Engine
import Foundation

/// What the server can run: the bases (folders with config.json) and adapters (folders with
/// adapter_config.json) under the models folder, and the personas. Clients name bases and
/// adapters by their path relative to the models folder (or its last component when that is
/// unique), never by a path of their own: `..`, absolute paths and anything not found by the
/// scan are refused, so no request reads a file outside the folder the server was given.
public struct ModelCatalog: Sendable {
    public struct Base: Sendable, Equatable {
        /// Path relative to the models folder (`models/llama-trained/safetensors`).
        public var id: String
        /// Absolute, standardized.
        public var path: String
    }

    public struct Adapter: Sendable, Equatable {
        public var id: String
        public var path: String
        /// Position in `adapters` (llama.cpp's `lora` ids).
        public var index: Int
        /// adapter_config.json's base_model_name_or_path.
        public var baseModel: String?
    }

    public let root: String
    public var bases: [Base]
    public var adapters: [Adapter]
    public var personas: [Persona]

    /// Scans `modelsRoot` (at most 6 levels; hidden folders skipped; nothing inside a model or
    /// adapter folder is descended into).
    public static func scan(modelsRoot: String, personas: [Persona]) -> ModelCatalog {
        let root = URL(fileURLWithPath: modelsRoot).standardizedFileURL.path
        var bases: [Base] = []
        var adapters: [Adapter] = []
        let fm = FileManager.default
        func walk(_ dir: String, _ depth: Int) {
            guard depth <= 6, let names = try? fm.contentsOfDirectory(atPath: dir) else { return }
            let rel = dir == root ? "" : String(dir.dropFirst(root.count + 1))
            if names.contains("adapter_config.json") {
                let base = (try? JSON.parse(Data(contentsOf: URL(fileURLWithPath: dir + "/adapter_config.json"))))?["base_model_name_or_path"]?.string
                adapters.append(Adapter(id: rel, path: dir, index: 0, baseModel: base))
                return
            }
            if names.contains("config.json") {
                // `--models` pointed at one model folder: it is the one base, by its folder name
                bases.append(Base(id: rel.isEmpty ? URL(fileURLWithPath: dir).lastPathComponent : rel, path: dir))
                return
            }
            for n in names.sorted() where !n.hasPrefix(".") {
                var isDir: ObjCBool = false
                let p = dir + "/" + n
                if fm.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue { walk(p, depth + 1) }
            }
        }
        walk(root, 0)
        adapters.sort { $0.id < $1.id }
        for i in adapters.indices { adapters[i].index = i }
        return ModelCatalog(root: root, bases: bases.sorted { $0.id < $1.id }, adapters: adapters, personas: personas)
    }

    /// A persona file's path (relative to the models folder, or absolute): the operator's, so
    /// taken as written.
    public func resolve(_ path: String) -> String {
        URL(fileURLWithPath: path.hasPrefix("/") ? path : root + "/" + path).standardizedFileURL.path
    }

    /// Refuses what is a path rather than a name: `..`, absolute, home-relative, backslashes.
    static func checkName(_ name: String, param: String) throws(APIError) {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if name.isEmpty || name.hasPrefix("/") || name.hasPrefix("~") || name.contains("\\") || name.contains("\0")
            || parts.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) {
            throw APIError.invalid("'\(name)' is a path; models and adapters are named by their folder under the server's models folder, as GET /v1/models lists them (no '..', no absolute paths).",
                                   param: param, code: "invalid_model_name")
        }
    }

    /// The entry whose id is `name`, else the one whose last component is (when only one is).
    static func find<T>(_ name: String, in list: [T], id: (T) -> String) -> T? {
        if let hit = list.first(where: { id($0) == name }) { return hit }
        let tail = list.filter { id($0).split(separator: "/").last.map(String.init) == name }
        return tail.count == 1 ? tail[0] : nil
    }

    public func base(named name: String, param: String = "model") throws(APIError) -> Base {
        try Self.checkName(name, param: param)
        guard let b = Self.find(name, in: bases, id: \.id) else { throw APIError.modelNotFound(name, known: modelIDs) }
        return b
    }

    public func adapter(named name: String, param: String) throws(APIError) -> Adapter {
        try Self.checkName(name, param: param)
        guard let a = Self.find(name, in: adapters, id: \.id) else {
            throw APIError(.badRequest, "No adapter '\(name)' under the models folder; adapters: \(adapters.isEmpty ? "none" : adapters.map(\.id).joined(separator: ", "))",
                           type: "invalid_request_error", param: param, code: "adapter_not_found")
        }
        return a
    }

    public func adapter(index: Int, param: String) throws(APIError) -> Adapter {
        guard adapters.indices.contains(index) else {
            throw APIError.invalid("No adapter with id \(index); ids are 0–\(adapters.count - 1) (GET /lora-adapters lists them).", param: param,
                                   code: "adapter_not_found")
        }
        return adapters[index]
    }

    public func persona(_ id: String) -> Persona? { personas.first { $0.id == id } }

    /// Every model id a client may send, as `/v1/models` lists them.
    public var modelIDs: [String] { bases.map(\.id) + personas.map { "persona:" + $0.id } }
}

/// A `"model"` string: a base or `persona:ID`, then `+adapter[@scale]` for each adapter to add
/// (`models/llama+adapters/qv@0.8+adapters/all`).
struct ModelSpec: Equatable {
    enum Target: Equatable { case base(String), persona(String) }
    var target: Target
    var adapters: [(name: String, scale: Float)]

    static func == (a: ModelSpec, b: ModelSpec) -> Bool {
        a.target == b.target && a.adapters.map(\.name) == b.adapters.map(\.name) && a.adapters.map(\.scale) == b.adapters.map(\.scale)
    }

    static func parse(_ text: String) throws(APIError) -> ModelSpec {
        let parts = text.split(separator: "+", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let head = parts.first, !head.isEmpty else { throw APIError.invalid("'model' is empty.", param: "model") }
        let target: Target = head.hasPrefix("persona:") ? .persona(String(head.dropFirst("persona:".count))) : .base(head)
        var list: [(String, Float)] = []
        for p in parts.dropFirst() {
            guard !p.isEmpty else { throw APIError.invalid("'model' has an empty adapter after '+' (\(text)).", param: "model") }
            if let at = p.lastIndex(of: "@") {
                let name = String(p[..<at])
                guard let s = Float(p[p.index(after: at)...]), s.isFinite, (0...2).contains(s), !name.isEmpty else {
                    throw APIError.invalid("'model': '\(p)' must be ADAPTER or ADAPTER@SCALE with a scale from 0 to 2.", param: "model")
                }
                list.append((name, s))
            } else {
                list.append((p, 1))
            }
        }
        return ModelSpec(target: target, adapters: list)
    }
}
