import Engine

/// Settings resolution: generation_config.json → persona → user; an unset value inherits at
/// every layer, and what front ends show is the resolved value with the layer it came from.
extension ChatController {
    /// `/set KEY VALUE` (`default` clears). The whole layered setting is checked now, so a value
    /// the engine would refuse is refused here and the old one stays. Returns a warning when the
    /// next prompt would leave history out because of it. Allowed while a reply runs (the next
    /// reply uses it); front ends call it from the thread that makes their other calls.
    @discardableResult
    public func set(_ key: String, _ value: String) throws(ChatError) -> String? {
        var o = overrides
        try o.set(key, value)
        do {
            _ = try layered(o).resolved(promptLength: 1)
        } catch {
            throw ChatError("", field: key, error.description)
        }
        if key == "max_new_tokens", let n = o.parameters.maxNewTokens, let ctx = engine?.info.contextLength, n >= ctx {
            throw ChatError("", field: key, "must be below the model's \(ctx)-token context (got \(n))")
        }
        lock.withLock { settingsLayer = o }
        emit(.settings)
        return budgetWarning()
    }

    /// generation_config.json < persona < `o`.
    func layered(_ o: SamplingOverrides) -> GenerationParameters {
        GenerationParameters.layered(model: engine?.defaults ?? GenerationParameters(), persona: persona.sampling.generationParameters,
                                     user: o.parameters)
    }

    /// max_new_tokens the next reply asks for, before the budget.
    var maxNewTokens: Int {
        overrides.parameters.maxNewTokens ?? persona.sampling.maxNewTokens ?? engine?.defaults.maxNewTokens ?? options.defaultMaxNewTokens
    }

    var maxHistory: Int? { overrides.maxHistory ?? persona.sampling.maxHistory ?? persona.promptTemplate.defaultMaxHistory }

    /// Every setting as the next reply would use it, in `SamplingOverrides.keys` order.
    public var resolvedSettings: [ResolvedSetting] {
        let o = overrides
        let model = engine?.defaults ?? GenerationParameters()
        let mine = persona.sampling.generationParameters
        var p = layered(o)
        p.maxNewTokens = maxNewTokens
        let r = (try? p.resolved(promptLength: 1)) ?? GenerationSettings()
        return SamplingOverrides.keys.map { key in
            let layer: ResolvedSetting.Layer
            if key == "max_history" {
                layer = o.maxHistory != nil ? .user : persona.sampling.maxHistory != nil ? .persona : .builtIn
            } else if SamplingOverrides.text(key, in: o.parameters, maxHistory: nil) != nil {
                layer = .user
            } else if SamplingOverrides.text(key, in: mine, maxHistory: nil) != nil {
                layer = .persona
            } else if SamplingOverrides.text(key, in: model, maxHistory: nil) != nil || (key == "max_new_tokens" && engine?.defaults.maxNewTokens != nil) {
                layer = .model
            } else {
                layer = .builtIn
            }
            let value: String
            switch key {
            case "temperature": value = "\(r.temperature)"
            case "top_p": value = "\(r.topP)"
            case "top_k": value = "\(r.topK)"
            case "min_p": value = "\(r.minP)"
            case "repetition_penalty": value = "\(r.repetitionPenalty)"
            case "no_repeat_ngram_size": value = "\(r.noRepeatNgramSize)"
            case "max_new_tokens": value = "\(maxNewTokens)"
            case "do_sample": value = "\(r.doSample)"
            case "num_beams": value = "\(r.numBeams)"
            case "length_penalty": value = "\(r.lengthPenalty)"
            case "max_history": value = maxHistory.map { $0 < 0 ? "all" : "\($0)" } ?? "all"
            default: value = r.seed.map { "\($0)" } ?? "random"
            }
            return ResolvedSetting(key: key, value: value, layer: layer)
        }
    }

    /// Key -> value text of `resolvedSettings` (the line chat's /set list, tests).
    public var effectiveSettings: [(key: String, value: String)] { resolvedSettings.map { ($0.key, $0.value) } }

    /// When the next reply's prompt would leave history out to fit the context, says how much.
    public func budgetWarning() -> String? {
        guard let e = engine, !isBusy else { return nil }
        let history = conversation.utterances(includeGreetings: persona.history.includeGreeting)
        guard !history.isEmpty,
              let plan = try? TurnPlan(persona: planPersona, history: history, utterance: persona.userUtterance("…"),
                                       tokenizer: e.tokenizer, contextLength: e.info.contextLength,
                                       defaultMaxNewTokens: maxNewTokens),
              !plan.fitted.droppedForBudget.isEmpty else { return nil }
        return "with max_new_tokens \(maxNewTokens), the next reply leaves out \(plan.fitted.droppedForBudget.count) older messages to fit the \(e.info.contextLength)-token context"
    }

    /// The persona with the user's max_new_tokens and max_history on top (what TurnPlan reads).
    var planPersona: Persona {
        var p = persona
        p.sampling.maxNewTokens = maxNewTokens
        if let v = overrides.maxHistory { p.sampling.maxHistory = v }
        return p
    }
}
