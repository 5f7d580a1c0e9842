import ArgumentParser
import Chat
import Engine
import Foundation
import TUI

/// `yanyi chat`: the full-screen chat (the TUI). Reads the folders and flags here, hands the
/// TUI plain values, and exits with the TUI's one-line error if the terminal cannot start.
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a persona in the terminal: history, sliders, persona picker, adapters, sessions.")

    @Option(help: "A Hugging Face model folder (default: the persona's model under Models/).")
    var model: String?

    @Option(help: "Persona id, <group>/<name> (e.g. sanguo/liubei).")
    var persona: String = "sanguo/liubei"

    @Option(help: "A PEFT LoRA adapter folder to load by hand, optionally with a scale 0–2: DIR[=SCALE]. Repeatable.")
    var adapter: [String] = []

    @Option(help: "Theme name: a file in Themes/ without .yaml (dark, light, high-contrast, ink).")
    var theme: String = "dark"

    @Option(help: "Folder holding sessions.sqlite (default $XDG_DATA_HOME/yanyi, else ~/.local/share/yanyi); *.jsonl sessions in it are imported once.")
    var sessions: String?

    @Option(help: "Personas folder (default $YANYI_PERSONAS, else Personas/ beside the executable or in the package).")
    var personas: String?

    @Option(help: "Themes folder (default $YANYI_THEMES, else Themes/ beside the executable or in the package).")
    var themes: String?

    @Option(help: "Folder that persona model and adapter paths are relative to (default $YANYI_MODELS, else Models/ beside the personas folder).")
    var models: String?

    @Option(help: "int8 (default) or f32.")
    var precision: Precision = .int8

    @Option(help: "Worker threads, 1 to 4 per logical CPU (at most 256); default: physical cores.")
    var threads: Int?

    @Flag(name: .customLong("no-cache"), help: "Quantize from the checkpoint; neither read nor write the quantized-weights cache.")
    var noCache = false

    @OptionGroup var draft: DraftOptions

    @Option(help: "Resume a saved session by id (as the session list shows it).")
    var resume: String?

    @Flag(help: "No model: a canned backend that streams fixed replies (for trying the UI and for tests).")
    var fake = false

    @Flag(help: "Line mode on stdin/stdout instead of the full screen (slash commands: /help).")
    var plain = false

    @Option(help: .hidden)
    var fakeTokenMs = 40

    @Option(help: .hidden)
    var fakeLoadMs = 600

    func validate() throws {
        for a in adapter where AdapterSpec.parse(a) == nil {
            throw ValidationError("--adapter \(a): expected DIR or DIR=SCALE with SCALE in 0–2")
        }
        if let threads, let problem = ThreadPool.threadCountProblem(threads) { throw ValidationError(problem) }
        if fakeTokenMs < 0 || fakeLoadMs < 0 { throw ValidationError("--fake-token-ms and --fake-load-ms must be ≥ 0") }
        if plain && !adapter.isEmpty {
            throw ValidationError("--plain loads adapters with /adapter load DIR[=SCALE] (no --adapter)")
        }
    }

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        var startup: [Msg] = []

        let personasDir = personas ?? env["YANYI_PERSONAS"] ?? DataFolders.find("Personas")
        let library = personasDir.map(PersonaLibrary.load) ?? PersonaLibrary(errors: [ChatError("Personas", "folder not found (give --personas DIR)")])
        startup += library.errors.prefix(1).map { .failed($0.description) }
        let modelsRoot = models ?? env["YANYI_MODELS"]
            ?? personasDir.map { (($0 as NSString).deletingLastPathComponent as NSString).appendingPathComponent("Models") } ?? "Models"

        let themesDir = themes ?? env["YANYI_THEMES"] ?? DataFolders.find("Themes")
        let themeLibrary = ThemeLibrary.load(from: themesDir)
        var chosenTheme = Theme.builtIn
        if let t = themeLibrary.theme(theme) {
            chosenTheme = t
        } else {
            startup.append(.failed("theme '\(theme)' not found in \(themesDir ?? "Themes/"); using the built-in dark theme"))
        }
        startup += themeLibrary.errors.prefix(1).map { .failed($0.description + " (theme skipped)") }

        let chosen = library.persona(persona)
        let initial = chosen ?? library.personas.first
        if chosen == nil, let fallback = initial {
            let text = "no persona '\(persona)' in \(personasDir ?? "Personas/"); \(fallback.name) (\(fallback.id)) instead"
            if plain { FileHandle.standardError.write(Data("warning: \(text)\n".utf8)) } else { startup.append(.failed(text)) }
        }

        guard let initial else { fail("no personas in \(personasDir ?? "Personas/") (give --personas DIR)") }
        let (database, legacy) = DataFolders.sessionDatabase(env, folder: sessions)
        let (store, storeNotices) = SessionStore.open(database: database, importingFrom: legacy)
        startup += storeNotices.map { .failed($0) }
        let relay = NoticeRelay()
        let pool = threads.map { ThreadPool(threads: $0) } ?? ThreadPool()
        let host: any ModelHost = fake
            ? CannedModelHost(tokenDelay: Double(fakeTokenMs) / 1000, loadSeconds: Double(fakeLoadMs) / 1000, standInRoot: modelsRoot)
            : LocalModelHost(precision: precision, weightCache: noCache ? nil : .standard(background: true), pool: pool, notice: { relay.send($0) },
                             draft: draft.setting)
        let controller = ChatController(options: .init(modelsRoot: modelsRoot, pinnedModel: fake ? nil : model, personasRoot: personasDir), host: host,
                                        library: library, store: store, persona: initial)
        relay.controller = controller
        if let resume {
            do {
                for n in try controller.resume(resume) { startup.append(.notice(n)) }
            } catch {
                fail(error.description)
            }
        }
        if plain {
            for n in storeNotices { FileHandle.standardError.write(Data("warning: \(n)\n".utf8)) }
            for case .notice(let n) in startup { print("· " + n) }
            runPlainChat(controller)
        }
        let modelName = fake ? "fake" : URL(fileURLWithPath: model ?? controller.resolve(controller.persona.model)).lastPathComponent
        let state = State(size: TerminalSize(rows: 24, columns: 80), personas: library.personas, persona: controller.persona,
                          theme: chosenTheme, themes: themeLibrary.themes, modelName: modelName)
        let runtime = Runtime(state: state, terminal: NcursesTerminal(), controller: controller)
        do {
            try runtime.run(initial: startup, effects: adapter.map { .loadAdapter($0) })
        } catch {
            fail(error.description)
        }
        WeightCache.finishPending()
    }
}

/// Weight-cache notices reach the runtime that exists once the host does.
final class NoticeRelay: @unchecked Sendable {
    weak var controller: ChatController?
    func send(_ text: String) { controller?.onEvent?(.notice(text)) }
}

/// Where the data folders are when no flag or variable names them.
enum DataFolders {
    /// `name` beside the executable or in one of its parent folders (a build folder inside the
    /// package), else in the current directory.
    static func find(_ name: String) -> String? {
        let fm = FileManager.default
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = dir.appendingPathComponent(name).path
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: candidate, isDirectory: &isDir), isDir.boolValue { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let cwd = (fm.currentDirectoryPath as NSString).appendingPathComponent(name)
        return fm.fileExists(atPath: cwd) ? cwd : nil
    }
}
