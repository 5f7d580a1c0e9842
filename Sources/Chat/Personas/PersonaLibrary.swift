import Foundation

/// Every persona under a `Personas/` folder (`<group>/<id>.yaml`, and character cards
/// `<group>/<id>.png|json`), and one error per file that failed; a broken file never stops the
/// others from loading.
public struct PersonaLibrary: Sendable {
    public var personas: [Persona]
    public var errors: [ChatError]

    public init(personas: [Persona] = [], errors: [ChatError] = []) {
        self.personas = personas
        self.errors = errors
    }

    /// Sorted by group then file name. A missing folder is one error, not a crash.
    public static func load(from root: String) -> PersonaLibrary {
        let fm = FileManager.default
        guard isDirectory(root) else {
            return PersonaLibrary(errors: [ChatError(root, "no such personas folder")])
        }
        var lib = PersonaLibrary()
        let groups = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        let base = root.hasSuffix("/") ? root : root + "/"
        for group in groups where isDirectory(base + group) && group != loreFolder {
            let files = ((try? fm.contentsOfDirectory(atPath: base + group)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            for f in files {
                let ext = (f as NSString).pathExtension.lowercased()
                do {
                    if ext == "yaml" || ext == "yml" {
                        lib.personas.append(try PersonaFile.load(base + group + "/" + f))
                    } else if CardFiles.extensions.contains(ext) {
                        lib.personas.append(try CardFiles.persona(base + group + "/" + f, group: group))
                    }
                } catch {
                    lib.errors.append(error)
                }
            }
        }
        var seen: [String: String] = [:]
        lib.personas = lib.personas.filter { p in
            if let first = seen[p.id] {
                lib.errors.append(ChatError(p.source, "persona id '\(p.id)' is already taken by \(first)"))
                return false
            }
            seen[p.id] = p.source
            return true
        }
        return lib
    }

    public func persona(_ id: String) -> Persona? { personas.first { $0.id == id } }

    /// `Personas/lore/`: lorebooks (SillyTavern world-info JSON), not personas.
    public static let loreFolder = "lore"

    /// The lorebook `lore/<name>.json` under `root`.
    public static func lorebook(_ name: String, in root: String) throws(ChatError) -> Lorebook {
        let path = ((root as NSString).appendingPathComponent(loreFolder) as NSString).appendingPathComponent(name + ".json")
        guard let data = FileManager.default.contents(atPath: path) else { throw ChatError(path, "no such lorebook") }
        return try Lorebook.worldInfo(data, file: path)
    }

    /// Groups in the order they first appear.
    public var groups: [String] {
        var out: [String] = []
        for p in personas where !out.contains(p.group) { out.append(p.group) }
        return out
    }
}
