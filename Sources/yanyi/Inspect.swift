import ArgumentParser
import Engine
import Foundation

/// `yanyi inspect DIR`: what Yanyi finds in a model folder, or the one-line reason it cannot use it.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model folder (architecture, shapes, dtypes, shards, tokenizer, memory at int8) or a LoRA adapter folder (targets, rank, alpha, effective scale, fit).")

    @Argument(help: "A Hugging Face model folder (config.json, tokenizer, weights) or a PEFT adapter folder (adapter_config.json).")
    var folder: String

    @Flag(help: "List every tensor instead of the first layer only.")
    var all = false

    @Option(help: "For an adapter folder: the base model folder to check it against.")
    var model: String?

    func run() throws {
        if FileManager.default.fileExists(atPath: URL(fileURLWithPath: folder).appendingPathComponent("adapter_config.json").path) {
            return try inspectAdapter()
        }
        if model != nil { fail("--model is for adapter folders; \(folder) has no adapter_config.json") }
        let m: ModelFolder
        do {
            m = try ModelFolder.open(folder)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        print(InspectReport(m, allTensors: all).text)
    }

    private func inspectAdapter() throws {
        do {
            let a = try LoRAAdapter(folder: folder)
            let base = try model.map { (m) throws(LoadError) in try ModelFolder.open(m) }
            let report = AdapterReport(a, base: base)
            print(report.text)
            if !report.fits { throw ExitCode(1) }
        } catch let e as LoadError {
            fail(e.description)
        }
    }
}

/// The report as lines, built apart from printing so it stays easy to read and to test.
struct InspectReport {
    let text: String

    init(_ m: ModelFolder, allTensors: Bool) {
        var out: [String] = []
        func row(_ k: String, _ v: String) { out.append(k.padding(toLength: 14, withPad: " ", startingAt: 0) + v) }
        let c = m.config
        let ckpt = m.checkpoint
        let arch = (c.architectures ?? []).joined(separator: ", ")
        row("folder", m.path)
        row("architecture", "\(m.family.rawValue)  (config: \(arch.isEmpty ? "-" : arch), model_type \(c.modelType ?? "-"))")
        let d = m.dims          // checked when the folder opened, as loading checks it
        row("shape", "layers \(d.layers), hidden \(d.hidden), heads \(d.heads) (kv \(d.kvHeads), head_dim \(d.headDim)), mlp \(d.mlp), vocab \(d.vocab), context \(d.context)")
        if m.family == .chatGLM {
            // Upstream's GLMBlock takes num_layers=28 by default and ChatGLMModel never passes the config's.
            row("norm", "LayerNorm eps \(d.normEps), DeepNorm alpha sqrt(2·28), 2-D RoPE, prefix-LM mask")
        } else {
            row("norm", "RMSNorm eps \(d.normEps), RoPE theta \(d.ropeTheta)")
        }

        let files = ckpt.files.map { URL(fileURLWithPath: $0).lastPathComponent }
        row("weights", "\(Self.formatName(ckpt.format)), \(files.count) file\(files.count == 1 ? "" : "s"): \(files.joined(separator: ", "))")
        var dtypes: [String: Int] = [:]
        for n in ckpt.names { if let t = ckpt.info(n) { dtypes[t.dtype.rawValue, default: 0] += 1 } }
        row("dtypes", dtypes.sorted { $0.key < $1.key }.map { "\($0.key) × \($0.value)" }.joined(separator: ", "))
        let p = m.parameterCounts
        row("parameters", "\(Self.grouped(p.total))  (linear \(Self.grouped(p.linear)), embeddings \(Self.grouped(p.embedding)), norms+biases \(Self.grouped(p.other)))")
        row("int8 memory", "\(Self.bytes(m.int8Bytes()))  (linear weights int8 + fp32 scale per 32; embeddings, norms, biases fp32)")

        let t = m.tokenizer
        let s = t.specials
        func id(_ x: Int32?) -> String { x.map(String.init) ?? "-" }
        var tok = "\(t.kind.rawValue), vocab \(t.vocabSize); bos \(id(s.bos)) eos \(id(s.eos)) unk \(id(s.unk)) pad \(id(s.pad))"
        if let sp = t as? SentencePieceTokenizer {
            tok += "; add_bos \(sp.addBos) add_eos \(sp.addEos)"
        }
        if let glm = t as? ChatGLMTokenizer {
            tok += "; image-token offset \(glm.imageTokens)"
        }
        row("tokenizer", tok)
        if !s.named.isEmpty {
            row("special ids", s.named.sorted { $0.value < $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if let g = m.generation {
            let eos = g.eosTokenId?.values.map(String.init).joined(separator: ",") ?? "-"
            row("generation", "eos \(eos), do_sample \(g.doSample.map { "\($0)" } ?? "-"), max_new_tokens \(g.maxNewTokens.map(String.init) ?? "-")")
        }

        out.append("tensors" + (allTensors ? ":" : " (layer 0 stands for every layer; --all lists each):"))
        let names = ckpt.names.filter { allTensors || !Self.isLaterLayer($0) }
        let width = min(64, (names.map(\.count).max() ?? 0) + 2)
        for n in names {
            guard let t = ckpt.info(n) else { continue }
            let shapeText = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            let note = m.family.isIgnored(n) ? "  (ignored)" : (m.family.isLinearWeight(n, shape: t.shape) ? "  int8" : "")
            out.append("  " + n.padding(toLength: width, withPad: " ", startingAt: 0) + t.dtype.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0) + shapeText + note)
        }
        text = out.joined(separator: "\n")
    }

    /// `….layers.N.…` with N > 0.
    static func isLaterLayer(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        for (i, p) in parts.enumerated() where p == "layers" && i + 1 < parts.count {
            if let n = Int(parts[i + 1]), n > 0 { return true }
        }
        return false
    }

    static func formatName(_ f: CheckpointFormat) -> String {
        switch f {
        case .safetensors: return "safetensors"
        case .safetensorsSharded: return "sharded safetensors"
        case .pytorchBin: return "PyTorch .bin (zip)"
        case .pytorchBinSharded: return "sharded PyTorch .bin (zip)"
        }
    }

    static func grouped(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, ch) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return String(out.reversed())
    }

    static func bytes(_ n: Int) -> String {
        let d = Double(n)
        if d >= Double(1 << 30) { return String(format: "%.2f GiB", d / Double(1 << 30)) }
        if d >= Double(1 << 20) { return String(format: "%.1f MiB", d / Double(1 << 20)) }
        return String(format: "%.1f KiB", d / 1024)
    }
}
