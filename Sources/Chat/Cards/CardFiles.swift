import Foundation

/// Character cards as files in the personas folder: `<personas>/<group>/<id>.png|json` load as
/// personas beside the YAML ones (a card that names no group takes its folder's). Import copies
/// the card file there unchanged (every field, unknown ones and other apps' extensions, stays);
/// export writes a V2+V3 PNG (both chunks) or a V3 JSON.
public enum CardFiles {
    public static let extensions = ["png", "json"]

    /// The persona a card file describes, as the library loads it: id from the file name, group
    /// from the card's `extensions.yanyi.group`, else the folder it is in.
    public static func persona(_ path: String, group: String?) throws(ChatError) -> Persona {
        let (card, _) = try CharacterCard.read(path)
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return try card.persona(id: stem, file: path, group: group)
    }

    /// Copies the card at `path` into `personasRoot` as `group/id` (`as`: "group/id"; default:
    /// the card's own group, else `cards`, and a plain form of its file name). Checked first: a
    /// card that does not make a persona is refused and nothing is written. Returns the persona
    /// and where the file went.
    public static func importCard(_ path: String, into personasRoot: String, as target: String? = nil,
                                  taken: Set<String> = []) throws(ChatError) -> (persona: Persona, file: String) {
        let (card, png) = try CharacterCard.read(path)
        var group = "cards", stem = plainName(((path as NSString).lastPathComponent as NSString).deletingPathExtension)
        if let target {
            let parts = target.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && !$0.hasPrefix(".") && plainName($0) == $0 }) else {
                throw ChatError("", "--as \(target.quotedForError): expected GROUP/ID (letters, digits, - and _; no '/' inside)")
            }
            (group, stem) = (parts[0], parts[1])
        }
        // The card's own group and id (extensions.yanyi) win: the file is named so that it loads
        // as the id printed; a card that names another id than --as is refused.
        let probe = try card.persona(id: stem, file: path, group: group)
        if let target, probe.id != target {
            throw ChatError(path, field: "data.extensions.yanyi", "names the persona '\(probe.id)'; it cannot be imported as \(target)")
        }
        let id = probe.id
        group = probe.group
        stem = String(id.dropFirst(group.count + 1))
        if taken.contains(id) { throw ChatError(path, "persona id '\(id)' is already taken (choose another with --as GROUP/ID)") }
        let dir = (personasRoot as NSString).appendingPathComponent(group)
        let dest = (dir as NSString).appendingPathComponent(stem + (png != nil ? ".png" : ".json"))
        guard !FileManager.default.fileExists(atPath: dest) else {
            throw ChatError(dest, "already exists (choose another id with --as GROUP/ID)")
        }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw ChatError(dir, "cannot create the folder")
        }
        guard let bytes = FileManager.default.contents(atPath: path) else { throw ChatError(path, "cannot read the file") }
        try TranscriptExport.write(bytes, to: dest)
        return (try card.persona(id: stem, file: dest, group: group), dest)
    }

    /// Writes `p` as a card: `png` (V2 `chara` + V3 `ccv3` chunks, in the image of the card it
    /// came from when there was one) or `json` (V3).
    public static func export(_ p: Persona, format: String, to path: String) throws(ChatError) {
        switch format {
        case "png":
            var image: [UInt8]?
            if p.source.lowercased().hasSuffix(".png"), let data = FileManager.default.contents(atPath: p.source) {
                image = [UInt8](data)
            }
            try TranscriptExport.write(Data(try CharacterCard.png(persona: p, image: image, file: p.source)), to: path)
        case "json":
            try TranscriptExport.write(CharacterCard(persona: p, spec: .v3).jsonData(), to: path)
        default:
            throw ChatError("", "--format \(format.quotedForError): expected png or json")
        }
    }

    /// Letters (any script), digits, `-` and `_`; anything else becomes `-`.
    static func plainName(_ s: String) -> String {
        let out = String(s.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
        return out.isEmpty ? "card" : out
    }
}
