import Foundation

extension DataFolders {
    /// The sessions database, and the folder of legacy `*.jsonl` sessions it imports once:
    /// `$XDG_DATA_HOME/yanyi/sessions.sqlite` and `$XDG_DATA_HOME/yanyi/sessions`, else the same
    /// under `~/.local/share/yanyi`.
    /// `folder` (`--sessions DIR`): `DIR/sessions.sqlite`, importing from `DIR` itself.
    static func sessionDatabase(_ env: [String: String], folder: String? = nil) -> (database: String, legacy: String) {
        if let folder { return ((folder as NSString).appendingPathComponent("sessions.sqlite"), folder) }
        let base: String
        if let x = env["XDG_DATA_HOME"], !x.isEmpty {
            base = x + "/yanyi"
        } else {
            base = (env["HOME"] ?? NSHomeDirectory()) + "/.local/share/yanyi"
        }
        return (base + "/sessions.sqlite", base + "/sessions")
    }
}
